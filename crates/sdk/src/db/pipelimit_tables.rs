//! The pipelimit module's table, as Kamailio's `pipelimit-create.sql`
//! makes it: pipes defined in the database (`pl_pipes`).

use super::schema::{col, ColType, TableDef};

/// Version of `pl_pipes`.
pub const PL_PIPES_VERSION: i64 = 1;

/// `pl_pipes`: one row per pipe.
pub fn pl_pipes() -> TableDef {
    use ColType::*;
    TableDef {
        name: "pl_pipes",
        version: PL_PIPES_VERSION,
        columns: vec![
            col("id", Id, false, None),
            col("pipeid", Varchar(64), false, Some("''")),
            col("algorithm", Varchar(32), false, Some("''")),
            col("plimit", Int, false, Some("0")),
        ],
        unique: vec![],
        indexes: vec![],
    }
}
