//! Kamailio's BINRPC protocol (its `ctl` module's, spoken by `kamcmd`), on
//! the same control socket as JSON-RPC: a packet is a header (magic `0xA`,
//! version 1, type, the body length and a cookie, big-endian on as few
//! bytes as they need) and a body of records, each a byte of size and
//! type (int, 0-terminated string, fixed-point double, bytes, struct and
//! array marks, struct members as name/value pairs) and its value. A
//! request is the method name and its parameters; the reply carries the
//! result's values, a fault an int code and a message.
//!
//! Decoding never panics on input: a short or malformed packet is an
//! error.

use sr_sdk::serde_json::{Map, Number, Value as Json};

/// First byte of every packet: magic 0xA, version 1.
pub const MAGIC_VERS: u8 = 0xA1;

/// Packet types.
pub const REQ: u8 = 0;
/// A reply.
pub const REPL: u8 = 1;
/// A fault (error reply).
pub const FAULT: u8 = 3;

const T_INT: u8 = 0;
const T_STR: u8 = 1;
const T_DOUBLE: u8 = 2;
const T_STRUCT: u8 = 3;
const T_ARRAY: u8 = 4;
const T_AVP: u8 = 5;
const T_BYTES: u8 = 6;

/// Nesting deeper than this is refused (input is untrusted).
const MAX_DEPTH: usize = 32;

/// A packet's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Packet type (`REQ`, `REPL`, `FAULT`).
    pub kind: u8,
    /// Header length in bytes.
    pub header_len: usize,
    /// Body length in bytes.
    pub body_len: usize,
    /// The cookie, echoed in the reply.
    pub cookie: u32,
}

/// A malformed packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadPacket(pub &'static str);

fn read_be(b: &[u8]) -> u32 {
    b.iter().fold(0u32, |a, &x| (a << 8) | u32::from(x))
}

/// Reads a header; `Ok(None)` when more bytes are needed.
pub fn header(buf: &[u8]) -> Result<Option<Header>, BadPacket> {
    if buf.is_empty() {
        return Ok(None);
    }
    if buf[0] != MAGIC_VERS {
        return Err(BadPacket("not a BINRPC packet"));
    }
    if buf.len() < 2 {
        return Ok(None);
    }
    let kind = buf[1] >> 4;
    if !matches!(kind, REQ | REPL | FAULT) {
        return Err(BadPacket("unknown packet type"));
    }
    let len_len = usize::from((buf[1] >> 2) & 3) + 1;
    let c_len = usize::from(buf[1] & 3) + 1;
    let header_len = 2 + len_len + c_len;
    if buf.len() < header_len {
        return Ok(None);
    }
    Ok(Some(Header {
        kind,
        header_len,
        body_len: read_be(&buf[2..2 + len_len]) as usize,
        cookie: read_be(&buf[2 + len_len..header_len]),
    }))
}

/// The minimal big-endian bytes of `v` (none for 0).
fn min_be(v: u32) -> Vec<u8> {
    let b = v.to_be_bytes();
    let skip = b.iter().take_while(|&&x| x == 0).count();
    b[skip..].to_vec()
}

/// Builds a packet of `kind` with `body` and `cookie`.
pub fn packet(kind: u8, cookie: u32, body: &[u8]) -> Vec<u8> {
    let mut len = min_be(body.len() as u32);
    if len.is_empty() {
        len.push(0);
    }
    let mut c = min_be(cookie);
    if c.is_empty() {
        c.push(0);
    }
    let mut out = vec![
        MAGIC_VERS,
        (kind << 4) | ((len.len() as u8 - 1) << 2) | (c.len() as u8 - 1),
    ];
    out.extend_from_slice(&len);
    out.extend_from_slice(&c);
    out.extend_from_slice(body);
    out
}

/// Writes a record's size-and-type byte for a value of `len` bytes
/// (the length on its own bytes when 8 or more).
fn mark(out: &mut Vec<u8>, ty: u8, len: usize) {
    if len < 8 {
        out.push(((len as u8) << 4) | ty);
    } else {
        let l = min_be(len as u32);
        out.push((((l.len() as u8) | 8) << 4) | ty);
        out.extend_from_slice(&l);
    }
}

fn put_int(out: &mut Vec<u8>, ty: u8, v: i32) {
    let b = min_be(v as u32);
    out.push(((b.len() as u8) << 4) | ty);
    out.extend_from_slice(&b);
}

fn put_str(out: &mut Vec<u8>, ty: u8, s: &str) {
    mark(out, ty, s.len() + 1);
    out.extend_from_slice(s.as_bytes());
    out.push(0);
}

/// Writes one value: strings, integers that fit 32 bits (others as their
/// digits), doubles (fixed point, three decimals), booleans as 0/1,
/// objects as structs and arrays as arrays (inside a struct, as a struct
/// of unnamed values).
fn put_value(out: &mut Vec<u8>, v: &Json) {
    match v {
        // What Kamailio's binrpc writes for a null string.
        Json::Null => put_str(out, T_STR, "<null string>"),
        Json::Bool(b) => put_int(out, T_INT, i32::from(*b)),
        Json::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => match i32::try_from(i) {
                Ok(i) => put_int(out, T_INT, i),
                // An unsigned 32-bit value goes as its bits, as C's "d"
                // of an unsigned int (-1 for all ones).
                Err(_) if (0..=i64::from(u32::MAX)).contains(&i) => {
                    put_int(out, T_INT, i as u32 as i32)
                }
                Err(_) => put_str(out, T_STR, &i.to_string()),
            },
            (None, Some(_)) if n.is_u64() => put_str(out, T_STR, &n.to_string()),
            (None, Some(f)) => put_int(out, T_DOUBLE, (f * 1000.0) as i32),
            _ => put_str(out, T_STR, &n.to_string()),
        },
        Json::String(s) => put_str(out, T_STR, s),
        // A list as a struct of unnamed values: Kamailio's binrpc
        // writes its `[` as a struct, and `kamcmd` shows it so.
        Json::Array(a) => {
            out.push(T_STRUCT);
            for x in a {
                put_value(out, x);
            }
            out.push(0x80 | T_STRUCT);
        }
        Json::Object(o) => {
            out.push(T_STRUCT);
            for (k, x) in o {
                match x {
                    // A list of one-member structs all named alike is the
                    // member repeated (how Kamailio's RPCs list, e.g.
                    // dispatcher's SET and DEST, and how its JSON-RPC
                    // shows them).
                    Json::Array(a) if repeated_member(a).is_some() => {
                        let name = repeated_member(a).unwrap_or_default();
                        put_str(out, T_AVP, k);
                        out.push(T_STRUCT);
                        for y in a {
                            if let Some(v) = y.as_object().and_then(|o| o.get(&name)) {
                                put_str(out, T_AVP, &name);
                                put_value(out, v);
                            }
                        }
                        out.push(0x80 | T_STRUCT);
                    }
                    // Another list inside a struct: a struct of unnamed
                    // values, as Kamailio's binrpc writes one (`kamcmd`
                    // reads no arrays there).
                    Json::Array(a) => {
                        put_str(out, T_AVP, k);
                        out.push(T_STRUCT);
                        for y in a {
                            put_value(out, y);
                        }
                        out.push(0x80 | T_STRUCT);
                    }
                    _ => {
                        put_str(out, T_AVP, k);
                        put_value(out, x);
                    }
                }
            }
            out.push(0x80 | T_STRUCT);
        }
    }
}

/// The member name when every element of `a` is a struct of that one
/// member.
fn repeated_member(a: &[Json]) -> Option<String> {
    let first = a.first()?.as_object()?;
    if first.len() != 1 {
        return None;
    }
    let name = first.keys().next()?;
    a.iter()
        .all(|x| {
            x.as_object()
                .is_some_and(|o| o.len() == 1 && o.contains_key(name))
        })
        .then(|| name.clone())
}

/// The body of a reply carrying `result`: an array's elements as values
/// of their own (an RPC that answers several values), anything else as
/// one value, nothing for null.
pub fn reply_body(result: &Json) -> Vec<u8> {
    let mut out = Vec::new();
    match result {
        Json::Null => {}
        Json::Array(a) => {
            for x in a {
                put_value(&mut out, x);
            }
        }
        other => put_value(&mut out, other),
    }
    out
}

/// The body of a fault.
pub fn fault_body(code: i64, message: &str) -> Vec<u8> {
    let mut out = Vec::new();
    put_int(&mut out, T_INT, i32::try_from(code).unwrap_or(500));
    put_str(&mut out, T_STR, message);
    out
}

/// A request's body as a list of values (used by tests and clients).
pub fn request_body(method: &str, params: &[Json]) -> Vec<u8> {
    let mut out = Vec::new();
    put_str(&mut out, T_STR, method);
    for p in params {
        put_value(&mut out, p);
    }
    out
}

/// A record read from a body.
enum Rec {
    Value(Json),
    Start(u8),
    End(u8),
    Name(String),
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], BadPacket> {
        let end = self.at.checked_add(n).ok_or(BadPacket("length overflow"))?;
        let s = self
            .b
            .get(self.at..end)
            .ok_or(BadPacket("truncated record"))?;
        self.at = end;
        Ok(s)
    }

    fn done(&self) -> bool {
        self.at >= self.b.len()
    }

    fn record(&mut self) -> Result<Rec, BadPacket> {
        let first = self.take(1)?[0];
        let ty = first & 0xf;
        let mut len = usize::from(first >> 4);
        let ext = len & 8 != 0;
        if ext {
            let n = len & 7;
            if n > 4 {
                return Err(BadPacket("bad length size"));
            }
            len = read_be(self.take(n)?) as usize;
        }
        let text = |s: &[u8]| {
            let s = s.strip_suffix(&[0]).unwrap_or(s);
            String::from_utf8_lossy(s).into_owned()
        };
        Ok(match ty {
            T_INT => {
                if len > 4 {
                    return Err(BadPacket("int longer than 4 bytes"));
                }
                Rec::Value(Json::from(read_be(self.take(len)?) as i32))
            }
            T_DOUBLE => {
                if len > 4 {
                    return Err(BadPacket("double longer than 4 bytes"));
                }
                let i = read_be(self.take(len)?) as i32;
                Rec::Value(Number::from_f64(f64::from(i) / 1000.0).map_or(Json::Null, Json::Number))
            }
            T_STR => Rec::Value(Json::String(text(self.take(len)?))),
            T_BYTES => Rec::Value(Json::String(
                String::from_utf8_lossy(self.take(len)?).into_owned(),
            )),
            T_AVP => Rec::Name(text(self.take(len)?)),
            T_STRUCT | T_ARRAY if ext && len == 0 => Rec::End(ty),
            T_STRUCT | T_ARRAY => {
                self.take(len)?;
                Rec::Start(ty)
            }
            _ => return Err(BadPacket("unknown record type")),
        })
    }

    /// One value: a plain record, or a whole struct or array.
    fn value(&mut self, depth: usize) -> Result<Json, BadPacket> {
        if depth > MAX_DEPTH {
            return Err(BadPacket("nested too deep"));
        }
        match self.record()? {
            Rec::Value(v) => Ok(v),
            Rec::Start(T_ARRAY) => {
                let mut a = Vec::new();
                loop {
                    let save = self.at;
                    if let Rec::End(T_ARRAY) = self.record()? {
                        return Ok(Json::Array(a));
                    }
                    self.at = save;
                    a.push(self.value(depth + 1)?);
                }
            }
            Rec::Start(_) => {
                let mut o = Map::new();
                loop {
                    let save = self.at;
                    match self.record()? {
                        Rec::End(T_STRUCT) => {
                            // A struct of unnamed values only is a list.
                            if o.len() == 1 && o.contains_key("") {
                                return Ok(o.remove("").unwrap_or(Json::Null));
                            }
                            return Ok(Json::Object(o));
                        }
                        Rec::Value(v) => {
                            // Unnamed values: a list written as a struct.
                            let list = o
                                .entry(String::new())
                                .or_insert_with(|| Json::Array(Vec::new()));
                            if let Json::Array(a) = list {
                                a.push(v);
                            }
                        }
                        Rec::Start(_) => {
                            self.at = save;
                            let v = self.value(depth + 1)?;
                            let list = o
                                .entry(String::new())
                                .or_insert_with(|| Json::Array(Vec::new()));
                            if let Json::Array(a) = list {
                                a.push(v);
                            }
                        }
                        Rec::Name(n) => {
                            let v = self.value(depth + 1)?;
                            // A member repeated becomes a list.
                            match o.get_mut(&n) {
                                Some(Json::Array(a)) => a.push(v),
                                Some(prev) => {
                                    let p = prev.take();
                                    *prev = Json::Array(vec![p, v]);
                                }
                                None => {
                                    o.insert(n, v);
                                }
                            }
                        }
                        _ => return Err(BadPacket("a struct holds name/value pairs")),
                    }
                }
            }
            Rec::End(_) => Err(BadPacket("unexpected end mark")),
            Rec::Name(_) => Err(BadPacket("a name outside a struct")),
        }
    }
}

/// Reads a body into its values.
pub fn values(body: &[u8]) -> Result<Vec<Json>, BadPacket> {
    let mut r = Reader { b: body, at: 0 };
    let mut out = Vec::new();
    while !r.done() {
        out.push(r.value(0)?);
    }
    Ok(out)
}

/// Reads a request body: the method and its parameters.
pub fn request(body: &[u8]) -> Result<(String, Vec<Json>), BadPacket> {
    let mut v = values(body)?.into_iter();
    match v.next() {
        Some(Json::String(m)) if !m.is_empty() => Ok((m, v.collect())),
        _ => Err(BadPacket("no method name")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sr_sdk::serde_json::json;

    #[test]
    fn records_are_written_as_kamailio_writes_them() {
        // The examples of Kamailio's binrpc.h.
        let mut o = Vec::new();
        put_int(&mut o, T_INT, 0x1234);
        put_int(&mut o, T_INT, 7);
        put_int(&mut o, T_INT, 0);
        assert_eq!(o, [0x20, 0x12, 0x34, 0x10, 0x07, 0x00]);
        let mut o = Vec::new();
        put_str(&mut o, T_STR, "abcdef");
        put_str(&mut o, T_STR, "abcdefhij");
        assert_eq!(&o[..8], [0x71, b'a', b'b', b'c', b'd', b'e', b'f', 0]);
        assert_eq!(&o[8..10], [0x91, 0x0A]);
        // A list goes as a struct of unnamed values (Kamailio's ctl
        // writes an RPC's `[` so; binrpc.h's own example uses an array).
        let o = reply_body(&json!([[1, 2], {"intval": 3, "s": "abc"}]));
        assert_eq!(
            o,
            [
                0x03, 0x10, 0x01, 0x10, 0x02, 0x83, 0x03, 0x75, b'i', b'n', b't', b'v', b'a', b'l',
                0, 0x10, 0x03, 0x25, b's', 0, 0x41, b'a', b'b', b'c', 0, 0x83
            ]
        );
    }

    #[test]
    fn packets_round_trip() {
        let body = request_body(
            "htable.get",
            &[json!("t"), json!(5), json!({"a": [1, 2], "b": "x"})],
        );
        let p = packet(REQ, 0x1234_5678, &body);
        let h = header(&p).unwrap().unwrap();
        assert_eq!(
            (h.kind, h.cookie, h.body_len),
            (REQ, 0x1234_5678, body.len())
        );
        let (m, params) = request(&p[h.header_len..]).unwrap();
        assert_eq!(m, "htable.get");
        assert_eq!(
            params,
            vec![json!("t"), json!(5), json!({"a": [1, 2], "b": "x"})]
        );
        assert_eq!(values(&reply_body(&json!(2.5))).unwrap(), vec![json!(2.5)]);
        assert_eq!(
            values(&reply_body(&json!(5_000_000_000i64))).unwrap(),
            vec![json!("5000000000")]
        );
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        assert!(header(&[0x12]).is_err());
        assert_eq!(header(&[MAGIC_VERS]).unwrap(), None);
        for bad in [
            &[0x71, b'a'][..],
            &[0x84][..],
            &[0x05, 0x01][..],
            &[0x03, 0x10, 0x01][..],
            &[0xF0, 1, 2, 3, 4, 5, 6, 7][..],
            &[0x0f][..],
        ] {
            assert!(values(bad).is_err(), "{bad:?}");
        }
        // Random bytes never panic.
        let mut seed = 1u64;
        for _ in 0..2000 {
            let n = (seed % 24) as usize;
            let bytes: Vec<u8> = (0..n)
                .map(|_| {
                    seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                    (seed >> 56) as u8
                })
                .collect();
            let _ = values(&bytes);
            let _ = header(&bytes);
        }
        let deep: Vec<u8> = std::iter::repeat_n(T_ARRAY, 100).collect();
        assert!(values(&deep).is_err());
    }
}
