//! The BYEs the module sends (timeout with `send_bye`, `dlg_bye`,
//! `dlg.end_dlg`): one per side, built from what the dialog recorded of
//! the other side — Request-URI its Contact, Route its route set, From/To
//! with the tags of the side we speak for, CSeq one above its last — each
//! a client transaction of tm's [`sr_mod_tm::local::LocalRequests`].

use crate::dlg::{Dialog, Leg};
use crate::Dlg;
use sr_mod_tm::local::{Ended, Taken};
use sr_sdk::prelude::*;

/// Which side(s) get a BYE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The caller (From side).
    Caller,
    /// The callee (To side).
    Callee,
    /// Both.
    Both,
}

impl Side {
    /// From `dlg_bye`'s parameter.
    pub fn parse(s: &str) -> Option<Side> {
        match s.trim().to_ascii_lowercase().as_str() {
            "all" => Some(Side::Both),
            "caller" => Some(Side::Caller),
            "callee" => Some(Side::Callee),
            _ => None,
        }
    }
}

/// What a BYE in flight belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ByeTag {
    /// The dialog's Call-ID.
    pub callid: String,
    /// The side it went to.
    pub to_caller: bool,
}

/// The text of a BYE towards one side (`to_caller`), speaking for the
/// other, with `via` (transport, sent-by) and `branch` in its Via; and the
/// URI it goes to (the first Route, else the Contact). Its headers come in
/// the order of Kamailio's tm: Via, Route, To, From, CSeq, Call-ID,
/// Content-Length, User-Agent (`ua`), Max-Forwards, `dlg_extra_hdrs`.
pub fn build(
    dlg: &Dialog,
    to_caller: bool,
    via: (&str, &str),
    branch: &str,
    extra: &str,
    ua: Option<&str>,
) -> (String, String) {
    let (to, from): (&Leg, &Leg) = if to_caller {
        (&dlg.caller, &dlg.callee)
    } else {
        (&dlg.callee, &dlg.caller)
    };
    let (to_uri, from_uri) = if to_caller {
        (&dlg.from_uri, &dlg.to_uri)
    } else {
        (&dlg.to_uri, &dlg.from_uri)
    };
    let contact = if to.contact.is_empty() {
        to_uri.as_str()
    } else {
        to.contact.as_str()
    };
    // A Contact nathelper marked with `;alias=` (set_contact_alias): the
    // BYE goes to the address it names, with the Contact as it was, when
    // there is no route set (as Kamailio's).
    let alias = (to.route_set.is_empty())
        .then(|| split_alias(contact))
        .flatten();
    let ruri = alias.as_ref().map_or(contact, |(u, _)| u.as_str());
    let mut s = format!(
        "BYE {ruri} SIP/2.0\r\nVia: SIP/2.0/{} {};branch={branch}\r\n",
        via.0, via.1
    );
    for r in &to.route_set {
        s.push_str(&format!("Route: {r}\r\n"));
    }
    s.push_str(&format!(
        "To: <{to_uri}>;tag={}\r\nFrom: <{from_uri}>;tag={}\r\nCSeq: {} BYE\r\nCall-ID: {}\r\nContent-Length: 0\r\n",
        to.tag,
        from.tag,
        from.cseq.wrapping_add(1),
        dlg.callid,
    ));
    if let Some(ua) = ua {
        s.push_str(ua);
        s.push_str("\r\n");
    }
    s.push_str("Max-Forwards: 70\r\n");
    for line in extra.split("\r\n").map(str::trim).filter(|l| !l.is_empty()) {
        s.push_str(line);
        s.push_str("\r\n");
    }
    s.push_str("\r\n");
    let next = match (to.route_set.first(), &alias) {
        (Some(r), _) => r.trim_start_matches('<').trim_end_matches('>').to_string(),
        (None, Some((_, dst))) => dst.clone(),
        (None, None) => ruri.to_string(),
    };
    (s, next)
}

/// A URI with an `;alias=ip~port~proto` parameter: the URI without it, and
/// the address it names as a URI (`sip:ip:port;transport=...`).
pub fn split_alias(uri: &str) -> Option<(String, String)> {
    let start = uri.find(";alias=")?;
    let rest = &uri[start + 7..];
    let end = rest.find([';', '?', '>']).unwrap_or(rest.len());
    let mut parts = rest[..end].split('~');
    let (ip, port, proto) = (parts.next()?, parts.next()?, parts.next()?);
    let port: u16 = port.parse().ok()?;
    let ip: std::net::IpAddr = ip.trim_matches(['[', ']']).parse().ok()?;
    let transport = match proto {
        "1" => "udp",
        "2" => "tcp",
        "3" => "tls",
        "5" => "ws",
        "6" => "wss",
        _ => return None,
    };
    let host = match ip {
        std::net::IpAddr::V6(v6) => format!("[{v6}]"),
        v4 => v4.to_string(),
    };
    let bare = format!("{}{}", &uri[..start], &rest[end..]);
    Some((bare, format!("sip:{host}:{port};transport={transport}")))
}

/// Sends the BYEs of an answered dialog to `side`, with `dlg_extra_hdrs`
/// and `more` (header lines) after Max-Forwards.
pub fn send(d: &Dlg, core: &dyn Core, dlg: &Dialog, side: Side, more: &str) {
    let Some(tm) = d.tm() else {
        return;
    };
    let timers = tm.uac_timers();
    let unescape = |s: String| s.replace("\\r\\n", "\r\n");
    let extra = format!("{}\r\n{more}", unescape(params::get_str(&d.p.extra_hdrs)));
    let to_callee = format!("{extra}\r\n{}", unescape(params::get_str(&d.p.callee_hdrs)));
    let ua = core.user_agent_header();
    for to_caller in [true, false] {
        match (side, to_caller) {
            (Side::Caller, false) | (Side::Callee, true) => continue,
            _ => {}
        }
        let (n, branch) = d.byes.next_branch();
        let probe = build(dlg, to_caller, ("UDP", "0.0.0.0"), &branch, &extra, None).1;
        let dest = match core.resolve(&probe, None) {
            Ok(x) => x,
            Err(e) => {
                lm_warn!("dialog: BYE for {} to {probe}: {e}", dlg.callid);
                continue;
            }
        };
        let local = sr_mod_tm::local::via_host(core, &dest).unwrap_or_default();
        let (text, _) = build(
            dlg,
            to_caller,
            (dest.proto.via_name(), &local),
            &branch,
            if to_caller { &extra } else { &to_callee },
            ua.as_deref(),
        );
        let tag = ByeTag {
            callid: dlg.callid.clone(),
            to_caller,
        };
        if let Some(e) = d.byes.start(core, n, text.into_bytes(), dest, &timers, tag) {
            ended(d, core, e);
        }
    }
}

/// A BYE's outcome: logged when it failed.
pub fn ended(_d: &Dlg, _core: &dyn Core, e: Ended<ByeTag>) {
    if e.code >= 300 {
        lm_notice!(
            "dialog: BYE to the {} of {} ended with {}",
            if e.tag.to_caller { "caller" } else { "callee" },
            e.tag.callid,
            e.code
        );
    }
}

/// A reply: true when it answers one of our BYEs (it goes no further).
pub fn on_reply(d: &Dlg, ctx: &mut Ctx<'_>) -> bool {
    match d.byes.take_reply(ctx.msg) {
        Taken::NotOurs => false,
        Taken::Absorbed => true,
        Taken::Ended(e) => {
            ended(d, ctx.core, e);
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dlg::State;

    fn answered() -> Dialog {
        let mut d = crate::dlg::sample("c1@a", "ft");
        d.state = State::Confirmed;
        d.from_uri = "sip:alice@a.example".into();
        d.to_uri = "sip:bob@b.example".into();
        d.caller.contact = "sip:alice@10.0.0.1:5070".into();
        d.caller.cseq = 10;
        d.caller.route_set = vec!["<sip:p1.example;lr>".into()];
        d.callee = Leg {
            tag: "tt".into(),
            contact: "sip:bob@10.0.0.2:5080".into(),
            cseq: 0,
            route_set: Vec::new(),
            socket: String::new(),
        };
        d
    }

    #[test]
    fn bye_to_the_callee_speaks_for_the_caller() {
        let (text, next) = build(
            &answered(),
            false,
            ("UDP", "127.0.0.1:5060"),
            "z9hG4bKdlgx",
            "",
            Some("User-Agent: t"),
        );
        assert!(text.starts_with("BYE sip:bob@10.0.0.2:5080 SIP/2.0\r\n"));
        assert!(text.contains("From: <sip:alice@a.example>;tag=ft\r\n"));
        assert!(text.contains("To: <sip:bob@b.example>;tag=tt\r\n"));
        assert!(text.contains("CSeq: 11 BYE\r\n"));
        assert!(!text.contains("Route:"));
        assert!(text.ends_with("Content-Length: 0\r\nUser-Agent: t\r\nMax-Forwards: 70\r\n\r\n"));
        assert_eq!(next, "sip:bob@10.0.0.2:5080");
        assert!(sr_sdk::sip_msg::Message::parse(text.as_bytes()).is_ok());
    }

    #[test]
    fn bye_to_the_caller_follows_its_route_set() {
        let (text, next) = build(
            &answered(),
            true,
            ("UDP", "127.0.0.1:5060"),
            "z9hG4bKdlgx",
            "X-Reason: timeout\r\n",
            None,
        );
        assert!(text.starts_with("BYE sip:alice@10.0.0.1:5070 SIP/2.0\r\n"));
        assert!(text.contains("Route: <sip:p1.example;lr>\r\n"));
        assert!(text.contains("From: <sip:bob@b.example>;tag=tt\r\n"));
        assert!(text.contains("To: <sip:alice@a.example>;tag=ft\r\n"));
        assert!(
            text.contains("CSeq: 1 BYE\r\n"),
            "the callee's first request"
        );
        assert!(text.ends_with("Max-Forwards: 70\r\nX-Reason: timeout\r\n\r\n"));
        assert_eq!(next, "sip:p1.example;lr");
    }

    #[test]
    fn alias_names_where_the_bye_goes() {
        assert_eq!(
            split_alias("sip:bob@10.0.0.2:5080;alias=203.0.113.9~40000~1;ob"),
            Some((
                "sip:bob@10.0.0.2:5080;ob".into(),
                "sip:203.0.113.9:40000;transport=udp".into()
            ))
        );
        assert_eq!(
            split_alias("sip:a@h;alias=::1~5060~2").map(|x| x.1),
            Some("sip:[::1]:5060;transport=tcp".into())
        );
        assert_eq!(split_alias("sip:a@h;alias=bad"), None);
        assert_eq!(split_alias("sip:a@h"), None);
        let mut d = answered();
        d.callee.contact = "sip:bob@10.0.0.2:5080;alias=203.0.113.9~40000~1".into();
        let (text, next) = build(&d, false, ("UDP", "x"), "b", "", None);
        assert!(text.starts_with("BYE sip:bob@10.0.0.2:5080 SIP/2.0\r\n"));
        assert_eq!(next, "sip:203.0.113.9:40000;transport=udp");
    }

    #[test]
    fn sides() {
        assert_eq!(Side::parse("ALL"), Some(Side::Both));
        assert_eq!(Side::parse("caller"), Some(Side::Caller));
        assert_eq!(Side::parse("callee"), Some(Side::Callee));
        assert_eq!(Side::parse("x"), None);
    }
}
