//! Differential test against Kamailio itself, for the core
//! pseudo-variables: the same requests — with display names, quoted and
//! escaped parts, URI parameters and headers, several Via, Route and
//! Contact headers (on one line and on several), compact header names,
//! bodies, missing optional headers — through Kamailio 5.6 and siprouter,
//! comparing every request, header and URI pseudo-variable (each
//! hex-encoded, so that any byte travels in a header).
//!
//! Without Kamailio installed the test prints a notice and passes, unless
//! `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it).

use sr_testkit::kamailio;

const MODULES: &[&str] = &["sl", "pv", "textops", "kex"];

/// The pseudo-variables compared.
const PVS: &[&str] = &[
    "$ru",
    "$rU",
    "$rd",
    "$rp",
    "$rP",
    "$rz",
    "$rv",
    "$rm",
    "$ci",
    "$cs",
    "$cl",
    "$cT",
    "$ct",
    "$fu",
    "$fU",
    "$fd",
    "$fn",
    "$ft",
    "$tu",
    "$tU",
    "$td",
    "$tn",
    "$tt",
    "$ua",
    "$pr",
    "$proto",
    "$ml",
    "$mb",
    "$bs",
    "$rb",
    "$hdr(X-A)",
    "$hdr(x-a)",
    "$(hdr(X-A)[0])",
    "$(hdr(X-A)[1])",
    "$(hdr(X-A)[-1])",
    "$(hdr(X-A)[*])",
    "$hdrc(X-A)",
    "$hdr(Via)",
    "$(hdr(Via)[1])",
    "$hdrc(Via)",
    "$hdr(v)",
    "$hdr(Route)",
    "$hdrc(Route)",
    "$hdr(Contact)",
    "$(hdr(Contact)[*])",
    "$hdr(m)",
    "$hdr(X-None)",
    "$hdrc(X-None)",
    "$rr",
    "$di",
    "$dip",
    "$dir",
    "$re",
    "$rt",
    "$au",
    "$ar",
    "$adu",
    "$aa",
    "$fs",
    "$Ri",
    "$si",
    "$sp",
    "$su",
    "$RAi",
    "$mt",
    "$mi",
    "$ai",
    "$pd",
    "$pn",
    "$pu",
    "$pU",
    "$retcode",
    "$sf",
    "$bf",
    "$mf",
    "$ds",
];

fn body() -> String {
    let mut b = String::from(
        "request_route {\n    if ($hdr(X-T) == $null) { sl_send_reply(\"200\", \"up\"); exit; }\n",
    );
    for (i, pv) in PVS.iter().enumerate() {
        b.push_str(&format!(
            "    $var(v) = {pv};\n    if ($var(v) == $null) {{ $var(h) = \"null\"; }} else {{ $var(h) = $(var(v){{s.encode.hexa}}); }}\n    append_to_reply(\"X-P{i}: $var(h)\\r\\n\");\n"
        ));
    }
    b.push_str("    sl_send_reply(\"200\", \"done\");\n}\n");
    b
}

fn requests() -> Vec<(String, String)> {
    let msgs = [
        // A plain request.
        "OPTIONS sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP __VIA__;branch=z9hG4bKp1\r\nFrom: <sip:alice@example.com>;tag=f1\r\nTo: <sip:bob@example.com>\r\nCall-ID: p1\r\nCSeq: 1 OPTIONS\r\nX-T: 1\r\nContent-Length: 0\r\n\r\n",
        // Display names, parameters, several values, a body.
        "MESSAGE sip:+49301234;user=phone:pw@gw.example.com:5070;transport=udp;lr?Subject=hi SIP/2.0\r\nVia: SIP/2.0/UDP __VIA__;branch=z9hG4bKp2;rport\r\nVia: SIP/2.0/TCP 10.0.0.1:5061;branch=z9hG4bKx;received=10.0.0.9\r\nMax-Forwards: 69\r\nFrom: \"Alice \\\"A\\\" Smith\" <sip:alice@example.com;x=1>;tag=f2;y=2\r\nTo: Bob <sip:bob@example.com>;tag=t2\r\nCall-ID: p2@host\r\nCSeq: 22 MESSAGE\r\nRoute: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>\r\nRoute: <sip:p3.example.com;lr>\r\nContact: \"Al\" <sip:alice@10.0.0.2:5060;transport=tcp>;expires=60, <sip:alice@10.0.0.3>;q=0.5\r\nX-A: one\r\nX-A: two, three\r\nx-a: four\r\nUser-Agent: Test UA/1.0\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nX-T: 2\r\n\r\nhello",
        // Compact names, an IPv6 host, no To tag, an empty user.
        "INFO sips:[2001:db8::1]:5061 SIP/2.0\r\nv: SIP/2.0/UDP __VIA__;branch=z9hG4bKp3\r\nf: sip:carol@example.org;tag=f3\r\nt: sip:[2001:db8::1]\r\ni: p3\r\nCSeq: 3 INFO\r\nm: <sip:carol@192.0.2.1:5080;ob>\r\nX-T: 3\r\nl: 0\r\n\r\n",
        // Escaped user, headers in the URI, a Proxy-Authorization header.
        "OPTIONS sip:%61lice%40x@example.com;maddr=1.2.3.4 SIP/2.0\r\nVia: SIP/2.0/UDP __VIA__;branch=z9hG4bKp4\r\nFrom: sip:%61b@example.com;tag=f4\r\nTo: \"\" <sip:x@y>\r\nCall-ID: p4\r\nCSeq: 4 OPTIONS\r\nProxy-Authorization: Digest username=\"alice\", realm=\"example.com\", nonce=\"n\", uri=\"sip:x@y\", response=\"00\"\r\nP-Asserted-Identity: \"PAI\" <sip:pai@example.com>\r\nX-T: 4\r\nContent-Length: 0\r\n\r\n",
        // A transport in upper case, a Diversion, Refer-To, Remote-Party-ID and P-Preferred-Identity.
        "REFER sip:dave@example.net;transport=TCP SIP/2.0\r\nVia: SIP/2.0/UDP __VIA__;branch=z9hG4bKp5\r\nFrom: <sip:e@example.net>;tag=f5\r\nTo: <sip:dave@example.net>\r\nCall-ID: p5\r\nCSeq: 5 REFER\r\nRefer-To: <sip:transfer@example.net?Replaces=abc>\r\nDiversion: <sip:orig@example.net>;reason=unconditional;privacy=off, <sip:second@example.net>\r\nRemote-Party-ID: \"RP\" <sip:rpid@example.net>;party=calling\r\nP-Preferred-Identity: \"Pref Name\" <sip:ppi@pref.example.net>\r\nX-T: 5\r\nContent-Length: 0\r\n\r\n",
    ];
    msgs.iter()
        .enumerate()
        .map(|(i, m)| {
            let call = match i {
                0 => "p1",
                1 => "p2@host",
                2 => "p3",
                3 => "p4",
                _ => "p5",
            };
            (call.to_string(), m.to_string())
        })
        .collect()
}

#[test]
fn pseudo_variables_match_kamailio() {
    if !kamailio::available(MODULES) {
        return;
    }
    let dir = kamailio::fresh_dir("pv");
    let headers: Vec<String> = (0..PVS.len()).map(|i| format!("X-P{i}")).collect();
    let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
    let (want, got) = kamailio::run_parity(
        &dir,
        MODULES,
        &body(),
        &[],
        &requests(),
        &headers,
        siprouter::in_tree(),
    );
    // One line per request and pseudo-variable, decoded, for the report.
    let explode = |lines: &[String]| -> Vec<String> {
        let mut out = Vec::new();
        for l in lines {
            let (call, rest) = l.split_once(": ").unwrap_or((l, ""));
            for (pv, v) in PVS.iter().zip(rest.split(" | ")) {
                let text = if v == "null" {
                    "<null>".to_string()
                } else {
                    let bytes: Vec<u8> = (0..v.len() / 2)
                        .filter_map(|i| u8::from_str_radix(&v[2 * i..2 * i + 2], 16).ok())
                        .collect();
                    format!("{:?}", String::from_utf8_lossy(&bytes))
                };
                out.push(format!("{call} {pv} = {text}"));
            }
        }
        out
    };
    let (want, got) = (explode(&want), explode(&got));
    kamailio::conclude(&dir, &want, &got, "pseudo-variables");
}
