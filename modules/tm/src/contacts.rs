//! `t_load_contacts` / `t_next_contacts`: serial forking by q-value. The
//! destination set is stored, highest q on top, in the AVP
//! `tm_contacts`, which moves with the request into the transaction, so
//! failure_route can take the next group.

use sr_sdk::prelude::*;

/// The AVP holding the contacts still to try.
pub const CONTACTS_AVP: &str = "tm_contacts";

fn encode(q: u16, b: &Branch) -> String {
    format!(
        "{q}\n{}\n{}\n{}\n{}",
        b.uri,
        b.dst_uri.as_deref().unwrap_or(""),
        b.path.as_deref().unwrap_or(""),
        b.flags
    )
}

fn decode(s: &str) -> Option<(u16, Branch)> {
    let mut it = s.split('\n');
    let q = it.next()?.parse().ok()?;
    let uri = it.next()?.to_string();
    let opt = |x: Option<&str>| x.filter(|v| !v.is_empty()).map(str::to_string);
    let dst_uri = opt(it.next());
    let path = opt(it.next());
    let flags = it.next().and_then(|f| f.parse().ok()).unwrap_or(0);
    Some((
        q,
        Branch {
            uri,
            dst_uri,
            path,
            flags,
            q: Some(q),
            ..Default::default()
        },
    ))
}

/// Loads the destination set into the contacts AVP (1), or does nothing
/// when there is only the Request-URI (1 too, as Kamailio).
pub fn load(msg: &mut SipMsg) -> i32 {
    if msg.branches.is_empty() {
        return 1;
    }
    // The Request-URI only when it was not used for forking yet (as
    // Kamailio's t_serial.c: `if (ruri_is_new)`).
    let mut all = Vec::new();
    if !msg.ruri_is_consumed() {
        all.push((1000u16, msg.ruri_branch()));
    }
    all.extend(msg.branches.drain(..).map(|b| (b.q.unwrap_or(1000), b)));
    // Lowest q pushed first: the top of the stack is the best group.
    all.sort_by_key(|(q, _)| *q);
    msg.avps.remove_all(CONTACTS_AVP);
    for (q, b) in &all {
        msg.avps.push(CONTACTS_AVP, Value::from(encode(*q, b)));
    }
    1
}

/// Moves the next group of equal q into the Request-URI and branches.
pub fn next(msg: &mut SipMsg) -> i32 {
    let entries: Vec<(u16, Branch)> = msg
        .avps
        .all(CONTACTS_AVP)
        .filter_map(|v| decode(&v.as_str()))
        .collect();
    let Some((q0, _)) = entries.first() else {
        return -1;
    };
    let q0 = *q0;
    let group: Vec<Branch> = entries
        .iter()
        .take_while(|(q, _)| *q == q0)
        .map(|(_, b)| b.clone())
        .collect();
    for _ in 0..group.len() {
        msg.avps.remove_newest(CONTACTS_AVP);
    }
    let mut it = group.into_iter();
    if let Some(first) = it.next() {
        msg.new_uri = Some(first.uri);
        msg.dst_uri = first.dst_uri;
        msg.path = first.path;
        msg.bflags = first.flags;
    }
    msg.branches = it.collect();
    1
}

/// Adds the two functions.
pub fn export(def: ModuleDef) -> ModuleDef {
    let rt = RouteType::REQUEST | RouteType::FAILURE;
    def.cmd("t_load_contacts", 0, rt, None, |ctx, _| load(ctx.msg))
        .cmd("t_next_contacts", 0, rt, None, |ctx, _| next(ctx.msg))
}
