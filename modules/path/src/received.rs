//! The `received` parameter of our Path entry: the address a REGISTER
//! came from, written in the entry (`add_path_received`) and read back
//! when a request is routed through it (`use_received`).

use sr_sdk::prelude::*;
use sr_sdk::RecvInfo;

/// `received_format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// 0: a SIP URI, its transport parameter escaped
    /// (`sip:1.2.3.4:5060%3Btransport%3Dtcp`).
    Uri,
    /// 1: `ip~port~proto`, proto as Kamailio's number (1 UDP, 2 TCP,
    /// 3 TLS, 4 SCTP, 5 WS, 6 WSS).
    Tilde,
}

fn proto_of_num(n: &str) -> Option<Proto> {
    Some(match n {
        "1" => Proto::Udp,
        "2" => Proto::Tcp,
        "3" => Proto::Tls,
        "4" => Proto::Sctp,
        "5" => Proto::Ws,
        "6" => Proto::Wss,
        _ => return None,
    })
}

impl Format {
    /// The parameter's value: 1 is [`Format::Tilde`], anything else
    /// [`Format::Uri`].
    pub fn from_param(v: i64) -> Format {
        if v == 1 {
            Format::Tilde
        } else {
            Format::Uri
        }
    }

    /// The value for a message received as `rcv`.
    pub fn encode(self, rcv: &RecvInfo) -> String {
        let ip = rcv.src.ip();
        let host = if ip.is_ipv6() {
            format!("[{ip}]")
        } else {
            ip.to_string()
        };
        let port = rcv.src.port();
        match self {
            Format::Uri => {
                let transport = match rcv.proto {
                    Proto::Udp => "",
                    Proto::Tcp => "%3Btransport%3Dtcp",
                    Proto::Tls => "%3Btransport%3Dtls",
                    Proto::Sctp => "%3Btransport%3Dsctp",
                    // Kamailio writes `ws` for both.
                    Proto::Ws | Proto::Wss => "%3Btransport%3Dws",
                };
                format!("sip:{host}:{port}{transport}")
            }
            Format::Tilde => format!("{host}~{port}~{}", rcv.proto.number()),
        }
    }

    /// The destination URI a value names; `None` when it does not read.
    pub fn decode(self, value: &str) -> Option<String> {
        match self {
            Format::Uri => {
                let uri = sr_sdk::text::unescape(value);
                (!uri.is_empty()).then_some(uri)
            }
            Format::Tilde => {
                let mut it = value.split('~');
                let (host, port, proto) = (it.next()?, it.next()?, it.next()?);
                if it.next().is_some() || host.is_empty() || port.parse::<u16>().is_err() {
                    return None;
                }
                let proto = proto_of_num(proto)?;
                let mut uri = format!("sip:{host}:{port}");
                if proto != Proto::Udp {
                    uri.push_str(";transport=");
                    uri.push_str(proto.as_str());
                }
                Some(uri)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    fn rcv(src: &str, proto: Proto) -> RecvInfo {
        let src: SocketAddr = src.parse().unwrap();
        RecvInfo {
            src,
            dst: src,
            proto,
            conn_id: 0,
        }
    }

    #[test]
    fn uri_format_escapes_the_transport() {
        let f = Format::Uri;
        assert_eq!(
            f.encode(&rcv("10.0.0.1:5070", Proto::Udp)),
            "sip:10.0.0.1:5070"
        );
        let tcp = f.encode(&rcv("10.0.0.1:5070", Proto::Tcp));
        assert_eq!(tcp, "sip:10.0.0.1:5070%3Btransport%3Dtcp");
        assert_eq!(f.decode(&tcp).unwrap(), "sip:10.0.0.1:5070;transport=tcp");
        assert_eq!(
            f.encode(&rcv("[::1]:5060", Proto::Tls)),
            "sip:[::1]:5060%3Btransport%3Dtls"
        );
    }

    #[test]
    fn tilde_format_round_trips() {
        let f = Format::Tilde;
        let v = f.encode(&rcv("10.0.0.1:5070", Proto::Tcp));
        assert_eq!(v, "10.0.0.1~5070~2");
        assert_eq!(f.decode(&v).unwrap(), "sip:10.0.0.1:5070;transport=tcp");
        assert_eq!(f.decode("10.0.0.1~5070~1").unwrap(), "sip:10.0.0.1:5070");
        assert_eq!(f.decode("10.0.0.1~x~1"), None);
        assert_eq!(f.decode("10.0.0.1~5070~9"), None);
        assert_eq!(f.decode("10.0.0.1~5070"), None);
    }
}
