//! One dumped message and how it is written, without I/O: Kamailio's text
//! record and a pcap record (Ethernet, IPv4 or IPv6, UDP around the
//! message).

use std::net::IpAddr;

/// A message seen, with where it went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// `rcv`, `snd`, or the tag `sipdump_send` was given.
    pub tag: String,
    /// Seconds and microseconds since the epoch.
    pub sec: u64,
    /// Microseconds.
    pub usec: u32,
    /// The transport's name (`udp`, `tcp`, `tls`, `ws`, `wss`, `sctp`).
    pub proto: &'static str,
    /// Whether the addresses are IPv6.
    pub ipv6: bool,
    /// The source address, as text.
    pub src_ip: String,
    /// The source port.
    pub src_port: u16,
    /// The destination address, as text.
    pub dst_ip: String,
    /// The destination port.
    pub dst_port: u16,
    /// The message.
    pub data: Vec<u8>,
}

impl Record {
    /// `ipv4` or `ipv6`.
    pub fn af(&self) -> &'static str {
        if self.ipv6 {
            "ipv6"
        } else {
            "ipv4"
        }
    }

    /// The text record, as Kamailio writes it: `pid` and `process` given,
    /// `date` as C's `asctime` (its newline included).
    pub fn text(&self, pid: u32, process: i32, date: &str) -> Vec<u8> {
        let mut out = format!(
            "====================\ntag: {}\npid: {pid}\nprocess: {process}\ntime: {}.{:06}\ndate: {date}proto: {} {}\nsrcip: {}\nsrcport: {}\ndstip: {}\ndstport: {}\n~~~~~~~~~~~~~~~~~~~~\n",
            self.tag,
            self.sec,
            self.usec,
            self.proto,
            self.af(),
            self.src_ip,
            self.src_port,
            self.dst_ip,
            self.dst_port,
        )
        .into_bytes();
        out.extend_from_slice(&self.data);
        out.extend_from_slice(b"||||||||||||||||||||\n");
        out
    }

    /// The pcap record: its header (time, lengths), a zeroed Ethernet
    /// header of the right type, the IP header (TTL 128, no checksum) and
    /// the UDP header (no checksum), then the message. Every transport is
    /// written as UDP, as Kamailio does; `None` for a message too large
    /// for a UDP packet.
    pub fn pcap(&self) -> Option<Vec<u8>> {
        let udp_len = 8 + self.data.len();
        // A message too large for one UDP packet (over a stream) has no
        // pcap record.
        if udp_len + 40 > usize::from(u16::MAX) {
            return None;
        }
        let mut ip = Vec::with_capacity(40);
        let eth_type: u16 = if self.ipv6 {
            ip.extend_from_slice(&[0x60, 0, 0, 0]);
            ip.extend_from_slice(&(udp_len as u16).to_be_bytes());
            ip.extend_from_slice(&[17, 0]);
            ip.extend_from_slice(&v6(&self.src_ip));
            ip.extend_from_slice(&v6(&self.dst_ip));
            0x86dd
        } else {
            ip.extend_from_slice(&[0x45, 0]);
            ip.extend_from_slice(&((20 + udp_len) as u16).to_be_bytes());
            ip.extend_from_slice(&[0, 0, 0, 0, 128, 17, 0, 0]);
            ip.extend_from_slice(&v4(&self.src_ip));
            ip.extend_from_slice(&v4(&self.dst_ip));
            0x0800
        };
        let total = 14 + ip.len() + udp_len;
        let mut out = Vec::with_capacity(16 + total);
        out.extend_from_slice(&(self.sec as u32).to_le_bytes());
        out.extend_from_slice(&self.usec.to_le_bytes());
        out.extend_from_slice(&(total as u32).to_le_bytes());
        out.extend_from_slice(&(total as u32).to_le_bytes());
        out.extend_from_slice(&[0; 12]);
        out.extend_from_slice(&eth_type.to_be_bytes());
        out.extend_from_slice(&ip);
        out.extend_from_slice(&self.src_port.to_be_bytes());
        out.extend_from_slice(&self.dst_port.to_be_bytes());
        out.extend_from_slice(&(udp_len as u16).to_be_bytes());
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&self.data);
        Some(out)
    }
}

/// The pcap file header: version 2.4, microseconds, snap length 65535,
/// Ethernet links (little-endian, as Kamailio writes it on x86).
pub fn pcap_file_header() -> Vec<u8> {
    let mut h = Vec::with_capacity(24);
    h.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    h.extend_from_slice(&2u16.to_le_bytes());
    h.extend_from_slice(&4u16.to_le_bytes());
    h.extend_from_slice(&0i32.to_le_bytes());
    h.extend_from_slice(&0u32.to_le_bytes());
    h.extend_from_slice(&65535u32.to_le_bytes());
    h.extend_from_slice(&1u32.to_le_bytes());
    h
}

fn v4(s: &str) -> [u8; 4] {
    match s.parse::<IpAddr>() {
        Ok(IpAddr::V4(a)) => a.octets(),
        _ => [0; 4],
    }
}

fn v6(s: &str) -> [u8; 16] {
    match s.trim_matches(|c| c == '[' || c == ']').parse::<IpAddr>() {
        Ok(IpAddr::V6(a)) => a.octets(),
        Ok(IpAddr::V4(a)) => a.to_ipv6_mapped().octets(),
        _ => [0; 16],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(ipv6: bool) -> Record {
        Record {
            tag: "rcv".into(),
            sec: 1_700_000_000,
            usec: 42,
            proto: "udp",
            ipv6,
            src_ip: if ipv6 {
                "::1".into()
            } else {
                "127.0.0.1".into()
            },
            src_port: 5062,
            dst_ip: if ipv6 {
                "::1".into()
            } else {
                "127.0.0.2".into()
            },
            dst_port: 5060,
            data: b"OPTIONS sip:a SIP/2.0\r\n\r\n".to_vec(),
        }
    }

    #[test]
    fn text_as_kamailio_writes_it() {
        let t = String::from_utf8(rec(false).text(7, 1, "Tue Nov 14 22:13:20 2023\n")).unwrap();
        assert_eq!(
            t,
            "====================\ntag: rcv\npid: 7\nprocess: 1\ntime: 1700000000.000042\ndate: Tue Nov 14 22:13:20 2023\nproto: udp ipv4\nsrcip: 127.0.0.1\nsrcport: 5062\ndstip: 127.0.0.2\ndstport: 5060\n~~~~~~~~~~~~~~~~~~~~\nOPTIONS sip:a SIP/2.0\r\n\r\n||||||||||||||||||||\n"
        );
    }

    #[test]
    fn pcap_records_hold_ip_and_udp_headers() {
        let r = rec(false);
        let p = r.pcap().unwrap();
        let n = r.data.len();
        assert_eq!(p.len(), 16 + 14 + 20 + 8 + n);
        assert_eq!(
            u32::from_le_bytes(p[8..12].try_into().unwrap()) as usize,
            14 + 20 + 8 + n
        );
        assert_eq!(&p[28..30], &[0x08, 0x00]);
        assert_eq!(&p[42..46], &[127, 0, 0, 1], "source");
        assert_eq!(&p[46..50], &[127, 0, 0, 2], "destination");
        assert_eq!(u16::from_be_bytes([p[50], p[51]]), 5062);
        assert_eq!(&p[58..], r.data.as_slice());
        let p6 = rec(true).pcap().unwrap();
        assert_eq!(p6.len(), 16 + 14 + 40 + 8 + n);
        assert_eq!(&p6[28..30], &[0x86, 0xdd]);
        assert_eq!(p6[30] >> 4, 6);
        assert_eq!(p6[36], 17, "next header UDP");
        assert_eq!(pcap_file_header().len(), 24);
        let mut big = rec(false);
        big.data = vec![b'x'; 70_000];
        assert!(big.pcap().is_none(), "too large for a packet");
    }
}
