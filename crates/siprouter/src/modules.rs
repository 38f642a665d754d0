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
    ]
}
