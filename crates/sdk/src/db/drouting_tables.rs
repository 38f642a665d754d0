//! The drouting module's tables, as Kamailio's `drouting-create.sql`
//! makes them: gateways, rules, gateway lists and caller groups.

use super::schema::{col, ColType, TableDef};

/// Version of `dr_gateways`.
pub const DR_GATEWAYS_VERSION: i64 = 3;
/// Version of `dr_rules`.
pub const DR_RULES_VERSION: i64 = 3;
/// Version of `dr_gw_lists`.
pub const DR_GW_LISTS_VERSION: i64 = 1;
/// Version of `dr_groups`.
pub const DR_GROUPS_VERSION: i64 = 2;

fn description() -> super::schema::ColumnDef {
    col("description", ColType::Varchar(128), false, Some("''"))
}

/// `dr_gateways`: one row per gateway.
pub fn dr_gateways() -> TableDef {
    use ColType::*;
    TableDef {
        name: "dr_gateways",
        version: DR_GATEWAYS_VERSION,
        columns: vec![
            col("gwid", Id, false, None),
            col("type", Int, false, Some("0")),
            col("address", Varchar(128), false, None),
            col("strip", Int, false, Some("0")),
            col("pri_prefix", Varchar(64), true, None),
            col("attrs", Varchar(255), true, None),
            description(),
        ],
        unique: vec![],
        indexes: vec![],
    }
}

/// `dr_rules`: prefixes, groups, times and gateway lists.
pub fn dr_rules() -> TableDef {
    use ColType::*;
    TableDef {
        name: "dr_rules",
        version: DR_RULES_VERSION,
        columns: vec![
            col("ruleid", Id, false, None),
            col("groupid", Varchar(255), false, None),
            col("prefix", Varchar(64), false, None),
            col("timerec", Varchar(255), false, None),
            col("priority", Int, false, Some("0")),
            col("routeid", Varchar(64), false, None),
            col("gwlist", Varchar(255), false, None),
            description(),
        ],
        unique: vec![],
        indexes: vec![],
    }
}

/// `dr_gw_lists`: named gateway lists (`#id` in a rule's `gwlist`).
pub fn dr_gw_lists() -> TableDef {
    use ColType::*;
    TableDef {
        name: "dr_gw_lists",
        version: DR_GW_LISTS_VERSION,
        columns: vec![
            col("id", Id, false, None),
            col("gwlist", Varchar(255), false, None),
            description(),
        ],
        unique: vec![],
        indexes: vec![],
    }
}

/// `dr_groups`: the routing group of each caller.
pub fn dr_groups() -> TableDef {
    use ColType::*;
    TableDef {
        name: "dr_groups",
        version: DR_GROUPS_VERSION,
        columns: vec![
            col("id", Id, false, None),
            col("username", Varchar(64), false, None),
            col("domain", Varchar(128), false, Some("''")),
            col("groupid", Int, false, Some("0")),
            description(),
        ],
        unique: vec![],
        indexes: vec![],
    }
}

/// The four tables.
pub fn all() -> Vec<TableDef> {
    vec![dr_gateways(), dr_rules(), dr_gw_lists(), dr_groups()]
}
