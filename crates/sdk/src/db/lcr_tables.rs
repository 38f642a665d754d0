//! The lcr module's tables, as Kamailio's `lcr-create.sql` makes them:
//! gateways (`lcr_gw`), rules (`lcr_rule`) and which gateways a rule
//! routes to (`lcr_rule_target`).

use super::schema::{col, ColType, TableDef};

/// Version of `lcr_gw`.
pub const LCR_GW_VERSION: i64 = 3;
/// Version of `lcr_rule`.
pub const LCR_RULE_VERSION: i64 = 3;
/// Version of `lcr_rule_target`.
pub const LCR_RULE_TARGET_VERSION: i64 = 1;

/// `lcr_gw`: one row per gateway of an LCR instance (0: every instance).
pub fn lcr_gw() -> TableDef {
    use ColType::*;
    TableDef {
        name: "lcr_gw",
        version: LCR_GW_VERSION,
        columns: vec![
            col("id", Id, false, None),
            col("lcr_id", Int, false, None),
            col("gw_name", Varchar(128), true, None),
            col("ip_addr", Varchar(50), true, None),
            col("hostname", Varchar(64), true, None),
            col("port", Int, true, None),
            col("params", Varchar(64), true, None),
            col("uri_scheme", Int, true, None),
            col("transport", Int, true, None),
            col("strip", Int, true, None),
            col("prefix", Varchar(16), true, Some("NULL")),
            col("tag", Varchar(64), true, Some("NULL")),
            col("flags", Int, false, Some("0")),
            col("defunct", Int, true, Some("NULL")),
        ],
        unique: vec![],
        indexes: vec![("lcr_gw_lcr_id_idx", vec!["lcr_id"])],
    }
}

/// `lcr_rule_target`: a rule's gateway with its priority and weight.
pub fn lcr_rule_target() -> TableDef {
    use ColType::*;
    TableDef {
        name: "lcr_rule_target",
        version: LCR_RULE_TARGET_VERSION,
        columns: vec![
            col("id", Id, false, None),
            col("lcr_id", Int, false, None),
            col("rule_id", Int, false, None),
            col("gw_id", Int, false, None),
            col("priority", Int, false, None),
            col("weight", Int, false, Some("1")),
        ],
        unique: vec![(
            "lcr_rule_target_rule_id_gw_id_idx",
            vec!["rule_id", "gw_id"],
        )],
        indexes: vec![("lcr_rule_target_lcr_id_idx", vec!["lcr_id"])],
    }
}

/// `lcr_rule`: a prefix with optional From and Request-URI patterns.
pub fn lcr_rule() -> TableDef {
    use ColType::*;
    TableDef {
        name: "lcr_rule",
        version: LCR_RULE_VERSION,
        columns: vec![
            col("id", Id, false, None),
            col("lcr_id", Int, false, None),
            col("prefix", Varchar(16), true, Some("NULL")),
            col("from_uri", Varchar(64), true, Some("NULL")),
            col("request_uri", Varchar(64), true, Some("NULL")),
            col("mt_tvalue", Varchar(128), true, Some("NULL")),
            col("stopper", Int, false, Some("0")),
            col("enabled", Int, false, Some("1")),
        ],
        unique: vec![(
            "lcr_rule_lcr_id_prefix_from_uri_idx",
            vec!["lcr_id", "prefix", "from_uri"],
        )],
        indexes: vec![],
    }
}

/// The three tables.
pub fn all() -> Vec<TableDef> {
    vec![lcr_gw(), lcr_rule_target(), lcr_rule()]
}
