//! Sans-IO SIP transaction layer: the RFC 3261 §17 state machines (with the
//! RFC 6026 corrections), transaction keys (§17.1.3, §17.2.3, §9.2) and a
//! sharded transaction table with deadline tracking.
//!
//! # The sans-IO model
//!
//! Nothing in this crate touches a socket, reads a clock, spawns a thread or
//! awaits. A machine is a plain value that is fed *events* and answers with
//! [`Actions`]:
//!
//! * events: a matching message arrived (`handle_response`,
//!   `handle_request`, `handle_ack`), the TU sends a response
//!   (`send_response`), the transport failed (`handle_transport_error`),
//!   time passed (`handle_timeout`);
//! * every event takes `now: Instant`, the current time as a millisecond
//!   count supplied by the caller ([`Clock`] maps the real clock onto it;
//!   tests just count);
//! * actions: [`Action::Transmit`] (send or retransmit), [`Action::PassToTu`],
//!   [`Action::SendAck`] (the TU builds the ACK for a non-2xx final
//!   response), [`Action::Timeout`] (B/F/H fired: treat as 408),
//!   [`Action::TransportError`] and [`Action::Terminated`] (drop the
//!   transaction);
//! * `poll_timeout()` tells when `handle_timeout` is next due.
//!
//! Messages are any `M: Clone` (use a cheaply clonable handle such as
//! `Arc<Message>` or `Bytes`): the machines store the request or last
//! response and clone it per (re)transmission, and need only the facts
//! passed alongside it (the status code as a `u16`; ACKs arrive through
//! their own method). Producing actions never allocates.
//!
//! Over a reliable transport (`reliable = true` at creation) Timers A, E
//! and G are never armed and D, I, J, K are zero, as RFC 3261 requires.
//! Timer values come from [`TimerConfig`], which also maps Kamailio `tm`
//! parameters ([`KamailioTm`]). The proxy's Timer C is
//! [`ProxyInviteTimer`], outside the machines.
//!
//! Events that make no sense in the current state are ignored (never a
//! panic) and flagged by [`Actions::was_ignored`].
//!
//! # Example
//!
//! ```
//! use sip_txn::{Action, Instant, InviteClient, InviteClientState, TimerConfig};
//!
//! let cfg = TimerConfig::default();
//! let t = Instant::from_millis;
//! // The message type is up to the caller; here plain strings.
//! let (mut tx, actions) = InviteClient::start("INVITE", false, &cfg, t(0));
//! assert_eq!(actions.into_iter().next(), Some(Action::Transmit("INVITE")));
//!
//! // No answer: Timer A retransmits at 500 ms.
//! assert_eq!(tx.poll_timeout(), Some(t(500)));
//! let a: Vec<_> = tx.handle_timeout(t(500)).into_iter().collect();
//! assert_eq!(a, [Action::Transmit("INVITE")]);
//!
//! // A 486 arrives: pass it up, ACK it, wait Timer D.
//! let a: Vec<_> = tx.handle_response(t(700), "486 Busy", 486).into_iter().collect();
//! assert_eq!(a, [Action::PassToTu("486 Busy"), Action::SendAck("486 Busy")]);
//! assert_eq!(tx.state(), InviteClientState::Completed);
//! assert_eq!(tx.poll_timeout(), Some(t(700 + 32_000)));
//! ```
//!
//! # Who does what
//!
//! * **ACK for a non-2xx final response** (INVITE client): the machine
//!   emits [`Action::SendAck`] carrying the response, once for the first
//!   300–699 and again for every retransmission of it absorbed in
//!   Completed; the TU/message layer builds the ACK from the INVITE
//!   ([`InviteClient::request`]) and that response and sends it. The ACK
//!   for a 2xx is entirely the TU's (RFC 3261 §13.2.2.4).
//! * **100 Trying** for an INVITE: sent by the TU through
//!   [`InviteServer::send_response`] (a proxy does it at once).
//! * **Timer C** (proxy INVITE timeout, also Kamailio's `fr_inv_timer`):
//!   [`ProxyInviteTimer`], driven by the proxy next to each INVITE client
//!   transaction, because the transaction has no timeout in Proceeding.
//! * **Matching** ([`TxKey`]): the caller extracts branch, sent-by, method
//!   (or the RFC 2543 parts) and builds a key; an ACK yields the key of its
//!   INVITE server transaction, a CANCEL its own key, and
//!   [`TxKey::for_cancel_target`] the key of the INVITE it cancels
//!   (RFC 3261 §9.2).
//!
//! # Transactions in a table
//!
//! [`TxTable`] stores [`Transaction`]s (or any [`Timed`] value) by
//! [`TxKey`]; its [`poll_expired`](TxTable::poll_expired) hands the
//! timer thread every transaction whose deadline passed, and terminated
//! transactions are removed automatically.

#![forbid(unsafe_code)]

mod action;
mod client_invite;
mod client_non_invite;
mod key;
mod server_invite;
mod server_non_invite;
mod table;
mod time;
mod timers;
mod transaction;
mod wheel;

pub use action::{Action, Actions};
pub use client_invite::{InviteClient, InviteClientState};
pub use client_non_invite::{NonInviteClient, NonInviteClientState};
pub use key::{is_rfc3261_branch, KeyKind, Method, Rfc2543Parts, TxKey, MAGIC_COOKIE};
pub use server_invite::{InviteServer, InviteServerState};
pub use server_non_invite::{NonInviteServer, NonInviteServerState};
pub use table::{Timed, TxTable};
pub use time::{Clock, Instant};
pub use timers::{KamailioTm, ProxyInviteTimer, TimerConfig};
pub use transaction::Transaction;
