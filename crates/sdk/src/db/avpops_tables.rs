//! The avpops module's table, as Kamailio's `avpops-create.sql` makes it:
//! per-user preferences (`usr_preferences`).

use super::schema::{ColType, ColumnDef, TableDef};

/// Version of `usr_preferences`.
pub const USR_PREFERENCES_VERSION: i64 = 2;

/// `usr_preferences`: attributes of users, by UUID or by user and domain.
pub fn usr_preferences() -> TableDef {
    use ColType::*;
    let col = |name, ty, default| ColumnDef {
        name,
        ty,
        nullable: false,
        default,
    };
    TableDef {
        name: "usr_preferences",
        version: USR_PREFERENCES_VERSION,
        columns: vec![
            col("id", Id, None),
            col("uuid", Varchar(64), Some("''")),
            col("username", Varchar(255), Some("0")),
            col("domain", Varchar(64), Some("''")),
            col("attribute", Varchar(32), Some("''")),
            col("type", Int, Some("0")),
            col("value", Varchar(128), Some("''")),
            col("last_modified", DateTime, Some("'2000-01-01 00:00:01'")),
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
