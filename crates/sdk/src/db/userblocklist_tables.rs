//! The tables of the modules that block and allow callers, as Kamailio's
//! `userblocklist-create.sql` and `secfilter-create.sql` make them:
//! per-user prefixes (`userblocklist`) and global ones
//! (`globalblocklist`), each marked blocked (`allowlist` 0) or allowed
//! (1); secfilter's lists (`secfilter`).

use super::schema::{col, ColType, ColumnDef, TableDef};

/// Version of both tables.
pub const USERBLOCKLIST_VERSION: i64 = 1;

fn s(name: &'static str, len: u32) -> ColumnDef {
    col(name, ColType::Varchar(len), false, Some("''"))
}

/// `userblocklist`: a user's prefixes.
pub fn userblocklist() -> TableDef {
    TableDef {
        name: "userblocklist",
        version: USERBLOCKLIST_VERSION,
        columns: vec![
            col("id", ColType::Id, false, None),
            s("username", 64),
            s("domain", 64),
            s("prefix", 64),
            col("allowlist", ColType::Int, false, Some("0")),
        ],
        unique: vec![],
        indexes: vec![(
            "userblocklist_userblocklist_idx",
            vec!["username", "domain", "prefix"],
        )],
    }
}

/// `globalblocklist`: prefixes for everyone.
pub fn globalblocklist() -> TableDef {
    TableDef {
        name: "globalblocklist",
        version: USERBLOCKLIST_VERSION,
        columns: vec![
            col("id", ColType::Id, false, None),
            s("prefix", 64),
            col("allowlist", ColType::Int, false, Some("0")),
            col("description", ColType::Varchar(255), true, None),
        ],
        unique: vec![],
        indexes: vec![("globalblocklist_globalblocklist_idx", vec!["prefix"])],
    }
}

/// The three tables.
pub fn all() -> Vec<TableDef> {
    vec![userblocklist(), globalblocklist(), secfilter()]
}

/// Version of `secfilter`.
pub const SECFILTER_VERSION: i64 = 1;

/// `secfilter`: the secfilter module's lists (`action` 0 blocked, 1
/// allowed, 2 blocked destination; `type` 0 user agent or destination,
/// 1 country, 2 domain, 3 IP address, 4 user).
pub fn secfilter() -> TableDef {
    TableDef {
        name: "secfilter",
        version: SECFILTER_VERSION,
        columns: vec![
            col("id", ColType::Id, false, None),
            col("action", ColType::Int, false, Some("0")),
            col("type", ColType::Int, false, Some("0")),
            s("data", 64),
        ],
        unique: vec![],
        indexes: vec![("secfilter_secfilter_idx", vec!["action", "type", "data"])],
    }
}
