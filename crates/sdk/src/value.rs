//! Script values: what pseudo-variables and expressions evaluate to.

use std::borrow::Cow;
use std::fmt;

/// A script value: null, an integer or a string (Kamailio's three kinds).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum Value<'a> {
    /// `$null`, or a pseudo-variable with no value.
    #[default]
    Null,
    /// An integer.
    Int(i64),
    /// A string, borrowed from the message or a constant when it can be.
    Str(Cow<'a, str>),
}

impl<'a> Value<'a> {
    /// A string value.
    pub fn str(s: impl Into<Cow<'a, str>>) -> Value<'a> {
        Value::Str(s.into())
    }

    /// Whether this is `$null`.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The integer meaning, as Kamailio converts: strings are parsed as a
    /// leading decimal number (0 when there is none), null is 0.
    pub fn as_int(&self) -> i64 {
        match self {
            Value::Null => 0,
            Value::Int(i) => *i,
            Value::Str(s) => str_to_int(s),
        }
    }

    /// The string meaning: integers in decimal, null as the empty string.
    pub fn as_str(&self) -> Cow<'_, str> {
        match self {
            Value::Null => Cow::Borrowed(""),
            Value::Int(i) => Cow::Owned(i.to_string()),
            Value::Str(s) => Cow::Borrowed(s),
        }
    }

    /// Detaches the value from what it borrows.
    pub fn into_owned(self) -> Value<'static> {
        match self {
            Value::Null => Value::Null,
            Value::Int(i) => Value::Int(i),
            Value::Str(s) => Value::Str(Cow::Owned(s.into_owned())),
        }
    }
}

impl fmt::Display for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("<null>"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Str(s) => f.write_str(s),
        }
    }
}

impl From<i64> for Value<'_> {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}

impl From<String> for Value<'_> {
    fn from(s: String) -> Self {
        Value::Str(Cow::Owned(s))
    }
}

impl<'a> From<&'a str> for Value<'a> {
    fn from(s: &'a str) -> Self {
        Value::Str(Cow::Borrowed(s))
    }
}

/// Kamailio's string-to-int: optional sign, decimal digits, stop at the
/// first non-digit; no digits gives 0.
pub fn str_to_int(s: &str) -> i64 {
    let t = s.trim_start();
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let mut n: i64 = 0;
    for b in digits.bytes() {
        if !b.is_ascii_digit() {
            break;
        }
        n = n.wrapping_mul(10).wrapping_add((b - b'0') as i64);
    }
    if neg {
        n.wrapping_neg()
    } else {
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions() {
        assert_eq!(Value::from("42abc").as_int(), 42);
        assert_eq!(Value::from("abc").as_int(), 0);
        assert_eq!(Value::from("").as_int(), 0);
        assert_eq!(Value::from("-7").as_int(), -7);
        assert_eq!(Value::Int(5).as_str(), "5");
        assert_eq!(Value::Null.as_str(), "");
        assert!(Value::Null.is_null());
    }
}
