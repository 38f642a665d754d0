//! The modules compiled into siprouter. `loadmodule "name"`,
//! `loadmodule "name.so"` and `loadmodule "/any/path/name.so"` of one of
//! these give the in-tree module, whatever the module path says.

use sr_core::InTree;

/// Every in-tree module, by the name `loadmodule` uses.
pub fn in_tree() -> Vec<InTree> {
    vec![
        ("sl", sr_mod_sl::module),
        ("maxfwd", sr_mod_maxfwd::module),
        ("sanity", sr_mod_sanity::module),
        ("textops", sr_mod_textops::module),
        ("textopsx", sr_mod_textopsx::module),
        ("siputils", sr_mod_siputils::module),
        ("tm", sr_mod_tm::module),
        ("tmx", sr_mod_tmx::module),
        ("rr", sr_mod_rr::module),
        ("pv", sr_mod_pv::module),
        ("xlog", sr_mod_xlog::module),
        ("kex", sr_mod_kex::module),
        ("corex", sr_mod_corex::module),
        ("cfgutils", sr_mod_cfgutils::module),
        ("htable", sr_mod_htable::module),
        ("pike", sr_mod_pike::module),
        ("xhttp", sr_mod_xhttp::module),
        ("websocket", sr_mod_websocket::module),
        ("nathelper", sr_mod_nathelper::module),
        ("rtpengine", sr_mod_rtpengine::module),
        ("rtpproxy", sr_mod_rtpproxy::module),
        ("dialog", sr_mod_dialog::module),
        ("uac", sr_mod_uac::module),
        ("rtimer", sr_mod_rtimer::module),
        ("sdpops", sr_mod_sdpops::module),
        ("sqlops", sr_mod_sqlops::module),
        ("alias_db", sr_mod_alias_db::module),
        ("speeddial", sr_mod_speeddial::module),
        ("group", sr_mod_group::module),
        ("dispatcher", sr_mod_dispatcher::module),
        ("permissions", sr_mod_permissions::module),
        ("ipops", sr_mod_ipops::module),
        ("domain", sr_mod_domain::module),
        ("counters", sr_mod_counters::module),
        ("cfg_rpc", sr_mod_cfg_rpc::module),
        ("jsonrpcs", sr_mod_jsonrpcs::module),
        ("usrloc", sr_mod_usrloc::module),
        ("registrar", sr_mod_registrar::module),
        ("auth", sr_mod_auth::module),
        ("auth_db", sr_mod_auth_db::module),
        ("db_sqlite", sr_mod_db_sqlite::module),
        ("acc", sr_mod_acc::module),
        ("ctl", sr_mod_jsonrpcs::ctl_module),
    ]
}
