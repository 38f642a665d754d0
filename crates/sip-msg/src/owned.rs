//! A parsed message that owns its buffer, for keeping a message past the
//! receive loop (transactions, failure routes) and for re-parsing after
//! edits are applied.

use crate::error::ParseError;
use crate::message::{Message, ParseOptions};
use bytes::Bytes;

self_cell::self_cell!(
    /// A [`Message`] together with the bytes it borrows from.
    ///
    /// Cloning the bytes is cheap (reference counted); the parse result is
    /// kept, so reading it again costs nothing.
    pub struct OwnedMessage {
        owner: Bytes,
        #[covariant]
        dependent: Message,
    }

    impl {Debug}
);

impl OwnedMessage {
    /// Parses `buf` with the default limits.
    pub fn parse(buf: Bytes) -> Result<OwnedMessage, ParseError> {
        Self::parse_with(buf, &ParseOptions::default())
    }

    /// Parses `buf` with explicit limits.
    pub fn parse_with(buf: Bytes, opts: &ParseOptions) -> Result<OwnedMessage, ParseError> {
        OwnedMessage::try_new(buf, |b| Message::parse_with(b, opts))
    }

    /// The parsed message.
    pub fn msg(&self) -> &Message<'_> {
        self.borrow_dependent()
    }

    /// The buffer (as received, possibly longer than the message).
    pub fn bytes(&self) -> &Bytes {
        self.borrow_owner()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owns_and_moves() {
        let m = {
            let buf = Bytes::from(
                b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\r\n".to_vec(),
            );
            OwnedMessage::parse(buf).unwrap()
        };
        let moved =
            std::thread::spawn(move || m.msg().top_via().unwrap().branch().map(str::to_string))
                .join()
                .unwrap();
        assert_eq!(moved.as_deref(), Some("z9hG4bK1"));
        assert!(OwnedMessage::parse(Bytes::from_static(b"junk")).is_err());
    }
}
