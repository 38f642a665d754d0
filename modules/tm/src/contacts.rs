//! `t_load_contacts` / `t_next_contacts` / `t_next_contact_flow`: serial
//! forking by q-value, with the flows of RFC 5626. The destination set is
//! stored, highest q on top, in the AVP named by `contacts_avp` (tm's own
//! name when unset), which moves with the request into the transaction, so
//! failure_route can take the next group. Within a group only the first
//! contact of each `+sip.instance` is forked; the instance's other flows
//! wait in `contact_flows_avp` for `t_next_contact_flow()`, which the
//! branch-failure route calls when a flow fails.

use crate::engine::Engine;
use sr_sdk::prelude::*;
use sr_sdk::same_instance;
use std::sync::{Arc, RwLock};

/// The AVP holding the contacts still to try, when `contacts_avp` is
/// not set.
pub const CONTACTS_AVP: &str = "tm_contacts";
/// The AVP holding the other flows, when `contact_flows_avp` is not set.
pub const FLOWS_AVP: &str = "tm_contact_flows";

/// The name a parameter gives an AVP (`$avp(name)`, `name` or unset).
fn avp_name(cell: &RwLock<String>, default: &str) -> String {
    let v = params::get_str(cell);
    sr_sdk::avp::spec_name(&v)
        .or_else(|| (!v.trim().is_empty()).then(|| v.trim().to_string()))
        .unwrap_or_else(|| default.to_string())
}

/// One line per field; a field holds no line break (they are URIs,
/// tokens, socket names).
fn encode(q: u16, b: &Branch) -> String {
    let o = |x: &Option<String>| x.clone().unwrap_or_default();
    [
        q.to_string(),
        b.uri.clone(),
        o(&b.dst_uri),
        o(&b.path),
        b.flags.to_string(),
        o(&b.socket),
        o(&b.ruid),
        o(&b.instance),
        o(&b.location_ua),
    ]
    .join("\n")
}

fn decode(s: &str) -> Option<(u16, Branch)> {
    let mut it = s.split('\n');
    let q = it.next()?.parse().ok()?;
    let uri = it.next()?.to_string();
    let mut opt = || it.next().filter(|v| !v.is_empty()).map(str::to_string);
    let dst_uri = opt();
    let path = opt();
    let flags = opt().and_then(|f| f.parse().ok()).unwrap_or(0);
    let socket = opt();
    let ruid = opt();
    let instance = opt();
    let location_ua = opt();
    Some((
        q,
        Branch {
            uri,
            dst_uri,
            path,
            flags,
            q: Some(q),
            socket,
            ruid,
            instance,
            location_ua,
        },
    ))
}

/// Loads the destination set into the contacts AVP (1), or does nothing
/// when there is only the Request-URI (1 too, as Kamailio).
pub fn load(msg: &mut SipMsg, avp: &str) -> i32 {
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
    // Kamailio's order (t_serial.c): ascending q, a contact with a Path
    // before the earlier ones of its q, one without after them; then each
    // is put on top of the stack, so the best group is on top and, within
    // it, contacts without Path come in reverse order.
    let mut list: Vec<(u16, Branch)> = Vec::with_capacity(all.len());
    for (q, b) in all {
        let at = if b.path.is_some() {
            list.iter().position(|(x, _)| *x >= q)
        } else {
            list.iter().position(|(x, _)| *x > q)
        };
        list.insert(at.unwrap_or(list.len()), (q, b));
    }
    msg.avps.remove_all(avp);
    for (q, b) in &list {
        msg.avps.push(avp, Value::from(encode(*q, b)));
    }
    1
}

/// Makes `b` the Request-URI (with its next hop, Path, flags, socket and
/// location record).
fn set_ruri(msg: &mut SipMsg, b: Branch) {
    msg.new_uri = Some(b.uri);
    msg.dst_uri = b.dst_uri;
    msg.path = b.path;
    msg.bflags = b.flags;
    if b.socket.is_some() {
        msg.force_send_socket = b.socket;
    }
    msg.ruri_location = Some(Box::new(sr_sdk::RuriLocation {
        ruid: b.ruid,
        instance: b.instance,
        location_ua: b.location_ua,
    }));
}

/// Moves the next group of equal q into the Request-URI and branches:
/// the first contact of each instance, the instance's other flows into
/// the flows AVP (emptied first). -2 when no contact is left, as in
/// Kamailio.
pub fn next(msg: &mut SipMsg, avp: &str, flows_avp: &str) -> i32 {
    let entries: Vec<(u16, Branch)> = msg
        .avps
        .all(avp)
        .filter_map(|v| decode(&v.as_str()))
        .collect();
    let Some((q0, _)) = entries.first() else {
        return -2;
    };
    let q0 = *q0;
    let group: Vec<Branch> = entries
        .iter()
        .take_while(|(q, _)| *q == q0)
        .map(|(_, b)| b.clone())
        .collect();
    for _ in 0..group.len() {
        msg.avps.remove_newest(avp);
    }
    msg.avps.remove_all(flows_avp);
    let mut seen: Vec<String> = Vec::new();
    let mut forked = Vec::new();
    let mut flows = Vec::new();
    for b in group {
        match &b.instance {
            Some(i) if seen.iter().any(|s| same_instance(s, i)) => flows.push(b),
            Some(i) => {
                seen.push(i.clone());
                forked.push(b);
            }
            None => forked.push(b),
        }
    }
    // Each on top of the others, as Kamailio's: the last one met is the
    // first t_next_contact_flow() takes.
    for b in &flows {
        msg.avps.push(flows_avp, Value::from(encode(q0, b)));
    }
    let mut it = forked.into_iter();
    if let Some(first) = it.next() {
        set_ruri(msg, first);
    }
    msg.branches = it.collect();
    1
}

/// `t_next_contact_flow()`, in `event_route[tm:branch-failure:...]`: a
/// branch to the next flow of the failed branch's instance (taken from
/// the flows AVP), for the `t_relay()` after it. 1 done; -1 no flow of
/// that instance is left; -2 the branch has no instance, or no flows are
/// left at all.
fn next_flow(ctx: &mut Ctx<'_>, flows_avp: &str) -> i32 {
    let idx = ctx
        .msg
        .ext
        .get::<crate::ctx::TxCtx>()
        .and_then(|t| t.branch);
    let instance = idx.and_then(|i| {
        crate::ctx::with_cell(ctx, |c| c.out.get(i).and_then(|o| o.location.1.clone())).flatten()
    });
    let Some(instance) = instance else {
        lm_dbg!("t_next_contact_flow: no instance on this branch");
        return -2;
    };
    match take_flow(ctx.msg, flows_avp, &instance) {
        Ok(b) => {
            ctx.msg.branches.push(b);
            1
        }
        Err(rc) => rc,
    }
}

/// Takes the first flow of `instance` out of the flows AVP (newest
/// first, as Kamailio's XAVP list), keeping the others in their order:
/// `Err(-2)` when there are no flows at all, `Err(-1)` when none is of
/// that instance.
fn take_flow(msg: &mut SipMsg, flows_avp: &str, instance: &str) -> Result<Branch, i32> {
    let flows: Vec<String> = msg
        .avps
        .all(flows_avp)
        .map(|v| v.as_str().into_owned())
        .collect();
    if flows.is_empty() {
        return Err(-2);
    }
    let found = flows.iter().enumerate().find_map(|(i, v)| {
        decode(v)
            .filter(|(_, b)| {
                b.instance
                    .as_deref()
                    .is_some_and(|x| same_instance(x, instance))
            })
            .map(|(_, b)| (i, b))
    });
    let Some((pos, b)) = found else {
        return Err(-1);
    };
    msg.avps.remove_all(flows_avp);
    // The others back in their order: the oldest pushed first.
    for (_, v) in flows.iter().enumerate().rev().filter(|(i, _)| *i != pos) {
        msg.avps.push(flows_avp, Value::from(v.clone()));
    }
    Ok(b)
}

/// Adds the three functions.
pub fn export(def: ModuleDef, e: &Arc<Engine>) -> ModuleDef {
    let rt = RouteType::REQUEST | RouteType::FAILURE;
    let (p1, p2, p3) = (e.clone(), e.clone(), e.clone());
    def.cmd("t_load_contacts", 0, rt, None, move |ctx, _| {
        load(ctx.msg, &avp_name(&p1.params.contacts_avp, CONTACTS_AVP))
    })
    .cmd("t_next_contacts", 0, rt, None, move |ctx, _| {
        next(
            ctx.msg,
            &avp_name(&p2.params.contacts_avp, CONTACTS_AVP),
            &avp_name(&p2.params.contact_flows_avp, FLOWS_AVP),
        )
    })
    .cmd(
        "t_next_contact_flow",
        0,
        // (event_route blocks are checked as event routes.)
        RouteType(RouteType::BRANCH_FAILURE.0 | RouteType::ONEVENT.0),
        None,
        move |ctx, _| next_flow(ctx, &avp_name(&p3.params.contact_flows_avp, FLOWS_AVP)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn branch(uri: &str, q: u16, instance: Option<&str>) -> Branch {
        Branch {
            uri: uri.into(),
            q: Some(q),
            ruid: Some(format!("r-{uri}")),
            instance: instance.map(str::to_string),
            ..Default::default()
        }
    }

    #[test]
    fn one_flow_per_instance_is_forked_the_others_wait() {
        let mut m = SipMsg::faked();
        m.branches = vec![
            branch("sip:a1@x", 1000, Some("<urn:a>")),
            branch("sip:a2@x", 1000, Some("<urn:a>")),
            branch("sip:b@x", 1000, Some("<urn:b>")),
            branch("sip:c@x", 1000, None),
            branch("sip:low@x", 500, Some("<urn:a>")),
        ];
        m.consume_ruri();
        assert_eq!(load(&mut m, "c"), 1);
        assert_eq!(next(&mut m, "c", "f"), 1);
        let mut got: Vec<String> = vec![m.ruri().to_string()];
        got.extend(m.branches.iter().map(|b| b.uri.clone()));
        got.sort();
        // (Without Path, Kamailio takes a group in reverse order: a2 is
        // met before a1.)
        assert_eq!(got, ["sip:a2@x", "sip:b@x", "sip:c@x"]);
        let waiting: Vec<Branch> = m
            .avps
            .all("f")
            .filter_map(|v| decode(&v.as_str()).map(|x| x.1))
            .collect();
        assert_eq!(waiting.len(), 1);
        assert_eq!(waiting[0].uri, "sip:a1@x");
        assert_eq!(waiting[0].ruid.as_deref(), Some("r-sip:a1@x"));
        // The Request-URI keeps its location record for the branch made of it.
        assert!(m
            .ruri_branch()
            .ruid
            .is_some_and(|r| r.starts_with("r-sip:")));
        // The next group: the lower q; the flows of the first are gone.
        assert_eq!(next(&mut m, "c", "f"), 1);
        assert_eq!(m.ruri(), "sip:low@x");
        assert_eq!(m.avps.all("f").count(), 0);
        assert_eq!(next(&mut m, "c", "f"), -2);
    }

    #[test]
    fn the_flows_of_an_instance_are_taken_newest_first() {
        let mut m = SipMsg::faked();
        for uri in ["sip:f1@x", "sip:g@x", "sip:f2@x", "sip:f3@x"] {
            let inst = if uri.starts_with("sip:g") {
                "<urn:g>"
            } else {
                "<urn:f>"
            };
            m.avps.push(
                "f",
                Value::from(encode(1000, &branch(uri, 1000, Some(inst)))),
            );
        }
        let mut got = Vec::new();
        while let Ok(b) = take_flow(&mut m, "f", "urn:f") {
            got.push(b.uri);
        }
        assert_eq!(got, ["sip:f3@x", "sip:f2@x", "sip:f1@x"]);
        // The other instance's flow is still there; then none is left.
        assert_eq!(take_flow(&mut m, "f", "<urn:f>").err(), Some(-1));
        assert_eq!(
            take_flow(&mut m, "f", "<urn:g>")
                .map(|b| b.uri)
                .ok()
                .as_deref(),
            Some("sip:g@x")
        );
        assert_eq!(take_flow(&mut m, "f", "<urn:g>").err(), Some(-2));
    }

    #[test]
    fn a_contact_survives_encoding() {
        let b = Branch {
            uri: "sip:a@x;ob".into(),
            dst_uri: Some("sip:edge;lr".into()),
            path: Some("<sip:t@edge;lr;ob>".into()),
            flags: 64,
            q: Some(700),
            socket: Some("udp:127.0.0.1:5060".into()),
            ruid: Some("uloc-1".into()),
            instance: Some("<urn:uuid:1>".into()),
            location_ua: Some("phone".into()),
        };
        assert_eq!(decode(&encode(700, &b)), Some((700, b)));
        // What older versions stored (no socket and after) still reads.
        let (_, old) = decode("1000\nsip:a@x\n\n\n3").unwrap();
        assert_eq!(
            (old.uri.as_str(), old.flags, old.ruid),
            ("sip:a@x", 3, None)
        );
    }
}
