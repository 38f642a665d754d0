//! Differential test against Kamailio itself, for the transformations
//! (`$(var(x){s.substr,1,2})`): every string, URI, parameter-list,
//! name-address and line transformation Kamailio 5.6 has, on inputs
//! chosen for each (empty text, blanks, quotes, escapes, non-ASCII,
//! numbers, URIs with every part, malformed ones), in Kamailio and in
//! siprouter, comparing each result byte for byte (hex-encoded, so that
//! line breaks and binary results travel in a header).
//!
//! Without Kamailio installed the test prints a notice and passes, unless
//! `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it).

use sr_testkit::kamailio;

const MODULES: &[&str] = &["sl", "pv", "textops"];

/// Transformations and the kind of input each takes.
/// Left out: `s.rafter`/`s.rbefore` and `uri.duri`/`saor`/`suri`, which
/// give garbage (or crash) in Kamailio 5.6.
const TRS: &[(&str, &str)] = &[
    ("s.len", "a"),
    ("s.int", "s"),
    ("s.md5", "a"),
    ("s.sha256", "a"),
    ("s.sha384", "a"),
    ("s.sha512", "a"),
    ("s.substr,1,2", "s"),
    ("s.substr,0,0", "s"),
    ("s.substr,-3,2", "s"),
    ("s.select,1,;", "s"),
    ("s.select,0,,", "s"),
    ("s.select,-1,;", "s"),
    ("s.select,5,;", "s"),
    ("s.encode.hexa", "a"),
    ("s.decode.hexa", "x"),
    ("s.encode.base64", "a"),
    ("s.decode.base64", "b"),
    ("s.encode.base64t", "a"),
    ("s.decode.base64t", "b"),
    ("s.escape.common", "a"),
    ("s.unescape.common", "e"),
    ("s.escape.user", "a"),
    ("s.unescape.user", "e"),
    ("s.escape.param", "a"),
    ("s.unescape.param", "e"),
    ("s.escape.csv", "a"),
    ("s.urlencode.param", "a"),
    ("s.urldecode.param", "e"),
    ("s.numeric", "s"),
    ("s.tolower", "a"),
    ("s.toupper", "a"),
    ("s.strip,2", "s"),
    ("s.strip,0", "s"),
    ("s.striptail,2", "s"),
    ("s.prefixes", "s"),
    ("s.prefixes,3", "s"),
    ("s.prefixes.quoted", "s"),
    ("s.replace,a,b", "s"),
    ("s.replace,;,", "s"),
    ("s.trim", "s"),
    ("s.rtrim", "s"),
    ("s.ltrim", "s"),
    ("s.rm,a", "s"),
    ("s.rmws", "s"),
    ("s.corehash", "s"),
    ("s.corehash,8", "s"),
    ("s.unquote", "s"),
    ("s.unbracket", "s"),
    ("s.count,a", "s"),
    ("s.after,@", "s"),
    ("s.before,@", "s"),
    ("s.ftime,%Y-%m-%d %H:%M:%S", "s"),
    ("uri.user", "u"),
    ("uri.host", "u"),
    ("uri.port", "u"),
    ("uri.params", "u"),
    ("uri.param,lr", "u"),
    ("uri.param,transport", "u"),
    ("uri.headers", "u"),
    ("uri.transport", "u"),
    ("uri.ttl", "u"),
    ("uri.maddr", "u"),
    ("uri.method", "u"),
    ("uri.lr", "u"),
    ("uri.r2", "u"),
    ("uri.scheme", "u"),
    ("uri.passwd", "u"),
    ("param.value,a", "p"),
    ("param.value,b", "p"),
    ("param.valueat,0", "p"),
    ("param.valueat,1", "p"),
    ("param.name,0", "p"),
    ("param.name,1", "p"),
    ("param.count", "p"),
    ("param.in,a", "p"),
    ("param.in,z", "p"),
    ("nameaddr.name", "n"),
    ("nameaddr.uri", "n"),
    ("nameaddr.len", "n"),
    ("tobody.uri", "n"),
    ("tobody.display", "n"),
    ("tobody.tag", "n"),
    ("tobody.user", "n"),
    ("tobody.host", "n"),
    ("tobody.params", "n"),
    ("re.subst,/a/X/", "s"),
    ("re.subst,/a/X/g", "s"),
    ("re.subst,/^([0-9]+)(.*)$/\\2-\\1/", "s"),
    ("line.count", "l"),
    ("line.at,0", "l"),
    ("line.at,1", "l"),
    ("line.at,-1", "l"),
    ("line.sw,l2", "l"),
];

const STRINGS: &[&str] = &[
    "hello",
    "",
    "a;b;c",
    "  pad  ",
    "\"quoted\"",
    "<sip:x@y>",
    "Ab@Cd.Ef@Gh",
    "a b&c=d%20e/f?g",
    "12345",
    "-17",
    "x%41y%zz",
    "SGVsbG8gd29ybGQ=",
    "48656c6c6f",
    "1700000000",
    "a,\"b\",c",
    "x",
];

/// The strings and text outside ASCII.
const UNICODE: &[&str] = &[
    "hello",
    "",
    "a b&c=d%20e/f?g",
    "\"q\" 'x' \\",
    "caf\u{e9} \u{20ac}",
    "<sip:x@y>",
];

const BASE64: &[&str] = &[
    "SGVsbG8gd29ybGQ=",
    "SGVsbG8gd29ybGQ",
    "YWI=",
    "YQ",
    "",
    "YWJj",
];

const HEXES: &[&str] = &["48656c6c6f", "12345", "x", "", "4a4B", "00"];

const ESCAPED: &[&str] = &[
    "a%20b",
    "x%41y",
    "a+b%2fc%2F",
    "plain",
    "",
    "\\\"q\\\" \\\\",
    "a%",
];

const URIS: &[&str] = &[
    "sip:alice:pw@example.com:5070;transport=tcp;lr;ttl=5;maddr=1.2.3.4;method=INVITE?X=1&Y=2",
    "sips:bob@[2001:db8::1]",
    "sip:example.com",
    "sip:%61lice@h.com;r2=on;lr=on",
    "sip:+49301234;user=phone@gw.example.com;transport=UDP",
    "tel:+1234;phone-context=x",
    "not a uri",
    "",
];

const PARAMS: &[&str] = &[
    "a=1;b=2;c",
    ";a=1;b=2",
    "a=1,b=2",
    "x=\"q;v\";a=2",
    "",
    "a",
    "b= 3 ;a",
];

const NAMEADDRS: &[&str] = &[
    "\"Alice A\" <sip:alice@example.com>;tag=abc;x=1",
    "<sip:bob@b.com>",
    "sip:carol@c.com;tag=9",
    "Bob <sip:bob@b.com;transport=udp>;tag=1",
    "bad<",
    "",
];

const LINES: &[&str] = &["l1\nl2\nl3", "l1\r\nl2", "single", ""];

fn body() -> String {
    let mut b = String::from(
        r#"
request_route {
    if ($hdr(X-T) == $null) { sl_send_reply("200", "up"); exit; }
    $var(in) = "";
    if ($hdr(X-In) != "EMPTY") { $var(in) = $(hdr(X-In){s.decode.hexa}); }
    $var(r) = "unset";
"#,
    );
    for (i, (tr, _)) in TRS.iter().enumerate() {
        b.push_str(&format!(
            "    if ($hdr(X-T) == \"{i}\") {{ $var(r) = $(var(in){{{tr}}}); }}\n"
        ));
    }
    b.push_str(
        r#"    $var(h) = $(var(r){s.encode.hexa});
    append_to_reply("X-R: $var(h)\r\nX-Name: $hdr(X-Name)\r\nX-In: $hdr(X-In)\r\n");
    sl_send_reply("200", "done");
}
"#,
    );
    b
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

fn requests() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut n = 0;
    for (i, (tr, kind)) in TRS.iter().enumerate() {
        let inputs = match *kind {
            "a" => UNICODE,
            "b" => BASE64,
            "x" => HEXES,
            "e" => ESCAPED,
            "u" => URIS,
            "p" => PARAMS,
            "n" => NAMEADDRS,
            "l" => LINES,
            _ => STRINGS,
        };
        for input in inputs {
            // Kamailio 5.6 crashes on {s.rbefore,x} of an empty text.
            if tr.starts_with("s.rbefore") && input.is_empty() {
                continue;
            }
            n += 1;
            let call = format!("tr{n}");
            let x = if input.is_empty() {
                "EMPTY".to_string()
            } else {
                hex(input)
            };
            out.push((
                call.clone(),
                format!(
                    "OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP __VIA__;branch=z9hG4bKtr{n}\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:x@y>\r\nCall-ID: {call}\r\nCSeq: 1 OPTIONS\r\nX-T: {i}\r\nX-In: {x}\r\nX-Name: {tr}\r\nContent-Length: 0\r\n\r\n"
                ),
            ));
        }
    }
    out
}

#[test]
fn transformations_match_kamailio() {
    if !kamailio::available(MODULES) {
        return;
    }
    let dir = kamailio::fresh_dir("transformations");
    let reqs = requests();
    let (want, got) = kamailio::run_parity(
        &dir,
        MODULES,
        &body(),
        &[],
        &reqs,
        &["X-Name", "X-In", "X-R"],
        siprouter::in_tree(),
    );
    let empty = want.iter().filter(|a| a.ends_with("| ")).count();
    assert!(empty < want.len() / 2, "{want:#?}");
    kamailio::conclude(&dir, &want, &got, "transformations");
}
