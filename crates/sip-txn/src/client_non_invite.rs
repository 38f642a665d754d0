//! Non-INVITE client transaction: RFC 3261 §17.1.2 (Figure 6).

use std::time::Duration;

use crate::action::{classify, earliest, Action, Actions, Class};
use crate::time::{next_deadline, Instant};
use crate::timers::TimerConfig;

/// States of a [`NonInviteClient`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NonInviteClientState {
    /// Request sent; Timers E (unreliable) and F running.
    Trying,
    /// A provisional response was received; E now fires every T2.
    Proceeding,
    /// A final response was received; Timer K absorbs retransmissions.
    Completed,
    /// Finished; remove the transaction.
    Terminated,
}

/// The non-INVITE client transaction state machine (also used for CANCEL,
/// which is a non-INVITE transaction of its own).
#[derive(Debug, Clone)]
pub struct NonInviteClient<M> {
    state: NonInviteClientState,
    request: M,
    reliable: bool,
    /// Timer E deadline (Trying/Proceeding, unreliable only).
    retransmit_at: Option<Instant>,
    interval: Duration,
    t2: Duration,
    /// Timer F (Trying/Proceeding) or K (Completed).
    state_timer: Option<Instant>,
    timer_k: Duration,
}

impl<M: Clone> NonInviteClient<M> {
    /// Creates the transaction in Trying and returns the action that sends
    /// `request`. Timer E is armed only if `!reliable`.
    pub fn start(
        request: M,
        reliable: bool,
        config: &TimerConfig,
        now: Instant,
    ) -> (Self, Actions<M>) {
        let tx = NonInviteClient {
            state: NonInviteClientState::Trying,
            request: request.clone(),
            reliable,
            retransmit_at: (!reliable).then(|| now + config.t1),
            interval: config.t1,
            t2: config.t2,
            state_timer: Some(now + config.timer_f),
            timer_k: config.k(reliable),
        };
        (tx, Actions::one(Action::Transmit(request)))
    }

    /// Current state.
    pub fn state(&self) -> NonInviteClientState {
        self.state
    }

    /// Whether the transaction is Terminated.
    pub fn is_terminated(&self) -> bool {
        self.state == NonInviteClientState::Terminated
    }

    /// Whether the transport was declared reliable at creation.
    pub fn is_reliable(&self) -> bool {
        self.reliable
    }

    /// The request this transaction sends (empty after
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
            NonInviteClientState::Completed | NonInviteClientState::Terminated
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

    /// A response matching this transaction arrived; codes outside 100–699
    /// are ignored. Responses in Completed are absorbed.
    pub fn handle_response(&mut self, now: Instant, response: M, status: u16) -> Actions<M> {
        use NonInviteClientState::*;
        let Some(class) = classify(status) else {
            return Actions::ignored();
        };
        match (self.state, class) {
            (Trying | Proceeding, Class::Provisional) => {
                self.state = Proceeding;
                Actions::one(Action::PassToTu(response))
            }
            (Trying | Proceeding, Class::Success | Class::Failure) => {
                self.retransmit_at = None;
                let mut out = Actions::one(Action::PassToTu(response));
                if self.timer_k.is_zero() {
                    self.terminate_into(&mut out);
                } else {
                    self.state = Completed;
                    self.state_timer = Some(now + self.timer_k);
                }
                out
            }
            (Completed, _) => Actions::none(),
            _ => Actions::ignored(),
        }
    }

    /// Timers fired. Calling early is harmless and returns nothing.
    pub fn handle_timeout(&mut self, now: Instant) -> Actions<M> {
        use NonInviteClientState::*;
        if self.state == Terminated {
            return Actions::ignored();
        }
        if self.state_timer.is_some_and(|t| now >= t) {
            let mut out = Actions::none();
            if matches!(self.state, Trying | Proceeding) {
                out.push(Action::Timeout); // Timer F
            }
            self.terminate_into(&mut out); // or Timer K
            return out;
        }
        match self.retransmit_at {
            Some(at) if now >= at && matches!(self.state, Trying | Proceeding) => {
                // Timer E: doubling capped at T2 in Trying, T2 in Proceeding.
                self.interval = if self.state == Trying {
                    self.interval.saturating_mul(2).min(self.t2)
                } else {
                    self.t2
                };
                self.retransmit_at = Some(next_deadline(at, self.interval, now));
                Actions::one(Action::Transmit(self.request.clone()))
            }
            _ => Actions::none(),
        }
    }

    /// The transport reported a fatal error sending the request.
    pub fn handle_transport_error(&mut self, _now: Instant) -> Actions<M> {
        match self.state {
            NonInviteClientState::Trying | NonInviteClientState::Proceeding => {
                let mut out = Actions::one(Action::TransportError);
                self.terminate_into(&mut out);
                out
            }
            _ => Actions::ignored(),
        }
    }

    /// Forcibly terminates the transaction.
    pub fn terminate(&mut self) -> Actions<M> {
        if self.is_terminated() {
            return Actions::ignored();
        }
        let mut out = Actions::none();
        self.terminate_into(&mut out);
        out
    }

    fn terminate_into(&mut self, out: &mut Actions<M>) {
        self.state = NonInviteClientState::Terminated;
        self.retransmit_at = None;
        self.state_timer = None;
        out.push(Action::Terminated);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completed_absorbs_and_k_terminates() {
        let (mut tx, _) =
            NonInviteClient::start("REG", false, &TimerConfig::default(), Instant::ZERO);
        let a = tx.handle_response(Instant::from_millis(100), "200", 200);
        assert_eq!(a.len(), 1);
        assert_eq!(tx.state(), NonInviteClientState::Completed);
        let a = tx.handle_response(Instant::from_millis(200), "200", 200);
        assert!(a.is_empty() && !a.was_ignored());
        assert_eq!(tx.poll_timeout(), Some(Instant::from_millis(5_100)));
        assert!(tx.handle_timeout(Instant::from_millis(5_100)).terminated());
    }

    #[test]
    fn the_request_is_let_go_only_after_a_final_response() {
        let (mut tx, _) =
            NonInviteClient::start("BYE", false, &TimerConfig::default(), Instant::ZERO);
        tx.handle_response(Instant::from_millis(10), "100", 100);
        assert!(!tx.release_request(), "Proceeding still retransmits");
        assert_eq!(*tx.request(), "BYE");
        tx.handle_response(Instant::from_millis(20), "200", 200);
        assert!(tx.release_request());
        assert_eq!(*tx.request(), "");
        // Completed until Timer K: nothing is sent again.
        for t in [500, 1_000, 4_000] {
            let a = tx.handle_timeout(Instant::from_millis(t));
            assert!(!a.iter().any(|x| matches!(x, Action::Transmit(_))));
        }
        assert!(tx.handle_timeout(Instant::from_millis(5_020)).terminated());
    }
}
