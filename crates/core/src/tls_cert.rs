//! What the tls module's pseudo-variables show of a certificate and a
//! cipher suite, in the text OpenSSL gives Kamailio: names as
//! `X509_NAME_oneline` writes them (`/C=DE/O=Example/CN=alice`), times as
//! `ASN1_TIME_print` (`Nov 28 02:00:00 2026 GMT`), serial numbers in
//! decimal, PEM as `PEM_write_bio_X509`, cipher suites by OpenSSL's names
//! and `SSL_CIPHER_description`. Pure functions on DER bytes: a
//! certificate that does not parse gives `None`, never a panic.

use base64::Engine;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate, X509Name};
use x509_parser::time::ASN1Time;

/// Which name of a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The subject.
    Subject,
    /// The issuer.
    Issuer,
}

/// A component of a name (Kamailio's `_cn`, `_organization`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comp {
    /// commonName.
    Cn,
    /// organizationName.
    O,
    /// organizationalUnitName.
    Ou,
    /// countryName.
    C,
    /// stateOrProvinceName.
    St,
    /// localityName.
    L,
    /// userId.
    Uid,
}

impl Comp {
    fn oid(self) -> &'static str {
        match self {
            Comp::Cn => "2.5.4.3",
            Comp::O => "2.5.4.10",
            Comp::Ou => "2.5.4.11",
            Comp::C => "2.5.4.6",
            Comp::St => "2.5.4.8",
            Comp::L => "2.5.4.7",
            Comp::Uid => "0.9.2342.19200300.100.1.1",
        }
    }
}

/// A kind of subject alternative name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum San {
    /// rfc822Name (`$tls_peer_san_email`).
    Email,
    /// dNSName (`$tls_peer_san_hostname`).
    Dns,
    /// uniformResourceIdentifier (`$tls_peer_san_uri`).
    Uri,
    /// iPAddress (`$tls_peer_san_ip`).
    Ip,
}

/// OpenSSL's short name of an attribute type (`OBJ_nid2sn`), or its
/// dotted form when OpenSSL would not know it either.
fn short_name(oid: &str) -> &str {
    match oid {
        "2.5.4.3" => "CN",
        "2.5.4.4" => "SN",
        "2.5.4.5" => "serialNumber",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "street",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.12" => "title",
        "2.5.4.17" => "postalCode",
        "2.5.4.42" => "GN",
        "2.5.4.43" => "initials",
        "2.5.4.44" => "generationQualifier",
        "2.5.4.46" => "dnQualifier",
        "2.5.4.65" => "pseudonym",
        "1.2.840.113549.1.9.1" => "emailAddress",
        "0.9.2342.19200300.100.1.1" => "UID",
        "0.9.2342.19200300.100.1.25" => "DC",
        other => other,
    }
}

/// A parsed certificate.
pub struct Cert<'a>(X509Certificate<'a>);

impl<'a> Cert<'a> {
    /// Parses DER; `None` when it is not a certificate.
    pub fn parse(der: &'a [u8]) -> Option<Cert<'a>> {
        X509Certificate::from_der(der).ok().map(|(_, c)| Cert(c))
    }

    /// `X509_get_version`: 0 for v1, 2 for v3.
    pub fn version(&self) -> u32 {
        self.0.version().0
    }

    /// The serial number in decimal.
    pub fn serial(&self) -> String {
        self.0.tbs_certificate.serial.to_string()
    }

    fn name(&self, side: Side) -> &X509Name<'_> {
        match side {
            Side::Subject => self.0.subject(),
            Side::Issuer => self.0.issuer(),
        }
    }

    /// The whole name, as `X509_NAME_oneline` writes it.
    pub fn oneline(&self, side: Side) -> String {
        let mut out = String::new();
        for atv in self.name(side).iter_attributes() {
            out.push('/');
            out.push_str(short_name(&atv.attr_type().to_id_string()));
            out.push('=');
            for &b in atv.attr_value().data {
                if (b' '..=b'~').contains(&b) {
                    out.push(char::from(b));
                } else {
                    out.push_str("\\x");
                    out.push(char::from(b"0123456789ABCDEF"[usize::from(b >> 4)]));
                    out.push(char::from(b"0123456789ABCDEF"[usize::from(b & 15)]));
                }
            }
        }
        out
    }

    /// The first value of a component, as UTF-8.
    pub fn component(&self, side: Side, comp: Comp) -> Option<String> {
        let want = comp.oid();
        let atv = self
            .name(side)
            .iter_attributes()
            .find(|a| a.attr_type().to_id_string() == want)?;
        Some(match atv.as_str() {
            Ok(s) => s.to_string(),
            Err(_) => String::from_utf8_lossy(atv.attr_value().data).into_owned(),
        })
    }

    /// `notBefore` (`before`) or `notAfter`, as `ASN1_TIME_print`.
    pub fn validity(&self, before: bool) -> String {
        let v = self.0.validity();
        asn1_time(if before { &v.not_before } else { &v.not_after })
    }

    /// The subject alternative names of one kind, in order.
    pub fn sans(&self, kind: San) -> Vec<String> {
        let Ok(Some(ext)) = self.0.subject_alternative_name() else {
            return Vec::new();
        };
        ext.value
            .general_names
            .iter()
            .filter_map(|g| match (kind, g) {
                (San::Email, GeneralName::RFC822Name(s))
                | (San::Dns, GeneralName::DNSName(s))
                | (San::Uri, GeneralName::URI(s)) => Some(s.to_string()),
                (San::Ip, GeneralName::IPAddress(b)) => ip_text(b),
                _ => None,
            })
            .collect()
    }

    /// Issued by itself: issuer and subject are the same name.
    pub fn self_issued(&self) -> bool {
        self.0.subject().as_raw() == self.0.issuer().as_raw()
    }

    /// Its validity ended before `now` (seconds since 1970).
    pub fn expired(&self, now: i64) -> bool {
        self.0.validity().not_after.timestamp() < now
    }
}

fn ip_text(b: &[u8]) -> Option<String> {
    match b.len() {
        4 => Some(std::net::Ipv4Addr::new(b[0], b[1], b[2], b[3]).to_string()),
        16 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(b);
            Some(std::net::Ipv6Addr::from(a).to_string())
        }
        _ => None,
    }
}

fn asn1_time(t: &ASN1Time) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let d = t.to_datetime();
    format!(
        "{} {:2} {:02}:{:02}:{:02} {} GMT",
        MONTHS[usize::from(u8::from(d.month())) - 1],
        d.day(),
        d.hour(),
        d.minute(),
        d.second(),
        d.year()
    )
}

/// A certificate as PEM (64 characters a line).
pub fn pem(der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

/// A cipher suite as OpenSSL describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cipher {
    /// OpenSSL's name (`SSL_CIPHER_get_name`).
    pub name: &'static str,
    /// Secret bits (`SSL_CIPHER_get_bits`).
    pub bits: u32,
    /// The lowest protocol version it is for.
    pub version: &'static str,
    /// Key exchange.
    pub kx: &'static str,
    /// Authentication.
    pub au: &'static str,
    /// Encryption.
    pub enc: &'static str,
}

/// The cipher suites rustls offers, by IANA code.
pub fn cipher(suite: u16) -> Option<Cipher> {
    let c = |name, bits, version, kx, au, enc| Cipher {
        name,
        bits,
        version,
        kx,
        au,
        enc,
    };
    Some(match suite {
        0x1301 => c(
            "TLS_AES_128_GCM_SHA256",
            128,
            "TLSv1.3",
            "any",
            "any",
            "AESGCM(128)",
        ),
        0x1302 => c(
            "TLS_AES_256_GCM_SHA384",
            256,
            "TLSv1.3",
            "any",
            "any",
            "AESGCM(256)",
        ),
        0x1303 => c(
            "TLS_CHACHA20_POLY1305_SHA256",
            256,
            "TLSv1.3",
            "any",
            "any",
            "CHACHA20/POLY1305(256)",
        ),
        0xC02B => c(
            "ECDHE-ECDSA-AES128-GCM-SHA256",
            128,
            "TLSv1.2",
            "ECDH",
            "ECDSA",
            "AESGCM(128)",
        ),
        0xC02C => c(
            "ECDHE-ECDSA-AES256-GCM-SHA384",
            256,
            "TLSv1.2",
            "ECDH",
            "ECDSA",
            "AESGCM(256)",
        ),
        0xC02F => c(
            "ECDHE-RSA-AES128-GCM-SHA256",
            128,
            "TLSv1.2",
            "ECDH",
            "RSA",
            "AESGCM(128)",
        ),
        0xC030 => c(
            "ECDHE-RSA-AES256-GCM-SHA384",
            256,
            "TLSv1.2",
            "ECDH",
            "RSA",
            "AESGCM(256)",
        ),
        0xCCA8 => c(
            "ECDHE-RSA-CHACHA20-POLY1305",
            256,
            "TLSv1.2",
            "ECDH",
            "RSA",
            "CHACHA20/POLY1305(256)",
        ),
        0xCCA9 => c(
            "ECDHE-ECDSA-CHACHA20-POLY1305",
            256,
            "TLSv1.2",
            "ECDH",
            "ECDSA",
            "CHACHA20/POLY1305(256)",
        ),
        _ => return None,
    })
}

impl Cipher {
    /// `SSL_CIPHER_description`'s line.
    pub fn description(&self) -> String {
        format!(
            "{:<30} {:<7} Kx={:<8} Au={:<5} Enc={:<22} Mac={:<4}\n",
            self.name, self.version, self.kx, self.au, self.enc, "AEAD"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn made() -> Vec<u8> {
        let mut p = rcgen::CertificateParams::new(vec![
            "sip.example.com".to_string(),
            "127.0.0.1".to_string(),
        ])
        .unwrap();
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(rcgen::DnType::CountryName, "DE");
        dn.push(rcgen::DnType::OrganizationName, "Example Ä");
        dn.push(rcgen::DnType::CommonName, "alice");
        p.distinguished_name = dn;
        p.serial_number = Some(rcgen::SerialNumber::from(vec![0x01, 0x00]));
        p.not_before = rcgen::date_time_ymd(2026, 3, 5);
        p.not_after = rcgen::date_time_ymd(2036, 11, 28);
        let key = rcgen::KeyPair::generate().unwrap();
        p.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn names_times_and_serials_read_as_openssl_writes_them() {
        let der = made();
        let c = Cert::parse(&der).unwrap();
        assert_eq!(c.version(), 2);
        assert_eq!(c.serial(), "256");
        assert_eq!(
            c.oneline(Side::Subject),
            "/C=DE/O=Example \\xC3\\x84/CN=alice"
        );
        assert_eq!(
            c.component(Side::Issuer, Comp::O).as_deref(),
            Some("Example Ä")
        );
        assert_eq!(c.component(Side::Subject, Comp::Ou), None);
        assert_eq!(c.validity(true), "Mar  5 00:00:00 2026 GMT");
        assert_eq!(c.validity(false), "Nov 28 00:00:00 2036 GMT");
        assert_eq!(c.sans(San::Dns), vec!["sip.example.com"]);
        assert_eq!(c.sans(San::Ip), vec!["127.0.0.1"]);
        assert!(c.sans(San::Email).is_empty());
        assert!(c.self_issued());
        assert!(!c.expired(1_800_000_000));
        assert!(c.expired(2_200_000_000));
    }

    #[test]
    fn what_is_not_a_certificate_gives_nothing() {
        assert!(Cert::parse(b"").is_none());
        assert!(Cert::parse(&[0x30, 0x82, 0xff, 0xff, 0x01]).is_none());
        let der = made();
        for cut in [1, 10, der.len() / 2, der.len() - 1] {
            assert!(Cert::parse(&der[..cut]).is_none());
        }
    }

    #[test]
    fn pem_has_lines_of_64() {
        let p = pem(&[0u8; 100]);
        let lines: Vec<&str> = p.lines().collect();
        assert_eq!(lines[0], "-----BEGIN CERTIFICATE-----");
        assert_eq!(lines[1].len(), 64);
        assert_eq!(lines.last(), Some(&"-----END CERTIFICATE-----"));
    }

    #[test]
    fn cipher_suites_by_their_openssl_names() {
        assert_eq!(cipher(0x1302).unwrap().name, "TLS_AES_256_GCM_SHA384");
        assert_eq!(cipher(0xC02F).unwrap().bits, 128);
        assert!(cipher(0x0005).is_none());
    }
}
