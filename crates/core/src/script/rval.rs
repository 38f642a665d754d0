//! The integer meaning of a value in the script's expressions, as
//! Kamailio's `rval_get_int` gives it: integers are 32 bits; a string
//! is a number only when all of it is one (an optional sign, then decimal
//! digits or `0x` and hexadecimal ones, within 32 bits), else 0 — `"12"`
//! is 12, `"12abc"`, `" 12"`, `"1e3"`, `"3.7"` are 0; the empty string
//! and `$null` are 0. Arithmetic wraps at 32 bits, as Kamailio's C ints.

use sr_sdk::Value;

/// Kamailio's strict string to integer conversion of expressions; `None`
/// when the text is not wholly a number that fits 32 bits: `0x` and
/// hexadecimal digits, or an optional sign and decimal digits.
pub fn str2sint(s: &str) -> Option<i32> {
    match s.as_bytes() {
        [b'0', b'x' | b'X', h @ ..] if !h.is_empty() => number(false, h, 16),
        _ => str2sint_dec(s),
    }
}

/// An optional sign and decimal digits, all of the text, within 32 bits
/// (Kamailio's `str2sint`, as `{s.int}` uses it).
pub fn str2sint_dec(s: &str) -> Option<i32> {
    let b = s.as_bytes();
    let (neg, rest) = match b.first() {
        Some(b'-') => (true, &b[1..]),
        Some(b'+') => (false, &b[1..]),
        _ => (false, b),
    };
    number(neg, rest, 10)
}

fn number(neg: bool, digits: &[u8], radix: u32) -> Option<i32> {
    if digits.is_empty() {
        return None;
    }
    let mut v: i64 = 0;
    for &c in digits {
        let d = char::from(c).to_digit(radix)?;
        v = v * i64::from(radix) + i64::from(d);
        if v > i64::from(i32::MAX) + 1 {
            return None;
        }
    }
    let v = if neg { -v } else { v };
    i32::try_from(v).ok()
}

/// The integer meaning of `v` in an expression.
pub fn int(v: &Value<'_>) -> i32 {
    match v {
        Value::Null => 0,
        Value::Int(i) => *i as i32,
        Value::Str(s) if s.is_empty() => 0,
        Value::Str(s) => str2sint(s).unwrap_or(0),
    }
}

/// A 32-bit result as a value.
pub fn val(i: i32) -> Value<'static> {
    Value::Int(i64::from(i))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_numbers_only_when_wholly_numbers() {
        for (s, want) in [
            ("12", Some(12)),
            ("+4", Some(4)),
            ("-3", Some(-3)),
            ("007", Some(7)),
            ("0x10", Some(16)),
            ("-0x10", None),
            ("0X1f", Some(31)),
            ("2147483647", Some(i32::MAX)),
            ("-2147483648", Some(i32::MIN)),
            ("2147483648", None),
            ("99999999999", None),
            ("12 ", None),
            (" 12", None),
            ("1e3", None),
            ("3.7", None),
            ("0x", None),
            ("-", None),
            ("", None),
            ("abc5", None),
        ] {
            assert_eq!(str2sint(s), want, "{s:?}");
        }
        assert_eq!(int(&Value::Str("".into())), 0);
        assert_eq!(int(&Value::Null), 0);
        assert_eq!(int(&Value::Int(1 << 32)), 0, "32 bits");
    }
}
