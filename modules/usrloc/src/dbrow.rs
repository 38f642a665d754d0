//! Contacts to and from rows of a `location` table.

use crate::contact::{split_aor, Contact, METHODS_ALL, Q_UNSPECIFIED};
use sr_sdk::db::{Cond, DbConn, DbOp, DbResult, DbValue, Rows};

/// The columns read back when loading.
pub const COLUMNS: [&str; 20] = [
    "ruid",
    "username",
    "domain",
    "contact",
    "received",
    "path",
    "expires",
    "q",
    "callid",
    "cseq",
    "last_modified",
    "flags",
    "cflags",
    "user_agent",
    "socket",
    "methods",
    "instance",
    "reg_id",
    "connection_id",
    "keepalive",
];

/// The column values of a contact.
pub fn values(c: &Contact, use_domain: bool) -> Vec<(&'static str, DbValue)> {
    let (user, domain) = split_aor(&c.aor, use_domain);
    vec![
        ("ruid", DbValue::str(&c.ruid)),
        ("username", DbValue::str(user)),
        ("domain", DbValue::opt_str(domain)),
        ("contact", DbValue::str(&c.contact)),
        ("received", DbValue::opt_str(c.received.as_deref())),
        ("path", DbValue::opt_str(c.path.as_deref())),
        ("expires", DbValue::DateTime(c.expires)),
        // Kamailio's q2double: -1 when the Contact had none.
        (
            "q",
            DbValue::Double(if c.q == Q_UNSPECIFIED {
                -1.0
            } else {
                c.q as f64 / 1000.0
            }),
        ),
        ("callid", DbValue::str(&c.callid)),
        ("cseq", DbValue::Int(c.cseq as i32)),
        ("last_modified", DbValue::DateTime(c.last_modified)),
        ("flags", DbValue::Int(c.flags as i32)),
        ("cflags", DbValue::Int(c.cflags as i32)),
        ("user_agent", DbValue::str(&c.user_agent)),
        ("socket", DbValue::opt_str(c.socket.as_deref())),
        // NULL for "all methods" (no Allow header), as Kamailio writes it.
        (
            "methods",
            if c.methods == METHODS_ALL {
                DbValue::Null
            } else {
                DbValue::Int(c.methods as i32)
            },
        ),
        ("instance", DbValue::opt_str(c.instance.as_deref())),
        ("reg_id", DbValue::Int(c.reg_id as i32)),
        // Kamailio writes its server_id (0 unless set) and the partition
        // (0); db_text, which takes no default, needs every column.
        ("server_id", DbValue::Int(0)),
        // -1: no TCP connection, as Kamailio writes it.
        (
            "connection_id",
            DbValue::BigInt(if c.connection_id == 0 {
                -1
            } else {
                c.connection_id
            }),
        ),
        ("keepalive", DbValue::Int(c.keepalive)),
        ("partition", DbValue::Int(0)),
    ]
}

fn text(rows: &Rows, i: usize, col: &str) -> Option<String> {
    rows.get(i, col).as_string().filter(|s| !s.is_empty())
}

/// The contact of row `i`.
pub fn contact_of(rows: &Rows, i: usize, use_domain: bool) -> Contact {
    let user = text(rows, i, "username").unwrap_or_default();
    let aor = match (use_domain, text(rows, i, "domain")) {
        (true, Some(d)) => format!("{user}@{d}"),
        _ => user,
    };
    let int = |col: &str| rows.get(i, col).as_i64();
    let q = match rows.get(i, "q").as_f64() {
        Some(q) if q >= 0.0 => (q * 1000.0).round() as i32,
        _ => Q_UNSPECIFIED,
    };
    let mut c = Contact::new(&aor, &text(rows, i, "contact").unwrap_or_default());
    c.ruid = text(rows, i, "ruid").unwrap_or_else(crate::contact::new_ruid);
    c.received = text(rows, i, "received");
    c.path = text(rows, i, "path");
    c.expires = rows.get(i, "expires").as_time().unwrap_or(0);
    c.q = q;
    c.callid = text(rows, i, "callid").unwrap_or_default();
    c.cseq = int("cseq").unwrap_or(0) as u32;
    c.last_modified = rows.get(i, "last_modified").as_time().unwrap_or(0);
    c.flags = int("flags").unwrap_or(0) as u32;
    c.cflags = int("cflags").unwrap_or(0) as u32;
    c.user_agent = text(rows, i, "user_agent").unwrap_or_default();
    c.socket = text(rows, i, "socket");
    c.methods = int("methods").map_or(METHODS_ALL, |m| m as u32);
    c.instance = text(rows, i, "instance");
    c.reg_id = int("reg_id").unwrap_or(0) as u32;
    c.connection_id = int("connection_id").filter(|&i| i > 0).unwrap_or(0);
    c.keepalive = int("keepalive").unwrap_or(0) as i32;
    c
}

/// Conditions selecting the rows of one AoR.
pub fn aor_conds(aor: &str, use_domain: bool) -> Vec<Cond> {
    let (user, domain) = split_aor(aor, use_domain);
    let mut v = vec![Cond::eq("username", DbValue::str(user))];
    if use_domain {
        v.push(Cond::eq("domain", DbValue::opt_str(domain)));
    }
    v
}

/// Every contact of a table that is valid at `now`.
pub fn load_all(
    conn: &mut dyn DbConn,
    table: &str,
    use_domain: bool,
    now: i64,
) -> DbResult<Vec<Contact>> {
    let rows = conn.query(table, &[], &COLUMNS, None)?;
    Ok((0..rows.len())
        .map(|i| contact_of(&rows, i, use_domain))
        .filter(|c| c.is_valid(now))
        .collect())
}

/// The contacts of one AoR valid at `now` (db_mode 3).
pub fn load_aor(
    conn: &mut dyn DbConn,
    table: &str,
    aor: &str,
    use_domain: bool,
    now: i64,
) -> DbResult<Vec<Contact>> {
    let rows = conn.query(table, &aor_conds(aor, use_domain), &COLUMNS, None)?;
    Ok((0..rows.len())
        .map(|i| contact_of(&rows, i, use_domain))
        .filter(|c| c.is_valid(now))
        .collect())
}

/// The contact with record id `ruid`, if a row has it.
pub fn load_ruid(
    conn: &mut dyn DbConn,
    table: &str,
    ruid: &str,
    use_domain: bool,
) -> DbResult<Option<Contact>> {
    let rows = conn.query(
        table,
        &[Cond::eq("ruid", DbValue::str(ruid))],
        &COLUMNS,
        None,
    )?;
    Ok((!rows.is_empty()).then(|| contact_of(&rows, 0, use_domain)))
}

/// Writes a contact: update by ruid, insert when no row has it.
pub fn upsert(conn: &mut dyn DbConn, table: &str, c: &Contact, use_domain: bool) -> DbResult<()> {
    let vals = values(c, use_domain);
    let n = conn.update(table, &[Cond::eq("ruid", DbValue::str(&c.ruid))], &vals)?;
    if n == 0 {
        conn.insert(table, &vals)?;
    }
    Ok(())
}

/// Writes a contact usrloc has just added: INSERT, as Kamailio does for a
/// new contact (an UPDATE first would find no row), falling back to
/// [`upsert`] should a row with its ruid exist after all. When that fails
/// too, the INSERT's error is the one returned.
pub fn insert(conn: &mut dyn DbConn, table: &str, c: &Contact, use_domain: bool) -> DbResult<()> {
    let vals = values(c, use_domain);
    match conn.insert(table, &vals) {
        Ok(()) => Ok(()),
        Err(first) => upsert(conn, table, c, use_domain).map_err(|_| first),
    }
}

/// Deletes a contact by ruid.
pub fn delete(conn: &mut dyn DbConn, table: &str, ruid: &str) -> DbResult<()> {
    conn.delete(table, &[Cond::eq("ruid", DbValue::str(ruid))])
        .map(|_| ())
}

/// Deletes the rows expired at `now` (permanent ones, expires 0, stay).
pub fn delete_expired(conn: &mut dyn DbConn, table: &str, now: i64) -> DbResult<u64> {
    conn.delete(
        table,
        &[
            Cond::new("expires", DbOp::Le, DbValue::DateTime(now)),
            Cond::new("expires", DbOp::Ne, DbValue::DateTime(0)),
        ],
    )
}
