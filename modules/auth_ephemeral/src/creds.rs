//! Ephemeral credentials without I/O: the password a web service hands
//! out for a username (`base64(HMAC(secret, username))`), the expiry
//! timestamp inside the username, and the user (and domain) it names.

use base64::Engine;
use ring::hmac;

/// Where the timestamp is in the username (`username_format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// 0, deprecated: `user:timestamp`.
    UserFirst,
    /// 1, the default (draft-uberti-rtcweb-turn-rest): `timestamp:user`.
    TimestampFirst,
}

impl Format {
    /// The parameter's value; `None` when it is neither 0 nor 1.
    pub fn from_param(v: i64) -> Option<Format> {
        match v {
            0 => Some(Format::UserFirst),
            1 => Some(Format::TimestampFirst),
            _ => None,
        }
    }
}

/// The HMAC's hash (`sha_algorithm`: 0 SHA-1, 1 SHA-256, 2 SHA-384, 3
/// SHA-512); `None` for another value.
pub fn algorithm(v: i64) -> Option<hmac::Algorithm> {
    match v {
        0 => Some(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY),
        1 => Some(hmac::HMAC_SHA256),
        2 => Some(hmac::HMAC_SHA384),
        3 => Some(hmac::HMAC_SHA512),
        _ => None,
    }
}

/// The password of `username` under `secret`.
pub fn password(alg: hmac::Algorithm, secret: &[u8], username: &[u8]) -> String {
    let key = hmac::Key::new(alg, secret);
    base64::engine::general_purpose::STANDARD.encode(hmac::sign(&key, username).as_ref())
}

/// Why a username's timestamp does not let it in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeError {
    /// The timestamp is not a number.
    Invalid,
    /// It is in the past.
    Expired,
}

/// Checks the expiry timestamp in `username` against `now` (Unix
/// seconds). A username without a `:` (or ending in it) is all
/// timestamp.
pub fn check_timestamp(format: Format, username: &str, now: i64) -> Result<(), TimeError> {
    let pos = username.find(':').unwrap_or(username.len());
    let has_rest = pos + 1 < username.len();
    let ts = match (format, has_rest) {
        (Format::UserFirst, true) => &username[pos + 1..],
        (Format::TimestampFirst, true) => &username[..pos],
        (_, false) => username,
    };
    // Kamailio's str2int: decimal digits only, an unsigned 32-bit value.
    if ts.is_empty() || !ts.bytes().all(|b| b.is_ascii_digit()) {
        return Err(TimeError::Invalid);
    }
    let expires: u32 = ts.parse().map_err(|_| TimeError::Invalid)?;
    if now > i64::from(expires) {
        return Err(TimeError::Expired);
    }
    Ok(())
}

/// The user and domain a username names (`timestamp:user@domain`):
/// `None` when it names none (no `:`, or nothing after it).
pub fn user_of(format: Format, username: &str) -> Option<(&str, Option<&str>)> {
    let pos = username.find(':')?;
    if pos + 1 >= username.len() {
        return None;
    }
    let who = match format {
        Format::UserFirst => &username[..pos],
        Format::TimestampFirst => &username[pos + 1..],
    };
    match who.find('@') {
        Some(at) if at + 1 < who.len() => Some((&who[..at], Some(&who[at + 1..]))),
        _ => Some((who, None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_the_base64_hmac_of_the_username() {
        // RFC 2202's first HMAC-SHA1 test case.
        let key = [0x0bu8; 20];
        assert_eq!(
            password(algorithm(0).unwrap(), &key, b"Hi There"),
            base64::engine::general_purpose::STANDARD.encode([
                0xb6, 0x17, 0x31, 0x86, 0x55, 0x05, 0x72, 0x64, 0xe2, 0x8b, 0xc0, 0xb6, 0xfb, 0x37,
                0x8c, 0x8e, 0xf1, 0x46, 0xbe, 0x00
            ])
        );
        assert_eq!(password(algorithm(3).unwrap(), b"k", b"u").len(), 88);
        assert!(algorithm(4).is_none());
    }

    #[test]
    fn timestamps_where_the_format_puts_them() {
        let f = Format::TimestampFirst;
        assert_eq!(
            check_timestamp(f, "2000000000:alice", 1_900_000_000),
            Ok(())
        );
        assert_eq!(
            check_timestamp(f, "1000:alice", 1_900_000_000),
            Err(TimeError::Expired)
        );
        assert_eq!(check_timestamp(f, "2000000000", 1_900_000_000), Ok(()));
        assert_eq!(
            check_timestamp(f, "2000000000:", 1_900_000_000),
            Err(TimeError::Invalid)
        );
        assert_eq!(check_timestamp(f, "abc:alice", 0), Err(TimeError::Invalid));
        assert_eq!(
            check_timestamp(f, "99999999999:a", 0),
            Err(TimeError::Invalid)
        );
        let g = Format::UserFirst;
        assert_eq!(
            check_timestamp(g, "alice:2000000000", 1_900_000_000),
            Ok(())
        );
        assert_eq!(check_timestamp(g, "alice:1", 5), Err(TimeError::Expired));
    }

    #[test]
    fn users_and_domains() {
        let f = Format::TimestampFirst;
        assert_eq!(user_of(f, "1:alice"), Some(("alice", None)));
        assert_eq!(user_of(f, "1:alice@b.com"), Some(("alice", Some("b.com"))));
        assert_eq!(user_of(f, "1:alice@"), Some(("alice@", None)));
        assert_eq!(user_of(f, "1"), None);
        assert_eq!(user_of(f, "1:"), None);
        assert_eq!(user_of(Format::UserFirst, "bob:1"), Some(("bob", None)));
    }
}
