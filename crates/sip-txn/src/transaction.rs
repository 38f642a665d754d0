//! [`Transaction`]: any of the four machines behind one type, e.g. as the
//! value of a [`TxTable`](crate::TxTable).

use crate::action::Actions;
use crate::client_invite::InviteClient;
use crate::client_non_invite::NonInviteClient;
use crate::server_invite::InviteServer;
use crate::server_non_invite::NonInviteServer;
use crate::table::Timed;
use crate::time::Instant;

/// One of the four transaction machines. Message-specific events
/// (responses, ACKs, TU responses) go to the concrete machine through the
/// `as_*` accessors; the events every machine shares (timeouts, transport
/// errors, termination) are forwarded here.
#[derive(Debug, Clone)]
pub enum Transaction<M> {
    /// INVITE client transaction.
    InviteClient(InviteClient<M>),
    /// Non-INVITE client transaction.
    NonInviteClient(NonInviteClient<M>),
    /// INVITE server transaction.
    InviteServer(InviteServer<M>),
    /// Non-INVITE server transaction.
    NonInviteServer(NonInviteServer<M>),
}

macro_rules! each {
    ($self:expr, $t:ident => $e:expr) => {
        match $self {
            Transaction::InviteClient($t) => $e,
            Transaction::NonInviteClient($t) => $e,
            Transaction::InviteServer($t) => $e,
            Transaction::NonInviteServer($t) => $e,
        }
    };
}

macro_rules! accessor {
    ($name:ident, $variant:ident, $ty:ident) => {
        #[doc = concat!("The [`", stringify!($ty), "`], if that is what this is.")]
        pub fn $name(&mut self) -> Option<&mut $ty<M>> {
            match self {
                Transaction::$variant(t) => Some(t),
                _ => None,
            }
        }
    };
}

impl<M: Clone> Transaction<M> {
    accessor!(as_invite_client, InviteClient, InviteClient);
    accessor!(as_non_invite_client, NonInviteClient, NonInviteClient);
    accessor!(as_invite_server, InviteServer, InviteServer);
    accessor!(as_non_invite_server, NonInviteServer, NonInviteServer);

    /// Whether this is a client transaction.
    pub fn is_client(&self) -> bool {
        matches!(
            self,
            Transaction::InviteClient(_) | Transaction::NonInviteClient(_)
        )
    }

    /// The next timer deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        each!(self, t => t.poll_timeout())
    }

    /// Whether the machine is Terminated.
    pub fn is_terminated(&self) -> bool {
        each!(self, t => t.is_terminated())
    }

    /// Forwards a timer expiry.
    pub fn handle_timeout(&mut self, now: Instant) -> Actions<M> {
        each!(self, t => t.handle_timeout(now))
    }

    /// Forwards a fatal transport error.
    pub fn handle_transport_error(&mut self, now: Instant) -> Actions<M> {
        each!(self, t => t.handle_transport_error(now))
    }

    /// Forcibly terminates the machine.
    pub fn terminate(&mut self) -> Actions<M> {
        each!(self, t => t.terminate())
    }
}

impl<M: Clone> Timed for Transaction<M> {
    fn poll_timeout(&self) -> Option<Instant> {
        Transaction::poll_timeout(self)
    }
    fn is_terminated(&self) -> bool {
        Transaction::is_terminated(self)
    }
}

macro_rules! machine_impls {
    ($ty:ident) => {
        impl<M: Clone> From<$ty<M>> for Transaction<M> {
            fn from(t: $ty<M>) -> Self {
                Transaction::$ty(t)
            }
        }
        impl<M: Clone> Timed for $ty<M> {
            fn poll_timeout(&self) -> Option<Instant> {
                $ty::poll_timeout(self)
            }
            fn is_terminated(&self) -> bool {
                $ty::is_terminated(self)
            }
        }
    };
}

machine_impls!(InviteClient);
machine_impls!(NonInviteClient);
machine_impls!(InviteServer);
machine_impls!(NonInviteServer);
