//! The pdt module's table, as Kamailio's `pdt-create.sql` makes it:
//! (source domain, prefix) → domain.

use super::schema::{col, ColType, TableDef};

/// Version of `pdt`.
pub const PDT_VERSION: i64 = 1;

/// `pdt`: one row per source domain and prefix.
pub fn pdt() -> TableDef {
    use ColType::*;
    TableDef {
        name: "pdt",
        version: PDT_VERSION,
        columns: vec![
            col("id", Id, false, None),
            col("sdomain", Varchar(255), false, None),
            col("prefix", Varchar(32), false, None),
            col("domain", Varchar(255), false, Some("''")),
        ],
        unique: vec![("pdt_sdomain_prefix_idx", vec!["sdomain", "prefix"])],
        indexes: vec![],
    }
}
