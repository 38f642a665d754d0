//! Typed parse errors and the SIP reply each one calls for.

use std::fmt;

/// Everything that can be wrong with a SIP message or one of its parts.
///
/// Each variant maps to the reply a server sends for a request that has the
/// fault ([`ParseError::status`], [`ParseError::reason`]). For replies and
/// for faults where no reply can be formed, the message is dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseError {
    /// The buffer is empty or holds only line breaks.
    Empty,
    /// The message is larger than the configured maximum (513).
    TooLarge {
        /// The configured limit in bytes.
        limit: usize,
    },
    /// No empty line ends the header section.
    Truncated,
    /// The header section is not valid UTF-8 (RFC 3261 uses UTF-8 text).
    NotUtf8,
    /// The start line is neither a request line nor a status line.
    BadStartLine(&'static str),
    /// The SIP version is well formed but not 2.0 (505).
    UnsupportedVersion,
    /// A header line has no colon or an invalid name.
    BadHeaderLine,
    /// A header value does not follow its grammar.
    BadHeader {
        /// Canonical name of the header.
        name: &'static str,
        /// What is wrong with it.
        what: &'static str,
    },
    /// A URI does not follow its grammar.
    BadUri(&'static str),
    /// The Request-URI scheme is not one this server handles (416).
    UnsupportedUriScheme,
    /// The body is shorter than Content-Length says.
    BodyTooShort {
        /// What Content-Length announced.
        expected: usize,
        /// What arrived.
        got: usize,
    },
    /// Two Content-Length headers disagree.
    ConflictingContentLength,
    /// A header every request or reply must carry is missing.
    MissingHeader(&'static str),
}

impl ParseError {
    /// The status code a server answers a request with this fault.
    pub fn status(&self) -> u16 {
        match self {
            ParseError::TooLarge { .. } => 513,
            ParseError::UnsupportedVersion => 505,
            ParseError::UnsupportedUriScheme => 416,
            _ => 400,
        }
    }

    /// The reason phrase for the reply: says what is wrong.
    pub fn reason(&self) -> String {
        match self {
            ParseError::TooLarge { .. } => "Message Too Large".to_string(),
            ParseError::UnsupportedVersion => "Version Not Supported".to_string(),
            ParseError::UnsupportedUriScheme => "Unsupported URI Scheme".to_string(),
            other => format!("Bad Request - {other}"),
        }
    }

    /// Whether a reply can be sent at all (false when even the start line
    /// or the header section could not be read).
    pub fn can_reply(&self) -> bool {
        !matches!(
            self,
            ParseError::Empty | ParseError::Truncated | ParseError::NotUtf8
        )
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Empty => f.write_str("empty message"),
            ParseError::TooLarge { limit } => write!(f, "message larger than {limit} bytes"),
            ParseError::Truncated => f.write_str("header section not terminated"),
            ParseError::NotUtf8 => f.write_str("header section is not valid UTF-8"),
            ParseError::BadStartLine(w) => write!(f, "malformed start line: {w}"),
            ParseError::UnsupportedVersion => f.write_str("unsupported SIP version"),
            ParseError::BadHeaderLine => f.write_str("malformed header line"),
            ParseError::BadHeader { name, what } => write!(f, "bad {name} header: {what}"),
            ParseError::BadUri(w) => write!(f, "bad URI: {w}"),
            ParseError::UnsupportedUriScheme => f.write_str("unsupported URI scheme"),
            ParseError::BodyTooShort { expected, got } => write!(
                f,
                "body shorter than Content-Length ({got} of {expected} bytes)"
            ),
            ParseError::ConflictingContentLength => {
                f.write_str("conflicting Content-Length headers")
            }
            ParseError::MissingHeader(h) => write!(f, "missing {h} header"),
        }
    }
}

impl std::error::Error for ParseError {}

/// Shorthand for a header grammar error.
pub(crate) fn bad(name: &'static str, what: &'static str) -> ParseError {
    ParseError::BadHeader { name, what }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_as_the_rfc_says() {
        assert_eq!(ParseError::UnsupportedVersion.status(), 505);
        assert_eq!(ParseError::UnsupportedUriScheme.status(), 416);
        assert_eq!(ParseError::TooLarge { limit: 10 }.status(), 513);
        assert_eq!(bad("CSeq", "no method").status(), 400);
        assert_eq!(
            bad("CSeq", "no method").reason(),
            "Bad Request - bad CSeq header: no method"
        );
        assert!(!ParseError::Truncated.can_reply());
        assert!(ParseError::BadHeaderLine.can_reply());
    }
}
