//! Building new messages from a request: replies (RFC 3261 8.2.6), and the
//! CANCEL (9.1) and ACK for a non-2xx final response (17.1.1.3) that a
//! client transaction sends.

use crate::error::ParseError;
use crate::header_name::HeaderName;
use crate::message::{Header, Message};
use crate::scan::find_top_level;
use crate::text::push_dec_bytes;

/// What a locally generated reply carries besides the copied headers.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReplyOptions<'r> {
    /// To-tag to add when the request's To has none (ignored for 100).
    pub to_tag: Option<&'r str>,
    /// Replacement for the topmost Via value (the received request's top
    /// Via with `received`/`rport` filled in), if the caller changed it.
    pub top_via: Option<&'r str>,
    /// Extra header lines, each ending in CRLF (e.g. `Server: x\r\n`).
    pub extra_headers: &'r str,
    /// Body, with its Content-Type.
    pub body: Option<(&'r str, &'r [u8])>,
    /// Copy Record-Route headers (a UAS answering a dialog-creating request).
    pub copy_record_route: bool,
}

fn raw_line<'m>(msg: &Message<'m>, h: &Header<'_>) -> &'m [u8] {
    &msg.raw()[h.start as usize..h.end as usize]
}

fn push_line(out: &mut Vec<u8>, raw: &[u8]) {
    out.extend_from_slice(raw);
    if !raw.ends_with(b"\n") {
        out.extend_from_slice(b"\r\n");
    }
}

fn push_header(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Writes the Via lines of `req`, replacing the topmost value if asked.
fn push_vias(out: &mut Vec<u8>, req: &Message<'_>, top: Option<&str>, only_top: bool) {
    for (i, h) in req.headers_named(HeaderName::Via).enumerate() {
        if i == 0 {
            let comma = find_top_level(h.value, b',');
            let first = comma.map_or(h.value, |c| h.value[..c].trim_end());
            if only_top {
                push_header(out, "Via", top.unwrap_or(first));
                return;
            }
            match (top, comma) {
                (None, _) => push_line(out, raw_line(req, h)),
                (Some(t), None) => push_header(out, "Via", t),
                (Some(t), Some(c)) => {
                    let rest = h.value[c..].trim_start_matches(',').trim_start();
                    out.extend_from_slice(b"Via: ");
                    out.extend_from_slice(t.as_bytes());
                    out.extend_from_slice(b", ");
                    out.extend_from_slice(rest.as_bytes());
                    out.extend_from_slice(b"\r\n");
                }
            }
        } else {
            push_line(out, raw_line(req, h));
        }
    }
}

fn push_copies(out: &mut Vec<u8>, req: &Message<'_>, name: HeaderName) {
    for h in req.headers_named(name) {
        push_line(out, raw_line(req, h));
    }
}

/// Builds a reply to `req`: Via, From, To (with a tag added when asked),
/// Call-ID, CSeq (and Timestamp for 100) copied from the request.
pub fn reply(
    req: &Message<'_>,
    code: u16,
    reason: &str,
    opts: &ReplyOptions<'_>,
) -> Result<Vec<u8>, ParseError> {
    req.check_mandatory()?;
    let mut out = Vec::with_capacity(512 + opts.extra_headers.len());
    out.extend_from_slice(b"SIP/2.0 ");
    push_dec_bytes(&mut out, u64::from(code));
    out.push(b' ');
    out.extend_from_slice(reason.as_bytes());
    out.extend_from_slice(b"\r\n");
    push_vias(&mut out, req, opts.top_via, false);
    if opts.copy_record_route {
        push_copies(&mut out, req, HeaderName::RecordRoute);
    }
    push_copies(&mut out, req, HeaderName::From);
    let to = req
        .header(HeaderName::To)
        .ok_or(ParseError::MissingHeader("To"))?;
    // A To that does not parse (a torture test's unterminated quote) is
    // copied as it came, without a tag: the error reply still goes out.
    match opts.to_tag {
        Some(tag) if code > 100 && matches!(req.to_tag(), Ok(None)) => {
            out.extend_from_slice(b"To: ");
            out.extend_from_slice(to.value.as_bytes());
            out.extend_from_slice(b";tag=");
            out.extend_from_slice(tag.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        _ => push_line(&mut out, raw_line(req, to)),
    }
    push_copies(&mut out, req, HeaderName::CallId);
    push_copies(&mut out, req, HeaderName::CSeq);
    if code == 100 {
        push_copies(&mut out, req, HeaderName::Timestamp);
    }
    out.extend_from_slice(opts.extra_headers.as_bytes());
    match opts.body {
        Some((ctype, body)) => {
            // (An empty type: the caller's extra headers hold it.)
            if !ctype.is_empty() {
                push_header(&mut out, "Content-Type", ctype);
            }
            out.extend_from_slice(b"Content-Length: ");
            push_dec_bytes(&mut out, body.len() as u64);
            out.extend_from_slice(b"\r\n\r\n");
            out.extend_from_slice(body);
        }
        None => out.extend_from_slice(b"Content-Length: 0\r\n\r\n"),
    }
    Ok(out)
}

/// Builds the CANCEL for a request this proxy sent (RFC 3261 9.1): same
/// Request-URI, top Via, Route set, From, To, Call-ID and CSeq number.
pub fn cancel(sent: &Message<'_>, reason: Option<&str>) -> Result<Vec<u8>, ParseError> {
    local_request(sent, "CANCEL", None, reason)
}

/// Builds the ACK a client transaction sends for a non-2xx final response
/// (RFC 3261 17.1.1.3): top Via, Route, From and Call-ID of the request,
/// To of the response, CSeq number with method ACK.
pub fn ack_for_non2xx(sent: &Message<'_>, resp: &Message<'_>) -> Result<Vec<u8>, ParseError> {
    let to = resp
        .header(HeaderName::To)
        .ok_or(ParseError::MissingHeader("To"))?;
    local_request(sent, "ACK", Some(raw_line(resp, to)), None)
}

/// A CANCEL or ACK for `sent`: its top Via, then its Max-Forwards, Route,
/// From, To (or `to`), Call-ID and CSeq (method replaced) in the order
/// `sent` has them, as Kamailio's tm copies them from the request it sent
/// (`reparse_invite`); Max-Forwards 70 when `sent` had none.
fn local_request(
    sent: &Message<'_>,
    method: &str,
    to: Option<&[u8]>,
    reason: Option<&str>,
) -> Result<Vec<u8>, ParseError> {
    sent.check_mandatory()?;
    let uri = sent
        .request_uri()
        .ok_or(ParseError::BadStartLine("CANCEL and ACK answer a request"))?;
    let cseq = sent.cseq()?;
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(format!("{method} {} SIP/2.0\r\n", uri.raw).as_bytes());
    push_vias(&mut out, sent, None, true);
    let mut max_forwards = false;
    for h in sent.headers() {
        match h.name {
            HeaderName::MaxForwards => {
                max_forwards = true;
                push_line(&mut out, raw_line(sent, h));
            }
            HeaderName::Route | HeaderName::From | HeaderName::CallId => {
                push_line(&mut out, raw_line(sent, h))
            }
            HeaderName::To => push_line(&mut out, to.unwrap_or(raw_line(sent, h))),
            HeaderName::CSeq => push_header(&mut out, "CSeq", &format!("{} {method}", cseq.seq)),
            _ => {}
        }
    }
    if !max_forwards {
        out.extend_from_slice(b"Max-Forwards: 70\r\n");
    }
    if let Some(r) = reason {
        push_header(&mut out, "Reason", r);
    }
    out.extend_from_slice(b"Content-Length: 0\r\n\r\n");
    Ok(out)
}
