//! `uac_replace_from`/`uac_replace_to` and their restore (Kamailio's
//! uac `replace.c`): the header's display and URI rewritten; the original
//! URI kept in our Record-Route (`;vsf=`/`;vst=`, see [`crate::codec`]) so
//! that requests within the dialog get it back (`restore_mode` auto: in
//! `loose_route()`; manual: `uac_restore_from/to()`), and the replies to
//! the request restored to what the sender wrote.

use crate::{codec, Mode, Uac, UacCtx};
use sr_sdk::prelude::*;
use sr_sdk::sip_msg::scan::offset_in;
use std::collections::HashMap;

/// From or To.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// The From header.
    From,
    /// The To header.
    To,
}

impl Which {
    fn header(self) -> HeaderName {
        match self {
            Which::From => HeaderName::From,
            Which::To => HeaderName::To,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Which::From => "from",
            Which::To => "to",
        }
    }
}

/// What the replies of a transaction get back: the From/To text (display
/// and URI) as the request came.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Restore {
    /// The From header's display and URI.
    pub from: Option<String>,
    /// The To header's display and URI.
    pub to: Option<String>,
}

impl Restore {
    fn set(&mut self, w: Which, text: String) {
        match w {
            Which::From => self.from = Some(text),
            Which::To => self.to = Some(text),
        }
    }

    /// Whether there is nothing to restore.
    pub fn is_empty(&self) -> bool {
        self.from.is_none() && self.to.is_none()
    }
}

/// Where a From/To value's parts lie in the message: the header value's
/// start, the display's span (if any), the URI's span, and the end of the
/// name-addr part (after `>` when bracketed).
#[derive(Debug, Clone, Copy)]
struct Spans {
    value: usize,
    display: Option<(usize, usize)>,
    uri: (usize, usize),
    end: usize,
    bracketed: bool,
}

fn spans(m: &Message<'_>, w: Which) -> Option<Spans> {
    let raw = m.raw();
    let h = m.header(w.header())?;
    let na = match w {
        Which::From => m.from().ok()?,
        Which::To => m.to().ok()?,
    };
    let value = offset_in(raw, h.value)?.0;
    let uri = offset_in(raw, na.uri_str)?;
    let display = match na.display {
        Some(d) if !d.is_empty() => Some(offset_in(raw, d)?),
        _ => None,
    };
    let mut end = uri.1;
    if na.bracketed {
        while raw.get(end).is_some_and(|c| *c == b' ' || *c == b'\t') {
            end += 1;
        }
        if raw.get(end) == Some(&b'>') {
            end += 1;
        }
    }
    Some(Spans {
        value,
        display,
        uri,
        end,
        bracketed: na.bracketed,
    })
}

fn text(raw: &[u8], a: usize, b: usize) -> String {
    String::from_utf8_lossy(raw.get(a..b).unwrap_or_default()).into_owned()
}

/// `uac_replace_from/to([display,] uri)`: 1, or -1 (a second call on the
/// message, a request within a dialog in auto mode, no such header, rr's
/// `append_fromtag` off).
pub fn replace(uac: &Uac, ctx: &mut Ctx<'_>, w: Which, dsp: Option<&str>, uri: &str) -> i32 {
    let mode = uac.mode();
    let done = ctx.msg.ext.get::<UacCtx>().is_some_and(|c| match w {
        Which::From => c.from_done,
        Which::To => c.to_done,
    });
    if done && ctx.route == RouteType::REQUEST {
        lm_err!("uac: called uac_replace_{}() multiple times", w.name());
        return -1;
    }
    let m = ctx.msg.msg();
    if mode == Mode::Auto && !uri.is_empty() && m.to_tag().ok().flatten().is_some() {
        lm_err!(
            "uac: decline {} replacing in sequential request in auto mode (has TO tag)",
            w.name()
        );
        return -1;
    }
    let Some(sp) = spans(m, w) else {
        lm_err!("uac: no {} header to replace", w.name());
        return -1;
    };
    let raw = m.raw();
    let old_uri = text(raw, sp.uri.0, sp.uri.1);
    let original = text(raw, sp.value, sp.end);
    if uri.len() > MAX_URI || old_uri.len() > MAX_URI {
        lm_err!("uac: {} URI too long", w.name());
        return -1;
    }
    // As Kamailio's lumps: the display and the URI are separate edits, so
    // that a display-only call and a URI call combine. A display is
    // replaced (an empty one removed, leaving the blank before `<`), one
    // is added before `<`, or a bare URI becomes `display <uri>`.
    let mut edits: Vec<(usize, usize, String)> = Vec::new();
    let uri_text = if uri.is_empty() {
        old_uri.clone()
    } else {
        uri.to_string()
    };
    match (dsp, sp.display) {
        (Some(d), Some((ds, de))) => edits.push((ds, de, d.to_string())),
        (Some(d), None) if !d.is_empty() && sp.bracketed => {
            edits.push((sp.value, sp.value, format!("{d} ")));
        }
        (Some(d), None) if !d.is_empty() => {
            // One edit for the whole bare URI: `display <uri>`.
            edits.push((sp.uri.0, sp.uri.1, format!("{d} <{uri_text}>")));
        }
        _ => {}
    }
    let bare_done = edits.iter().any(|e| e.0 == sp.uri.0);
    if !uri.is_empty() && !bare_done {
        edits.push((sp.uri.0, sp.uri.1, uri.to_string()));
    }
    if edits.is_empty() {
        return 1;
    }
    for (a, b, t) in edits {
        ctx.msg.edits.replace(a as u32, b as u32, t.as_bytes());
    }
    if uri.is_empty() || mode == Mode::None {
        return 1;
    }
    let new_uri = uri.to_string();
    // The URI goes into our Record-Route, so that requests within the
    // dialog get it back (rr's append_fromtag is checked at startup).
    let Some(rr) = uac.rr() else {
        return -1;
    };
    let p = &uac.p;
    let name = match w {
        Which::From => params::get_str(&p.rr_from),
        Which::To => params::get_str(&p.rr_to),
    };
    let enc = codec::encode(&old_uri, &new_uri, &params::get_str(&p.restore_passwd));
    rr.add_rr_param(ctx, &format!(";{name}={enc}"));
    // As Kamailio's: the flag is set once the URI is replaced and kept.
    let c = crate::uac_ctx(ctx.msg);
    match w {
        Which::From => c.from_done = true,
        Which::To => c.to_done = true,
    }
    // The replies get the original back; with `restore_*_avp` the
    // original is kept in that AVP too and read back from it.
    store_avp(uac, ctx, w, &original);
    uac.restore_replies(ctx.msg, w, original);
    1
}

/// The most a URI may be (Kamailio's `MAX_URI_SIZE`).
pub const MAX_URI: usize = 1023;

/// `restore_from_avp`/`restore_to_avp`: the original display and URI,
/// kept for the replies (as Kamailio's, the script may read it).
fn store_avp(uac: &Uac, ctx: &mut Ctx<'_>, w: Which, original: &str) {
    let avp = match w {
        Which::From => params::get_str(&uac.p.restore_from_avp),
        Which::To => params::get_str(&uac.p.restore_to_avp),
    };
    if avp.is_empty() {
        return;
    }
    if let Err(e) = ctx.core.pv_set(ctx.msg, &avp, Value::Str(original.into())) {
        lm_err!("uac: cannot set {avp}: {e}");
    }
}

/// Restores the URI of a request within the dialog from our Route's
/// parameters (`route_params`), the direction told by its `ftag`: `vsf`
/// downstream into From, upstream into To; `vst` the other way. Whether
/// any was restored; the original text of what changed goes to
/// `replies`.
pub fn restore_request(
    uac: &Uac,
    ctx: &mut Ctx<'_>,
    route_params: &str,
    which: &[Which],
    replies: &mut Restore,
) -> bool {
    let params_map: HashMap<String, String> = route_params
        .split(';')
        .filter_map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let k = k.trim();
            (!k.is_empty()).then(|| (k.to_ascii_lowercase(), v.trim().to_string()))
        })
        .collect();
    let m = ctx.msg.msg();
    let ftag = m.from_tag().ok().flatten().unwrap_or("");
    let downstream = params_map.get("ftag").is_none_or(|t| t == ftag);
    let passwd = params::get_str(&uac.p.restore_passwd);
    let mut any = false;
    for &w in which {
        let name = match w {
            Which::From => params::get_str(&uac.p.rr_from),
            Which::To => params::get_str(&uac.p.rr_to),
        };
        let Some(value) = params_map.get(&name.to_ascii_lowercase()) else {
            continue;
        };
        // Once per message and header (loose_route twice, or a manual
        // restore after the automatic one, would write it twice).
        let done = ctx.msg.ext.get::<UacCtx>().is_some_and(|c| match w {
            Which::From => c.restored_from,
            Which::To => c.restored_to,
        });
        if done {
            continue;
        }
        // The header the URI goes into.
        let target = match (w, downstream) {
            (Which::From, true) | (Which::To, false) => Which::From,
            _ => Which::To,
        };
        let m = ctx.msg.msg();
        let Some(sp) = spans(m, target) else {
            continue;
        };
        let raw = m.raw();
        let current = text(raw, sp.uri.0, sp.uri.1);
        let original = text(raw, sp.value, sp.end);
        let Some(other) = codec::decode(value, &passwd).and_then(|d| codec::restore(&d, &current))
        else {
            lm_dbg!("uac: {name}={value} does not restore '{current}': skipping the update");
            continue;
        };
        ctx.msg
            .edits
            .replace(sp.uri.0 as u32, sp.uri.1 as u32, other.as_bytes());
        let c = crate::uac_ctx(ctx.msg);
        match w {
            Which::From => c.restored_from = true,
            Which::To => c.restored_to = true,
        }
        store_avp(uac, ctx, target, &original);
        replies.set(target, original);
        if let Some(rr) = uac.rr() {
            rr.add_rr_param(ctx, &format!(";{name}={value}"));
        }
        any = true;
    }
    any
}

/// A reply: its From/To display and URI (up to `>`) set back to `r`'s.
pub fn restore_reply(rpl: &mut SipMsg, r: &Restore) {
    for (w, orig) in [(Which::From, &r.from), (Which::To, &r.to)] {
        let Some(orig) = orig else {
            continue;
        };
        let Some(sp) = spans(rpl.msg(), w) else {
            continue;
        };
        rpl.edits
            .replace(sp.value as u32, sp.end as u32, orig.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sr_sdk::sip_msg::edit::ApplyOptions;

    fn applied(msg: &SipMsg) -> String {
        String::from_utf8(msg.edits.apply(msg.msg(), ApplyOptions::default())).unwrap()
    }

    fn reply(from: &str) -> SipMsg {
        let text = format!(
            "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\r\nFrom: {from}\r\nTo: <sip:b@x>;tag=2\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
        );
        SipMsg::parse(bytes::Bytes::from(text), sr_sdk::RecvInfo::loopback(), 1).unwrap()
    }

    #[test]
    fn spans_of_the_forms() {
        let m = reply("\"Alice A\" <sip:alice@a.example.com>;tag=1");
        let sp = spans(m.msg(), Which::From).unwrap();
        let raw = m.msg().raw();
        assert_eq!(
            text(raw, sp.display.unwrap().0, sp.display.unwrap().1),
            "\"Alice A\""
        );
        assert_eq!(text(raw, sp.uri.0, sp.uri.1), "sip:alice@a.example.com");
        assert_eq!(
            text(raw, sp.value, sp.end),
            "\"Alice A\" <sip:alice@a.example.com>"
        );
        let m = reply("sip:alice@a.example.com;tag=1");
        let sp = spans(m.msg(), Which::From).unwrap();
        assert_eq!(
            text(m.msg().raw(), sp.value, sp.end),
            "sip:alice@a.example.com"
        );
    }

    #[test]
    fn replies_get_the_original_back() {
        let mut m = reply("Bob <sip:bob@new.example.net>;tag=1");
        let r = Restore {
            from: Some("\"Alice A\" <sip:alice@a.example.com>".into()),
            to: None,
        };
        restore_reply(&mut m, &r);
        assert!(applied(&m).contains("From: \"Alice A\" <sip:alice@a.example.com>;tag=1\r\n"));
    }
}
