//! The contacts of one AoR while they are being changed (see
//! [`Domain::with_record`](crate::Domain::with_record)).
//!
//! A record works on the stored (packed) contacts where it can: a
//! contact is unpacked into a full [`Contact`] only when it is read
//! whole or changed, and a contact left as it was is stored again as it
//! was. A REGISTER that refreshes one binding of an AoR with many then
//! costs one unpacked contact, not one per binding (unpacking copies
//! each text field into its own `String`).

use crate::contact::{remaining_at, valid_at, Contact};
use crate::stored::StoredContact;

/// A contact of a record as read, whichever form it is in.
#[derive(Debug, Clone, Copy)]
pub enum ContactRef<'a> {
    /// As stored (packed).
    Stored(&'a StoredContact),
    /// Unpacked.
    Open(&'a Contact),
}

impl<'a> ContactRef<'a> {
    /// The unique record id.
    pub fn ruid(&self) -> &'a str {
        match self {
            ContactRef::Stored(s) => s.ruid(),
            ContactRef::Open(c) => &c.ruid,
        }
    }

    /// The contact URI.
    pub fn contact(&self) -> &'a str {
        match self {
            ContactRef::Stored(s) => s.contact(),
            ContactRef::Open(c) => &c.contact,
        }
    }

    /// Call-ID of the last REGISTER.
    pub fn callid(&self) -> &'a str {
        match self {
            ContactRef::Stored(s) => s.callid(),
            ContactRef::Open(c) => &c.callid,
        }
    }

    /// `received`, if any.
    pub fn received(&self) -> Option<&'a str> {
        match self {
            ContactRef::Stored(s) => s.received(),
            ContactRef::Open(c) => c.received.as_deref(),
        }
    }

    /// `+sip.instance`, if any.
    pub fn instance(&self) -> Option<&'a str> {
        match self {
            ContactRef::Stored(s) => s.instance(),
            ContactRef::Open(c) => c.instance.as_deref(),
        }
    }

    /// Absolute expiry in unix seconds (0: never).
    pub fn expires(&self) -> i64 {
        match self {
            ContactRef::Stored(s) => s.expires(),
            ContactRef::Open(c) => c.expires,
        }
    }

    /// q in thousandths, or [`Q_UNSPECIFIED`](crate::Q_UNSPECIFIED).
    pub fn q(&self) -> i32 {
        match self {
            ContactRef::Stored(s) => s.q(),
            ContactRef::Open(c) => c.q,
        }
    }

    /// CSeq of the last REGISTER.
    pub fn cseq(&self) -> u32 {
        match self {
            ContactRef::Stored(s) => s.cseq(),
            ContactRef::Open(c) => c.cseq,
        }
    }

    /// `reg-id` (RFC 5626).
    pub fn reg_id(&self) -> u32 {
        match self {
            ContactRef::Stored(s) => s.reg_id(),
            ContactRef::Open(c) => c.reg_id,
        }
    }

    /// Whether it is still valid at `now` (as [`Contact::is_valid`]).
    pub fn is_valid(&self, now: i64) -> bool {
        valid_at(self.expires(), now)
    }

    /// Seconds left at `now` (as [`Contact::remaining`]).
    pub fn remaining(&self, now: i64) -> i64 {
        remaining_at(self.expires(), now)
    }

    /// The full contact, as a binding of `aor`.
    pub fn to_contact(&self, aor: &str) -> Contact {
        match self {
            ContactRef::Stored(s) => s.unpack(aor),
            ContactRef::Open(c) => (*c).clone(),
        }
    }
}

/// One contact of a record.
#[derive(Debug, Clone)]
pub(crate) enum Entry {
    /// Still as stored: the index in the record's stored contacts.
    Stored(usize),
    /// Unpacked (boxed: the entries stay small, and a record of many
    /// contacts does not ask malloc for a large block per request); with
    /// the index of its stored form when it is unchanged.
    Open(Box<Contact>, Option<usize>),
}

/// The contacts of one AoR being changed under its lock (see
/// [`Domain::with_record`](crate::Domain::with_record)); changes are
/// recorded and written to the database as the mode says when the
/// closure returns `Ok`.
#[derive(Debug, Clone)]
pub struct Record<'a> {
    pub(crate) aor: String,
    /// The contacts as stored when the record was opened.
    pub(crate) base: &'a [StoredContact],
    pub(crate) entries: Vec<Entry>,
    pub(crate) changed: Vec<String>,
    /// The ruids of `changed` that [`Record::insert`] added: not in the
    /// database yet, so written with INSERT rather than UPDATE first.
    pub(crate) added: Vec<String>,
    pub(crate) removed: Vec<String>,
}

impl<'a> Record<'a> {
    /// A record over stored contacts.
    pub(crate) fn stored(aor: &str, base: &'a [StoredContact]) -> Record<'a> {
        Record {
            aor: aor.to_string(),
            base,
            entries: (0..base.len()).map(Entry::Stored).collect(),
            changed: Vec::new(),
            added: Vec::new(),
            removed: Vec::new(),
        }
    }

    /// A record over full contacts (read from the database).
    pub(crate) fn open(aor: &str, contacts: Vec<Contact>) -> Record<'a> {
        Record {
            aor: aor.to_string(),
            base: &[],
            entries: contacts
                .into_iter()
                .map(|c| Entry::Open(Box::new(c), None))
                .collect(),
            changed: Vec::new(),
            added: Vec::new(),
            removed: Vec::new(),
        }
    }

    fn view<'s>(&'s self, e: &'s Entry) -> ContactRef<'s> {
        match e {
            Entry::Stored(i) => ContactRef::Stored(&self.base[*i]),
            Entry::Open(c, _) => ContactRef::Open(c),
        }
    }

    /// The AoR.
    pub fn aor(&self) -> &str {
        &self.aor
    }

    /// Every contact (possibly some already expired), as read.
    pub fn iter(&self) -> impl Iterator<Item = ContactRef<'_>> {
        self.entries.iter().map(|e| self.view(e))
    }

    /// The contacts valid at `now`.
    pub fn valid(&self, now: i64) -> impl Iterator<Item = ContactRef<'_>> {
        self.iter().filter(move |c| c.is_valid(now))
    }

    /// The first contact `pred` accepts, in full.
    pub fn find(&self, mut pred: impl FnMut(&ContactRef<'_>) -> bool) -> Option<Contact> {
        self.iter()
            .find(|c| pred(c))
            .map(|c| c.to_contact(&self.aor))
    }

    /// Every contact in full (unpacking those still stored).
    pub fn contacts(&mut self) -> impl Iterator<Item = &Contact> {
        self.open_all();
        self.entries.iter().filter_map(|e| match e {
            Entry::Open(c, _) => Some(&**c),
            Entry::Stored(_) => None,
        })
    }

    /// Unpacks every contact still stored (kept unchanged).
    pub(crate) fn open_all(&mut self) {
        let (aor, base) = (&self.aor, self.base);
        for e in &mut self.entries {
            if let Entry::Stored(i) = *e {
                *e = Entry::Open(Box::new(base[i].unpack(aor)), Some(i));
            }
        }
    }

    /// Adds a contact (its ruid must be new).
    pub fn insert(&mut self, c: Contact) {
        self.changed.push(c.ruid.clone());
        self.added.push(c.ruid.clone());
        self.entries.push(Entry::Open(Box::new(c), None));
    }

    /// Replaces the contact with the same ruid (adds it if there is none).
    pub fn update(&mut self, c: Contact) {
        let at = self.position(&c.ruid);
        self.changed.push(c.ruid.clone());
        match at {
            Some(i) => self.entries[i] = Entry::Open(Box::new(c), None),
            None => self.entries.push(Entry::Open(Box::new(c), None)),
        }
    }

    fn position(&self, ruid: &str) -> Option<usize> {
        self.entries
            .iter()
            .position(|e| self.view(e).ruid() == ruid)
    }

    /// Removes a contact by ruid; whether it was there.
    pub fn remove(&mut self, ruid: &str) -> bool {
        let before = self.entries.len();
        let base = self.base;
        self.entries.retain(|e| {
            let r = match e {
                Entry::Stored(i) => base[*i].ruid(),
                Entry::Open(c, _) => &c.ruid,
            };
            r != ruid
        });
        if self.entries.len() != before {
            self.changed.retain(|r| r != ruid);
            self.added.retain(|r| r != ruid);
            self.removed.push(ruid.to_string());
            true
        } else {
            false
        }
    }

    /// Removes every contact; how many there were.
    pub fn clear(&mut self) -> usize {
        let ruids: Vec<String> = self.iter().map(|c| c.ruid().to_string()).collect();
        ruids.iter().for_each(|r| {
            self.remove(r);
        });
        ruids.len()
    }

    /// What is left once the stored contacts are let go: the entries
    /// (indices into the old stored contacts and unpacked contacts) and
    /// the change lists.
    pub(crate) fn detach(self) -> Detached {
        Detached {
            aor: self.aor,
            entries: self.entries,
            changed: self.changed,
            added: self.added,
            removed: self.removed,
        }
    }
}

/// A [`Record`] without its borrow of the stored contacts (see
/// [`Record::detach`]).
#[derive(Debug)]
pub(crate) struct Detached {
    pub(crate) aor: String,
    pub(crate) entries: Vec<Entry>,
    pub(crate) changed: Vec<String>,
    pub(crate) added: Vec<String>,
    pub(crate) removed: Vec<String>,
}

impl Detached {
    /// Whether anything changed.
    pub(crate) fn is_changed(&self) -> bool {
        !self.changed.is_empty() || !self.removed.is_empty()
    }

    /// The new stored contacts: unchanged ones moved over from `old`
    /// (the stored contacts the record was opened on), the others
    /// packed.
    pub(crate) fn restore(&self, mut old: Vec<StoredContact>) -> Vec<StoredContact> {
        // The usual change, a refresh of some bindings: every entry still
        // in its place, so the changed ones are packed into their slots
        // and nothing else moves.
        let in_place = self.entries.len() == old.len()
            && self.entries.iter().enumerate().all(|(j, e)| match e {
                Entry::Stored(i) | Entry::Open(_, Some(i)) => *i == j,
                Entry::Open(_, None) => true,
            });
        if in_place {
            for (slot, e) in old.iter_mut().zip(&self.entries) {
                if let Entry::Open(c, None) = e {
                    *slot = StoredContact::pack(c);
                }
            }
            return old;
        }
        let mut take = |i: usize| std::mem::take(&mut old[i]);
        self.entries
            .iter()
            .map(|e| match e {
                // (An index is in one entry only: each is taken once.)
                Entry::Stored(i) | Entry::Open(_, Some(i)) => take(*i),
                Entry::Open(c, None) => StoredContact::pack(c),
            })
            .collect()
    }

    /// The unpacked contact with this ruid, if it is unpacked.
    pub(crate) fn open_by_ruid(&self, ruid: &str) -> Option<&Contact> {
        self.entries.iter().find_map(|e| match e {
            Entry::Open(c, _) if c.ruid == ruid => Some(&**c),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(n: usize) -> Vec<StoredContact> {
        (0..n)
            .map(|i| {
                let mut c = Contact::new("a", &format!("sip:a@10.0.0.{i}"));
                c.callid = format!("cid{i}");
                c.q = 100 * i as i32;
                c.expires = 1000;
                StoredContact::pack(&c)
            })
            .collect()
    }

    /// Refreshing one binding of many unpacks that one only, and the
    /// others are stored again as they were, in their places.
    #[test]
    fn a_refresh_leaves_the_other_bindings_packed() {
        let base = stored(5);
        let mut rec = Record::stored("a", &base);
        let mut c = rec
            .find(|x| x.contact() == "sip:a@10.0.0.3")
            .expect("binding 3");
        assert_eq!((c.callid.as_str(), c.q), ("cid3", 300));
        c.expires = 2000;
        rec.update(c);
        let opened: Vec<bool> = rec
            .entries
            .iter()
            .map(|e| matches!(e, Entry::Open(..)))
            .collect();
        assert_eq!(opened, [false, false, false, true, false]);
        let det = rec.detach();
        assert!(det.is_changed());
        let again = det.restore(base.clone());
        assert_eq!(again.len(), 5);
        for (i, (new, old)) in again.iter().zip(&base).enumerate() {
            if i == 3 {
                assert_eq!(new.expires(), 2000);
                assert_eq!(new.ruid(), old.ruid());
            } else {
                assert_eq!(new, old, "binding {i}");
            }
        }
    }

    /// Reading every contact whole keeps them unchanged; removing and
    /// inserting are reflected, in order.
    #[test]
    fn contacts_remove_and_insert() {
        let base = stored(3);
        let mut rec = Record::stored("a", &base);
        let all: Vec<Contact> = rec.contacts().cloned().collect();
        assert_eq!(all.len(), 3);
        assert_eq!(all[1], base[1].unpack("a"));
        assert!(rec.remove(&all[0].ruid));
        assert!(!rec.remove(&all[0].ruid));
        rec.insert(Contact::new("a", "sip:a@new"));
        let det = rec.detach();
        let again = det.restore(base.clone());
        let uris: Vec<&str> = again.iter().map(|s| s.contact()).collect();
        assert_eq!(uris, ["sip:a@10.0.0.1", "sip:a@10.0.0.2", "sip:a@new"]);
        // The two read whole but not changed are the stored ones.
        assert_eq!((&again[0], &again[1]), (&base[1], &base[2]));
        assert_eq!(det.removed, [all[0].ruid.clone()]);
    }

    #[test]
    fn views_read_both_forms_alike() {
        let base = stored(2);
        let open = base[1].unpack("a");
        for v in [ContactRef::Stored(&base[1]), ContactRef::Open(&open)] {
            assert_eq!(v.contact(), "sip:a@10.0.0.1");
            assert_eq!(v.callid(), "cid1");
            assert_eq!((v.q(), v.cseq(), v.reg_id()), (100, 1, 0));
            assert_eq!((v.expires(), v.remaining(400)), (1000, 600));
            assert!(v.is_valid(999) && !v.is_valid(1000));
            assert_eq!((v.instance(), v.received()), (None, None));
            assert_eq!(v.to_contact("a"), open);
        }
    }
}
