//! The compact in-memory form of a contact.
//!
//! A [`Contact`] holds its text as nine separate `String`s; kept that way,
//! every binding would cost about ten heap allocations with their slack.
//! A [`StoredContact`] keeps all of its text in one exact-size
//! [`TextPack`] next to its numbers, and not the AoR: the record it is
//! stored under already has it.

use crate::contact::Contact;
use crate::textpack::TextPack;

/// Positions of the text fields in the pack. A field is found by
/// walking the ones before it, so those read most (the URI and ruid to
/// match a binding, then `received` and the instance for each binding a
/// 200 to REGISTER lists) come first.
mod field {
    pub const CONTACT: usize = 0;
    pub const RUID: usize = 1;
    pub const RECEIVED: usize = 2;
    pub const INSTANCE: usize = 3;
    pub const CALLID: usize = 4;
    pub const PATH: usize = 5;
    pub const SOCKET: usize = 6;
    pub const USER_AGENT: usize = 7;
    pub const COUNT: usize = 8;
}

/// A contact as kept in memory (see the module docs).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoredContact {
    text: TextPack,
    expires: i64,
    last_modified: i64,
    connection_id: i64,
    q: i32,
    cseq: u32,
    flags: u32,
    cflags: u32,
    methods: u32,
    reg_id: u32,
    keepalive: i32,
}

impl StoredContact {
    /// The compact form of `c` (its AoR is left out).
    pub fn pack(c: &Contact) -> StoredContact {
        let mut t: [Option<&str>; field::COUNT] = [None; field::COUNT];
        t[field::RUID] = Some(&c.ruid);
        t[field::CONTACT] = Some(&c.contact);
        t[field::CALLID] = Some(&c.callid);
        t[field::USER_AGENT] = Some(&c.user_agent);
        t[field::RECEIVED] = c.received.as_deref();
        t[field::PATH] = c.path.as_deref();
        t[field::SOCKET] = c.socket.as_deref();
        t[field::INSTANCE] = c.instance.as_deref();
        StoredContact {
            text: TextPack::new(&t),
            expires: c.expires,
            last_modified: c.last_modified,
            connection_id: c.connection_id,
            q: c.q,
            cseq: c.cseq,
            flags: c.flags,
            cflags: c.cflags,
            methods: c.methods,
            reg_id: c.reg_id,
            keepalive: c.keepalive,
        }
    }

    /// The full contact, as a binding of `aor`.
    pub fn unpack(&self, aor: &str) -> Contact {
        let mut t: [Option<&str>; field::COUNT] = [None; field::COUNT];
        for (slot, f) in t.iter_mut().zip(self.text.iter()) {
            *slot = f;
        }
        let owned = |i: usize| t[i].map(str::to_string);
        let text = |i: usize| owned(i).unwrap_or_default();
        Contact {
            aor: aor.to_string(),
            ruid: text(field::RUID),
            contact: text(field::CONTACT),
            received: owned(field::RECEIVED),
            path: owned(field::PATH),
            expires: self.expires,
            q: self.q,
            callid: text(field::CALLID),
            cseq: self.cseq,
            last_modified: self.last_modified,
            flags: self.flags,
            cflags: self.cflags,
            user_agent: text(field::USER_AGENT),
            socket: owned(field::SOCKET),
            methods: self.methods,
            instance: owned(field::INSTANCE),
            reg_id: self.reg_id,
            connection_id: self.connection_id,
            keepalive: self.keepalive,
        }
    }

    /// The unique record id.
    pub fn ruid(&self) -> &str {
        self.text.get(field::RUID).unwrap_or_default()
    }

    /// The contact URI.
    pub fn contact(&self) -> &str {
        self.text.get(field::CONTACT).unwrap_or_default()
    }

    /// Call-ID of the last REGISTER.
    pub fn callid(&self) -> &str {
        self.text.get(field::CALLID).unwrap_or_default()
    }

    /// `received`, if any.
    pub fn received(&self) -> Option<&str> {
        self.text.get(field::RECEIVED)
    }

    /// `+sip.instance`, if any.
    pub fn instance(&self) -> Option<&str> {
        self.text.get(field::INSTANCE)
    }

    /// Absolute expiry (0: never).
    pub fn expires(&self) -> i64 {
        self.expires
    }

    /// q in thousandths, or `Q_UNSPECIFIED`.
    pub fn q(&self) -> i32 {
        self.q
    }

    /// CSeq of the last REGISTER.
    pub fn cseq(&self) -> u32 {
        self.cseq
    }

    /// `reg-id`.
    pub fn reg_id(&self) -> u32 {
        self.reg_id
    }

    /// Whether it is still valid at `now` (as [`Contact::is_valid`]).
    pub fn is_valid(&self, now: i64) -> bool {
        crate::contact::valid_at(self.expires, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut c = Contact::new("a@x", "sip:a@1.2.3.4:5060;transport=udp");
        assert_eq!(StoredContact::pack(&c).unpack("a@x"), c);
        c.received = Some("sip:9.9.9.9:1234".into());
        c.path = Some(String::new());
        c.socket = Some("udp:127.0.0.1:5060".into());
        c.instance = Some("<urn:uuid:00000000-0000-1000-8000-000A95A0E128>".into());
        c.user_agent = "ua".into();
        c.callid = "cid@h".into();
        (c.expires, c.last_modified, c.connection_id) = (i64::MAX, -1, i64::MIN);
        (c.q, c.cseq, c.flags, c.cflags) = (500, u32::MAX, 3, 7);
        (c.methods, c.reg_id, c.keepalive) = (9, 2, -4);
        let s = StoredContact::pack(&c);
        assert_eq!(s.unpack("a@x"), c);
        assert_eq!(s.ruid(), c.ruid);
        assert!(s.is_valid(0));
        assert_eq!(s.unpack("b").aor, "b");
    }

    #[test]
    fn small() {
        assert!(std::mem::size_of::<StoredContact>() <= 72);
    }
}
