//! `sdp_mangle_port` and `sdp_mangle_ip` on a message body, as Kamailio's
//! mangler finds what to change: the POSIX extended expressions
//! `m=[a-z]+ [0-9]{1,5}` and `c=IN IP4 [0-9]{1,3}.[0-9]{1,3}.[0-9]{1,3}.[0-9]{1,3}`
//! (a `.` there is any character), leftmost-longest, searched again
//! after each match; the value is what follows the match's last space.

/// One change: byte range of the body and its new text.
pub type Change = (usize, usize, String);

/// The body as the C string the expressions see (up to a NUL).
fn c_str(body: &[u8]) -> &[u8] {
    match body.iter().position(|&b| b == 0) {
        Some(n) => &body[..n],
        None => body,
    }
}

/// The end of `m=[a-z]+ [0-9]{1,5}` matched at `i`.
fn port_match_at(s: &[u8], i: usize) -> Option<usize> {
    if !s[i..].starts_with(b"m=") {
        return None;
    }
    let mut j = i + 2;
    let letters = s[j..].iter().take_while(|b| b.is_ascii_lowercase()).count();
    if letters == 0 {
        return None;
    }
    j += letters;
    if s.get(j) != Some(&b' ') {
        return None;
    }
    j += 1;
    let digits = s[j..].iter().take_while(|b| b.is_ascii_digit()).count();
    (digits > 0).then_some(j + digits.min(5))
}

/// The longest end of `D{1,3} . D{1,3} . D{1,3} . D{1,3}` from `pos`
/// (`group` groups matched already).
fn quad_end(s: &[u8], pos: usize, group: u8) -> Option<usize> {
    let run = s[pos.min(s.len())..]
        .iter()
        .take(3)
        .take_while(|b| b.is_ascii_digit())
        .count();
    let mut best = None;
    for n in 1..=run {
        let end = pos + n;
        let cand = if group == 3 {
            Some(end)
        } else if end < s.len() {
            quad_end(s, end + 1, group + 1)
        } else {
            None
        };
        best = best.max(cand);
    }
    best
}

/// The end of the IP expression matched at `i`.
fn ip_match_at(s: &[u8], i: usize) -> Option<usize> {
    const LEAD: &[u8] = b"c=IN IP4 ";
    if !s[i..].starts_with(LEAD) {
        return None;
    }
    quad_end(s, i + LEAD.len(), 0)
}

/// Each match of an expression from the start, searched again after the
/// end of the previous one: (start of the value after the last space,
/// end).
fn matches(s: &[u8], at: fn(&[u8], usize) -> Option<usize>) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut begin = 0;
    while begin < s.len() {
        let Some((i, end)) = (begin..s.len()).find_map(|i| at(s, i).map(|e| (i, e))) else {
            break;
        };
        let space = s[i..end]
            .iter()
            .rposition(|&b| b == b' ')
            .map_or(i, |p| i + p);
        out.push((space + 1, end));
        begin = end;
    }
    out
}

/// C's `sscanf("%d")`: white space, a sign, digits (saturating).
fn scan_int(text: &str) -> Option<i64> {
    let t = text.trim_start();
    let (neg, rest) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let digits: &str = &rest[..rest.bytes().take_while(u8::is_ascii_digit).count()];
    if digits.is_empty() {
        return None;
    }
    let v = digits.bytes().fold(0i64, |a, d| {
        a.saturating_mul(10).saturating_add(i64::from(d - b'0'))
    });
    Some(if neg { -v } else { v })
}

/// `sdp_mangle_port(offset)`: the changes, or Kamailio's error code (-13
/// no number, -3 out of ±65535). A value with a sign moves each port by
/// it, one without sets it; ports or results outside 1..65535 are left.
pub fn mangle_port(body: &[u8], offset: &str) -> Result<Vec<Change>, i32> {
    let value = scan_int(offset).ok_or(-13)?;
    if !(-65535..=65535).contains(&value) {
        return Err(-3);
    }
    let relative = offset.starts_with(['+', '-']);
    let s = c_str(body);
    let mut out = Vec::new();
    for (start, end) in matches(s, port_match_at) {
        let Some(old) = std::str::from_utf8(&s[start..end])
            .ok()
            .and_then(|t| t.parse::<i64>().ok())
        else {
            continue;
        };
        if !(1..=65535).contains(&old) {
            continue;
        }
        let new = if relative { old + value } else { value };
        if !(1..=65535).contains(&new) {
            continue;
        }
        out.push((start, end, new.to_string()));
    }
    Ok(out)
}

/// Kamailio's `parse_ip_address`: a dotted quad of decimal bytes (under
/// 16 characters), as a number.
pub fn parse_ipv4(text: &str) -> Option<u32> {
    if text.len() >= 16 {
        return None;
    }
    let parts: Vec<&str> = text.splitn(4, '.').collect();
    if parts.len() != 4 {
        return None;
    }
    let mut v = 0u32;
    for p in parts {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let n: u32 = p.parse().ok()?;
        if n > 255 {
            return None;
        }
        v = (v << 8) | n;
    }
    Some(v)
}

/// Kamailio's `parse_ip_netmask` then `parse_ip_address`: `ip/len` or
/// `ip/mask` (a length outside 8..30, or none, means all 32 bits, as
/// Kamailio's `make_mask` falls back). -5 without `/` or with a bad mask,
/// -6 for a bad address.
pub fn parse_net(text: &str) -> Result<(u32, u32), i32> {
    let (ip, mask) = text.split_once('/').ok_or(-5)?;
    let mask = if mask.bytes().all(|b| b.is_ascii_digit()) {
        let len: u32 = mask.parse().unwrap_or(0);
        if (8..=30).contains(&len) {
            u32::MAX << (32 - len)
        } else {
            u32::MAX
        }
    } else {
        parse_ipv4(mask).ok_or(-5)?
    };
    let addr = parse_ipv4(ip).ok_or(-6)?;
    Ok((addr, mask))
}

/// `sdp_mangle_ip(net, newip)`: the changes, or Kamailio's error code.
/// Each `c=IN IP4` address in `net` becomes `newip`.
pub fn mangle_ip(body: &[u8], net: &str, newip: &str) -> Result<Vec<Change>, i32> {
    let (addr, mask) = parse_net(net)?;
    let s = c_str(body);
    let mut out = Vec::new();
    for (start, end) in matches(s, ip_match_at) {
        if end - start > 15 {
            continue;
        }
        let Some(ip) = std::str::from_utf8(&s[start..end])
            .ok()
            .and_then(parse_ipv4)
        else {
            continue;
        };
        if ip & mask == addr & mask {
            out.push((start, end, newip.to_string()));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SDP: &[u8] = b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 49170 RTP/AVP 0\r\nc=IN IP4 192.168.1.100\r\nm=video 0 RTP/AVP 31\r\nm=text 123456 RTP/AVP 98\r\n";

    fn apply(body: &[u8], ch: &[Change]) -> String {
        let mut out = String::new();
        let mut at = 0;
        for (s, e, t) in ch {
            out.push_str(std::str::from_utf8(&body[at..*s]).unwrap());
            out.push_str(t);
            at = *e;
        }
        out.push_str(std::str::from_utf8(&body[at..]).unwrap());
        out
    }

    #[test]
    fn ports_move_or_are_set() {
        let ch = mangle_port(SDP, "+10").unwrap();
        let t = apply(SDP, &ch);
        assert!(t.contains("m=audio 49180 RTP"), "{t}");
        // Port 0 is left; only five digits are a port.
        assert!(t.contains("m=video 0 RTP"), "{t}");
        assert!(t.contains("m=text 123556 RTP"), "{t}");
        let t = apply(SDP, &mangle_port(SDP, "4000").unwrap());
        assert!(
            t.contains("m=audio 4000 RTP") && t.contains("m=text 40006 RTP"),
            "{t}"
        );
        assert_eq!(mangle_port(SDP, "-49170").unwrap().len(), 0);
        assert_eq!(mangle_port(SDP, "-49169").unwrap().len(), 1);
        assert_eq!(mangle_port(SDP, "x"), Err(-13));
        assert_eq!(mangle_port(SDP, "70000"), Err(-3));
        assert_eq!(mangle_port(SDP, " 12abc").unwrap()[0].2, "12");
    }

    #[test]
    fn addresses_in_the_network_change() {
        let t = apply(SDP, &mangle_ip(SDP, "10.0.0.0/8", "1.2.3.4").unwrap());
        assert!(t.contains("c=IN IP4 1.2.3.4\r\n"), "{t}");
        assert!(t.contains("c=IN IP4 192.168.1.100"), "{t}");
        // The o= line is no c= line.
        assert!(t.contains("IN IP4 10.0.0.1\r\ns="), "{t}");
        let t = apply(
            SDP,
            &mangle_ip(SDP, "192.168.1.0/255.255.255.0", "x").unwrap(),
        );
        assert!(t.contains("c=IN IP4 x\r\nm=video"), "{t}");
        // A length outside 8..30 is all 32 bits.
        assert!(mangle_ip(SDP, "10.0.0.0/32", "x").unwrap().is_empty());
        assert_eq!(mangle_ip(SDP, "10.0.0.1/4", "x").unwrap().len(), 1);
        assert_eq!(mangle_ip(SDP, "10.0.0.1", "x"), Err(-5));
        assert_eq!(mangle_ip(SDP, "10.0.0/8", "x"), Err(-6));
        assert_eq!(mangle_ip(SDP, "10.0.0.0/2x", "x"), Err(-5));
    }

    #[test]
    fn a_dot_in_the_expression_is_any_character() {
        let b = b"c=IN IP4 10-0-0-1\r\n";
        // Matched, but no dotted quad: left.
        assert_eq!(matches(b, ip_match_at), vec![(9, 17)]);
        assert!(mangle_ip(b, "10.0.0.0/8", "x").unwrap().is_empty());
        // The longest match.
        let b = b"c=IN IP4 1.2.3.456\r\n";
        assert_eq!(matches(b, ip_match_at), vec![(9, 18)]);
    }
}
