//! Route types (where a function may be called) and process ranks (who
//! runs `child_init`), with Kamailio's values.

use std::fmt;
use std::ops::BitOr;

/// A set of route block types, as Kamailio's route flags.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct RouteType(pub u32);

impl RouteType {
    /// `request_route` and `route[...]` called from it.
    pub const REQUEST: RouteType = RouteType(1 << 0);
    /// `failure_route[...]`.
    pub const FAILURE: RouteType = RouteType(1 << 1);
    /// `onreply_route[...]` armed by `t_on_reply` (tm reply route).
    pub const TM_ONREPLY: RouteType = RouteType(1 << 2);
    /// `branch_route[...]`.
    pub const BRANCH: RouteType = RouteType(1 << 3);
    /// `onsend_route`.
    pub const ONSEND: RouteType = RouteType(1 << 4);
    /// `error_route`.
    pub const ERROR: RouteType = RouteType(1 << 5);
    /// Local requests (tm).
    pub const LOCAL: RouteType = RouteType(1 << 6);
    /// `reply_route` / `onreply_route {}` (core reply route).
    pub const CORE_ONREPLY: RouteType = RouteType(1 << 7);
    /// `event_route[tm:branch-failure:...]`.
    pub const BRANCH_FAILURE: RouteType = RouteType(1 << 8);
    /// Both reply routes.
    pub const ONREPLY: RouteType = RouteType((1 << 2) | (1 << 7));
    /// `event_route[...]` only.
    pub const ONEVENT: RouteType = RouteType(1 << 9);
    /// Event routes run with request semantics.
    pub const EVENT: RouteType = RouteType(1 | (1 << 9));
    /// Any route.
    pub const ANY: RouteType = RouteType(u32::MAX);

    /// Whether the two sets share a route type.
    pub fn intersects(self, other: RouteType) -> bool {
        self.0 & other.0 != 0
    }

    /// The block name as written in a config, for messages.
    pub fn name(self) -> &'static str {
        match self {
            RouteType::REQUEST => "request_route",
            RouteType::FAILURE => "failure_route",
            RouteType::TM_ONREPLY => "onreply_route",
            RouteType::BRANCH => "branch_route",
            RouteType::ONSEND => "onsend_route",
            RouteType::ERROR => "error_route",
            RouteType::LOCAL => "local_route",
            RouteType::CORE_ONREPLY => "reply_route",
            RouteType::BRANCH_FAILURE => "branch_failure_route",
            RouteType::EVENT | RouteType::ONEVENT => "event_route",
            _ => "route",
        }
    }
}

impl BitOr for RouteType {
    type Output = RouteType;
    fn bitor(self, rhs: RouteType) -> RouteType {
        RouteType(self.0 | rhs.0)
    }
}

impl fmt::Debug for RouteType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RouteType({:#x} {})", self.0, self.name())
    }
}

/// Process ranks passed to `child_init`, as Kamailio numbers them.
/// siprouter runs these as threads, but keeps the numbers.
pub mod rank {
    /// Main thread, before any worker starts.
    pub const PROC_INIT: i32 = -127;
    /// Main thread, after the workers started.
    pub const PROC_MAIN: i32 = 0;
    /// The timer thread.
    pub const PROC_TIMER: i32 = -1;
    /// The RPC (management) thread.
    pub const PROC_RPC: i32 = -2;
    /// Kamailio's name for the RPC rank.
    pub const PROC_FIFO: i32 = -2;
    /// The TCP accept thread.
    pub const PROC_TCP_MAIN: i32 = -4;
    /// Unix socket server.
    pub const PROC_UNIXSOCK: i32 = -5;
    /// After every child_init ran (opt-in in Kamailio).
    pub const PROC_POSTCHILDINIT: i32 = -126;
    /// Never passed to child_init.
    pub const PROC_NOCHLDINIT: i32 = -128;
    /// The lowest rank (Kamailio's `PROC_MIN`).
    pub const PROC_MIN: i32 = PROC_NOCHLDINIT;

    thread_local! {
        static CURRENT: std::cell::Cell<Option<i32>> = const { std::cell::Cell::new(None) };
    }

    /// The rank of the calling thread (a worker, the timer, a module's
    /// own thread), set by the core before its `child_init`; `None` on
    /// threads the core did not start with a rank.
    pub fn current() -> Option<i32> {
        CURRENT.with(|c| c.get())
    }

    /// Sets the calling thread's rank (the core does, for each thread it
    /// starts).
    pub fn set_current(rank: i32) {
        CURRENT.with(|c| c.set(Some(rank)));
    }
    /// The first SIP worker: do one-time work (such as DB loads) here.
    pub const PROC_SIPINIT: i32 = 1;
    /// The first "pure" SIP worker.
    pub const PROC_SIPROUTER: i32 = 2;
    /// Extra workers that run SIP routing (RPC-driven).
    pub const PROC_SIPRPC: i32 = 127;

    /// Whether `rank` is a SIP worker (runs the routing script).
    pub fn is_sip_worker(rank: i32) -> bool {
        rank > 0
    }
}
