//! What topos reads from a message (Kamailio's `tps_data_t` filled by
//! `tps_pack_message`): the Vias (this server's and the ones below), the
//! Record-Route set split into this server's entries and the other side's,
//! and the local addresses the Contacts it makes are built from.

use sr_sdk::sip_msg::headers::ContactValue;
use sr_sdk::sip_msg::params::Params;
use sr_sdk::sip_msg::{Message, Method, Uri};

/// Which way a message goes in a dialog: from the caller (`Downstream`,
/// 0 in the tables) or from the callee (`Upstream`, 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    /// From the side that sent the initial request.
    #[default]
    Downstream,
    /// Toward the side that sent the initial request.
    Upstream,
}

impl Direction {
    /// The number stored in `topos_t.direction`.
    pub fn code(self) -> i32 {
        match self {
            Direction::Downstream => 0,
            Direction::Upstream => 1,
        }
    }
}

/// One message's topology data, or a stored dialog's or branch's (the
/// columns of `topos_d` and `topos_t`). Empty strings stand for absent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TpsData {
    /// The topmost Via (this server's, on a message sent).
    pub x_via1: String,
    /// The other Vias, comma-separated.
    pub x_via2: String,
    /// The topmost Via's branch.
    pub x_vbranch1: String,
    /// The hidden Vias of a stored branch.
    pub x_via: String,
    /// Record-Route entries toward the caller (after this server's).
    pub a_rr: String,
    /// Record-Route entries toward the callee (a reply's).
    pub b_rr: String,
    /// This server's own Record-Route entries.
    pub s_rr: String,
    /// A branch's caller-side entries.
    pub x_rr: String,
    /// A branch's callee-side entries from an early dialog (18x).
    pub y_rr: String,
    /// The Contact sent toward the caller.
    pub as_contact: String,
    /// The Contact sent toward the callee.
    pub bs_contact: String,
    /// The caller's key (`atpsh-...`).
    pub a_uuid: String,
    /// The callee's key (`btpsh-...`).
    pub b_uuid: String,
    /// The caller's own Contact URI.
    pub a_contact: String,
    /// The callee's own Contact URI.
    pub b_contact: String,
    /// From tag of the initial request.
    pub a_tag: String,
    /// To tag of the dialog.
    pub b_tag: String,
    /// The tag of the side a branch's request came from.
    pub x_tag: String,
    /// Call-ID.
    pub a_callid: String,
    /// CSeq method as written.
    pub s_method: String,
    /// CSeq number as written.
    pub s_cseq: String,
    /// Direction of the request a branch is for.
    pub direction: Direction,
    /// `x_uri` (kept empty, as Kamailio 5.6 keeps it).
    pub x_uri: String,
    /// The context (`context` parameter or `tps_set_context`).
    pub x_context: String,
}

/// Kamailio's `tps_skip_rw`: a value without trailing blanks and commas.
pub fn skip_rw(s: &str) -> &str {
    s.trim_end_matches([' ', '\t', '\r', '\n', ','])
}

/// Whether a message is a request within a dialog (a To tag).
pub fn in_dialog(m: &Message<'_>) -> bool {
    m.to_tag().ok().flatten().is_some_and(|t| !t.is_empty())
}

/// The CSeq method of a message.
pub fn cseq_method<'a>(m: &Message<'a>) -> Option<Method<'a>> {
    m.cseq().ok().map(|c| c.method)
}

/// Reads a message's Vias and Record-Route set (`tps_pack_message`).
pub fn pack(m: &Message<'_>, context: &str) -> TpsData {
    let mut d = TpsData::default();
    let mut rest = Vec::new();
    for (i, v) in m.vias().map_while(Result::ok).enumerate() {
        let text = skip_rw(v.raw);
        if i == 0 {
            d.x_via1 = text.to_string();
            d.x_vbranch1 = v.known.branch.flatten().unwrap_or("").to_string();
        } else {
            rest.push(text);
        }
    }
    d.x_via2 = rest.join(",");
    let uris: Vec<&str> = m
        .record_routes()
        .map_while(Result::ok)
        .map(|r| r.uri_str)
        .collect();
    let entry = |u: &&str| format!("<{u}>");
    if m.is_request() {
        if let Some(first) = uris.first() {
            d.bs_contact = first.to_string();
            // A second entry of this server's own (`r2=on`, double
            // record-routing) belongs to it too; the caller's side then
            // talks to the second address.
            let r2 = first.contains(";r2=on");
            if !r2 {
                d.as_contact = first.to_string();
            } else if let Some(second) = uris.get(1) {
                d.as_contact = second.to_string();
            }
            let own = if r2 { 2 } else { 1 };
            let split = own.min(uris.len());
            d.s_rr = uris[..split]
                .iter()
                .map(entry)
                .collect::<Vec<_>>()
                .join(",");
            d.a_rr = uris[split..]
                .iter()
                .map(entry)
                .collect::<Vec<_>>()
                .join(",");
        }
    } else {
        d.b_rr = uris.iter().map(entry).collect::<Vec<_>>().join(",");
    }
    d.x_rr = d.a_rr.clone();
    if let Some(code) = m.status() {
        // Provisional replies that make an early dialog (not 199).
        if (180..199).contains(&code) {
            d.y_rr = d.b_rr.clone();
        }
    }
    d.x_context = context.to_string();
    d
}

/// The first Contact URI, `Err` when the Contact is there but not one
/// readable address (`tps_storage_link_msg`'s "bad Contact header").
pub fn contact_uri<'a>(m: &Message<'a>) -> Result<Option<&'a str>, &'static str> {
    let mut it = m.contacts();
    match it.next() {
        None => Ok(None),
        Some(Ok(ContactValue::Addr(n))) => Ok(Some(n.uri_str)),
        Some(_) => Err("bad Contact header"),
    }
}

/// Kamailio's `tps_storage_link_msg`: the dialog's identifiers and the
/// Contact of the side the message comes from, into `d`. `Err` for a
/// message that should have a Contact and has none (or a bad one).
pub fn link_msg(m: &Message<'_>, d: &mut TpsData, dir: Direction) -> Result<(), &'static str> {
    d.a_callid = m.call_id().map_err(|_| "bad Call-ID")?.trim().to_string();
    d.a_tag = m
        .from_tag()
        .map_err(|_| "bad From header")?
        .unwrap_or("")
        .to_string();
    d.b_tag = m
        .to_tag()
        .map_err(|_| "bad To header")?
        .unwrap_or("")
        .to_string();
    d.x_tag = match dir {
        Direction::Downstream => d.a_tag.clone(),
        Direction::Upstream => d.b_tag.clone(),
    };
    d.x_via = d.x_via2.clone();
    let cseq = m.cseq().map_err(|_| "bad CSeq header")?;
    d.s_method = cseq.method.as_str().to_string();
    d.s_cseq = cseq_number_text(m).unwrap_or_else(|| cseq.seq.to_string());
    let contact = match contact_uri(m) {
        Ok(Some(c)) => c,
        Ok(None) => {
            if !matches!(cseq.method, Method::Invite | Method::Subscribe) {
                return Ok(());
            }
            return match m.status() {
                // Provisional and failure replies need no Contact.
                Some(code) if !(200..400).contains(&code) => Ok(()),
                _ => Err("missing Contact header"),
            };
        }
        Err(e) => return Err(e),
    };
    if m.contacts().nth(1).is_some() {
        return Err("more than one Contact");
    }
    let request = m.is_request();
    let caller_side = (dir == Direction::Downstream) == request;
    if caller_side {
        d.a_contact = contact.to_string();
    } else {
        d.b_contact = contact.to_string();
    }
    Ok(())
}

/// The CSeq number as written.
fn cseq_number_text(m: &Message<'_>) -> Option<String> {
    let v = m.value(sr_sdk::sip_msg::HeaderName::CSeq)?;
    let n = v
        .trim_start()
        .split(|c: char| c.is_ascii_whitespace())
        .next()?;
    Some(n.to_string())
}

/// A URI parameter's value (`Some("")` for one without a value).
pub fn uri_param<'a>(uri: &Uri<'a>, name: &str) -> Option<&'a str> {
    Params::new(uri.params).get(name).map(|v| v.unwrap_or(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(text: &str) -> Vec<u8> {
        text.replace('\n', "\r\n").into_bytes()
    }

    #[test]
    fn a_request_splits_its_record_route_at_this_servers_entries() {
        let b = msg("INVITE sip:b@x SIP/2.0\nVia: SIP/2.0/UDP p:5060;branch=z9hG4bKp\nVia: SIP/2.0/UDP a:5060;branch=z9hG4bKa, SIP/2.0/UDP c;branch=z9hG4bKc\nRecord-Route: <sip:p;lr>\nRecord-Route: <sip:a;lr>, <sip:c;lr>\nFrom: <sip:a@x>;tag=1\nTo: <sip:b@x>\nCall-ID: c1\nCSeq: 7 INVITE\nContact: <sip:a@a>\nContent-Length: 0\n\n");
        let m = Message::parse(&b).unwrap();
        let d = pack(&m, "");
        assert_eq!(d.x_via1, "SIP/2.0/UDP p:5060;branch=z9hG4bKp");
        assert_eq!(d.x_vbranch1, "z9hG4bKp");
        assert_eq!(
            d.x_via2,
            "SIP/2.0/UDP a:5060;branch=z9hG4bKa,SIP/2.0/UDP c;branch=z9hG4bKc"
        );
        assert_eq!(d.s_rr, "<sip:p;lr>");
        assert_eq!(d.a_rr, "<sip:a;lr>,<sip:c;lr>");
        assert_eq!(d.x_rr, d.a_rr);
        assert_eq!(
            (d.as_contact.as_str(), d.bs_contact.as_str()),
            ("sip:p;lr", "sip:p;lr")
        );
        let mut d = d;
        link_msg(&m, &mut d, Direction::Downstream).unwrap();
        assert_eq!(d.a_contact, "sip:a@a");
        assert_eq!(
            (d.a_tag.as_str(), d.x_tag.as_str(), d.s_cseq.as_str()),
            ("1", "1", "7")
        );
    }

    #[test]
    fn double_record_routing_keeps_both_entries_as_this_servers() {
        let b = msg("INVITE sip:b@x SIP/2.0\nVia: SIP/2.0/UDP p;branch=z9hG4bKp\nRecord-Route: <sip:p1;r2=on;lr>, <sip:p2;r2=on;lr>\nFrom: <sip:a@x>;tag=1\nTo: <sip:b@x>\nCall-ID: c1\nCSeq: 1 INVITE\nContent-Length: 0\n\n");
        let m = Message::parse(&b).unwrap();
        let d = pack(&m, "");
        assert_eq!(d.s_rr, "<sip:p1;r2=on;lr>,<sip:p2;r2=on;lr>");
        assert_eq!(d.a_rr, "");
        assert_eq!(d.bs_contact, "sip:p1;r2=on;lr");
        assert_eq!(d.as_contact, "sip:p2;r2=on;lr");
    }

    #[test]
    fn an_invite_reply_without_contact_is_accepted_only_when_provisional_or_failed() {
        for (code, ok) in [(180, true), (486, true), (200, false)] {
            let b = msg(&format!("SIP/2.0 {code} X\nVia: SIP/2.0/UDP p;branch=z9hG4bKp\nRecord-Route: <sip:b;lr>\nFrom: <sip:a@x>;tag=1\nTo: <sip:b@x>;tag=2\nCall-ID: c1\nCSeq: 1 INVITE\nContent-Length: 0\n\n"));
            let m = Message::parse(&b).unwrap();
            let mut d = pack(&m, "");
            assert_eq!(
                link_msg(&m, &mut d, Direction::Downstream).is_ok(),
                ok,
                "{code}"
            );
            assert_eq!(d.b_rr, "<sip:b;lr>");
            assert_eq!(d.y_rr.is_empty(), code != 180);
        }
    }
}
