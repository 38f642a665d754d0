//! Stream framing (RFC 3261 18.3), keep-alives (RFC 5626) and recovery.

use sip_msg::framer::{Frame, FrameError, StreamFramer};
use sip_msg::Message;

fn msg(body: &str) -> String {
    format!(
        "MESSAGE sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn frames(f: &mut StreamFramer) -> Vec<Result<Frame, FrameError>> {
    std::iter::from_fn(|| f.next_frame()).collect()
}

#[test]
fn frames_back_to_back_messages_split_anywhere() {
    let stream = format!("{}{}{}", msg("one"), msg(""), msg("three!"));
    for chunk in [1, 2, 7, 64, 4096] {
        let mut f = StreamFramer::new(65535);
        let mut got = Vec::new();
        for piece in stream.as_bytes().chunks(chunk) {
            f.push(piece);
            got.extend(frames(&mut f));
        }
        let bodies: Vec<Vec<u8>> = got
            .into_iter()
            .map(|fr| match fr.unwrap() {
                Frame::Message(b) => Message::parse(&b).unwrap().body().to_vec(),
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(
            bodies,
            [b"one".to_vec(), b"".to_vec(), b"three!".to_vec()],
            "chunk {chunk}"
        );
        assert_eq!(f.buffered(), 0);
    }
}

#[test]
fn keepalives_are_recognised() {
    let mut f = StreamFramer::new(65535);
    f.push(b"\r\n\r\n");
    assert_eq!(f.next_frame(), Some(Ok(Frame::Ping)));
    f.push(b"\r\n");
    assert_eq!(f.next_frame(), None, "could still become a ping");
    f.push(msg("x").as_bytes());
    assert_eq!(f.next_frame(), Some(Ok(Frame::Pong)));
    assert!(matches!(f.next_frame(), Some(Ok(Frame::Message(_)))));
}

#[test]
fn garbage_is_skipped_without_losing_the_next_message() {
    let mut f = StreamFramer::new(65535);
    f.push(b"\x00\x01garbage line\r\nmore junk here\r\n");
    f.push(msg("ok").as_bytes());
    let got = frames(&mut f);
    assert!(matches!(got[0], Err(FrameError::Garbage { .. })));
    let last = got.last().unwrap().as_ref().unwrap();
    match last {
        Frame::Message(b) => assert_eq!(Message::parse(b).unwrap().body(), b"ok"),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn missing_or_bad_content_length_is_reported_and_stream_continues() {
    let mut f = StreamFramer::new(65535);
    f.push(b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\n\r\n");
    f.push(msg("next").as_bytes());
    let got = frames(&mut f);
    assert!(matches!(got[0], Err(FrameError::MissingContentLength(_))));
    assert!(matches!(got[1], Ok(Frame::Message(_))));
    let mut f = StreamFramer::new(65535);
    f.push(b"OPTIONS sip:a@b SIP/2.0\r\nl: x\r\n\r\n");
    assert!(matches!(
        f.next_frame(),
        Some(Err(FrameError::BadContentLength(_)))
    ));
}

#[test]
fn oversized_messages_are_refused() {
    let mut f = StreamFramer::new(100);
    f.push(msg(&"x".repeat(200)).as_bytes());
    assert_eq!(f.next_frame(), Some(Err(FrameError::TooLarge)));
    let mut f = StreamFramer::new(100);
    f.push(format!("OPTIONS sip:a@b SIP/2.0\r\nX: {}", "y".repeat(200)).as_bytes());
    assert_eq!(f.next_frame(), Some(Err(FrameError::TooLarge)));
}

#[test]
fn responses_frame_too() {
    let mut f = StreamFramer::new(65535);
    f.push(b"SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nContent-Length: 0\r\n\r\n");
    assert!(matches!(f.next_frame(), Some(Ok(Frame::Message(_)))));
}
