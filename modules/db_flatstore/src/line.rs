//! One row as Kamailio's flatstore writes it: the values in column order,
//! `|` between them, a newline after.

use sr_sdk::db::DbValue;
use std::fmt::Write;

/// How text values are written.
#[derive(Debug, Clone, Copy)]
pub struct Format {
    /// Text values have this character written as `%XX`
    /// (`encode_delimiter`).
    pub encode: Option<u8>,
}

/// The row's line, newline included.
pub fn line(values: &[(&str, DbValue)], f: Format) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    for (i, (_, v)) in values.iter().enumerate() {
        if i > 0 {
            out.push(b'|');
        }
        value(&mut out, v, f);
    }
    out.push(b'\n');
    out
}

fn value(out: &mut Vec<u8>, v: &DbValue, f: Format) {
    let mut s = String::new();
    match v {
        // (Kamailio's writer does not look at NULL: nothing is written.)
        DbValue::Null => {}
        DbValue::Int(n) => {
            let _ = write!(s, "{n}");
        }
        DbValue::BigInt(n) => {
            let _ = write!(s, "{n}");
        }
        DbValue::Double(d) => {
            let _ = write!(s, "{d:.6}");
        }
        // `%u` of the time as an unsigned 32-bit number.
        DbValue::DateTime(t) => {
            let _ = write!(s, "{}", *t as u32);
        }
        DbValue::Str(t) => {
            match f.encode {
                Some(d) => {
                    for &b in t.as_bytes() {
                        if b == d {
                            out.extend_from_slice(format!("%{b:02X}").as_bytes());
                        } else {
                            out.push(b);
                        }
                    }
                }
                None => out.extend_from_slice(t.as_bytes()),
            }
            return;
        }
        DbValue::Blob(b) => {
            for &c in b {
                if (0x20..0x7f).contains(&c) && c != b'\\' && c != b'|' {
                    out.push(c);
                } else {
                    out.extend_from_slice(format!("\\x{c:02X}").as_bytes());
                }
            }
            return;
        }
    }
    out.extend_from_slice(s.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_written_as_kamailio_writes_them() {
        let row = [
            ("method", DbValue::str("INVITE")),
            ("from_tag", DbValue::str("a|b")),
            ("time", DbValue::DateTime(1_700_000_000)),
            ("n", DbValue::Int(-3)),
            ("d", DbValue::Double(1.5)),
            ("x", DbValue::Null),
            ("blob", DbValue::Blob(b"ok|\\\x01".to_vec())),
        ];
        let f = Format { encode: Some(b'|') };
        assert_eq!(
            String::from_utf8(line(&row, f)).unwrap(),
            "INVITE|a%7Cb|1700000000|-3|1.500000||ok\\x7C\\x5C\\x01\n"
        );
        let f = Format { encode: None };
        assert!(String::from_utf8(line(&row, f))
            .unwrap()
            .starts_with("INVITE|a|b|"));
    }
}
