//! Numbers and addresses written as text without `core::fmt`.
//!
//! Every reply and forwarded message carries a status code, a
//! Content-Length, ports and addresses; going through the formatting
//! machinery (`format!`, `to_string`, `Display for Ipv4Addr`) for each cost
//! about a tenth of a stateful call's instructions. These write into a
//! caller's stack buffer and return the text.

use std::net::{IpAddr, Ipv4Addr};

/// Lower-case hex digits.
const HEX: &[u8; 16] = b"0123456789abcdef";

/// Room for any `u64` in decimal.
pub type DecBuf = [u8; 20];

/// `n` in decimal, written at the end of `buf`.
pub fn dec(n: u64, buf: &mut DecBuf) -> &str {
    let mut at = buf.len();
    let mut n = n;
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    // Only ASCII digits were written.
    std::str::from_utf8(&buf[at..]).unwrap_or("0")
}

/// Appends `n` in decimal.
pub fn push_dec(out: &mut String, n: u64) {
    out.push_str(dec(n, &mut [0; 20]));
}

/// Appends `n` in decimal to bytes.
pub fn push_dec_bytes(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(dec(n, &mut [0; 20]).as_bytes());
}

/// Appends the lower-case hex digits of `d`.
pub fn push_hex(out: &mut String, d: &[u8]) {
    for b in d {
        out.push(HEX[(b >> 4) as usize] as char);
        out.push(HEX[(b & 15) as usize] as char);
    }
}

/// Appends `n` in lower-case hex without leading zeros (as `{:x}`).
pub fn push_hex_num(out: &mut String, n: u64) {
    let digits = (64 - n.leading_zeros()).div_ceil(4).max(1);
    for i in (0..digits).rev() {
        out.push(HEX[((n >> (i * 4)) & 15) as usize] as char);
    }
}

/// Appends an IPv4 address in dotted decimal.
pub fn push_ipv4(out: &mut String, a: Ipv4Addr) {
    for (i, o) in a.octets().into_iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        push_dec(out, u64::from(o));
    }
}

/// Appends an address as a SIP host: IPv4 dotted, IPv6 in brackets.
pub fn push_ip_host(out: &mut String, ip: IpAddr) {
    match ip {
        IpAddr::V4(a) => push_ipv4(out, a),
        IpAddr::V6(a) => {
            use std::fmt::Write as _;
            // IPv6 is rare on the hot path; writing into a String cannot fail.
            let _ = write!(out, "[{a}]");
        }
    }
}

/// Appends an address as written in a `received` parameter: IPv4
/// dotted, IPv6 without brackets (RFC 3261 `received = IPv4address /
/// IPv6address`).
pub fn push_ip(out: &mut String, ip: IpAddr) {
    match ip {
        IpAddr::V4(a) => push_ipv4(out, a),
        IpAddr::V6(a) => {
            use std::fmt::Write as _;
            let _ = write!(out, "{a}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_text_as_display() {
        for n in [0u64, 7, 10, 99, 100, 5060, 65535, 4_294_967_295, u64::MAX] {
            assert_eq!(dec(n, &mut [0; 20]), n.to_string());
            let mut v = Vec::new();
            push_dec_bytes(&mut v, n);
            assert_eq!(v, n.to_string().into_bytes());
        }
        for a in [
            Ipv4Addr::new(0, 0, 0, 0),
            Ipv4Addr::new(127, 0, 0, 1),
            Ipv4Addr::new(255, 255, 255, 255),
            Ipv4Addr::new(10, 200, 3, 45),
        ] {
            let mut s = String::new();
            push_ipv4(&mut s, a);
            assert_eq!(s, a.to_string());
            let mut h = String::new();
            push_ip_host(&mut h, IpAddr::V4(a));
            assert_eq!(h, a.to_string());
        }
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        let (mut h, mut r) = (String::new(), String::new());
        push_ip_host(&mut h, v6);
        push_ip(&mut r, v6);
        assert_eq!((h.as_str(), r.as_str()), ("[2001:db8::1]", "2001:db8::1"));
        for n in [0u64, 1, 15, 16, 0xabc, u64::MAX] {
            let mut s = String::new();
            push_hex_num(&mut s, n);
            assert_eq!(s, format!("{n:x}"));
        }
        let mut x = String::new();
        push_hex(&mut x, &[0, 0xab, 0x5f]);
        assert_eq!(x, "00ab5f");
    }
}
