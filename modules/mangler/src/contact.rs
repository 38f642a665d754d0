//! mangler's Contact encoding (Kamailio's `contact_ops.c` of the mangler
//! module, which differs from siputils' by three fields: the address,
//! port and transport the request came from):
//! `sip:user:pw@ip:port;params` becomes
//! `sip:PREFIX*user*pw*ip*port*proto*rcvip*rcvport*rcvproto@PUBLIC;params`
//! (`*` the `contact_flds_separator`; the received port left empty when
//! 5060, the received transport when UDP).

use sr_sdk::sip_msg::Uri;

/// Where the request came from, as the encoding writes it.
#[derive(Debug, Clone, Default)]
pub struct Received {
    /// Source address.
    pub ip: String,
    /// Source port, empty when 5060.
    pub port: String,
    /// `tcp`, `tls`, `sctp`; empty for UDP (and for WebSocket, which
    /// Kamailio's code does not name).
    pub proto: String,
}

/// Encodes one Contact URI; Kamailio's error codes (-1 too short, -25 no
/// `:`, -26 a scheme under three characters, -505 a URI that does not
/// parse).
pub fn encode_uri(
    uri: &str,
    prefix: &str,
    public_ip: &str,
    sep: char,
    rcv: &Received,
) -> Result<String, i32> {
    if uri.len() <= 1 {
        return Err(-1);
    }
    let colon = uri.find(':').ok_or(-25)?;
    if colon < 3 {
        return Err(-26);
    }
    let scheme_len = if colon > 3 && uri.as_bytes()[colon - 1] | 0x20 == b's' {
        4
    } else {
        3
    };
    let start = colon - scheme_len;
    if !uri.is_char_boundary(start) {
        // (A scheme that is not ASCII: no SIP URI.)
        return Err(-26);
    }
    let first = colon + 1;
    let u = Uri::parse(&uri[start..]).map_err(|_| -505)?;
    let after_user = match uri[first..].find('@') {
        Some(at) if u.user.is_some() => first + at + 1,
        _ => first,
    };
    // Host and port, then the rest (parameters, headers) kept.
    let hostport_end = uri[after_user..]
        .find([';', '?'])
        .map_or(uri.len(), |i| after_user + i);
    let hostport = &uri[after_user..hostport_end];
    let port = match hostport.rfind(':') {
        Some(i) if !hostport[i..].contains(']') => &hostport[i + 1..],
        _ => "",
    };
    let transport = u
        .params
        .split(';')
        .find_map(|p| {
            let (n, v) = p.split_once('=')?;
            n.trim()
                .eq_ignore_ascii_case("transport")
                .then_some(v.trim())
        })
        .unwrap_or("");
    Ok(format!(
        "{}{prefix}{sep}{}{sep}{}{sep}{}{sep}{port}{sep}{transport}{sep}{}{sep}{}{sep}{}@{public_ip}{}",
        &uri[..first],
        u.user.unwrap_or(""),
        u.password.unwrap_or(""),
        u.host_str,
        rcv.ip,
        rcv.port,
        rcv.proto,
        &uri[hostport_end..],
    ))
}

/// A decoded URI and, when the encoding held a received address, the
/// destination URI made of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// The original URI back.
    pub uri: String,
    /// `sip:rcvip[:rcvport][;transport=rcvproto]`, if any.
    pub dst: Option<String>,
}

/// Decodes one URI; Kamailio's error codes (-21 empty, -22 no `:` or
/// nothing after it, -23 no `@`, -24 too many fields, -25 `>` or `;`
/// among them, -26 too few, -2 no address, -3 a password without user).
pub fn decode_uri(uri: &str, sep: char) -> Result<Decoded, i32> {
    if uri.is_empty() {
        return Err(-1);
    }
    let colon = uri.find(':').ok_or(-22)?;
    let first = colon + 1;
    if first >= uri.len() {
        return Err(-22);
    }
    let at = uri[first..].find('@').map(|i| first + i).ok_or(-23)?;
    let enc = &uri[first..at];
    if enc.contains(['>', ';']) {
        // (Kamailio stops at the first such character unless a
        // separator past the last field comes first.)
        let cut = enc.find(['>', ';']).unwrap_or(enc.len());
        if enc[..cut].matches(sep).count() <= 8 {
            return Err(-25);
        }
    }
    let fields: Vec<&str> = enc.split(sep).collect();
    if fields.len() > 9 {
        return Err(-24);
    }
    if fields.len() < 9 {
        return Err(-26);
    }
    let (user, pw, ip, port, proto) = (fields[1], fields[2], fields[3], fields[4], fields[5]);
    let (rcv_ip, rcv_port, rcv_proto) = (fields[6], fields[7], fields[8]);
    if ip.is_empty() {
        return Err(-2);
    }
    if !pw.is_empty() && user.is_empty() {
        return Err(-3);
    }
    let second = uri[at..].find([';', '>']).map_or(uri.len(), |i| at + i);
    let mut out = String::from(&uri[..first]);
    if !user.is_empty() {
        out.push_str(user);
        out.push(if pw.is_empty() { '@' } else { ':' });
    }
    if !pw.is_empty() {
        out.push_str(pw);
        out.push('@');
    }
    out.push_str(ip);
    if !port.is_empty() {
        out.push(':');
        out.push_str(port);
    }
    if !proto.is_empty() {
        out.push_str(";transport=");
        out.push_str(proto);
    }
    out.push_str(&uri[second..]);
    let dst = (!rcv_ip.is_empty()).then(|| {
        let mut d = format!("sip:{rcv_ip}");
        if !rcv_port.is_empty() {
            d.push(':');
            d.push_str(rcv_port);
        }
        if !rcv_proto.is_empty() {
            d.push_str(";transport=");
            d.push_str(rcv_proto);
        }
        d
    });
    Ok(Decoded { uri: out, dst })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rcv(port: &str, proto: &str) -> Received {
        Received {
            ip: "192.0.2.7".into(),
            port: port.into(),
            proto: proto.into(),
        }
    }

    #[test]
    fn encoding_keeps_the_parameters_and_adds_the_source() {
        assert_eq!(
            encode_uri(
                "sip:alice:pw@10.0.0.1:5070;transport=tcp;foo=bar",
                "enc",
                "1.2.3.4",
                '*',
                &rcv("5071", "tcp")
            )
            .unwrap(),
            "sip:enc*alice*pw*10.0.0.1*5070*tcp*192.0.2.7*5071*tcp@1.2.3.4;transport=tcp;foo=bar"
        );
        assert_eq!(
            encode_uri("sip:10.0.0.1", "e", "h", '#', &rcv("", "")).unwrap(),
            "sip:e###10.0.0.1###192.0.2.7##@h"
        );
        assert_eq!(encode_uri("x", "e", "h", '*', &rcv("", "")), Err(-1));
        assert_eq!(encode_uri("ab:c", "e", "h", '*', &rcv("", "")), Err(-26));
        assert_eq!(encode_uri("nocolon", "e", "h", '*', &rcv("", "")), Err(-25));
        // A scheme that is not ASCII: refused, not cut inside a character.
        assert_eq!(encode_uri("éé:x@h", "e", "h", '*', &rcv("", "")), Err(-26));
        // Text before a scheme is kept, as Kamailio keeps it.
        assert!(encode_uri("ésip:x@h", "e", "h", '*', &rcv("", ""))
            .unwrap()
            .starts_with("ésip:e*x*"));
    }

    #[test]
    fn decoding_gives_the_uri_and_the_source() {
        let d = decode_uri(
            "sip:enc*alice*pw*10.0.0.1*5070*tcp*192.0.2.7*5071*tcp@1.2.3.4;transport=tcp;lr",
            '*',
        )
        .unwrap();
        assert_eq!(
            d.uri,
            "sip:alice:pw@10.0.0.1:5070;transport=tcp;transport=tcp;lr"
        );
        assert_eq!(d.dst.as_deref(), Some("sip:192.0.2.7:5071;transport=tcp"));
        let d = decode_uri("sip:e***10.0.0.1*****@h", '*').unwrap();
        assert_eq!((d.uri.as_str(), d.dst), ("sip:10.0.0.1", None));
        assert_eq!(decode_uri("sip:alice@10.0.0.1", '*'), Err(-26));
        assert_eq!(decode_uri("sip:e*a*b*c*d*e*f*g*h*i@h", '*'), Err(-24));
        assert_eq!(decode_uri("sip:e*a*b****x**@h", '*'), Err(-2));
        assert_eq!(decode_uri("sip:e**pw*1.2.3.4*****@h", '*'), Err(-3));
        assert_eq!(decode_uri("sip:nohost", '*'), Err(-23));
    }
}
