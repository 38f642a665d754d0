//! INVITE server transaction: RFC 3261 §17.2.1 (Figure 7) as updated by
//! RFC 6026 §7.1 (Accepted state, Timer L).

use std::time::Duration;

use crate::action::{classify, earliest, Action, Actions, Class};
use crate::time::{next_deadline, Instant};
use crate::timers::TimerConfig;

/// States of an [`InviteServer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InviteServerState {
    /// INVITE received; the TU may send provisionals. No timers.
    Proceeding,
    /// A 300–699 was sent; Timers G (unreliable) and H running.
    Completed,
    /// The ACK for the non-2xx arrived; Timer I absorbs ACK retransmissions.
    Confirmed,
    /// RFC 6026: a 2xx was sent; INVITE retransmissions are absorbed, 2xx
    /// from the TU are sent, ACKs are passed to the TU; Timer L.
    Accepted,
    /// Finished; remove the transaction.
    Terminated,
}

/// The INVITE server transaction state machine.
///
/// Created with [`InviteServer::new`] when an INVITE matching no existing
/// transaction arrives; the caller passes that INVITE to the TU itself (the
/// machine does not keep the request). RFC 3261 wants a 100 Trying within
/// 200 ms unless the TU responds sooner; a proxy sends it at once through
/// [`send_response`](Self::send_response), like Kamailio's `t_relay`.
///
/// No timer runs in Proceeding: the TU must eventually respond (a proxy's
/// [`ProxyInviteTimer`](crate::ProxyInviteTimer) guarantees it).
#[derive(Debug, Clone)]
pub struct InviteServer<M> {
    state: InviteServerState,
    reliable: bool,
    /// Last provisional (Proceeding) or the final non-2xx (Completed).
    last_response: Option<M>,
    /// Timer G deadline (Completed, unreliable only).
    retransmit_at: Option<Instant>,
    interval: Duration,
    t1: Duration,
    t2: Duration,
    /// Timer H (Completed), I (Confirmed) or L (Accepted).
    state_timer: Option<Instant>,
    timer_h: Duration,
    timer_i: Duration,
    timer_l: Duration,
}

impl<M: Clone> InviteServer<M> {
    /// Creates the transaction in Proceeding.
    pub fn new(reliable: bool, config: &TimerConfig, _now: Instant) -> Self {
        InviteServer {
            state: InviteServerState::Proceeding,
            reliable,
            last_response: None,
            retransmit_at: None,
            interval: config.t1,
            t1: config.t1,
            t2: config.t2,
            state_timer: None,
            timer_h: config.timer_h,
            timer_i: config.i(reliable),
            timer_l: config.timer_l,
        }
    }

    /// Current state.
    pub fn state(&self) -> InviteServerState {
        self.state
    }

    /// Whether the transaction is Terminated.
    pub fn is_terminated(&self) -> bool {
        self.state == InviteServerState::Terminated
    }

    /// Whether the transport was declared reliable at creation.
    pub fn is_reliable(&self) -> bool {
        self.reliable
    }

    /// The last provisional or non-2xx final response sent, if kept.
    pub fn last_response(&self) -> Option<&M> {
        self.last_response.as_ref()
    }

    /// The next instant at which [`handle_timeout`](Self::handle_timeout)
    /// must be called, if any timer is armed.
    pub fn poll_timeout(&self) -> Option<Instant> {
        earliest(self.retransmit_at, self.state_timer)
    }

    /// A retransmission of the INVITE matched this transaction. It is never
    /// passed to the TU: the last response (if any) is re-sent in
    /// Proceeding and Completed, the request is absorbed otherwise.
    pub fn handle_request(&mut self, _now: Instant) -> Actions<M> {
        use InviteServerState::*;
        match self.state {
            Proceeding | Completed => match &self.last_response {
                Some(r) => Actions::one(Action::Transmit(r.clone())),
                None => Actions::none(),
            },
            Confirmed | Accepted => Actions::none(),
            Terminated => Actions::ignored(),
        }
    }

    /// An ACK matched this transaction. In Completed it moves to Confirmed
    /// (absorbed); in Accepted it is the ACK for a 2xx and is passed to the
    /// TU (RFC 6026); in Confirmed it is an absorbed retransmission.
    pub fn handle_ack(&mut self, now: Instant, ack: M) -> Actions<M> {
        use InviteServerState::*;
        match self.state {
            Completed => {
                self.retransmit_at = None;
                self.last_response = None;
                if self.timer_i.is_zero() {
                    let mut out = Actions::none();
                    self.terminate_into(&mut out);
                    out
                } else {
                    self.state = Confirmed;
                    self.state_timer = Some(now + self.timer_i);
                    Actions::none()
                }
            }
            Confirmed => Actions::none(),
            Accepted => Actions::one(Action::PassToTu(ack)),
            Proceeding | Terminated => Actions::ignored(),
        }
    }

    /// The TU sends a response (`status` is its code; outside 100–699 it is
    /// ignored). Provisionals are allowed in Proceeding; the first final
    /// response decides between Completed (300–699) and Accepted (2xx);
    /// in Accepted further 2xx are sent, anything else is ignored.
    pub fn send_response(&mut self, now: Instant, response: M, status: u16) -> Actions<M> {
        use InviteServerState::*;
        let Some(class) = classify(status) else {
            return Actions::ignored();
        };
        match (self.state, class) {
            (Proceeding, Class::Provisional) => {
                self.last_response = Some(response.clone());
                Actions::one(Action::Transmit(response))
            }
            (Proceeding, Class::Success) => {
                self.state = Accepted;
                self.last_response = None;
                self.state_timer = Some(now + self.timer_l);
                Actions::one(Action::Transmit(response))
            }
            (Proceeding, Class::Failure) => {
                self.state = Completed;
                self.last_response = Some(response.clone());
                if !self.reliable {
                    self.interval = self.t1;
                    self.retransmit_at = Some(now + self.t1);
                }
                self.state_timer = Some(now + self.timer_h);
                Actions::one(Action::Transmit(response))
            }
            (Accepted, Class::Success) => Actions::one(Action::Transmit(response)),
            _ => Actions::ignored(),
        }
    }

    /// Timers fired. Calling early is harmless and returns nothing.
    pub fn handle_timeout(&mut self, now: Instant) -> Actions<M> {
        use InviteServerState::*;
        if self.state == Terminated {
            return Actions::ignored();
        }
        if self.state_timer.is_some_and(|t| now >= t) {
            let mut out = Actions::none();
            if self.state == Completed {
                out.push(Action::Timeout); // Timer H: no ACK ever came
            }
            self.terminate_into(&mut out); // or Timer I / L
            return out;
        }
        match (self.retransmit_at, &self.last_response) {
            (Some(at), Some(r)) if now >= at && self.state == Completed => {
                // Timer G: double up to T2.
                let r = r.clone();
                self.interval = self.interval.saturating_mul(2).min(self.t2);
                self.retransmit_at = Some(next_deadline(at, self.interval, now));
                Actions::one(Action::Transmit(r))
            }
            _ => Actions::none(),
        }
    }

    /// The transport reported a fatal error sending a response.
    pub fn handle_transport_error(&mut self, _now: Instant) -> Actions<M> {
        match self.state {
            InviteServerState::Proceeding
            | InviteServerState::Completed
            | InviteServerState::Accepted => {
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
        self.state = InviteServerState::Terminated;
        self.retransmit_at = None;
        self.state_timer = None;
        self.last_response = None;
        out.push(Action::Terminated);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ack_in_proceeding_is_ignored() {
        let mut tx = InviteServer::new(false, &TimerConfig::default(), Instant::ZERO);
        assert!(tx.handle_ack(Instant::ZERO, "ACK").was_ignored());
        assert_eq!(tx.state(), InviteServerState::Proceeding);
    }

    #[test]
    fn second_final_is_ignored() {
        let mut tx = InviteServer::new(false, &TimerConfig::default(), Instant::ZERO);
        tx.send_response(Instant::ZERO, "486", 486);
        assert!(tx.send_response(Instant::ZERO, "200", 200).was_ignored());
        assert_eq!(tx.state(), InviteServerState::Completed);
    }
}
