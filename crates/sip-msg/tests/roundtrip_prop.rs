//! Property tests: a structured SIP message model is written out with
//! random (grammar-legal) spelling — compact names, name case, LWS and
//! folded lines around separators, header order — parsed back with
//! `Message::parse`, and every field read through the typed accessors must
//! equal the model. Edits applied to such messages must give the expected
//! header list, and no input at all may make the parser panic.

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use sip_msg::edit::{ApplyOptions, Edits};
use sip_msg::headers::ContactValue;
use sip_msg::params::Param;
use sip_msg::{HeaderName, Host, Message, Scheme, Uri};
use std::net::{Ipv4Addr, Ipv6Addr};

// ---------------------------------------------------------------- model --

#[derive(Debug, Clone)]
enum HostM {
    Name(String),
    V4(Ipv4Addr),
    V6(Ipv6Addr),
}

impl HostM {
    fn text(&self) -> String {
        match self {
            HostM::Name(n) => n.clone(),
            HostM::V4(a) => a.to_string(),
            HostM::V6(a) => format!("[{a}]"),
        }
    }

    fn check(&self, h: &Host<'_>) {
        match (self, h) {
            (HostM::Name(a), Host::Name(b)) => assert_eq!(a, b),
            (HostM::V4(a), Host::V4(b)) => assert_eq!(a, b),
            (HostM::V6(a), Host::V6(b)) => assert_eq!(a, b),
            (m, h) => panic!("host {m:?} parsed as {h:?}"),
        }
    }
}

#[derive(Debug, Clone)]
struct UriM {
    sips: bool,
    user: Option<String>,
    password: Option<String>,
    host: HostM,
    port: Option<u16>,
    params: Vec<(String, Option<String>)>,
    headers: Vec<(String, String)>,
}

impl UriM {
    fn text(&self) -> String {
        let mut s = String::from(if self.sips { "sips:" } else { "sip:" });
        if let Some(u) = &self.user {
            s.push_str(u);
            if let Some(p) = &self.password {
                s.push(':');
                s.push_str(p);
            }
            s.push('@');
        }
        s.push_str(&self.host.text());
        if let Some(p) = self.port {
            s.push_str(&format!(":{p}"));
        }
        for (n, v) in &self.params {
            s.push(';');
            s.push_str(n);
            if let Some(v) = v {
                s.push('=');
                s.push_str(v);
            }
        }
        for (i, (n, v)) in self.headers.iter().enumerate() {
            s.push(if i == 0 { '?' } else { '&' });
            s.push_str(&format!("{n}={v}"));
        }
        s
    }

    /// Whether the URI may be written without angle brackets in a
    /// name-addr header (RFC 3261 20.10).
    fn bare_ok(&self) -> bool {
        self.params.is_empty()
            && self.headers.is_empty()
            && !self
                .user
                .iter()
                .chain(self.password.iter())
                .any(|u| u.contains([',', ';', '?']))
    }

    fn check(&self, u: &Uri<'_>) {
        assert_eq!(u.raw, self.text());
        assert_eq!(u.scheme, if self.sips { Scheme::Sips } else { Scheme::Sip });
        assert_eq!(u.user, self.user.as_deref());
        assert_eq!(u.password, self.password.as_deref());
        self.host.check(&u.host);
        assert_eq!(u.host_str, self.host.text());
        assert_eq!(u.port, self.port);
        let got: Vec<Param<'_>> = u.param_iter().collect();
        let want: Vec<Param<'_>> = self
            .params
            .iter()
            .map(|(n, v)| Param {
                name: n,
                value: v.as_deref(),
            })
            .collect();
        assert_eq!(got, want);
        let hdrs = self
            .headers
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        assert_eq!(
            u.headers,
            (!self.headers.is_empty()).then_some(hdrs.as_str())
        );
        assert!(u.rfc_eq(u));
    }
}

#[derive(Debug, Clone)]
enum Display {
    None,
    /// Shown text (unescaped); written as a quoted string.
    Quoted(String),
    /// Tokens separated by LWS.
    Tokens(Vec<String>),
}

#[derive(Debug, Clone)]
struct NameAddrM {
    display: Display,
    uri: UriM,
    force_brackets: bool,
    params: Vec<(String, Option<String>)>,
}

#[derive(Debug, Clone)]
struct ViaM {
    transport: String,
    host: HostM,
    port: Option<u16>,
    branch: Option<String>,
    rport: Option<Option<u16>>,
    received: Option<String>,
    extra: Vec<(String, Option<String>)>,
}

#[derive(Debug, Clone)]
enum StartM {
    Request { method: String, uri: UriM },
    Response { code: u16, reason: String },
}

#[derive(Debug, Clone)]
enum ContactsM {
    None,
    Star,
    List(Vec<NameAddrM>),
}

#[derive(Debug, Clone)]
struct MsgM {
    start: StartM,
    vias: Vec<ViaM>,
    from: NameAddrM,
    to: NameAddrM,
    call_id: String,
    cseq: (u32, String),
    max_forwards: Option<u32>,
    contacts: ContactsM,
    routes: Vec<UriM>,
    record_routes: Vec<UriM>,
    unknown: Vec<(String, String)>,
    /// `None`: no body and no Content-Length; `Some`: body with
    /// Content-Length (possibly empty).
    body: Option<Vec<u8>>,
    /// Random choices for spelling: LWS, compact names, case, grouping.
    style: Vec<u8>,
}

// ------------------------------------------------------------ serializer --

/// Draws spelling decisions from the style bytes.
struct Style<'s> {
    bytes: &'s [u8],
    i: usize,
}

impl Style<'_> {
    fn next(&mut self) -> u8 {
        let b = self.bytes[self.i % self.bytes.len()];
        self.i += 1;
        // Mix the position in so that a short style vector still varies.
        b.wrapping_add(((self.i / self.bytes.len()) as u8).wrapping_mul(37))
    }

    fn pick<'a>(&mut self, options: &[&'a str]) -> &'a str {
        options[self.next() as usize % options.len()]
    }

    /// SWS: optional white space, folding included.
    fn sws(&mut self) -> &'static str {
        self.pick(&[
            "", "", "", "", " ", "\t", "  ", " \t", "\r\n ", "\r\n\t", " \r\n  ",
        ])
    }

    /// LWS: at least one white space character, folding included.
    fn lws(&mut self) -> &'static str {
        self.pick(&[" ", " ", " ", "\t", "   ", "\r\n ", "\t\r\n\t"])
    }

    /// Spaces and tabs only (before a colon, at the end of a line).
    fn sp(&mut self) -> &'static str {
        self.pick(&["", "", "", " ", "\t", " \t "])
    }

    /// A header name: long form in random case, or the compact form.
    fn name(&mut self, long: &str, compact: Option<&str>) -> String {
        let b = self.next();
        if let (Some(c), true) = (compact, b.is_multiple_of(3)) {
            return if b & 8 != 0 {
                c.to_ascii_uppercase()
            } else {
                c.to_string()
            };
        }
        match b % 4 {
            1 => long.to_ascii_lowercase(),
            2 => long.to_ascii_uppercase(),
            3 => long
                .chars()
                .enumerate()
                .map(|(i, c)| {
                    if i % 2 == 0 {
                        c.to_ascii_uppercase()
                    } else {
                        c.to_ascii_lowercase()
                    }
                })
                .collect(),
            _ => long.to_string(),
        }
    }

    /// Splits `n` items into consecutive groups (header lines).
    fn groups(&mut self, n: usize) -> Vec<usize> {
        let mut out = Vec::new();
        let mut left = n;
        while left > 0 {
            let g = 1 + self.next() as usize % left;
            out.push(g);
            left -= g;
        }
        out
    }
}

fn quote(s: &str, st: &mut Style<'_>) -> String {
    let mut q = String::from("\"");
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                q.push('\\');
                q.push(c);
            }
            // An escape that was not needed is legal too.
            'a'..='z' if st.next().is_multiple_of(7) => {
                q.push('\\');
                q.push(c);
            }
            _ => q.push(c),
        }
    }
    q.push('"');
    q
}

fn write_params(out: &mut String, params: &[(String, Option<String>)], st: &mut Style<'_>) {
    for (n, v) in params {
        out.push_str(st.sws());
        out.push(';');
        out.push_str(st.sws());
        out.push_str(n);
        if let Some(v) = v {
            out.push_str(st.sws());
            out.push('=');
            out.push_str(st.sws());
            out.push_str(v);
        }
    }
}

fn write_name_addr(na: &NameAddrM, st: &mut Style<'_>) -> String {
    let mut s = String::new();
    let bracket = na.force_brackets || !na.uri.bare_ok() || !matches!(na.display, Display::None);
    match &na.display {
        Display::None => {}
        Display::Quoted(d) => {
            s.push_str(&quote(d, st));
            s.push_str(st.sws());
        }
        Display::Tokens(t) => {
            for tok in t {
                s.push_str(tok);
                s.push_str(st.lws());
            }
        }
    }
    if bracket {
        s.push('<');
        s.push_str(&na.uri.text());
        s.push('>');
    } else {
        s.push_str(&na.uri.text());
    }
    write_params(&mut s, &na.params, st);
    s
}

fn via_params(v: &ViaM) -> Vec<(String, Option<String>)> {
    let mut p = Vec::new();
    if let Some(b) = &v.branch {
        p.push(("branch".to_string(), Some(b.clone())));
    }
    if let Some(r) = v.rport {
        p.push(("rport".to_string(), r.map(|x| x.to_string())));
    }
    if let Some(r) = &v.received {
        p.push(("received".to_string(), Some(r.clone())));
    }
    p.extend(v.extra.iter().cloned());
    p
}

fn write_via(v: &ViaM, st: &mut Style<'_>) -> String {
    let mut s = String::from("SIP");
    for part in ["2.0", &v.transport] {
        s.push_str(st.sws());
        s.push('/');
        s.push_str(st.sws());
        s.push_str(part);
    }
    s.push_str(st.lws());
    s.push_str(&v.host.text());
    if let Some(p) = v.port {
        s.push_str(&format!(":{p}"));
    }
    write_params(&mut s, &via_params(v), st);
    s
}

/// Header lines of one kind: values grouped into comma-separated lines.
fn list_lines(
    lines: &mut Vec<(u8, String)>,
    kind: u8,
    long: &str,
    compact: Option<&str>,
    values: Vec<String>,
    st: &mut Style<'_>,
) {
    let mut it = values.into_iter();
    for g in st.groups(it.len()) {
        let mut v = String::new();
        for i in 0..g {
            if i > 0 {
                v.push_str(st.sws());
                v.push(',');
                v.push_str(st.sws());
            }
            v.push_str(&it.next().unwrap());
        }
        let name = st.name(long, compact);
        lines.push((kind, header_line(&name, &v, st)));
    }
}

fn header_line(name: &str, value: &str, st: &mut Style<'_>) -> String {
    format!("{name}{}:{}{value}{}\r\n", st.sp(), st.sws(), st.sp())
}

/// Serialises the model. Header kinds keep their relative order (Via,
/// Route, ... order matters), everything else is interleaved at random.
fn serialize(m: &MsgM) -> Vec<u8> {
    let st = &mut Style {
        bytes: &m.style,
        i: 0,
    };
    let mut lines: Vec<(u8, String)> = Vec::new();
    let vias: Vec<String> = m.vias.iter().map(|v| write_via(v, st)).collect();
    list_lines(&mut lines, 0, "Via", Some("v"), vias, st);
    let from = write_name_addr(&m.from, st);
    let n = st.name("From", Some("f"));
    lines.push((1, header_line(&n, &from, st)));
    let to = write_name_addr(&m.to, st);
    let n = st.name("To", Some("t"));
    lines.push((2, header_line(&n, &to, st)));
    let n = st.name("Call-ID", Some("i"));
    lines.push((3, header_line(&n, &m.call_id, st)));
    let cseq = format!("{}{}{}", m.cseq.0, st.lws(), m.cseq.1);
    let n = st.name("CSeq", None);
    lines.push((4, header_line(&n, &cseq, st)));
    if let Some(mf) = m.max_forwards {
        let n = st.name("Max-Forwards", None);
        lines.push((5, header_line(&n, &mf.to_string(), st)));
    }
    match &m.contacts {
        ContactsM::None => {}
        ContactsM::Star => {
            let n = st.name("Contact", Some("m"));
            lines.push((6, header_line(&n, "*", st)));
        }
        ContactsM::List(c) => {
            let vals = c.iter().map(|na| write_name_addr(na, st)).collect();
            list_lines(&mut lines, 6, "Contact", Some("m"), vals, st);
        }
    }
    let bracketed = |u: &UriM, st: &mut Style<'_>| {
        let mut s = format!("<{}>", u.text());
        if st.next().is_multiple_of(4) {
            s.push_str(st.sws());
            s.push_str(";x-hp=1");
        }
        s
    };
    let vals = m.routes.iter().map(|u| bracketed(u, st)).collect();
    list_lines(&mut lines, 7, "Route", None, vals, st);
    let vals = m.record_routes.iter().map(|u| bracketed(u, st)).collect();
    list_lines(&mut lines, 8, "Record-Route", None, vals, st);
    for (n, v) in &m.unknown {
        lines.push((9, header_line(n, v, st)));
    }
    if let Some(b) = &m.body {
        let n = st.name("Content-Length", Some("l"));
        lines.push((10, header_line(&n, &b.len().to_string(), st)));
        if !b.is_empty() {
            let n = st.name("Content-Type", Some("c"));
            lines.push((11, header_line(&n, "application/octet-stream", st)));
        }
    }
    // Shuffle, then put each kind's lines back in their own order.
    let mut keyed: Vec<(u8, usize)> = (0..lines.len()).map(|i| (st.next(), i)).collect();
    keyed.sort();
    let slots: Vec<usize> = keyed.iter().map(|&(_, i)| i).collect();
    let mut by_kind: Vec<Vec<usize>> = vec![Vec::new(); 12];
    for (i, (k, _)) in lines.iter().enumerate() {
        by_kind[*k as usize].push(i);
    }
    let mut next_of_kind = [0usize; 12];
    let mut order = Vec::new();
    for s in slots {
        let k = lines[s].0 as usize;
        order.push(by_kind[k][next_of_kind[k]]);
        next_of_kind[k] += 1;
    }

    let mut out = String::new();
    match &m.start {
        StartM::Request { method, uri } => {
            out.push_str(&format!("{method} {} SIP/2.0\r\n", uri.text()))
        }
        StartM::Response { code, reason } => out.push_str(&format!("SIP/2.0 {code} {reason}\r\n")),
    }
    for i in order {
        out.push_str(&lines[i].1);
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    if let Some(b) = &m.body {
        bytes.extend_from_slice(b);
    }
    bytes
}

// ------------------------------------------------------------ strategies --

const KNOWN_METHODS: [&str; 14] = [
    "INVITE",
    "ACK",
    "BYE",
    "CANCEL",
    "REGISTER",
    "OPTIONS",
    "INFO",
    "PRACK",
    "UPDATE",
    "SUBSCRIBE",
    "NOTIFY",
    "PUBLISH",
    "MESSAGE",
    "REFER",
];

fn method() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => proptest::sample::select(&KNOWN_METHODS[..]).prop_map(str::to_string),
        1 => "[A-Za-z][A-Za-z0-9.!%*_+`'~-]{0,11}",
    ]
}

fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9.!%*_+`'~-]{1,12}"
}

/// A host name that cannot be mistaken for an IPv4 address.
fn host_name() -> impl Strategy<Value = String> {
    "[a-zA-Z][a-zA-Z0-9-]{0,10}(\\.[a-zA-Z][a-zA-Z0-9-]{0,10}){0,3}"
}

fn host() -> impl Strategy<Value = HostM> {
    prop_oneof![
        3 => host_name().prop_map(HostM::Name),
        2 => any::<[u8; 4]>().prop_map(|o| HostM::V4(Ipv4Addr::from(o))),
        2 => any::<[u16; 8]>().prop_map(|s| HostM::V6(Ipv6Addr::from(s))),
        1 => (0u16..4, 0u16..0x10).prop_map(|(a, b)| HostM::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, a, b))),
    ]
}

fn escaped() -> impl Strategy<Value = String> {
    "%[0-9A-Fa-f]{2}"
}

/// user = 1*( unreserved / escaped / user-unreserved )
fn user() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            6 => "[a-zA-Z0-9_.!~*'()-]",
            1 => "[&=+$,;?/]",
            1 => escaped(),
        ],
        1..12,
    )
    .prop_map(|v| v.concat())
}

fn password() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![4 => "[a-zA-Z0-9_.!~*'()&=+$,-]", 1 => escaped()],
        0..8,
    )
    .prop_map(|v| v.concat())
}

fn param_value() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![6 => "[a-zA-Z0-9_.!~*'()-]", 1 => "[\\[\\]/:&+$]", 1 => escaped()],
        1..10,
    )
    .prop_map(|v| v.concat())
}

fn uri_params() -> impl Strategy<Value = Vec<(String, Option<String>)>> {
    proptest::collection::vec(
        (
            prop_oneof![
                Just("transport".to_string()),
                Just("lr".to_string()),
                Just("maddr".to_string()),
                Just("user".to_string()),
                "[a-z][a-z0-9-]{0,7}",
            ],
            proptest::option::of(param_value()),
        ),
        0..4,
    )
}

fn uri() -> impl Strategy<Value = UriM> {
    (
        any::<bool>(),
        proptest::option::of((user(), proptest::option::weighted(0.2, password()))),
        host(),
        proptest::option::of(any::<u16>()),
        uri_params(),
        proptest::collection::vec(("[a-z][a-z0-9]{0,5}", param_value()), 0..3),
    )
        .prop_map(|(sips, up, host, port, params, headers)| {
            let (user, password) = match up {
                Some((u, p)) => (Some(u), p),
                None => (None, None),
            };
            UriM {
                sips,
                user,
                password,
                host,
                port,
                params,
                headers,
            }
        })
}

/// A display name's shown text: printable ASCII (quotes and backslashes
/// included), some non-ASCII letters, inner spaces.
fn quoted_display() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![8 => "[ -~]", 2 => "[\"\\\\]", 1 => "[éü€ж]"],
        0..16,
    )
    .prop_map(|v| v.concat())
}

fn display() -> impl Strategy<Value = Display> {
    prop_oneof![
        2 => Just(Display::None),
        2 => quoted_display().prop_map(Display::Quoted),
        1 => proptest::collection::vec(token(), 1..4).prop_map(Display::Tokens),
    ]
}

fn gen_params() -> impl Strategy<Value = Vec<(String, Option<String>)>> {
    proptest::collection::vec(
        (
            "[a-z][a-z0-9-]{0,7}",
            proptest::option::of(prop_oneof![
                3 => token(),
                1 => quoted_display().prop_map(|s| {
                    let mut st = Style { bytes: &[0], i: 0 };
                    quote(&s, &mut st)
                }),
            ]),
        ),
        0..3,
    )
    .prop_filter("no tag/expires/q", |v| {
        v.iter()
            .all(|(n, _)| !matches!(n.as_str(), "tag" | "expires" | "q"))
    })
}

fn name_addr(with_tag: bool) -> impl Strategy<Value = NameAddrM> {
    (
        display(),
        uri(),
        any::<bool>(),
        proptest::option::weighted(if with_tag { 0.8 } else { 0.001 }, token()),
        gen_params(),
    )
        .prop_map(|(display, uri, force_brackets, tag, extra)| {
            let mut params: Vec<_> = tag
                .map(|t| ("tag".to_string(), Some(t)))
                .into_iter()
                .collect();
            params.extend(extra);
            NameAddrM {
                display,
                uri,
                force_brackets,
                params,
            }
        })
}

fn contact() -> impl Strategy<Value = NameAddrM> {
    (
        name_addr(false),
        proptest::option::of(any::<u32>()),
        proptest::option::of(prop_oneof![
            Just("1".to_string()),
            Just("0".to_string()),
            "0\\.[0-9]{1,3}",
        ]),
    )
        .prop_map(|(mut na, exp, q)| {
            if let Some(e) = exp {
                na.params.push(("expires".into(), Some(e.to_string())));
            }
            if let Some(q) = q {
                na.params.push(("q".into(), Some(q)));
            }
            na
        })
}

fn via() -> impl Strategy<Value = ViaM> {
    (
        prop_oneof![
            proptest::sample::select(&["UDP", "TCP", "TLS", "SCTP", "WS", "WSS"][..])
                .prop_map(str::to_string),
            "[A-Z][A-Z0-9]{0,5}",
        ],
        host(),
        proptest::option::of(any::<u16>()),
        proptest::option::weighted(0.9, "z9hG4bK[a-zA-Z0-9.!%*_+`'~-]{1,16}"),
        proptest::option::of(proptest::option::of(any::<u16>())),
        proptest::option::of(prop_oneof![
            any::<[u8; 4]>().prop_map(|o| Ipv4Addr::from(o).to_string()),
            any::<[u16; 8]>().prop_map(|o| Ipv6Addr::from(o).to_string()),
        ]),
        gen_params().prop_filter("no via params", |v| {
            v.iter()
                .all(|(n, _)| !matches!(n.as_str(), "branch" | "rport" | "received"))
        }),
    )
        .prop_map(
            |(transport, host, port, branch, rport, received, extra)| ViaM {
                transport,
                host,
                port,
                branch,
                rport,
                received,
                extra,
            },
        )
}

fn start() -> impl Strategy<Value = StartM> {
    prop_oneof![
        3 => (method(), uri()).prop_map(|(method, uri)| StartM::Request { method, uri }),
        1 => (100u16..700, "[ -~é]{0,20}").prop_map(|(code, reason)| StartM::Response { code, reason }),
    ]
}

fn call_id() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9.!%*_+`'~()<>:\\\\\"/\\[\\]?{}-]{1,24}(@[a-zA-Z0-9.!%*_+`'~()<>:/\\[\\]?{}-]{1,16})?"
}

/// Unknown header: a token name that is not a known header, a printable
/// value without leading or trailing white space.
fn unknown() -> impl Strategy<Value = (String, String)> {
    (
        prop_oneof![3 => "X-[A-Za-z0-9.!%*_+`'~-]{1,12}", 1 => token()],
        "[!-~]([ -~]{0,30}[!-~])?",
    )
        .prop_filter("unknown name", |(n, _)| {
            HeaderName::parse(n) == HeaderName::Other
        })
}

fn message() -> impl Strategy<Value = MsgM> {
    (
        (
            start(),
            proptest::collection::vec(via(), 1..5),
            name_addr(true),
            name_addr(true),
            call_id(),
            (any::<u32>(), method()),
            proptest::option::of(0u32..=255),
        ),
        (
            prop_oneof![
                1 => Just(ContactsM::None),
                1 => Just(ContactsM::Star),
                3 => proptest::collection::vec(contact(), 1..4).prop_map(ContactsM::List),
            ],
            proptest::collection::vec(uri(), 0..4),
            proptest::collection::vec(uri(), 0..4),
            proptest::collection::vec(unknown(), 0..4),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..200)),
            proptest::collection::vec(any::<u8>(), 8..64),
        ),
    )
        .prop_map(
            |(
                (start, vias, from, to, call_id, cseq, max_forwards),
                (contacts, routes, record_routes, unknown, body, style),
            )| MsgM {
                start,
                vias,
                from,
                to,
                call_id,
                cseq,
                max_forwards,
                contacts,
                routes,
                record_routes,
                unknown,
                body,
                style,
            },
        )
}

// -------------------------------------------------------------- checks --

fn ws_norm(s: &str) -> String {
    s.split(|c: char| c.is_ascii_whitespace())
        .filter(|t| !t.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn check_params(got: &str, want: &[(String, Option<String>)]) {
    let got: Vec<Param<'_>> = sip_msg::params::Params::new(got).collect();
    let want: Vec<Param<'_>> = want
        .iter()
        .map(|(n, v)| Param {
            name: n,
            value: v.as_deref(),
        })
        .collect();
    assert_eq!(got, want);
}

fn check_name_addr(got: &sip_msg::headers::NameAddr<'_>, want: &NameAddrM) {
    want.uri.check(&got.uri);
    match &want.display {
        Display::None => assert_eq!(got.display, None),
        Display::Quoted(d) => assert_eq!(got.display_name().as_deref(), Some(d.as_str())),
        Display::Tokens(t) => {
            assert_eq!(got.display_name().map(|d| ws_norm(&d)), Some(t.join(" ")))
        }
    }
    check_params(got.params, &want.params);
    let tag = want
        .params
        .iter()
        .find(|(n, _)| n == "tag")
        .and_then(|(_, v)| v.as_deref());
    assert_eq!(got.tag(), tag);
}

fn check_message(msg: &Message<'_>, m: &MsgM) {
    match &m.start {
        StartM::Request { method, uri } => {
            assert_eq!(msg.method().unwrap().as_str(), method);
            uri.check(msg.request_uri().unwrap());
            assert_eq!(msg.status(), None);
        }
        StartM::Response { code, reason } => {
            assert_eq!(msg.status(), Some(*code));
            assert_eq!(msg.reason(), Some(reason.as_str()));
            assert!(msg.method().is_none());
        }
    }
    let vias: Vec<_> = msg.vias().collect::<Result<_, _>>().unwrap();
    assert_eq!(vias.len(), m.vias.len());
    for (g, w) in vias.iter().zip(&m.vias) {
        assert_eq!(g.transport, w.transport);
        assert_eq!(ws_norm(g.protocol).replace(' ', ""), "SIP/2.0");
        w.host.check(&g.host);
        assert_eq!(g.port, w.port);
        assert_eq!(g.branch(), w.branch.as_deref());
        assert_eq!(g.rport(), w.rport);
        assert_eq!(g.received(), w.received.as_deref());
        check_params(g.params, &via_params(w));
    }
    assert_eq!(msg.top_via().unwrap().branch(), m.vias[0].branch.as_deref());
    check_name_addr(&msg.from().unwrap(), &m.from);
    check_name_addr(&msg.to().unwrap(), &m.to);
    assert_eq!(msg.call_id().unwrap(), m.call_id);
    let cseq = msg.cseq().unwrap();
    assert_eq!(
        (cseq.seq, cseq.method.as_str()),
        (m.cseq.0, m.cseq.1.as_str())
    );
    assert_eq!(msg.max_forwards().unwrap(), m.max_forwards);
    let contacts: Vec<_> = msg.contacts().collect::<Result<_, _>>().unwrap();
    match &m.contacts {
        ContactsM::None => assert!(contacts.is_empty()),
        ContactsM::Star => assert!(matches!(contacts[..], [ContactValue::Star])),
        ContactsM::List(want) => {
            assert_eq!(contacts.len(), want.len());
            for (g, w) in contacts.iter().zip(want) {
                let ContactValue::Addr(g) = g else {
                    panic!("star")
                };
                check_name_addr(g, w);
                let exp = w.params.iter().find(|(n, _)| n == "expires");
                assert_eq!(g.expires(), exp.and_then(|(_, v)| v.as_ref()?.parse().ok()));
                assert!(w.params.iter().all(|(n, _)| n != "q") || g.q().is_some());
            }
        }
    }
    let routes: Vec<_> = msg.routes().collect::<Result<_, _>>().unwrap();
    assert_eq!(routes.len(), m.routes.len());
    for (g, w) in routes.iter().zip(&m.routes) {
        w.check(&g.uri);
    }
    let rr: Vec<_> = msg.record_routes().collect::<Result<_, _>>().unwrap();
    assert_eq!(rr.len(), m.record_routes.len());
    for (g, w) in rr.iter().zip(&m.record_routes) {
        w.check(&g.uri);
    }
    let unknown: Vec<(&str, &str)> = msg
        .headers()
        .iter()
        .filter(|h| h.name == HeaderName::Other)
        .map(|h| (h.name_str, h.value))
        .collect();
    let want: Vec<(&str, &str)> = m
        .unknown
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    assert_eq!(unknown, want);
    for (n, v) in &m.unknown {
        assert!(msg.headers_by_name(n).any(|h| h.value == v));
    }
    match &m.body {
        Some(b) => {
            assert_eq!(msg.body(), &b[..]);
            assert_eq!(msg.content_length(), Some(b.len() as u32));
            assert!(msg.has_content_length());
        }
        None => {
            assert!(msg.body().is_empty());
            assert!(!msg.has_content_length());
        }
    }
    msg.check_mandatory().unwrap();
}

// ------------------------------------------------------------- edits --

#[derive(Debug, Clone)]
enum EditM {
    Append(String, String),
    /// Remove the n-th unknown header (modulo their count).
    RemoveUnknown(usize),
    /// Replace the value of the n-th unknown header.
    ReplaceUnknown(usize, String),
    SetRuri(UriM),
    PrependVia(ViaM),
    SetBody(Vec<u8>),
}

fn edit() -> impl Strategy<Value = EditM> {
    prop_oneof![
        unknown().prop_map(|(n, v)| EditM::Append(n, v)),
        any::<usize>().prop_map(EditM::RemoveUnknown),
        (any::<usize>(), "[!-~]([ -~]{0,20}[!-~])?").prop_map(|(i, v)| EditM::ReplaceUnknown(i, v)),
        uri().prop_map(EditM::SetRuri),
        via().prop_map(EditM::PrependVia),
        proptest::collection::vec(any::<u8>(), 0..64).prop_map(EditM::SetBody),
    ]
}

/// Applies `edits` and checks the re-parsed message against the header
/// list the edits should give.
fn check_edits(raw: &[u8], edits: &[EditM]) {
    let msg = Message::parse(raw).unwrap();
    let mut want: Vec<(Option<usize>, String, String)> = msg
        .headers()
        .iter()
        .enumerate()
        .map(|(i, h)| (Some(i), h.name_str.to_string(), h.value.to_string()))
        .collect();
    let unknown_idx: Vec<usize> = msg
        .headers()
        .iter()
        .enumerate()
        .filter(|(_, h)| h.name == HeaderName::Other)
        .map(|(i, _)| i)
        .collect();
    let mut ed = Edits::new();
    let mut removed = Vec::new();
    let mut replaced = Vec::new();
    let mut appended = Vec::new();
    let mut new_ruri = None;
    let mut new_body: Option<Vec<u8>> = None;
    // How many headers were appended when the body was set: its new
    // Content-Type goes after those, before later ones.
    let mut body_at = None;
    let mut prepended: Vec<String> = Vec::new();
    for e in edits {
        match e {
            EditM::Append(n, v) => {
                ed.append_header(&msg, n, v);
                appended.push((n.clone(), v.clone()));
            }
            EditM::RemoveUnknown(i) if !unknown_idx.is_empty() => {
                let idx = unknown_idx[i % unknown_idx.len()];
                if removed.contains(&idx) || replaced.iter().any(|(r, _)| *r == idx) {
                    continue;
                }
                ed.remove_header(&msg.headers()[idx]);
                removed.push(idx);
            }
            EditM::ReplaceUnknown(i, v) if !unknown_idx.is_empty() => {
                let idx = unknown_idx[i % unknown_idx.len()];
                if removed.contains(&idx) || replaced.iter().any(|(r, _)| *r == idx) {
                    continue;
                }
                ed.replace_value(&msg.headers()[idx], v);
                replaced.push((idx, v.clone()));
            }
            EditM::SetRuri(u) if msg.is_request() && new_ruri.is_none() => {
                ed.set_request_uri(&msg, &u.text());
                new_ruri = Some(u.clone());
            }
            EditM::PrependVia(v) => {
                let text = write_via(v, &mut Style { bytes: &[0], i: 0 });
                ed.prepend_via(&msg, &text);
                prepended.push(text);
            }
            EditM::SetBody(b) if new_body.is_none() => {
                ed.set_body(b, Some("text/plain"));
                new_body = Some(b.clone());
                body_at = Some(appended.len());
            }
            _ => {}
        }
    }
    // Expected header list.
    for (idx, v) in &replaced {
        want[*idx].2 = v.clone();
    }
    let first_via = msg
        .headers()
        .iter()
        .position(|h| h.name == HeaderName::Via)
        .unwrap();
    want.retain(|(i, _, _)| !removed.contains(&i.unwrap()));
    let at = want
        .iter()
        .position(|(i, _, _)| i.unwrap() >= first_via)
        .unwrap_or(want.len());
    for (k, p) in prepended.iter().enumerate() {
        want.insert(at + k, (None, "Via".into(), p.clone()));
    }
    let k = body_at.unwrap_or(appended.len());
    for (n, v) in &appended[..k] {
        want.push((None, n.clone(), v.clone()));
    }
    let mut later: Vec<(Option<usize>, String, String)> = appended[k..]
        .iter()
        .map(|(n, v)| (None, n.clone(), v.clone()))
        .collect();
    if let Some(b) = &new_body {
        let mut has_cl = false;
        for part in [&mut want, &mut later] {
            part.retain(|(_, n, _)| HeaderName::parse(n) != HeaderName::ContentType);
            for w in part.iter_mut() {
                if HeaderName::parse(&w.1) == HeaderName::ContentLength {
                    w.2 = b.len().to_string();
                    has_cl = true;
                }
            }
        }
        want.push((None, "Content-Type".into(), "text/plain".into()));
        want.append(&mut later);
        if !has_cl {
            want.push((None, "Content-Length".into(), b.len().to_string()));
        }
    } else {
        want.append(&mut later);
    }

    let out = ed.apply(&msg, ApplyOptions::default());
    let re = Message::parse(&out).unwrap_or_else(|e| {
        panic!(
            "edited message does not parse: {e}\n{}",
            String::from_utf8_lossy(&out)
        )
    });
    let got: Vec<(&str, &str)> = re.headers().iter().map(|h| (h.name_str, h.value)).collect();
    let want_pairs: Vec<(&str, &str)> = want
        .iter()
        .map(|(_, n, v)| (n.as_str(), v.as_str()))
        .collect();
    assert_eq!(got, want_pairs);
    match &new_ruri {
        Some(u) => u.check(re.request_uri().unwrap()),
        None => assert_eq!(
            re.request_uri().map(|u| u.raw),
            msg.request_uri().map(|u| u.raw)
        ),
    }
    match &new_body {
        Some(b) => {
            assert_eq!(re.body(), &b[..]);
            assert!(re.content_type().unwrap().unwrap().is("text", "plain"));
        }
        None => assert_eq!(re.body(), msg.body()),
    }
    if let Some(p) = prepended.first() {
        let top = re.top_via().unwrap();
        assert_eq!(top.raw, p.as_str());
    }
}

// ------------------------------------------------------------ mutation --

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Truncate(usize),
    Insert(usize, u8),
    Delete(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        any::<usize>().prop_map(Mutation::Truncate),
        (
            any::<usize>(),
            proptest::sample::select(
                &[b'\r', b'\n', 0u8, 0xff, b' ', b':', b';', b',', b'"', b'<'][..]
            )
        )
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
        (any::<usize>(), 1usize..16).prop_map(|(i, n)| Mutation::Delete(i, n)),
    ]
}

fn mutate(mut b: Vec<u8>, muts: &[Mutation]) -> Vec<u8> {
    for m in muts {
        let len = b.len();
        match *m {
            Mutation::Flip(i, x) if len > 0 => b[i % len] ^= x | 1,
            Mutation::Truncate(i) => b.truncate(i % (len + 1)),
            Mutation::Insert(i, x) => b.insert(i % (len + 1), x),
            Mutation::Delete(i, n) if len > 0 => {
                let s = i % len;
                b.drain(s..(s + n).min(len));
            }
            _ => {}
        }
    }
    b
}

// --------------------------------------------------------------- tests --

proptest! {
    // Failures found so far are pinned as unit tests in sip-msg, so no
    // regression file is written next to this test.
    #![proptest_config(ProptestConfig {
        // PROPTEST_CASES=20000 for a longer hunt.
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(512),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn model_round_trips(m in message()) {
        let raw = serialize(&m);
        let msg = Message::parse(&raw).unwrap_or_else(|e| {
            panic!("does not parse: {e}\n{}", String::from_utf8_lossy(&raw))
        });
        check_message(&msg, &m);
        // No edits: byte-for-byte the same message.
        prop_assert_eq!(Edits::new().apply(&msg, ApplyOptions::default()), raw.clone());
        // Nor with ensure_content_length when it is already there.
        if m.body.is_some() {
            let out = Edits::new().apply(&msg, ApplyOptions { ensure_content_length: true });
            prop_assert_eq!(out, raw);
        }
    }

    #[test]
    fn edits_give_expected_fields(m in message(), edits in proptest::collection::vec(edit(), 1..5)) {
        let raw = serialize(&m);
        check_edits(&raw, &edits);
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..1024)) {
        let _ = Message::parse(&data);
        sip_msg::fuzz_support::message(&data);
    }

    #[test]
    fn mutated_messages_never_panic(
        m in message(),
        muts in proptest::collection::vec(mutation(), 1..6),
    ) {
        let data = mutate(serialize(&m), &muts);
        if let Ok(msg) = Message::parse(&data) {
            sip_msg::fuzz_support::exercise_message(&msg);
        }
        sip_msg::fuzz_support::message(&data);
        sip_msg::fuzz_support::framer(&data);
    }
}

#[test]
fn serializer_spells_things_differently() {
    // Sanity check of the generator itself: compact names and folding do
    // occur, so the properties above really cover them.
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let (mut compact, mut folded, mut tabs) = (false, false, false);
    for _ in 0..200 {
        let m = message().new_tree(&mut runner).unwrap().current();
        let raw = String::from_utf8_lossy(&serialize(&m)).into_owned();
        compact |= raw.contains("\r\nv:") || raw.contains("\r\ni") || raw.contains("\r\nf");
        folded |= raw.contains("\r\n ") || raw.contains("\r\n\t");
        tabs |= raw.contains('\t');
    }
    assert!(compact && folded && tabs);
}
