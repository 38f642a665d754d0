//! INVITE client transaction: RFC 3261 §17.1.1 (Figure 5) as updated by
//! RFC 6026 §7.2 (Accepted state, Timer M).

use std::time::Duration;

use crate::action::{classify, earliest, Action, Actions, Class};
use crate::time::{next_deadline, Instant};
use crate::timers::TimerConfig;

/// States of an [`InviteClient`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InviteClientState {
    /// INVITE sent, nothing heard yet; Timers A (unreliable) and B running.
    Calling,
    /// A provisional response was received; no timers (the proxy's Timer C
    /// lives outside, see [`ProxyInviteTimer`](crate::ProxyInviteTimer)).
    Proceeding,
    /// A 300–699 was received and ACKed; Timer D running.
    Completed,
    /// RFC 6026: a 2xx was received; further 2xx go to the TU; Timer M.
    Accepted,
    /// Finished; remove the transaction.
    Terminated,
}

/// The INVITE client transaction state machine.
///
/// Created with [`InviteClient::start`], which sends the INVITE. Feed it
/// responses ([`handle_response`](Self::handle_response)), timer expiries
/// ([`handle_timeout`](Self::handle_timeout) at
/// [`poll_timeout`](Self::poll_timeout)) and transport errors.
///
/// The ACK for a non-2xx final response is requested from the TU with
/// [`Action::SendAck`]; the ACK for a 2xx is the TU's business entirely
/// (RFC 3261 §13.2.2.4).
#[derive(Debug, Clone)]
pub struct InviteClient<M> {
    state: InviteClientState,
    request: M,
    reliable: bool,
    /// Timer A deadline (Calling, unreliable only).
    retransmit_at: Option<Instant>,
    /// Current Timer A interval.
    interval: Duration,
    /// Timer B (Calling), D (Completed) or M (Accepted).
    state_timer: Option<Instant>,
    timer_d: Duration,
    timer_m: Duration,
}

impl<M: Clone> InviteClient<M> {
    /// Creates the transaction in Calling and returns the action that sends
    /// `request` (the INVITE). Timer A is armed only if `!reliable`.
    pub fn start(
        request: M,
        reliable: bool,
        config: &TimerConfig,
        now: Instant,
    ) -> (Self, Actions<M>) {
        let tx = InviteClient {
            state: InviteClientState::Calling,
            request: request.clone(),
            reliable,
            retransmit_at: (!reliable).then(|| now + config.t1),
            interval: config.t1,
            state_timer: Some(now + config.timer_b),
            timer_d: config.d(reliable),
            timer_m: config.timer_m,
        };
        (tx, Actions::one(Action::Transmit(request)))
    }

    /// Current state.
    pub fn state(&self) -> InviteClientState {
        self.state
    }

    /// Whether the transaction is Terminated.
    pub fn is_terminated(&self) -> bool {
        self.state == InviteClientState::Terminated
    }

    /// Whether the transport was declared reliable at creation.
    pub fn is_reliable(&self) -> bool {
        self.reliable
    }

    /// The INVITE this transaction sends (empty after
    /// [`release_request`](Self::release_request)).
    pub fn request(&self) -> &M {
        &self.request
    }

    /// Lets go of the request (an empty one takes its place) once nothing
    /// will send it again: after a final response, while the transaction
    /// only absorbs retransmissions. Returns whether it did.
    pub fn release_request(&mut self) -> bool
    where
        M: Default,
    {
        if matches!(
            self.state,
            InviteClientState::Completed
                | InviteClientState::Accepted
                | InviteClientState::Terminated
        ) {
            self.request = M::default();
            return true;
        }
        false
    }

    /// The next instant at which [`handle_timeout`](Self::handle_timeout)
    /// must be called, if any timer is armed.
    pub fn poll_timeout(&self) -> Option<Instant> {
        earliest(self.retransmit_at, self.state_timer)
    }

    /// A response matching this transaction arrived. `status` is its status
    /// code; codes outside 100–699 are ignored.
    pub fn handle_response(&mut self, now: Instant, response: M, status: u16) -> Actions<M> {
        use InviteClientState::*;
        let Some(class) = classify(status) else {
            return Actions::ignored();
        };
        match (self.state, class) {
            (Calling | Proceeding, Class::Provisional) => {
                self.state = Proceeding;
                self.retransmit_at = None;
                self.state_timer = None;
                Actions::one(Action::PassToTu(response))
            }
            (Calling | Proceeding, Class::Success) => {
                self.state = Accepted;
                self.retransmit_at = None;
                self.state_timer = Some(now + self.timer_m);
                Actions::one(Action::PassToTu(response))
            }
            (Calling | Proceeding, Class::Failure) => {
                self.retransmit_at = None;
                let mut out = Actions::two(
                    Action::PassToTu(response.clone()),
                    Action::SendAck(response),
                );
                if self.timer_d.is_zero() {
                    self.terminate_into(&mut out);
                } else {
                    self.state = Completed;
                    self.state_timer = Some(now + self.timer_d);
                }
                out
            }
            // Retransmitted final response: re-send the ACK, do not bother the TU.
            (Completed, Class::Failure) => Actions::one(Action::SendAck(response)),
            // RFC 6026: every 2xx (retransmission or another fork) goes up.
            (Accepted, Class::Success) => Actions::one(Action::PassToTu(response)),
            _ => Actions::ignored(),
        }
    }

    /// Timers fired. Call at (or after) [`poll_timeout`](Self::poll_timeout);
    /// calling early is harmless and returns nothing.
    pub fn handle_timeout(&mut self, now: Instant) -> Actions<M> {
        use InviteClientState::*;
        if self.state == Terminated {
            return Actions::ignored();
        }
        if self.state_timer.is_some_and(|t| now >= t) {
            let mut out = Actions::none();
            if self.state == Calling {
                out.push(Action::Timeout); // Timer B
            }
            // Timer D (Completed) / Timer M (Accepted) just end the transaction.
            self.terminate_into(&mut out);
            return out;
        }
        match self.retransmit_at {
            Some(at) if now >= at && self.state == Calling => {
                // Timer A: retransmit, double the interval (no T2 cap for INVITE).
                self.interval = self.interval.saturating_mul(2);
                self.retransmit_at = Some(next_deadline(at, self.interval, now));
                Actions::one(Action::Transmit(self.request.clone()))
            }
            _ => Actions::none(),
        }
    }

    /// The transport reported a fatal error sending the INVITE or ACK.
    pub fn handle_transport_error(&mut self, _now: Instant) -> Actions<M> {
        match self.state {
            InviteClientState::Calling
            | InviteClientState::Proceeding
            | InviteClientState::Completed => {
                let mut out = Actions::one(Action::TransportError);
                self.terminate_into(&mut out);
                out
            }
            _ => Actions::ignored(),
        }
    }

    /// Forcibly terminates the transaction (e.g. on shutdown).
    pub fn terminate(&mut self) -> Actions<M> {
        if self.is_terminated() {
            return Actions::ignored();
        }
        let mut out = Actions::none();
        self.terminate_into(&mut out);
        out
    }

    fn terminate_into(&mut self, out: &mut Actions<M>) {
        self.state = InviteClientState::Terminated;
        self.retransmit_at = None;
        self.state_timer = None;
        out.push(Action::Terminated);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Instant {
        Instant::from_millis(v)
    }

    #[test]
    fn provisional_stops_retransmissions_and_timer_b() {
        let (mut tx, _) = InviteClient::start("INV", false, &TimerConfig::default(), ms(0));
        let a = tx.handle_response(ms(100), "180", 180);
        assert_eq!(a.iter().collect::<Vec<_>>(), [&Action::PassToTu("180")]);
        assert_eq!(tx.state(), InviteClientState::Proceeding);
        assert_eq!(tx.poll_timeout(), None);
    }

    #[test]
    fn failure_over_reliable_terminates_immediately() {
        let (mut tx, _) = InviteClient::start("INV", true, &TimerConfig::default(), ms(0));
        assert_eq!(tx.poll_timeout(), Some(ms(32_000)));
        let a: Vec<_> = tx.handle_response(ms(10), "486", 486).into_iter().collect();
        assert_eq!(
            a,
            [
                Action::PassToTu("486"),
                Action::SendAck("486"),
                Action::Terminated
            ]
        );
        assert!(tx.is_terminated());
        assert!(tx.handle_response(ms(11), "486", 486).was_ignored());
    }

    #[test]
    fn bogus_status_ignored() {
        let (mut tx, _) = InviteClient::start("INV", false, &TimerConfig::default(), ms(0));
        assert!(tx.handle_response(ms(1), "x", 0).was_ignored());
        assert!(tx.handle_response(ms(1), "x", 700).was_ignored());
        assert_eq!(tx.state(), InviteClientState::Calling);
    }

    #[test]
    fn the_invite_is_let_go_only_after_a_final_response() {
        let (mut tx, _) = InviteClient::start("INV", false, &TimerConfig::default(), ms(0));
        assert!(!tx.release_request(), "Calling still retransmits");
        tx.handle_response(ms(10), "180", 180);
        assert!(!tx.release_request());
        assert_eq!(*tx.request(), "INV");
        let a: Vec<_> = tx.handle_response(ms(20), "486", 486).into_iter().collect();
        assert!(a.contains(&Action::SendAck("486")));
        assert!(tx.release_request());
        assert_eq!(*tx.request(), "");
        // A retransmitted final still asks the TU for the ACK.
        let a: Vec<_> = tx.handle_response(ms(30), "486", 486).into_iter().collect();
        assert_eq!(a, [Action::SendAck("486")]);

        let (mut ok, _) = InviteClient::start("INV", false, &TimerConfig::default(), ms(0));
        ok.handle_response(ms(5), "200", 200);
        assert!(ok.release_request());
        assert!(!ok
            .handle_timeout(ms(1_000))
            .iter()
            .any(|x| matches!(x, Action::Transmit(_))));
    }
}
