//! textopsx's iterators: over the headers of the message as received
//! (`hf_iterator_*`, `$hfitname(name)`, `$hfitbody(name)`) and over the
//! lines of its body (`bl_iterator_*`, `$blitval(name)`, the line with its
//! end-of-line characters). Iterators are named and kept with the message;
//! removing or adding at the current position records an edit, as
//! Kamailio's lumps, so the iterator itself goes on over the original.

use sr_sdk::prelude::*;

/// The iterators of one message.
#[derive(Debug, Default)]
pub struct Iters {
    /// The buffer the positions are in (its address and length): a
    /// message parsed again (`msg_apply_changes`, `msg_set_buffer`)
    /// ends every iterator.
    buf: (usize, usize),
    /// Header iterators: name, index of the current header.
    hf: Vec<(String, Option<usize>)>,
    /// Body-line iterators: name, current line (start, end) in the
    /// message.
    bl: Vec<(String, Option<(u32, u32)>)>,
}

/// The message's buffer, as [`Iters::buf`] keeps it.
fn buf_of(msg: &SipMsg) -> (usize, usize) {
    let raw = msg.msg().raw();
    (raw.as_ptr() as usize, raw.len())
}

fn iters(msg: &mut SipMsg) -> &mut Iters {
    let buf = buf_of(msg);
    let stale = msg.ext.get::<Iters>().is_none_or(|i| i.buf != buf);
    if stale {
        msg.ext.insert(Iters {
            buf,
            ..Iters::default()
        });
    }
    msg.ext
        .get_mut::<Iters>()
        .unwrap_or_else(|| unreachable!("inserted just above"))
}

/// The iterators, when they are over the message's current buffer.
fn current(msg: &SipMsg) -> Option<&Iters> {
    msg.ext.get::<Iters>().filter(|i| i.buf == buf_of(msg))
}

fn slot<T>(list: &mut Vec<(String, Option<T>)>, name: &str) -> usize {
    match list.iter().position(|(n, _)| n == name) {
        Some(i) => i,
        None => {
            list.push((name.to_string(), None));
            list.len() - 1
        }
    }
}

/// `hf_iterator_start`: before the first header.
pub fn hf_start(msg: &mut SipMsg, name: &str) -> i32 {
    let it = iters(msg);
    let i = slot(&mut it.hf, name);
    it.hf[i].1 = None;
    1
}

/// `hf_iterator_end`.
pub fn hf_end(msg: &mut SipMsg, name: &str) -> i32 {
    if let Some(it) = msg.ext.get_mut::<Iters>() {
        it.hf.retain(|(n, _)| n != name);
    }
    1
}

/// The current header index of iterator `name`.
fn hf_pos(msg: &SipMsg, name: &str) -> Option<usize> {
    current(msg)?.hf.iter().find(|(n, _)| n == name)?.1
}

/// `hf_iterator_next` (`step` 1) and `hf_iterator_prev` (-1): 1, or -1
/// past either end (the iterator then starts over).
pub fn hf_step(msg: &mut SipMsg, name: &str, step: i64) -> i32 {
    let count = msg.msg().headers().len() as i64;
    let it = iters(msg);
    let i = slot(&mut it.hf, name);
    let next = match it.hf[i].1 {
        None if step > 0 => 0,
        None => -1,
        Some(p) => p as i64 + step,
    };
    if (0..count).contains(&next) {
        it.hf[i].1 = Some(next as usize);
        1
    } else {
        it.hf[i].1 = None;
        -1
    }
}

/// `$hfitname(name)` and `$hfitbody(name)`.
pub fn hf_value(msg: &SipMsg, name: &str, body: bool) -> Value<'static> {
    let Some(p) = hf_pos(msg, name) else {
        return Value::Null;
    };
    match msg.msg().headers().get(p) {
        Some(h) if body => Value::from(h.value.to_string()),
        Some(h) => Value::from(h.name_str.to_string()),
        None => Value::Null,
    }
}

/// `hf_iterator_rm` (`text` none), `hf_iterator_append` (after the
/// header) and `hf_iterator_insert` (before it).
pub fn hf_edit(msg: &mut SipMsg, name: &str, text: Option<&str>, after: bool) -> i32 {
    let Some(p) = hf_pos(msg, name) else {
        lm_err!("textopsx: iterator {name} is not at a header");
        return -1;
    };
    let Some((start, end)) = msg.msg().headers().get(p).map(|h| (h.start, h.end)) else {
        return -1;
    };
    match text {
        None => msg.edits.delete(start, end),
        Some(t) => msg
            .edits
            .insert(if after { end } else { start }, t.as_bytes()),
    }
    1
}

/// `bl_iterator_start`: before the first line of the body.
pub fn bl_start(msg: &mut SipMsg, name: &str) -> i32 {
    let it = iters(msg);
    let i = slot(&mut it.bl, name);
    it.bl[i].1 = None;
    1
}

/// `bl_iterator_end`.
pub fn bl_end(msg: &mut SipMsg, name: &str) -> i32 {
    if let Some(it) = msg.ext.get_mut::<Iters>() {
        it.bl.retain(|(n, _)| n != name);
    }
    1
}

fn bl_pos(msg: &SipMsg, name: &str) -> Option<(u32, u32)> {
    current(msg)?.bl.iter().find(|(n, _)| n == name)?.1
}

/// `bl_iterator_next`: the next line (with its line end); -1 at the end.
pub fn bl_next(msg: &mut SipMsg, name: &str) -> i32 {
    let m = msg.msg();
    let raw = m.raw();
    let body_start = m.body_start();
    let total = raw.len() as u32;
    let from = bl_pos(msg, name).map_or(body_start, |(_, e)| e);
    let next = if from >= total {
        None
    } else {
        let end = raw[from as usize..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(total, |i| from + i as u32 + 1);
        Some((from, end))
    };
    let it = iters(msg);
    let i = slot(&mut it.bl, name);
    it.bl[i].1 = next;
    if next.is_some() {
        1
    } else {
        -1
    }
}

/// `$blitval(name)`: the current line, with its line end.
pub fn bl_value(msg: &SipMsg, name: &str) -> Value<'static> {
    match bl_pos(msg, name) {
        Some((s, e)) => match msg.msg().raw().get(s as usize..e as usize) {
            Some(line) => Value::from(String::from_utf8_lossy(line).into_owned()),
            None => Value::Null,
        },
        None => Value::Null,
    }
}

/// `bl_iterator_rm`, `bl_iterator_append` (after the line),
/// `bl_iterator_insert` (before it).
pub fn bl_edit(msg: &mut SipMsg, name: &str, text: Option<&str>, after: bool) -> i32 {
    let Some((start, end)) = bl_pos(msg, name) else {
        lm_err!("textopsx: iterator {name} is not at a body line");
        return -1;
    };
    match text {
        None => msg.edits.delete(start, end),
        Some(t) => msg
            .edits
            .insert(if after { end } else { start }, t.as_bytes()),
    }
    1
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use sr_sdk::RecvInfo;

    #[test]
    fn iterators_end_when_the_message_is_parsed_again() {
        let text = "MESSAGE sip:b@x SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\nCall-ID: c\r\nCSeq: 1 MESSAGE\r\nContent-Length: 27\r\n\r\nline one\r\nline number two\r\n";
        let mut m = SipMsg::parse(Bytes::from(text), RecvInfo::loopback(), 1).unwrap();
        bl_start(&mut m, "b");
        assert_eq!(bl_next(&mut m, "b"), 1);
        assert_eq!(bl_next(&mut m, "b"), 1);
        assert_eq!(bl_value(&m, "b").as_str(), "line number two\r\n");
        hf_start(&mut m, "h");
        assert_eq!(hf_step(&mut m, "h", 1), 1);
        // A shorter message in its place (msg_set_buffer): the old
        // positions are gone, nothing panics or edits the new one.
        let short = "MESSAGE sip:b@x SIP/2.0\r\nCall-ID: c\r\n\r\n";
        m.reparse(Bytes::from(short)).unwrap();
        assert!(matches!(bl_value(&m, "b"), Value::Null));
        assert_eq!(bl_edit(&mut m, "b", None, false), -1);
        assert_eq!(hf_edit(&mut m, "h", Some("X: 1\r\n"), true), -1);
        assert!(m.edits.is_empty());
    }
}
