//! The services the core offers to modules. A module reaches the core only
//! through this trait (and the types of this crate): in-tree modules and
//! modules loaded at run time alike.

use crate::msg::{Dest, Proto, SipMsg};
use crate::route::RouteType;
use crate::rpc::RpcError;
use crate::stats::StatExport;
use crate::value::Value;
use std::any::Any;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::Duration;

/// What a caller runs when a datagram it handed over was held for the
/// end of a batch and the kernel then refused it (see
/// [`Core::send_reply_then`]).
pub type LateFailure = Arc<dyn Fn() + Send + Sync>;

/// Why sending, building or resolving failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendError(pub String);

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SendError {}

/// A compiled route, as an index into the core's route table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RouteId(pub u32);

/// Where a request goes and with which Request-URI (one branch).
#[derive(Debug, Clone, Default)]
pub struct BranchTarget {
    /// Request-URI to write.
    pub uri: String,
    /// Send to this URI instead of the Request-URI (`$du`).
    pub dst_uri: Option<String>,
    /// Route headers to add first (a Path vector from `lookup`).
    pub path: Option<String>,
    /// Forced local socket (`proto:ip:port`).
    pub send_socket: Option<String>,
    /// Via branch parameter for the Via this hop adds.
    pub via_branch: String,
}

/// A request built for sending: the bytes and where they go.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// The bytes to send.
    pub data: Vec<u8>,
    /// Where to send them.
    pub dest: Dest,
}

/// The core services a module may use.
///
/// All methods are safe to call from any worker thread.
pub trait Core: Send + Sync {
    /// The running version, e.g. `siprouter 0.1.0`.
    fn version(&self) -> &str;

    /// Sends a stateless reply to a request (sl's `sl_send_reply`): Via,
    /// From, To (with a stateless To-tag for final replies), Call-ID and
    /// CSeq copied, `received`/`rport` applied, `append_to_reply` headers
    /// and the Server header added. On a UDP worker (unless
    /// `udp_hold_sends=no`) the datagram may be held like
    /// [`Core::send_batched`]: an error then means the reply could not be
    /// built or addressed, and a failure of the send itself is logged
    /// (use [`Core::send_reply_then`] to count it).
    fn send_reply(&self, msg: &mut SipMsg, code: u16, reason: &str) -> Result<(), SendError>;

    /// [`Core::send_reply`], and if the reply was held and the kernel then
    /// refuses it, `late_failure` runs (on the worker thread, after the
    /// failure is logged), so that the caller can count it. The default
    /// sends at once and never calls it.
    fn send_reply_then(
        &self,
        msg: &mut SipMsg,
        code: u16,
        reason: &str,
        late_failure: LateFailure,
    ) -> Result<(), SendError> {
        let _ = late_failure;
        self.send_reply(msg, code, reason)
    }

    /// Builds a reply without sending it (tm keeps it for retransmission).
    /// `to_tag` is used when the request's To has no tag.
    fn build_reply(
        &self,
        msg: &SipMsg,
        code: u16,
        reason: &str,
        to_tag: Option<&str>,
        body: Option<(&str, &[u8])>,
    ) -> Result<Outgoing, SendError>;

    /// Forwards a request statelessly: to `target` (`host[:port]` or a
    /// URI), else `$du`, else the Request-URI. Adds a Via with a stateless
    /// branch and applies the recorded edits. Resolution, `onsend_route`
    /// and building are checked and reported here; on a UDP worker (unless
    /// `udp_hold_sends=no`) the datagram may be held like
    /// [`Core::send_batched`], and if its send then fails it is logged and
    /// moves from `fwd_requests` to `drop_requests`. Other sends happen at
    /// once and return their result.
    fn forward(&self, msg: &mut SipMsg, target: Option<&str>) -> Result<(), SendError>;

    /// Builds the request for one branch: Request-URI and Via set, the
    /// message's edits applied, resolved to a destination.
    fn build_request(&self, msg: &SipMsg, target: &BranchTarget) -> Result<Outgoing, SendError>;

    /// Forwards a reply statelessly by its second Via (top Via removed).
    fn forward_reply(&self, reply: &mut SipMsg) -> Result<(), SendError>;

    /// Where replies to this request go (Via received/rport, or the
    /// connection it came on).
    fn reply_dest(&self, msg: &SipMsg) -> Result<Dest, SendError>;

    /// Sends bytes.
    fn send(&self, dest: &Dest, data: &[u8]) -> Result<(), SendError>;

    /// Sends bytes when the caller would only log a failure (relayed
    /// replies, branch requests, retransmissions): a UDP worker may hold
    /// the datagram until it has handled its current batch of received
    /// messages (or 200 µs after the oldest held one, checked between
    /// messages) and send the batch's datagrams with one system call; any
    /// [`Core::send`] on that thread sends them first. Failures are logged
    /// here. The default sends at once.
    fn send_batched(&self, dest: &Dest, data: &[u8]) {
        if let Err(e) = self.send(dest, data) {
            crate::lm_err!("send to {}: {e}", dest.addr);
        }
    }

    /// Resolves a SIP URI (or `host[:port]`) to a destination (RFC 3263:
    /// transport, SRV, A/AAAA; literal addresses as they are).
    fn resolve(&self, uri: &str, proto: Option<Proto>) -> Result<Dest, SendError>;

    /// Whether host (and port, if given) is this server (`myself`).
    fn is_myself(&self, host: &str, port: Option<u16>) -> bool;

    /// Whether `msg` is the ACK of a negative final reply this server sent
    /// statelessly with [`Core::send_reply`]: such an ACK repeats the
    /// request's Call-ID, From tag and top Via branch (RFC 3261 17.1.1.3),
    /// so its To-tag is the one `send_reply` derived from them. sl absorbs
    /// these before the script, as Kamailio's does.
    fn is_local_ack(&self, msg: &SipMsg) -> bool {
        let _ = msg;
        false
    }

    /// A local socket address to advertise for `proto` (for Via and
    /// Record-Route): the advertised address if set, else the listen one.
    fn local_addr(&self, proto: Proto, near: Option<SocketAddr>) -> Option<(String, u16)>;

    /// Our address on the socket a message came in on (`rcv.dst` for
    /// `rcv.proto`): its advertised address and port if it has them, else
    /// the one it listens on. `None` when the core cannot tell.
    fn received_on(&self, rcv: &crate::msg::RecvInfo) -> Option<(String, u16)> {
        let _ = rcv;
        None
    }

    /// This worker's `$var` variables that the configuration uses, each
    /// name and value (only `name`'s with `Some`; empty when the
    /// configuration never uses it).
    fn script_vars(&self, name: Option<&str>) -> Vec<(String, Value<'static>)> {
        let _ = name;
        Vec::new()
    }

    /// The listening socket named `name` (`listen=... name "x"`): its
    /// transport and address. `None` when no socket has that name.
    fn socket_by_name(&self, name: &str) -> Option<(Proto, SocketAddr)> {
        let _ = name;
        None
    }

    /// Looks up a route block by type and name (at fixup time).
    fn route_id(&self, kind: RouteType, name: &str) -> Option<RouteId>;

    /// Runs a route block on a message; returns its code (Kamailio's
    /// convention: above 0 true, below 0 false, 0 stop). `drop` in the
    /// route is reported through [`RunResult::dropped`].
    fn run_route(&self, id: RouteId, kind: RouteType, msg: &mut SipMsg) -> RunResult;

    /// Reads a pseudo-variable by name (e.g. `$ru`, `$avp(x)`), for
    /// modules that take a PV name in a parameter.
    fn pv_get(&self, msg: &mut SipMsg, name: &str) -> Option<Value<'static>>;

    /// Compiles a format string with pseudo-variables (`"sip:$rU@$fd"`)
    /// outside a fixup: for text a module reads at run time, such as rows
    /// of a database table (dialplan's replacements). Compile once, then
    /// evaluate for each message.
    fn compile_format(&self, s: &str) -> Result<Arc<dyn crate::fixup::Eval>, String> {
        Err(format!(
            "cannot compile '{s}': this core compiles no formats at run time"
        ))
    }

    /// Publishes an API other modules can bind by name (as `load_tm_api`).
    fn register_api(&self, name: &str, api: Arc<dyn Any + Send + Sync>);

    /// Binds an API published by another module.
    fn get_api(&self, name: &str) -> Option<Arc<dyn Any + Send + Sync>>;

    /// Runs `f` every `interval` on the timer thread (rank -1).
    fn add_timer(&self, name: &str, interval: Duration, f: Arc<dyn Fn() + Send + Sync>);

    /// Whether the server is shutting down.
    fn shutting_down(&self) -> bool;

    /// Starts a thread of the module's own (Kamailio's `fork_process`):
    /// every module's `child_init(rank)` runs in it first, then `f`. Call
    /// it from `child_init(PROC_MAIN)`. `f` should return soon after
    /// [`Core::shutting_down`] turns true.
    fn spawn_process(
        &self,
        name: &str,
        rank: i32,
        f: Box<dyn FnOnce() + Send + 'static>,
    ) -> Result<(), String>;

    /// Calls an RPC method by name (what the management transports of
    /// `jsonrpcs` and `ctl` serve).
    fn rpc_call(
        &self,
        method: &str,
        params: &[serde_json::Value],
    ) -> Result<serde_json::Value, RpcError>;

    /// The value of every statistic as `(group, name, value)`.
    fn statistics(&self) -> Vec<(String, String, i64)>;

    /// A weak handle to the core, for threads and RPC handlers that run
    /// outside the call they were set up in (a listener thread started
    /// from `child_init`). `None` when the core cannot give one.
    fn handle(&self) -> Option<Weak<dyn Core>> {
        None
    }

    /// Writes a pseudo-variable by name (the sibling of
    /// [`Core::pv_get`]): `$var(x)`, `$shv(x)`, `$avp(x)`, ... `$null`
    /// deletes where the PV allows it.
    fn pv_set(&self, _msg: &mut SipMsg, name: &str, _v: Value<'_>) -> Result<(), String> {
        Err(format!("cannot set {name}: not supported by this core"))
    }

    /// Every shared variable (`$shv`) with its value, sorted by name.
    fn shared_vars(&self) -> Vec<(String, Value<'static>)> {
        Vec::new()
    }

    /// Adds statistics to a group (created if new) after load, for
    /// modules whose statistics are only known from their parameters
    /// (call it from `mod_init`). Duplicate names are refused.
    fn register_stats(&self, group: &str, _stats: Vec<StatExport>) -> Result<(), String> {
        Err(format!(
            "cannot register statistics in group {group}: not supported by this core"
        ))
    }

    /// The To-tag a stateless reply to `msg` gets (sl's tag: the same for
    /// its retransmissions), for modules that must know it before they
    /// reply (presence keeps it as its dialog's tag). `None` when the core
    /// does not say.
    fn stateless_to_tag(&self, msg: &SipMsg) -> Option<String> {
        let _ = msg;
        None
    }

    /// The User-Agent header line of requests the server makes itself
    /// (`user_agent_header`, without CRLF); `None` when there is none.
    fn user_agent_header(&self) -> Option<String> {
        None
    }

    /// The configured host aliases (`alias=`), with their port if given.
    fn aliases(&self) -> Vec<(String, Option<u16>)> {
        Vec::new()
    }

    /// The main configuration file, made absolute (modules resolve the
    /// file names they are given next to it, as Kamailio's do); `None`
    /// when unknown.
    fn config_path(&self) -> Option<std::path::PathBuf> {
        None
    }

    /// The core's TCP/TLS connections, for the websocket module; `None`
    /// when TCP is disabled (or for modules loaded over the C ABI).
    fn stream_conns(&self) -> Option<Arc<dyn StreamConns>> {
        None
    }

    /// Adds a test to `myself` (Kamailio's `register_check_self_func`): a
    /// host (and port) any added test accepts is this server too, for the
    /// script's `myself` and every module that asks
    /// [`Core::is_myself`]. The domain module adds its table so.
    fn add_myself_check(&self, check: MyselfCheck) -> Result<(), String> {
        let _ = check;
        Err("this core takes no myself checks".into())
    }

    /// The `name` the `listen` line of the socket a message came in on
    /// gave it (`$Rn`); `None` when it has none.
    fn socket_name(&self, rcv: &crate::msg::RecvInfo) -> Option<String> {
        let _ = rcv;
        None
    }

    /// The `server_id` core parameter (`$sid`; 0 when not set).
    fn server_id(&self) -> i64 {
        0
    }

    /// The destination blocklist, when `use_dst_blocklist` is on.
    fn dst_blocklist(&self) -> Option<&crate::dst_blocklist::DstBlocklist> {
        None
    }
}

/// A test added to `myself`: host (lower or upper case, IPv6 without
/// brackets or with), port when known.
pub type MyselfCheck = Arc<dyn Fn(&str, Option<u16>) -> bool + Send + Sync>;

/// What the websocket module may do with the core's stream connections.
pub trait StreamConns: Send + Sync {
    /// Writes `reply` (the HTTP `101 Switching Protocols`) on connection
    /// `conn_id` and from then on frames what is read and written on it as
    /// WebSocket (RFC 6455); the connection carries `ws` (or `wss` over
    /// TLS) from then on.
    fn upgrade_ws(&self, conn_id: u64, reply: &[u8]) -> Result<(), SendError>;
    /// Sends a Close frame with `status` and `reason`, then closes.
    fn ws_close(&self, conn_id: u64, status: u16, reason: &str) -> Result<(), SendError>;
    /// Sends a Ping (or, when `pong`, an unsolicited Pong) frame with
    /// `data` (at most 125 bytes are sent).
    fn ws_ping(&self, conn_id: u64, pong: bool, data: &[u8]) -> Result<(), SendError>;
    /// Closes a connection (after an HTTP reply with `Connection: close`).
    fn close(&self, conn_id: u64);
    /// The WebSocket connections now open.
    fn ws_conns(&self) -> Vec<WsConnInfo>;
    /// WebSocket frame and connection counts since start.
    fn ws_counts(&self) -> WsCounts;

    /// Connection `id` (any, WebSocket or not), if open and not being
    /// closed.
    fn conn(&self, id: u64) -> Option<WsConnInfo> {
        let _ = id;
        None
    }

    /// The id of the open connection to `peer`, if any.
    fn conn_to(&self, peer: SocketAddr) -> Option<u64> {
        let _ = peer;
        None
    }

    /// Closes connection `id` after `lifetime` without traffic instead of
    /// `tcp_connection_lifetime`; `false` when there is no such
    /// connection.
    fn set_lifetime(&self, id: u64, lifetime: Duration) -> bool {
        let _ = (id, lifetime);
        false
    }

    /// Turns TCP keepalive probes on (`Some`) or off on connection `id`.
    fn set_keepalive(&self, id: u64, ka: Option<Keepalive>) -> Result<(), String> {
        let _ = (id, ka);
        Err("no connections".into())
    }

    /// Asks for the end of connection `id` to be reported to the hook of
    /// [`StreamConns::on_end`] as wanted (tcpops' `closed_event` 2).
    fn want_end_event(&self, id: u64) -> bool {
        let _ = id;
        false
    }

    /// The TLS session of connection `id` (TLS or WSS, handshake over).
    fn tls_session(&self, id: u64) -> Option<TlsSession> {
        let _ = id;
        None
    }

    /// The open TLS connections (`tls.list`).
    fn tls_conns(&self) -> Vec<(WsConnInfo, Option<TlsSession>)> {
        Vec::new()
    }

    /// Sets the function told when a connection ends other than by this
    /// server closing it: the peer closed it, it reset it, or it was idle
    /// past its lifetime. Once; `false` when one is set already.
    fn on_end(&self, f: ConnEndFn) -> bool {
        let _ = f;
        false
    }
}

/// What a TLS session agreed on, and the certificates on both sides (the
/// tls module's `$tls_*` pseudo-variables).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsSession {
    /// The protocol version, as OpenSSL names it (`TLSv1.3`, `TLSv1.2`).
    pub version: String,
    /// The cipher suite's IANA code (`0x1302`: TLS_AES_256_GCM_SHA384).
    pub suite: u16,
    /// The peer's certificate chain, DER, its own certificate first;
    /// empty when it sent none.
    pub peer_certs: Vec<Vec<u8>>,
    /// Our certificate (DER) on this connection, if we presented one.
    pub my_cert: Option<Vec<u8>>,
    /// The server name the client asked for (SNI), when we are the
    /// server and it sent one.
    pub server_name: Option<String>,
    /// The peer's certificate was checked against `ca_list` and passed.
    pub peer_verified: bool,
    /// We accepted the connection (we are the TLS server).
    pub accepted: bool,
}

/// TCP keepalive settings (`tcp_keepalive_enable`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keepalive {
    /// Seconds without traffic before the first probe.
    pub idle: u32,
    /// Probes without answer before the connection is dropped.
    pub count: u32,
    /// Seconds between probes.
    pub interval: u32,
}

/// How a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnEnd {
    /// The peer closed it.
    Closed,
    /// It was idle past its lifetime and this server closed it.
    Timeout,
    /// The peer reset it.
    Reset,
}

/// Told how a connection ended: the connection as a message received on
/// it would see it, how, and whether its end was asked for with
/// [`StreamConns::want_end_event`].
pub type ConnEndFn = Arc<dyn Fn(crate::msg::RecvInfo, ConnEnd, bool) + Send + Sync>;

/// WebSocket counts (the websocket module's statistics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WsCounts {
    /// Frames received (control frames and fragments included).
    pub received: u64,
    /// Frames sent.
    pub sent: u64,
    /// Connections the client closed (a Close frame, or the connection
    /// ended).
    pub remote_closed: u64,
    /// Connections closed on a protocol fault or a failed write.
    pub failed: u64,
}

/// One open WebSocket connection (`ws.dump`).
#[derive(Debug, Clone)]
pub struct WsConnInfo {
    /// Connection id (`$conid`).
    pub id: u64,
    /// The client's address.
    pub peer: SocketAddr,
    /// The local address it connected to.
    pub local: SocketAddr,
    /// `Ws` or `Wss`.
    pub proto: Proto,
    /// Time since anything was read or written on it.
    pub idle: Duration,
    /// Time since anything was read on it (a Pong answers a Ping).
    pub silent: Duration,
}

/// The outcome of running a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunResult {
    /// The route's return code.
    pub code: i32,
    /// `drop` was executed.
    pub dropped: bool,
}

/// Binds an API by name and type: `bind::<TmApi>(core, "tm")`.
pub fn bind<T: Any + Send + Sync>(core: &dyn Core, name: &str) -> Option<Arc<T>> {
    core.get_api(name)?.downcast::<T>().ok()
}

/// Runs an event route of a network hook (topoh's and topos'
/// `msg-outgoing`, `msg-sending`, ...) on a faked message (`buf` `None`)
/// or on `buf` parsed; whether the route executed `drop`. A `buf` that
/// does not parse runs nothing.
pub fn event_route_drops(core: &dyn Core, id: RouteId, buf: Option<&[u8]>) -> bool {
    let msg = match buf {
        None => Some(SipMsg::faked()),
        Some(b) => SipMsg::parse(
            bytes::Bytes::copy_from_slice(b),
            crate::RecvInfo::loopback(),
            0,
        )
        .ok(),
    };
    let Some(mut msg) = msg else { return false };
    core.run_route(id, RouteType::EVENT, &mut msg).dropped
}
