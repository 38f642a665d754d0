//! topos' records in the database, in Kamailio's tables and columns
//! (`topos_d`: one row per dialog; `topos_t`: one per transaction
//! branch), written and read as Kamailio's `tps_storage.c` does, so that
//! a database is usable by either server.

use crate::pack::TpsData;
use sr_sdk::db::{Cond, DbConn, DbOp, DbResult, DbValue, Rows};
use sr_sdk::sip_msg::Method;

/// The dialog table.
pub const DIALOGS: &str = "topos_d";
/// The branch table.
pub const BRANCHES: &str = "topos_t";

/// `iflags` bit: the dialog was confirmed (a 2xx went through); Kamailio's
/// `TPS_IFLAG_DLGON`.
const IFLAG_DLGON: i32 = 2;

/// What an update writes (Kamailio's `TPS_DBU_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Update {
    /// The Contacts (`TPS_DBU_CONTACT`).
    pub contact: bool,
    /// What a reply says of the callee: tag, route set
    /// (`TPS_DBU_RPLATTRS`).
    pub reply_attrs: bool,
    /// The record's time, on a request refreshing a confirmed
    /// subscription (`TPS_DBU_TIME`).
    pub time: bool,
}

fn s(v: &str) -> DbValue {
    DbValue::str(v)
}

/// The columns both tables have, for a new row.
fn shared_columns(d: &TpsData, now: i64) -> Vec<(&'static str, DbValue)> {
    vec![
        ("rectime", DbValue::DateTime(now)),
        ("x_context", s(&d.x_context)),
        ("a_callid", s(&d.a_callid)),
        ("a_uuid", s(&d.a_uuid)),
        ("b_uuid", s(&d.b_uuid)),
        ("a_contact", s(&d.a_contact)),
        ("b_contact", s(&d.b_contact)),
        ("as_contact", s(&d.as_contact)),
        ("bs_contact", s(&d.bs_contact)),
        ("a_tag", s(&d.a_tag)),
        ("b_tag", s(&d.b_tag)),
        ("s_rr", s(&d.s_rr)),
        ("s_method", s(&d.s_method)),
        ("s_cseq", s(&d.s_cseq)),
    ]
}

/// `topos_d` row for a new dialog.
pub fn insert_dialog(c: &mut dyn DbConn, d: &TpsData, now: i64) -> DbResult<()> {
    let mut row = shared_columns(d, now);
    row.extend([
        ("a_rr", s(&d.a_rr)),
        ("b_rr", s(&d.b_rr)),
        ("iflags", DbValue::Int(0)),
    ]);
    for unused in ["a_uri", "b_uri", "r_uri", "a_srcaddr", "b_srcaddr"] {
        row.push((unused, s("")));
    }
    c.insert(DIALOGS, &row)
}

/// `topos_t` row for a new branch.
pub fn insert_branch(c: &mut dyn DbConn, d: &TpsData, now: i64) -> DbResult<()> {
    let mut row = shared_columns(d, now);
    row.extend([
        ("direction", DbValue::Int(d.direction.code())),
        ("x_via", s(&d.x_via)),
        ("x_vbranch", s(&d.x_vbranch1)),
        ("x_rr", s(&d.x_rr)),
        ("y_rr", s(&d.y_rr)),
        ("x_uri", s(&d.x_uri)),
        ("x_tag", s(&d.x_tag)),
    ]);
    c.insert(BRANCHES, &row)
}

/// A column of the first row as text ("" for NULL or absent).
fn col(rows: &Rows, name: &str) -> String {
    let Some(i) = rows.columns.iter().position(|c| c == name) else {
        return String::new();
    };
    match rows.rows.first().and_then(|r| r.get(i)) {
        Some(DbValue::Str(v)) => v.clone(),
        Some(DbValue::Int(v)) => v.to_string(),
        Some(DbValue::BigInt(v)) => v.to_string(),
        _ => String::new(),
    }
}

/// The first row of a query as a record: every column asked for, the
/// others empty.
fn from_row(r: &Rows) -> TpsData {
    TpsData {
        a_callid: col(r, "a_callid"),
        a_uuid: col(r, "a_uuid"),
        b_uuid: col(r, "b_uuid"),
        x_via: col(r, "x_via"),
        x_vbranch1: col(r, "x_vbranch"),
        x_rr: col(r, "x_rr"),
        y_rr: col(r, "y_rr"),
        s_rr: col(r, "s_rr"),
        a_rr: col(r, "a_rr"),
        b_rr: col(r, "b_rr"),
        x_uri: col(r, "x_uri"),
        x_tag: col(r, "x_tag"),
        s_method: col(r, "s_method"),
        s_cseq: col(r, "s_cseq"),
        a_contact: col(r, "a_contact"),
        b_contact: col(r, "b_contact"),
        as_contact: col(r, "as_contact"),
        bs_contact: col(r, "bs_contact"),
        a_tag: col(r, "a_tag"),
        b_tag: col(r, "b_tag"),
        ..TpsData::default()
    }
}

/// How a branch is found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BranchKey {
    /// By this server's Via branch (the same transaction).
    Via,
    /// The INVITE of the dialog, by Call-ID and To tag (for a request in
    /// an early dialog).
    Invite,
}

/// Loads a branch (`tps_db_load_branch`); `None` when there is none.
pub fn load_branch(c: &mut dyn DbConn, md: &TpsData, key: BranchKey) -> DbResult<Option<TpsData>> {
    let conds = match key {
        BranchKey::Via => vec![Cond::eq("x_vbranch", s(&md.x_vbranch1))],
        BranchKey::Invite => vec![
            Cond::eq("a_callid", s(&md.a_callid)),
            Cond::eq("b_tag", s(&md.b_tag)),
            Cond::eq("s_method", s("INVITE")),
        ],
    };
    let cols = [
        "a_callid",
        "a_uuid",
        "b_uuid",
        "x_via",
        "x_vbranch",
        "x_rr",
        "y_rr",
        "s_rr",
        "x_uri",
        "x_tag",
        "s_method",
        "s_cseq",
        "a_contact",
        "b_contact",
        "as_contact",
        "bs_contact",
        "a_tag",
        "b_tag",
    ];
    let r = c.query(BRANCHES, &conds, &cols, None)?;
    if r.rows.is_empty() {
        return Ok(None);
    }
    Ok(Some(from_row(&r)))
}

/// The column and key a dialog is looked up by: `a_uuid` for a key that
/// starts with `a`, `b_uuid` for one with `b` (the caller's key when
/// there is one, else the callee's). `None` when there is no usable key.
fn dialog_key(md: &TpsData) -> Option<(&'static str, &str)> {
    let k = if !md.a_uuid.is_empty() {
        &md.a_uuid
    } else {
        &md.b_uuid
    };
    match k.as_bytes().first() {
        Some(b'a') => Some(("a_uuid", k)),
        Some(b'b') => Some(("b_uuid", k)),
        _ => None,
    }
}

/// Loads a dialog (`tps_db_load_dialog`): `Err` without a key, `None`
/// when there is no such dialog.
pub fn load_dialog(c: &mut dyn DbConn, md: &TpsData) -> Result<Option<TpsData>, String> {
    let (column, key) = dialog_key(md).ok_or("no dialog key")?;
    let cols = [
        "a_callid",
        "a_uuid",
        "b_uuid",
        "a_contact",
        "b_contact",
        "as_contact",
        "bs_contact",
        "a_tag",
        "b_tag",
        "a_rr",
        "b_rr",
        "s_rr",
        "s_method",
        "s_cseq",
    ];
    let r = c
        .query(DIALOGS, &[Cond::eq(column, s(key))], &cols, None)
        .map_err(|e| e.to_string())?;
    if r.rows.is_empty() {
        return Ok(None);
    }
    Ok(Some(from_row(&r)))
}

/// The condition an update or end of a dialog's records uses: column
/// `a_uuid` equal to the stored caller key (or, as Kamailio writes it,
/// to the callee key when the caller's is missing).
fn update_key(sd: &TpsData) -> Result<Cond, String> {
    if sd.a_uuid.starts_with('a') {
        Ok(Cond::eq("a_uuid", s(&sd.a_uuid)))
    } else if !sd.b_uuid.is_empty() {
        Ok(Cond::eq("a_uuid", s(&sd.b_uuid)))
    } else {
        Err("no valid dialog key".into())
    }
}

fn contact_values(md: &TpsData, out: &mut Vec<(&'static str, DbValue)>) {
    if !md.a_contact.is_empty() {
        out.push(("a_contact", s(&md.a_contact)));
    }
    if !md.b_contact.is_empty() {
        out.push(("b_contact", s(&md.b_contact)));
    }
}

/// Which records of a dialog an update writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Records {
    /// Its branches (`tps_db_update_branch`): the Contacts, and from an
    /// early-dialog reply (180-199) the callee's tag and route set when
    /// not known yet.
    Branches,
    /// The dialog (`tps_db_update_dialog`): the Contacts, from a 2xx reply
    /// the callee's tag and route set when not known yet (the dialog is
    /// then confirmed), and on a refreshing request its time.
    Dialog,
}

/// Updates a dialog's records from a message (`status` for a reply).
pub fn update(
    c: &mut dyn DbConn,
    records: Records,
    md: &TpsData,
    sd: &TpsData,
    status: Option<u16>,
    what: Update,
) -> Result<(), String> {
    let key = update_key(sd)?;
    let mut vals = Vec::new();
    if what.contact {
        contact_values(md, &mut vals);
    }
    let in_range = |r: std::ops::Range<u16>| status.is_some_and(|c| r.contains(&c));
    if what.reply_attrs && sd.b_tag.is_empty() {
        let column = match records {
            Records::Branches if in_range(180..200) => Some("y_rr"),
            Records::Dialog if in_range(200..300) => Some("b_rr"),
            _ => None,
        };
        if let Some(column) = column {
            vals.push((column, s(&md.b_rr)));
            if !md.b_tag.is_empty() {
                vals.push(("b_tag", s(&md.b_tag)));
            }
            if records == Records::Dialog {
                vals.push(("iflags", DbValue::Int(IFLAG_DLGON)));
            }
        }
    }
    let table = match records {
        Records::Branches => BRANCHES,
        Records::Dialog => DIALOGS,
    };
    if records == Records::Dialog && what.time && status.is_none() && !sd.b_tag.is_empty() {
        vals.push(("rectime", DbValue::DateTime(sr_sdk::db::now())));
    }
    write(c, table, key, &vals)
}

/// A BYE went through: the dialog's record is kept for `branch_expire`
/// more seconds (`tps_db_end_dialog`).
pub fn end_dialog(c: &mut dyn DbConn, sd: &TpsData, now: i64) -> Result<(), String> {
    let key = update_key(sd)?;
    write(
        c,
        DIALOGS,
        key,
        &[
            ("rectime", DbValue::DateTime(now)),
            ("iflags", DbValue::Int(0)),
        ],
    )
}

fn write(
    c: &mut dyn DbConn,
    table: &str,
    key: Cond,
    vals: &[(&str, DbValue)],
) -> Result<(), String> {
    if vals.is_empty() {
        return Ok(());
    }
    c.update(table, &[key], vals)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Removes expired records (`tps_storage_clean`): branches older than
/// `branch_expire` seconds, dialogs older than `dialog_expire`, and
/// unconfirmed or ended dialogs older than `branch_expire`.
pub fn clean(
    c: &mut dyn DbConn,
    now: i64,
    branch_expire: i64,
    dialog_expire: i64,
) -> DbResult<u64> {
    let older = |secs: i64| Cond::new("rectime", DbOp::Le, DbValue::DateTime(now - secs));
    let mut n = c.delete(BRANCHES, &[older(branch_expire)])?;
    n += c.delete(DIALOGS, &[older(dialog_expire)])?;
    n += c.delete(
        DIALOGS,
        &[older(branch_expire), Cond::eq("iflags", DbValue::Int(0))],
    )?;
    Ok(n)
}

/// Whether a message's dialog and branch records are updated from it:
/// INVITE and SUBSCRIBE dialogs (Kamailio 5.6).
pub fn tracked(method: Option<&Method<'_>>) -> bool {
    matches!(method, Some(Method::Invite | Method::Subscribe))
}
