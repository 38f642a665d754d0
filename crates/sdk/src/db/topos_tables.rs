//! The topos module's tables, as Kamailio's `topos-create.sql` makes
//! them: one row per dialog (`topos_d`) and one per transaction branch
//! (`topos_t`), so that a database made by either server serves both.

use super::schema::{col, ColType, ColumnDef, TableDef};

/// Version of `topos_d`.
pub const TOPOS_D_VERSION: i64 = 2;
/// Version of `topos_t`.
pub const TOPOS_T_VERSION: i64 = 2;

fn s(name: &'static str, len: u32) -> ColumnDef {
    col(name, ColType::Varchar(len), false, Some("''"))
}

fn text(name: &'static str) -> ColumnDef {
    col(name, ColType::Text, true, None)
}

/// The columns both tables start with.
fn head() -> Vec<ColumnDef> {
    vec![
        col("id", ColType::Id, false, None),
        col("rectime", ColType::DateTime, false, None),
        s("x_context", 64),
        s("s_method", 64),
        s("s_cseq", 64),
        s("a_callid", 255),
        s("a_uuid", 255),
        s("b_uuid", 255),
    ]
}

/// `topos_d`: a dialog's two sides (contacts, tags, route sets).
pub fn topos_d() -> TableDef {
    let mut columns = head();
    columns.extend([
        s("a_contact", 512),
        s("b_contact", 512),
        s("as_contact", 512),
        s("bs_contact", 512),
        s("a_tag", 255),
        s("b_tag", 255),
        text("a_rr"),
        text("b_rr"),
        text("s_rr"),
        col("iflags", ColType::Int, false, Some("0")),
        s("a_uri", 255),
        s("b_uri", 255),
        s("r_uri", 255),
        s("a_srcaddr", 128),
        s("b_srcaddr", 128),
        s("a_socket", 128),
        s("b_socket", 128),
    ]);
    TableDef {
        name: "topos_d",
        version: TOPOS_D_VERSION,
        columns,
        unique: vec![],
        indexes: vec![
            ("topos_d_rectime_idx", vec!["rectime"]),
            ("topos_d_a_callid_idx", vec!["a_callid"]),
            ("topos_d_a_uuid_idx", vec!["a_uuid"]),
            ("topos_d_b_uuid_idx", vec!["b_uuid"]),
        ],
    }
}

/// `topos_t`: a transaction branch's hidden Vias and route sets.
pub fn topos_t() -> TableDef {
    let mut columns = head();
    columns.extend([
        col("direction", ColType::Int, false, Some("0")),
        text("x_via"),
        s("x_vbranch", 255),
        text("x_rr"),
        text("y_rr"),
        text("s_rr"),
        s("x_uri", 255),
        s("a_contact", 512),
        s("b_contact", 512),
        s("as_contact", 512),
        s("bs_contact", 512),
        s("x_tag", 255),
        s("a_tag", 255),
        s("b_tag", 255),
        s("a_srcaddr", 255),
        s("b_srcaddr", 255),
        s("a_socket", 128),
        s("b_socket", 128),
    ]);
    TableDef {
        name: "topos_t",
        version: TOPOS_T_VERSION,
        columns,
        unique: vec![],
        indexes: vec![
            ("topos_t_rectime_idx", vec!["rectime"]),
            ("topos_t_a_callid_idx", vec!["a_callid"]),
            ("topos_t_x_vbranch_idx", vec!["x_vbranch"]),
            ("topos_t_a_uuid_idx", vec!["a_uuid"]),
        ],
    }
}

/// The two tables.
pub fn all() -> Vec<TableDef> {
    vec![topos_d(), topos_t()]
}
