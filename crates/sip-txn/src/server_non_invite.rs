//! Non-INVITE server transaction: RFC 3261 §17.2.2 (Figure 8).

use std::time::Duration;

use crate::action::{classify, Action, Actions, Class};
use crate::time::Instant;
use crate::timers::TimerConfig;

/// States of a [`NonInviteServer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NonInviteServerState {
    /// Request received, nothing sent; retransmissions are absorbed.
    Trying,
    /// A provisional was sent; retransmissions re-send it.
    Proceeding,
    /// A final response was sent; retransmissions re-send it; Timer J.
    Completed,
    /// Finished; remove the transaction.
    Terminated,
}

/// The non-INVITE server transaction state machine (also used for an
/// incoming CANCEL, which is a transaction of its own; see
/// [`TxKey::for_cancel_target`](crate::TxKey::for_cancel_target)).
///
/// Created with [`NonInviteServer::new`] when a request matching no
/// transaction arrives; the caller passes that request to the TU itself.
#[derive(Debug, Clone)]
pub struct NonInviteServer<M> {
    state: NonInviteServerState,
    reliable: bool,
    last_response: Option<M>,
    /// Timer J (Completed).
    state_timer: Option<Instant>,
    timer_j: Duration,
}

impl<M: Clone> NonInviteServer<M> {
    /// Creates the transaction in Trying.
    pub fn new(reliable: bool, config: &TimerConfig, _now: Instant) -> Self {
        NonInviteServer {
            state: NonInviteServerState::Trying,
            reliable,
            last_response: None,
            state_timer: None,
            timer_j: config.j(reliable),
        }
    }

    /// Current state.
    pub fn state(&self) -> NonInviteServerState {
        self.state
    }

    /// Whether the transaction is Terminated.
    pub fn is_terminated(&self) -> bool {
        self.state == NonInviteServerState::Terminated
    }

    /// Whether the transport was declared reliable at creation.
    pub fn is_reliable(&self) -> bool {
        self.reliable
    }

    /// The last response sent, if kept.
    pub fn last_response(&self) -> Option<&M> {
        self.last_response.as_ref()
    }

    /// The next instant at which [`handle_timeout`](Self::handle_timeout)
    /// must be called, if any timer is armed.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.state_timer
    }

    /// A retransmission of the request matched this transaction: absorbed
    /// in Trying, answered with the last response in Proceeding/Completed.
    /// Never passed to the TU.
    pub fn handle_request(&mut self, _now: Instant) -> Actions<M> {
        match (self.state, &self.last_response) {
            (NonInviteServerState::Terminated, _) => Actions::ignored(),
            (_, Some(r)) => Actions::one(Action::Transmit(r.clone())),
            (_, None) => Actions::none(),
        }
    }

    /// The TU sends a response. Provisionals are allowed in Trying and
    /// Proceeding; the first final response moves to Completed (and, over
    /// a reliable transport, straight to Terminated since J = 0); anything
    /// after that is ignored.
    pub fn send_response(&mut self, now: Instant, response: M, status: u16) -> Actions<M> {
        use NonInviteServerState::*;
        let Some(class) = classify(status) else {
            return Actions::ignored();
        };
        match (self.state, class) {
            (Trying | Proceeding, Class::Provisional) => {
                self.state = Proceeding;
                self.last_response = Some(response.clone());
                Actions::one(Action::Transmit(response))
            }
            (Trying | Proceeding, Class::Success | Class::Failure) => {
                if self.timer_j.is_zero() {
                    let mut out = Actions::one(Action::Transmit(response));
                    self.terminate_into(&mut out);
                    out
                } else {
                    self.state = Completed;
                    self.last_response = Some(response.clone());
                    self.state_timer = Some(now + self.timer_j);
                    Actions::one(Action::Transmit(response))
                }
            }
            _ => Actions::ignored(),
        }
    }

    /// Timers fired (only Timer J exists). Calling early is harmless.
    pub fn handle_timeout(&mut self, now: Instant) -> Actions<M> {
        if self.state == NonInviteServerState::Terminated {
            return Actions::ignored();
        }
        if self.state_timer.is_some_and(|t| now >= t) {
            let mut out = Actions::none();
            self.terminate_into(&mut out);
            return out;
        }
        Actions::none()
    }

    /// The transport reported a fatal error sending a response.
    pub fn handle_transport_error(&mut self, _now: Instant) -> Actions<M> {
        if self.is_terminated() {
            return Actions::ignored();
        }
        let mut out = Actions::one(Action::TransportError);
        self.terminate_into(&mut out);
        out
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
        self.state = NonInviteServerState::Terminated;
        self.state_timer = None;
        self.last_response = None;
        out.push(Action::Terminated);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trying_absorbs_retransmissions() {
        let mut tx: NonInviteServer<&str> =
            NonInviteServer::new(false, &TimerConfig::default(), Instant::ZERO);
        let a = tx.handle_request(Instant::ZERO);
        assert!(a.is_empty() && !a.was_ignored());
    }
}
