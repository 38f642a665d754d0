//! The prefix_route module's table, as Kamailio's `prefix_route.sql`
//! makes it: a prefix of digits → the name of a `route` block.

use super::schema::{col, ColType, TableDef};

/// Version of `prefix_route` (Kamailio does not check one).
pub const PREFIX_ROUTE_VERSION: i64 = 1;

/// `prefix_route`: one row per prefix.
pub fn prefix_route() -> TableDef {
    let s = |name| col(name, ColType::Varchar(64), false, Some("''"));
    TableDef {
        name: "prefix_route",
        version: PREFIX_ROUTE_VERSION,
        columns: vec![s("prefix"), s("route"), s("comment")],
        unique: vec![],
        indexes: vec![],
    }
}
