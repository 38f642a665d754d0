//! The pipelimit module's table, as Kamailio's `pipelimit-create.sql`
//! makes it: pipes defined in the database (`pl_pipes`).

use super::schema::{ColType, ColumnDef, TableDef};

/// Version of `pl_pipes`.
pub const PL_PIPES_VERSION: i64 = 1;

/// `pl_pipes`: one row per pipe.
pub fn pl_pipes() -> TableDef {
    use ColType::*;
    let col = |name, ty, default| ColumnDef {
        name,
        ty,
        nullable: false,
        default,
    };
    TableDef {
        name: "pl_pipes",
        version: PL_PIPES_VERSION,
        columns: vec![
            col("id", Id, None),
            col("pipeid", Varchar(64), Some("''")),
            col("algorithm", Varchar(32), Some("''")),
            col("plimit", Int, Some("0")),
        ],
        unique: vec![],
        indexes: vec![],
    }
}
