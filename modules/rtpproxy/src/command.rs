//! RTPProxy's control commands as Kamailio's rtpproxy module writes them:
//! the flag letters of `rtpproxy_offer`/`answer`/`manage` and of
//! `rtpproxy_destroy`, the `U`/`L` command for one media stream, and the
//! reading of the proxy's answer. No I/O.

/// What a flag string asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flags {
    /// `1`, `2` or `3`: the Call-ID carries the branch of the first or
    /// second Via (`3`: the second for a reply, the first for a request).
    pub via: u8,
    /// `b`: the Call-ID carries `extra_id_pv` (only without `via`).
    pub extra: bool,
    /// The modifier letters from `a`, `i`, `e`, `w` (`A`, `I`, `E`, `S`),
    /// in the order given.
    pub modifiers: String,
    /// `x`: bridge by address family (`IE` or `EI`).
    pub auto_bridge: bool,
    /// `l`: look up an existing session (`L`) instead of creating one.
    pub lookup: bool,
    /// `f`: go on even when the SDP carries `nortpproxy_str`.
    pub force: bool,
    /// `r` (or `a`): send the SDP's address, not the message's source.
    pub trust_address: bool,
    /// `c`: also rewrite the session's `c=` when streams have their own.
    pub session_conn: bool,
    /// `z<digits>`: repacketize to this many milliseconds.
    pub repacketize: Option<String>,
    /// `t`: a destroy names the From side only (no To-tag).
    pub no_to_tag: bool,
}

/// Reads the flags of an offer, answer or manage; the letter that is not
/// one of them on error.
pub fn offer_flags(s: &str) -> Result<Flags, char> {
    let mut f = Flags::default();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i] as char;
        match c {
            '1' => f.via = 1,
            '2' => f.via = 2,
            '3' => f.via = 3,
            'b' => f.extra = true,
            'a' | 'A' => {
                f.modifiers.push('A');
                f.trust_address = true;
            }
            'i' | 'I' => f.modifiers.push('I'),
            'e' | 'E' => f.modifiers.push('E'),
            'w' | 'W' => f.modifiers.push('S'),
            'l' | 'L' => f.lookup = true,
            'f' | 'F' => f.force = true,
            'r' | 'R' => f.trust_address = true,
            'c' | 'C' => f.session_conn = true,
            'o' | 'O' | 't' | 'T' => {}
            'x' | 'X' => f.auto_bridge = true,
            'z' | 'Z' => {
                let start = i + 1;
                let mut end = start;
                while end < b.len() && b[end].is_ascii_digit() {
                    end += 1;
                }
                if end == start {
                    return Err(c);
                }
                f.repacketize = Some(s[start..end].to_string());
                i = end;
                continue;
            }
            _ => return Err(c),
        }
        i += 1;
    }
    Ok(f)
}

/// Reads the flags of a destroy: `1`, `2`, `3`, `b` and `t` count, the
/// offer letters are skipped (as Kamailio, the digits after `z` are read
/// as flags of their own).
pub fn destroy_flags(s: &str) -> Result<Flags, char> {
    let mut f = Flags::default();
    for c in s.chars() {
        match c {
            '1' => f.via = 1,
            '2' => f.via = 2,
            '3' => f.via = 3,
            'b' => f.extra = true,
            't' | 'T' => f.no_to_tag = true,
            'a' | 'A' | 'i' | 'I' | 'e' | 'E' | 'l' | 'L' | 'f' | 'F' | 'r' | 'R' | 'c' | 'C'
            | 'o' | 'O' | 'x' | 'X' | 'w' | 'W' | 'z' | 'Z' => {}
            _ => return Err(c),
        }
    }
    Ok(f)
}

/// One `U` (create or update) or `L` (look up) command for one stream.
#[derive(Debug, Clone, Default)]
pub struct StreamCmd<'a> {
    /// `L` instead of `U`.
    pub lookup: bool,
    /// The modifier letters (`A`, `I`, `E`, `S`, then `IE`/`EI`).
    pub modifiers: &'a str,
    /// The address sent is IPv6 (modifier `6`).
    pub ipv6: bool,
    /// `Z<ms>`.
    pub repacketize: Option<&'a str>,
    /// `c<payload types>`.
    pub payloads: Option<&'a str>,
    /// The Call-ID with its suffix.
    pub call_id: &'a str,
    /// The media address.
    pub addr: &'a str,
    /// The `m=` port token.
    pub port: &'a str,
    /// The tag of the side that sent the SDP... as Kamailio orders them.
    pub tag_a: &'a str,
    /// The other tag, if known.
    pub tag_b: Option<&'a str>,
    /// The stream's number in the body, from 1.
    pub medianum: usize,
    /// `timeout_socket` (sent with a `U` that has both tags).
    pub timeout_socket: Option<&'a str>,
}

impl StreamCmd<'_> {
    /// The command text (without the cookie).
    pub fn text(&self) -> String {
        let mut s = String::with_capacity(96);
        s.push(if self.lookup { 'L' } else { 'U' });
        s.push_str(self.modifiers);
        if self.ipv6 {
            s.push('6');
        }
        if let Some(z) = self.repacketize {
            s.push('Z');
            s.push_str(z);
        }
        if let Some(c) = self.payloads.filter(|c| !c.is_empty()) {
            s.push('c');
            s.push_str(c);
        }
        let n = self.medianum;
        s.push_str(&format!(
            " {} {} {} {};{n}",
            self.call_id, self.addr, self.port, self.tag_a
        ));
        if let Some(b) = self.tag_b.filter(|t| !t.is_empty()) {
            s.push_str(&format!(" {b};{n}"));
            if let Some(t) = self
                .timeout_socket
                .filter(|t| !t.is_empty() && !self.lookup)
            {
                s.push(' ');
                s.push_str(t);
            }
        }
        s
    }
}

pub use sr_sdk::text::atoi;

/// The proxy's answer to `U`/`L`: the port, and the address and its
/// family when the answer gives them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocated {
    /// The port the media goes to.
    pub port: u16,
    /// The proxy's address, if it says.
    pub addr: Option<String>,
    /// The family of the new address: `Some(true)` for IPv6, `None` when
    /// the answer has the port alone (the family of what was sent).
    pub ipv6: Option<bool>,
}

/// Reads an answer to `U`/`L` (`port [addr [6|4]]`); the port it read
/// when that is not a port (0 for `E8` and other errors).
pub fn parse_allocated(reply: &str) -> Result<Allocated, i64> {
    let toks: Vec<&str> = reply.split_whitespace().take(10).collect();
    let Some(first) = toks.first() else {
        return Err(0);
    };
    let port = atoi(first);
    if !(1..=65535).contains(&port) {
        return Err(port);
    }
    let ipv6 = match toks.len() {
        1 => None,
        2 => Some(false),
        _ => Some(toks[2].starts_with('6')),
    };
    Ok(Allocated {
        port: port as u16,
        addr: toks.get(1).map(|s| s.to_string()),
        ipv6,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offer_flags_read_as_kamailio_reads_them() {
        let f = offer_flags("wiez20").unwrap();
        assert_eq!(f.modifiers, "SIE");
        assert_eq!(f.repacketize.as_deref(), Some("20"));
        let f = offer_flags("aRcOfx3lt").unwrap();
        assert_eq!(f.modifiers, "A");
        assert!(f.trust_address && f.session_conn && f.force && f.auto_bridge && f.lookup);
        assert_eq!(f.via, 3);
        assert_eq!(offer_flags("co").unwrap().modifiers, "");
        assert_eq!(offer_flags("s"), Err('s'));
        assert_eq!(offer_flags("B"), Err('B'), "b is lower case only");
        assert_eq!(offer_flags("z"), Err('z'));
        assert_eq!(offer_flags("").unwrap(), Flags::default());
    }

    #[test]
    fn destroy_flags_skip_the_offer_letters() {
        let f = destroy_flags("coaft").unwrap();
        assert!(f.no_to_tag && f.via == 0);
        assert_eq!(destroy_flags("1").unwrap().via, 1);
        // As Kamailio: `z20` reads `2` as a flag and refuses `0`.
        assert_eq!(destroy_flags("z20"), Err('0'));
        assert_eq!(destroy_flags("q"), Err('q'));
    }

    #[test]
    fn commands_are_written_in_kamailio_order() {
        let mut c = StreamCmd {
            modifiers: "SIE",
            repacketize: Some("20"),
            payloads: Some("0,8,101"),
            call_id: "abc@h",
            addr: "198.51.100.7",
            port: "49170",
            tag_a: "ft",
            medianum: 1,
            timeout_socket: Some("unix:/t"),
            ..Default::default()
        };
        assert_eq!(c.text(), "USIEZ20c0,8,101 abc@h 198.51.100.7 49170 ft;1");
        c.tag_b = Some("tt");
        c.medianum = 2;
        assert_eq!(
            c.text(),
            "USIEZ20c0,8,101 abc@h 198.51.100.7 49170 ft;2 tt;2 unix:/t"
        );
        c.lookup = true;
        c.modifiers = "";
        c.repacketize = None;
        c.payloads = Some("");
        c.ipv6 = true;
        assert_eq!(c.text(), "L6 abc@h 198.51.100.7 49170 ft;2 tt;2");
    }

    #[test]
    fn answers_are_read_with_atoi() {
        assert_eq!(
            parse_allocated("35018 127.0.0.1\n"),
            Ok(Allocated {
                port: 35018,
                addr: Some("127.0.0.1".into()),
                ipv6: Some(false)
            })
        );
        assert_eq!(parse_allocated("35018").unwrap().ipv6, None);
        assert_eq!(parse_allocated("1 ::1 6").unwrap().ipv6, Some(true));
        assert_eq!(parse_allocated("E8"), Err(0));
        assert_eq!(parse_allocated("0"), Err(0));
        assert_eq!(parse_allocated("70000"), Err(70000));
        assert_eq!(parse_allocated(""), Err(0));
        assert_eq!(atoi("  -12x"), -12);
    }
}
