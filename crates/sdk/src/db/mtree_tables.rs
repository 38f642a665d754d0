//! The mtree module's tables, as Kamailio's `mtree-create.sql` makes them:
//! one tree per table (`mtree`) or many trees in one, named by `tname`
//! (`mtrees`).

use super::schema::{col, ColType, ColumnDef, TableDef};

/// Version of `mtree`.
pub const MTREE_VERSION: i64 = 1;
/// Version of `mtrees`.
pub const MTREES_VERSION: i64 = 2;

fn s(name: &'static str, len: u32) -> ColumnDef {
    col(name, ColType::Varchar(len), false, Some("''"))
}

/// `mtree`: prefix and value.
pub fn mtree() -> TableDef {
    TableDef {
        name: "mtree",
        version: MTREE_VERSION,
        columns: vec![
            col("id", ColType::Id, false, None),
            s("tprefix", 32),
            s("tvalue", 128),
        ],
        unique: vec![("mtree_tprefix_idx", vec!["tprefix"])],
        indexes: vec![],
    }
}

/// `mtrees`: tree name, prefix and value.
pub fn mtrees() -> TableDef {
    TableDef {
        name: "mtrees",
        version: MTREES_VERSION,
        columns: vec![
            col("id", ColType::Id, false, None),
            s("tname", 128),
            s("tprefix", 32),
            s("tvalue", 128),
        ],
        unique: vec![(
            "mtrees_tname_tprefix_tvalue_idx",
            vec!["tname", "tprefix", "tvalue"],
        )],
        indexes: vec![],
    }
}

/// The two tables.
pub fn all() -> Vec<TableDef> {
    vec![mtree(), mtrees()]
}
