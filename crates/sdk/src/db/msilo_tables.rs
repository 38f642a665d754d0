//! The msilo module's table, as Kamailio's `msilo-create.sql` makes it:
//! `silo`, the messages kept for users who are offline.

use super::schema::{col, ColType, ColumnDef, TableDef};

/// Version of `silo`.
pub const SILO_VERSION: i64 = 8;

fn s(name: &'static str, len: u32) -> ColumnDef {
    col(name, ColType::Varchar(len), false, Some("''"))
}

fn int(name: &'static str) -> ColumnDef {
    col(name, ColType::Int, false, Some("0"))
}

/// `silo`: sender, recipient (as an address and as user and domain), the
/// times it came, expires and is to be sent (reminders), its content
/// type, body and extra headers.
pub fn silo() -> TableDef {
    TableDef {
        name: "silo",
        version: SILO_VERSION,
        columns: vec![
            col("id", ColType::Id, false, None),
            s("src_addr", 255),
            s("dst_addr", 255),
            s("username", 64),
            s("domain", 64),
            int("inc_time"),
            int("exp_time"),
            int("snd_time"),
            col("ctype", ColType::Varchar(32), false, Some("'text/plain'")),
            col("body", ColType::Blob, true, None),
            col("extra_hdrs", ColType::Text, true, None),
            s("callid", 128),
            int("status"),
        ],
        unique: vec![],
        indexes: vec![("silo_account_idx", vec!["username", "domain"])],
    }
}
