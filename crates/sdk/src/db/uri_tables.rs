//! The uri_db module's table, as Kamailio's `uri-create.sql` makes it:
//! which URI users a digest user (of a domain) may use.

use super::schema::{col, ColType, TableDef};

/// Version of `uri`.
pub const URI_VERSION: i64 = 1;

/// `uri`: one row per digest user, domain and allowed URI user.
pub fn uri() -> TableDef {
    use ColType::*;
    TableDef {
        name: "uri",
        version: URI_VERSION,
        columns: vec![
            col("id", Id, false, None),
            col("username", Varchar(64), false, Some("''")),
            col("domain", Varchar(64), false, Some("''")),
            col("uri_user", Varchar(64), false, Some("''")),
            col(
                "last_modified",
                DateTime,
                false,
                Some("'2000-01-01 00:00:01'"),
            ),
        ],
        unique: vec![("uri_account_idx", vec!["username", "domain", "uri_user"])],
        indexes: vec![],
    }
}
