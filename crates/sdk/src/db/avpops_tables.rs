//! The avpops module's table, as Kamailio's `avpops-create.sql` makes it:
//! per-user preferences (`usr_preferences`).

use super::schema::{col, ColType, TableDef};

/// Version of `usr_preferences`.
pub const USR_PREFERENCES_VERSION: i64 = 2;

/// `usr_preferences`: attributes of users, by UUID or by user and domain.
pub fn usr_preferences() -> TableDef {
    use ColType::*;
    TableDef {
        name: "usr_preferences",
        version: USR_PREFERENCES_VERSION,
        columns: vec![
            col("id", Id, false, None),
            col("uuid", Varchar(64), false, Some("''")),
            col("username", Varchar(255), false, Some("0")),
            col("domain", Varchar(64), false, Some("''")),
            col("attribute", Varchar(32), false, Some("''")),
            col("type", Int, false, Some("0")),
            col("value", Varchar(128), false, Some("''")),
            col(
                "last_modified",
                DateTime,
                false,
                Some("'2000-01-01 00:00:01'"),
            ),
        ],
        unique: vec![],
        indexes: vec![
            ("usr_preferences_ua_idx", vec!["uuid", "attribute"]),
            (
                "usr_preferences_uda_idx",
                vec!["username", "domain", "attribute"],
            ),
        ],
    }
}
