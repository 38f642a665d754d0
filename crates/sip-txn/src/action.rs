//! What the machines ask the caller to do: [`Action`] and the small,
//! allocation-free [`Actions`] list every `handle_*` method returns.

/// One thing the I/O layer or transaction user (TU) must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action<M> {
    /// Hand this message to the transport (first send or retransmission).
    /// Client machines emit their request, server machines their response.
    Transmit(M),
    /// Deliver this message to the TU: a response at a client transaction,
    /// the ACK for a 2xx at an INVITE server transaction in Accepted.
    PassToTu(M),
    /// INVITE client only: a 300–699 final response (carried here) must be
    /// acknowledged. The TU/message layer builds the ACK from the original
    /// INVITE and this response (RFC 3261 §17.1.1.3: same Request-URI,
    /// Call-ID, From, CSeq number, top Via and Route set as the INVITE, To
    /// from the response, method ACK) and transmits it to the INVITE's
    /// destination. Emitted on the first such response and again for each
    /// retransmission of it absorbed in Completed.
    SendAck(M),
    /// Timer B, F or H fired: the transaction failed for lack of a (final)
    /// response / ACK. At a client transaction the TU must act as if a 408
    /// (Request Timeout) was received.
    Timeout,
    /// The caller reported a fatal transport error; inform the TU
    /// (treated as a 503 at a client transaction, RFC 3261 §8.1.3.1).
    TransportError,
    /// The machine reached Terminated: remove it from the transaction table.
    /// Always the last action of a batch.
    Terminated,
}

const CAP: usize = 4;

/// The actions produced by one event, in order. At most four; stored
/// inline, so producing them never allocates.
///
/// Iterate it by value (`for a in actions`) or by reference
/// ([`iter`](Self::iter)). [`was_ignored`](Self::was_ignored) tells whether
/// the event made no sense in the machine's current state and was dropped
/// (as opposed to a retransmission that was deliberately absorbed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actions<M> {
    buf: [Option<Action<M>>; CAP],
    len: u8,
    ignored: bool,
}

impl<M> Actions<M> {
    /// An empty list (the event was handled and needs nothing done).
    pub const fn none() -> Self {
        Actions {
            buf: [None, None, None, None],
            len: 0,
            ignored: false,
        }
    }

    /// An empty list flagged as "event ignored in this state".
    pub const fn ignored() -> Self {
        Actions {
            buf: [None, None, None, None],
            len: 0,
            ignored: true,
        }
    }

    pub(crate) fn one(a: Action<M>) -> Self {
        let mut s = Self::none();
        s.push(a);
        s
    }

    pub(crate) fn two(a: Action<M>, b: Action<M>) -> Self {
        let mut s = Self::one(a);
        s.push(b);
        s
    }

    /// Appends an action. The machines never produce more than [`CAP`]; an
    /// excess action would be dropped rather than panic.
    pub(crate) fn push(&mut self, a: Action<M>) {
        if let Some(slot) = self.buf.get_mut(usize::from(self.len)) {
            *slot = Some(a);
            self.len += 1;
        }
    }

    /// Whether the event was ignored because it made no sense in the
    /// current state (e.g. a response handed to a terminated transaction).
    pub fn was_ignored(&self) -> bool {
        self.ignored
    }

    /// Number of actions.
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether the batch ends with [`Action::Terminated`].
    pub fn terminated(&self) -> bool {
        self.iter().any(|a| matches!(a, Action::Terminated))
    }

    /// The actions, by reference.
    pub fn iter(&self) -> impl Iterator<Item = &Action<M>> {
        self.buf.iter().flatten()
    }
}

impl<M> Default for Actions<M> {
    fn default() -> Self {
        Self::none()
    }
}

impl<M> IntoIterator for Actions<M> {
    type Item = Action<M>;
    type IntoIter = std::iter::Flatten<std::array::IntoIter<Option<Action<M>>, CAP>>;

    fn into_iter(self) -> Self::IntoIter {
        self.buf.into_iter().flatten()
    }
}

/// Response class used internally by the machines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    Provisional,
    Success,
    Failure,
}

/// Classifies a status code; `None` for anything outside 100–699.
pub(crate) fn classify(status: u16) -> Option<Class> {
    match status {
        100..=199 => Some(Class::Provisional),
        200..=299 => Some(Class::Success),
        300..=699 => Some(Class::Failure),
        _ => None,
    }
}

/// Earliest of two optional deadlines.
pub(crate) fn earliest<T: Ord>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_beyond_capacity_drops() {
        let mut a: Actions<u8> = Actions::none();
        for i in 0..10 {
            a.push(Action::Transmit(i));
        }
        assert_eq!(a.len(), CAP);
        assert_eq!(a.into_iter().count(), CAP);
    }

    #[test]
    fn classify_bounds() {
        assert_eq!(classify(99), None);
        assert_eq!(classify(100), Some(Class::Provisional));
        assert_eq!(classify(299), Some(Class::Success));
        assert_eq!(classify(699), Some(Class::Failure));
        assert_eq!(classify(700), None);
    }
}
