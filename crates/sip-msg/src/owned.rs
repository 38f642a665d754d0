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

    /// [`OwnedMessage::parse_with`] that gives the bytes back with the
    /// error, for a caller that still needs them (to answer a message it
    /// cannot parse) without keeping a second reference while parsing.
    pub fn parse_or_return(
        buf: Bytes,
        opts: &ParseOptions,
    ) -> Result<OwnedMessage, (ParseError, Bytes)> {
        OwnedMessage::try_new_or_recover(buf, |b| Message::parse_with(b, opts))
            .map_err(|(buf, e)| (e, buf))
    }

    /// The parsed message.
    pub fn msg(&self) -> &Message<'_> {
        self.borrow_dependent()
    }

    /// A copy sharing the bytes, without parsing them again (the parse
    /// result is moved over by offsets: see [`Message::rebased`]).
    pub fn try_clone(&self) -> Result<OwnedMessage, ParseError> {
        OwnedMessage::try_new(self.bytes().clone(), |b| match self.msg().rebased(b) {
            Some(m) => Ok(m),
            // Only when `bytes()` no longer starts with the message, which
            // a message over shared bytes cannot do; parse to be safe.
            None => Message::parse(b),
        })
    }

    /// Gives back the spare room of the header index (made for a typical
    /// message at parse time), for a message kept for long.
    pub fn shrink_to_fit(&mut self) {
        self.with_dependent_mut(|_, m| m.shrink_to_fit());
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
    fn parse_or_return_gives_the_bytes_back_on_error() {
        let bad = Bytes::from_static(b"NOT SIP AT ALL\r\n\r\n");
        let Err((e, back)) = OwnedMessage::parse_or_return(bad.clone(), &ParseOptions::default())
        else {
            panic!("not an error");
        };
        assert_eq!(back, bad);
        assert!(!e.to_string().is_empty());
        let good = Bytes::from_static(
            b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\nFrom: <sip:x@y>;tag=1\r\nTo: <sip:a@b>\r\nContent-Length: 0\r\n\r\n",
        );
        let m = OwnedMessage::parse_or_return(good, &ParseOptions::default()).expect("parses");
        assert_eq!(m.msg().call_id().ok(), Some("c"));
    }

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

    /// A copy made without parsing reads exactly as a fresh parse, for
    /// requests (known and extension methods, URI parts) and replies.
    #[test]
    fn try_clone_reads_as_a_fresh_parse() {
        let msgs: [&[u8]; 3] = [
            b"INVITE sips:u:pw@[::1]:5061;transport=tls?h=v SIP/2.0\r\nVia: SIP/2.0/TLS a;branch=z9hG4bK1\r\nf: <sip:x@y>;tag=1\r\nTo: sip:b@c\r\nContent-Length: 3\r\n\r\nabc",
            b"FOO sip:host.example SIP/2.0\r\nVia: SIP/2.0/UDP 1.2.3.4\r\nX-Custom:  v  \r\n\r\n",
            b"SIP/2.0 486 Busy Here\r\nVia: SIP/2.0/UDP h\r\nCSeq: 1 INVITE\r\n\r\n",
        ];
        for raw in msgs {
            let a = OwnedMessage::parse(Bytes::from_static(raw)).unwrap();
            // Fill the decoded cache first: it must come along unchanged.
            let _ = a.msg().top_via();
            assert!(a.msg().rebased(a.bytes()).is_some());
            let b = a.try_clone().unwrap();
            let fresh = OwnedMessage::parse(Bytes::from_static(raw)).unwrap();
            for m in [b.msg(), fresh.msg()] {
                assert_eq!(
                    format!("{:?}", m.start_line()),
                    format!("{:?}", a.msg().start_line())
                );
                assert_eq!(
                    format!("{:?}", m.headers()),
                    format!("{:?}", a.msg().headers())
                );
                assert_eq!(m.body(), a.msg().body());
                assert_eq!(m.body_start(), a.msg().body_start());
                assert_eq!(m.top_via().map(|v| v.raw), a.msg().top_via().map(|v| v.raw));
            }
        }
        // Different bytes are refused.
        let a = Message::parse(msgs[1]).unwrap();
        assert!(a.rebased(msgs[2]).is_none());
        // Bytes past Content-Length (a datagram with trailing garbage):
        // the message is moved over without parsing, the extra bytes stay
        // out of it, and the From/To cache comes along.
        let long = Bytes::from_static(b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h\r\nFrom: <sip:a@b>;tag=9\r\nContent-Length: 0\r\n\r\ntrailing");
        let o = OwnedMessage::parse(long).unwrap();
        assert_eq!(o.msg().from_tag(), Ok(Some("9")));
        let m = o
            .msg()
            .rebased(o.bytes())
            .expect("rebased over the longer buffer");
        assert_eq!(m.raw(), o.msg().raw());
        assert_eq!(m.from_tag(), Ok(Some("9")));
        assert_eq!(m.from().map(|f| f.uri_str), Ok("sip:a@b"));
    }

    #[test]
    fn shrinking_keeps_the_parse_result() {
        let mut m = OwnedMessage::parse(Bytes::from_static(
            b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nCall-ID: x\r\nCSeq: 2 OPTIONS\r\n\r\n",
        ))
        .unwrap();
        let lines = |m: &OwnedMessage| -> Vec<String> {
            let hs = m.msg().headers();
            hs.iter()
                .map(|h| format!("{}={}", h.name_str, h.value))
                .collect()
        };
        let before = lines(&m);
        m.shrink_to_fit();
        assert_eq!(before, lines(&m));
        assert_eq!(m.msg().call_id().unwrap(), "x");
        assert_eq!(m.msg().top_via().unwrap().branch(), Some("z9hG4bK1"));
    }
}
