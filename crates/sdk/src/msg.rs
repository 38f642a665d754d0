//! The message being routed, with what the script changed so far
//! (Kamailio's `struct sip_msg`): the parsed original, recorded edits, the
//! new Request-URI, destination URI, flags, branches and AVPs.

use crate::avp::Avps;
use crate::xavp::Xavps;
use bytes::Bytes;
use sip_msg::edit::Edits;
use sip_msg::{Message, OwnedMessage, ParseError};
use std::any::{Any, TypeId};
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

/// A transport protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Proto {
    /// UDP
    Udp,
    /// TCP
    Tcp,
    /// TLS over TCP
    Tls,
    /// WebSocket
    Ws,
    /// Secure WebSocket
    Wss,
    /// SCTP
    Sctp,
}

impl Proto {
    /// Kamailio's number for it (`PROTO_UDP` 1, TCP 2, TLS 3, SCTP 4, WS 5,
    /// WSS 6), as `$proto`-style values, `alias` parameters and the
    /// modules' tables use it.
    pub fn number(self) -> u8 {
        match self {
            Proto::Udp => 1,
            Proto::Tcp => 2,
            Proto::Tls => 3,
            Proto::Sctp => 4,
            Proto::Ws => 5,
            Proto::Wss => 6,
        }
    }

    /// The transport of one of Kamailio's numbers (see [`Proto::number`]).
    pub fn from_number(n: u8) -> Option<Proto> {
        Some(match n {
            1 => Proto::Udp,
            2 => Proto::Tcp,
            3 => Proto::Tls,
            4 => Proto::Sctp,
            5 => Proto::Ws,
            6 => Proto::Wss,
            _ => return None,
        })
    }

    /// Lower-case name as in `listen=udp:...` and `transport=` params.
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Udp => "udp",
            Proto::Tcp => "tcp",
            Proto::Tls => "tls",
            Proto::Ws => "ws",
            Proto::Wss => "wss",
            Proto::Sctp => "sctp",
        }
    }

    /// Upper-case name as in a Via header.
    pub fn via_name(self) -> &'static str {
        match self {
            Proto::Udp => "UDP",
            Proto::Tcp => "TCP",
            Proto::Tls => "TLS",
            Proto::Ws => "WS",
            Proto::Wss => "WSS",
            Proto::Sctp => "SCTP",
        }
    }

    /// Parses a protocol name, any case.
    pub fn parse(s: &str) -> Option<Proto> {
        Some(match s.to_ascii_lowercase().as_str() {
            "udp" => Proto::Udp,
            "tcp" => Proto::Tcp,
            "tls" => Proto::Tls,
            "ws" => Proto::Ws,
            "wss" => Proto::Wss,
            "sctp" => Proto::Sctp,
            _ => return None,
        })
    }

    /// Whether the transport is a byte stream (no retransmissions).
    pub fn is_reliable(self) -> bool {
        !matches!(self, Proto::Udp)
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A local socket written `proto:ip:port` (or `ip:port`; IPv6 in
/// brackets), as an address; `None` when it is not one.
pub fn socket_addr(s: &str) -> Option<SocketAddr> {
    let s = s.trim();
    let rest = s
        .split_once(':')
        .filter(|(p, _)| Proto::parse(p).is_some())
        .map_or(s, |(_, r)| r);
    rest.parse().ok()
}

/// Kamailio's method ids (`METHOD_*`, one bit each), by name: the id of
/// `$rmid` and, for the first 15, the bits of usrloc's `methods`.
pub const METHOD_IDS: [(&str, u32); 19] = [
    ("INVITE", 1),
    ("CANCEL", 2),
    ("ACK", 4),
    ("BYE", 8),
    ("INFO", 16),
    ("REGISTER", 32),
    ("SUBSCRIBE", 64),
    ("NOTIFY", 128),
    ("MESSAGE", 256),
    ("OPTIONS", 512),
    ("PRACK", 1024),
    ("UPDATE", 2048),
    ("REFER", 4096),
    ("PUBLISH", 8192),
    ("KDMQ", 16384),
    ("GET", 32768),
    ("POST", 65536),
    ("PUT", 131072),
    ("DELETE", 262144),
];

/// Kamailio's method id of `name` (`METHOD_OTHER`, 524288, for
/// another).
pub fn method_id(name: &str) -> u32 {
    METHOD_IDS
        .iter()
        .find(|(n, _)| *n == name)
        .map_or(524288, |(_, id)| *id)
}

/// Where and how a message was received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecvInfo {
    /// The sender's address.
    pub src: SocketAddr,
    /// Our local socket address it arrived on.
    pub dst: SocketAddr,
    /// Transport.
    pub proto: Proto,
    /// Connection id for stream transports (0 for UDP).
    pub conn_id: u64,
}

impl RecvInfo {
    /// A UDP datagram from and to 127.0.0.1:5060: for messages built
    /// locally and in tests.
    pub fn loopback() -> RecvInfo {
        let a = SocketAddr::from(([127, 0, 0, 1], 5060));
        RecvInfo {
            src: a,
            dst: a,
            proto: Proto::Udp,
            conn_id: 0,
        }
    }
}

/// Where to send a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dest {
    /// Transport.
    pub proto: Proto,
    /// Remote address.
    pub addr: SocketAddr,
    /// Use this existing connection if it is still open (stream transports).
    pub conn_id: Option<u64>,
    /// Send from this local socket (`force_send_socket`).
    pub send_socket: Option<SocketAddr>,
    /// Do not open a new connection (`set_forward_no_connect`).
    pub no_connect: bool,
}

impl Dest {
    /// A destination with no connection or socket preference.
    pub fn new(proto: Proto, addr: SocketAddr) -> Dest {
        Dest {
            proto,
            addr,
            conn_id: None,
            send_socket: None,
            no_connect: false,
        }
    }
}

/// A branch of the destination set (`append_branch`, `lookup`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Branch {
    /// Request-URI of the branch.
    pub uri: String,
    /// Destination URI (`$du` of the branch), e.g. a received address or
    /// the first Path hop.
    pub dst_uri: Option<String>,
    /// Path vector to add as Route headers.
    pub path: Option<String>,
    /// q-value in thousandths, if known.
    pub q: Option<u16>,
    /// Branch flags.
    pub flags: u32,
    /// Forced send socket for this branch (`proto:ip:port`).
    pub socket: Option<String>,
    /// Unique id of the location record it came from (`$ruid`).
    pub ruid: Option<String>,
    /// SIP instance (`+sip.instance`).
    pub instance: Option<String>,
    /// User-Agent of the registration it came from (`$branch(location_ua)`).
    pub location_ua: Option<String>,
}

/// Whether two `+sip.instance` values name the same instance (white space
/// and angle brackets aside: `<urn:uuid:x>` is `urn:uuid:x`).
pub fn same_instance(a: &str, b: &str) -> bool {
    fn bare(s: &str) -> &str {
        s.trim().trim_start_matches('<').trim_end_matches('>')
    }
    bare(a) == bare(b)
}

/// Per-message state the modules keep for themselves (tm keeps the
/// current transaction here), keyed by type.
#[derive(Default)]
pub struct Extensions {
    items: Vec<(TypeId, Box<dyn Any + Send>)>,
}

impl Extensions {
    /// Stores a value, replacing one of the same type.
    pub fn insert<T: Any + Send>(&mut self, v: T) {
        let id = TypeId::of::<T>();
        self.items.retain(|(t, _)| *t != id);
        self.items.push((id, Box::new(v)));
    }

    /// The value of this type, if stored.
    pub fn get<T: Any + Send>(&self) -> Option<&T> {
        let id = TypeId::of::<T>();
        self.items
            .iter()
            .find(|(t, _)| *t == id)
            .and_then(|(_, b)| b.downcast_ref())
    }

    /// The value of this type, mutably.
    pub fn get_mut<T: Any + Send>(&mut self) -> Option<&mut T> {
        let id = TypeId::of::<T>();
        self.items
            .iter_mut()
            .find(|(t, _)| *t == id)
            .and_then(|(_, b)| b.downcast_mut())
    }

    /// Removes and returns the value of this type.
    pub fn remove<T: Any + Send>(&mut self) -> Option<T> {
        let id = TypeId::of::<T>();
        let i = self.items.iter().position(|(t, _)| *t == id)?;
        self.items.swap_remove(i).1.downcast().ok().map(|b| *b)
    }
}

impl fmt::Debug for Extensions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Extensions({} items)", self.items.len())
    }
}

/// Flags changing how the next send behaves.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SendFlags {
    /// Do not open a new connection (reuse only).
    pub no_connect: bool,
    /// Close the connection after sending.
    pub close: bool,
    /// Errors of this send that do not blocklist its destination
    /// (`blst_set_ignore`, the `dst_blocklist` `ERR_*` bits).
    pub blst_imask: u8,
    /// The outbound TCP connection id (tcpops' `tcp_set_otcpid`).
    pub otcpid: u64,
    /// Send requests over the connection `otcpid` names while it is open
    /// (`tcp_set_otcpid_flag(1)`, Kamailio's `FL_USE_OTCPID`).
    pub use_otcpid: bool,
    /// The destination is an RFC 5626 flow (rr's `loose_route` routed by
    /// an outbound flow token): with `no_connect`, a connection that is
    /// gone fails the request with 430 Flow Failed (§5.3) instead of a
    /// send error.
    pub flow: bool,
}

impl SendFlags {
    /// The connection a request must go over, when the script chose one.
    pub fn chosen_conn(&self) -> Option<u64> {
        (self.use_otcpid && self.otcpid != 0).then_some(self.otcpid)
    }
}

/// The parsed original of a [`SipMsg`]: its own, or shared with copies
/// of the message (a transaction's copy of its request, the copies its
/// failure routes run on), which then cost a reference count instead of
/// a copy of the parse result.
#[derive(Debug)]
enum Orig {
    Own(OwnedMessage),
    Shared(Arc<OwnedMessage>),
}

impl Orig {
    fn get(&self) -> &OwnedMessage {
        match self {
            Orig::Own(o) => o,
            Orig::Shared(a) => a,
        }
    }
}

/// The parsed `OPTIONS` of [`SipMsg::faked`].
fn faked_original() -> OwnedMessage {
    // Kamailio's (core/fmsg.c), so that routes read the same values.
    const FAKED: &[u8] = b"OPTIONS sip:you@kamailio.org SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1\r\nFrom: <sip:you@kamailio.org>;tag=123\r\nTo: <sip:you@kamailio.org>\r\nCall-ID: 123\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
    OwnedMessage::parse(Bytes::from_static(FAKED))
        .unwrap_or_else(|_| unreachable!("the faked message is well-formed"))
}

/// Where a request is about to go, for [`SendFixup`]s.
#[derive(Debug, Clone, Copy)]
pub struct SendInfo<'a> {
    /// The transport it leaves on.
    pub proto: Proto,
    /// Our host (address or advertised name) on the socket it leaves from.
    pub host: &'a str,
    /// Our port on that socket.
    pub port: u16,
    /// It leaves from the socket the message came in on, with the same
    /// protocol (one Record-Route does for both sides).
    pub same_socket: bool,
}

/// A change made to a request when it is sent, once its transport and
/// socket are known (Kamailio's conditional lumps): rr's second
/// Record-Route when the request leaves on another transport or socket
/// than it came in on. Runs on the edits of each copy sent; a plain
/// function, so that carrying one costs nothing (what it needs is in the
/// edits).
pub type SendFixup = fn(&mut Edits, &SendInfo<'_>);

/// The [`SendFixup`]s of a message (at most [`SendFixups::MAX`]; no
/// allocation).
#[derive(Debug, Clone, Copy, Default)]
pub struct SendFixups {
    list: [Option<SendFixup>; SendFixups::MAX],
}

impl SendFixups {
    /// How many a message can carry.
    pub const MAX: usize = 4;

    /// Adds one; false when full.
    pub fn push(&mut self, f: SendFixup) -> bool {
        match self.list.iter_mut().find(|x| x.is_none()) {
            Some(slot) => {
                *slot = Some(f);
                true
            }
            None => false,
        }
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.list[0].is_none()
    }

    /// The fix-ups, in the order they were added.
    pub fn iter(&self) -> impl Iterator<Item = SendFixup> + '_ {
        self.list.iter().map_while(|x| *x)
    }
}

/// A reply's status code changed by the script (textopsx's
/// `change_reply_status_code`), kept in [`SipMsg::ext`]: the code tm goes
/// on with, and the index of the edit that writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewStatus {
    /// The new code.
    pub code: u16,
    /// The edit replacing the status line's digits.
    pub edit: usize,
}

/// The message being routed and everything the script changed so far.
#[derive(Debug)]
pub struct SipMsg {
    orig: Orig,
    /// Edits recorded against the original bytes (Kamailio's lumps).
    pub edits: Edits,
    /// Where it came from.
    pub rcv: RecvInfo,
    /// New Request-URI (`$ru` after a rewrite), applied when forwarding.
    pub new_uri: Option<String>,
    /// Destination URI (`$du`): where to send, not what to put in the
    /// Request-URI.
    pub dst_uri: Option<String>,
    /// Message flags (`setflag`, `$mf`).
    pub flags: u32,
    /// Flags of branch 0 (`setbflag`, `$bf`).
    pub bflags: u32,
    /// Extended message flags (corex's `setxflag`, 0..63): kept with the
    /// request in its transaction, as the message flags are.
    pub xflags: u64,
    /// Additional branches (the destination set).
    pub branches: Vec<Branch>,
    /// Path vector of branch 0 (set by `lookup`).
    pub path: Option<String>,
    /// `force_send_socket` as written (`proto:ip:port`).
    pub force_send_socket: Option<String>,
    /// Headers to add to a locally generated reply (`append_to_reply`).
    pub reply_headers: String,
    /// The body of a locally generated reply (textops' `set_reply_body`;
    /// its Content-Type is in [`SipMsg::reply_headers`]).
    pub reply_body: Option<Vec<u8>>,
    /// A unique id of this message in this process.
    pub id: u64,
    /// AVPs (per message; move with the request into a transaction).
    pub avps: Avps,
    /// Send flags for forwarded requests.
    pub fwd_flags: SendFlags,
    /// Send flags for replies.
    pub reply_flags: SendFlags,
    /// `force_rport()` was called: reply to the source port.
    pub force_rport: bool,
    /// `add_local_rport()` was called: the Via this hop adds carries
    /// `;rport` (RFC 3581), asking the next hop to reply to our port.
    pub local_rport: bool,
    /// corex's `via_add_srvid(1)`: the Via this hop adds carries
    /// `;srvid=` the core's `server_id` (when not 0).
    pub via_srvid: bool,
    /// corex's `via_add_xavp_params(1)`: the Via this hop adds carries the
    /// fields of the core's `xavp_via_params` XAVP as parameters.
    pub via_xavp_params: bool,
    /// corex's `via_use_xavp_fields(1)`: the Via this hop adds takes its
    /// address and port from the core's `xavp_via_fields` XAVP.
    pub via_xavp_fields: bool,
    /// `set_advertised_address`/`set_advertised_port` for this message.
    pub advertised: Option<(String, Option<u16>)>,
    /// The last internal error, for `sl_reply_error`/`send_reply_error`:
    /// the SIP code, the reason, and Kamailio's error number (0: none; see
    /// [`SipMsg::error_reply`]).
    pub last_error: Option<(u16, String, u16)>,
    /// Module-private state for this message.
    pub ext: Extensions,
    /// XAVPs (`$xavp(root=>field)`), per message.
    pub xavps: Xavps,
    /// A faked message (made by [`SipMsg::faked`] for running script
    /// code or PV accessors without a received message).
    pub faked: bool,
    /// Changes to make when the request is sent (see [`SendFixup`]).
    pub send_fixups: SendFixups,
    /// The Request-URI and `$du` as they were when the Request-URI was
    /// used for forking (Kamailio's `ruri_mark_consumed`): on entering
    /// failure_route, and when `append_branch()` made a branch of it. tm
    /// then sends no branch to the Request-URI until the script writes
    /// `$ru`, `$rU` or `$du` (which Kamailio marks new). See
    /// [`SipMsg::consume_ruri`].
    pub ruri_consumed: Option<(String, Option<String>)>,
    /// A request received from the network while the core runs
    /// `request_route` for it: the modules' request-done hooks
    /// ([`crate::ModuleDef::on_request_done`]) run when the route ends.
    pub received: bool,
    /// The location record the Request-URI was set from (registrar's
    /// `lookup`, tm's `t_next_contacts`): tm keeps it with the branch
    /// made of the Request-URI, as the appended branches keep theirs.
    pub ruri_location: Option<Box<RuriLocation>>,
}

/// Where a Request-URI set from a location record came from (Kamailio's
/// `msg->ruid`, `msg->instance`, `msg->location_ua`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuriLocation {
    /// The record's unique id.
    pub ruid: Option<String>,
    /// Its `+sip.instance`.
    pub instance: Option<String>,
    /// The User-Agent it registered with.
    pub location_ua: Option<String>,
}

impl SipMsg {
    /// Parses received bytes.
    pub fn parse(buf: Bytes, rcv: RecvInfo, id: u64) -> Result<SipMsg, ParseError> {
        Ok(Self::from_owned(OwnedMessage::parse(buf)?, rcv, id))
    }

    /// Wraps an already parsed message.
    pub fn from_owned(orig: OwnedMessage, rcv: RecvInfo, id: u64) -> SipMsg {
        Self::with_orig(Orig::Own(orig), rcv, id)
    }

    fn with_orig(orig: Orig, rcv: RecvInfo, id: u64) -> SipMsg {
        SipMsg {
            orig,
            edits: Edits::new(),
            rcv,
            new_uri: None,
            dst_uri: None,
            flags: 0,
            bflags: 0,
            xflags: 0,
            branches: Vec::new(),
            path: None,
            force_send_socket: None,
            reply_headers: String::new(),
            reply_body: None,
            id,
            avps: Avps::default(),
            fwd_flags: SendFlags::default(),
            reply_flags: SendFlags::default(),
            force_rport: false,
            local_rport: false,
            via_srvid: false,
            via_xavp_params: false,
            via_xavp_fields: false,
            advertised: None,
            last_error: None,
            ext: Extensions::default(),
            xavps: Xavps::default(),
            faked: false,
            send_fixups: SendFixups::default(),
            ruri_consumed: None,
            received: false,
            ruri_location: None,
        }
    }

    /// A faked request (Kamailio's `faked_msg`): an `OPTIONS` from and to
    /// `127.0.0.1`, for running PV accessors or routes when no message was
    /// received (RPC, timers, startup). [`SipMsg::faked`] is set on it.
    pub fn faked() -> SipMsg {
        let local = SocketAddr::from(([127, 0, 0, 1], 9));
        let rcv = RecvInfo {
            src: local,
            dst: local,
            proto: Proto::Udp,
            conn_id: 0,
        };
        let mut m = Self::from_owned(faked_original(), rcv, 0);
        m.faked = true;
        m
    }

    /// The message as received (edits are not visible here).
    pub fn msg(&self) -> &Message<'_> {
        self.orig.get().msg()
    }

    /// The received bytes.
    pub fn bytes(&self) -> &Bytes {
        self.orig.get().bytes()
    }

    /// The owned original message.
    pub fn original(&self) -> &OwnedMessage {
        self.orig.get()
    }

    /// The original, made shareable (once; later calls only count a
    /// reference), so that copies made by [`SipMsg::over_same_original`]
    /// share it instead of copying it.
    pub fn share(&mut self) -> Arc<OwnedMessage> {
        if let Orig::Shared(a) = &self.orig {
            return Arc::clone(a);
        }
        thread_local! {
            // Only while the original moves into its Arc: a stand-in that
            // costs a reference count (per thread, so that workers do not
            // share the count's cache line).
            static STAND_IN: Arc<OwnedMessage> = Arc::new(faked_original());
        }
        let stand_in = STAND_IN
            .try_with(Arc::clone)
            .unwrap_or_else(|_| Arc::new(faked_original()));
        let own = std::mem::replace(&mut self.orig, Orig::Shared(stand_in));
        let a = match own {
            Orig::Own(mut o) => {
                o.shrink_to_fit();
                Arc::new(o)
            }
            Orig::Shared(a) => a,
        };
        self.orig = Orig::Shared(Arc::clone(&a));
        a
    }

    /// A new message over the same original (shared when this one's is,
    /// else a copy of the parse result), received the same way, with none
    /// of this message's routing state; `None` only when the copy fails.
    pub fn over_same_original(&self, id: u64) -> Option<SipMsg> {
        let orig = match &self.orig {
            Orig::Shared(a) => Orig::Shared(Arc::clone(a)),
            Orig::Own(o) => Orig::Own(o.try_clone().ok()?),
        };
        Some(Self::with_orig(orig, self.rcv, id))
    }

    /// Whether this is a request.
    pub fn is_request(&self) -> bool {
        self.msg().is_request()
    }

    /// The body as it will be sent: the one a function set (textops,
    /// rtpengine, ...), else the received one.
    pub fn body(&self) -> &[u8] {
        match self.edits.body() {
            Some((b, _)) => b,
            None => self.msg().body(),
        }
    }

    /// The current Request-URI: the rewritten one if the script changed
    /// it, else the received one (empty for replies).
    pub fn ruri(&self) -> &str {
        match &self.new_uri {
            Some(u) => u,
            None => self.msg().request_uri().map_or("", |u| u.raw),
        }
    }

    /// The Request-URI's branch as it stands: the URI with `$du`, the
    /// path, the branch flags and the forced socket (what `append_branch()`
    /// copies and tm sends to first).
    pub fn ruri_branch(&self) -> Branch {
        let loc = self.ruri_location.as_deref();
        Branch {
            uri: self.ruri().to_string(),
            dst_uri: self.dst_uri.clone(),
            path: self.path.clone(),
            flags: self.bflags,
            socket: self.force_send_socket.clone(),
            ruid: loc.and_then(|l| l.ruid.clone()),
            instance: loc.and_then(|l| l.instance.clone()),
            location_ua: loc.and_then(|l| l.location_ua.clone()),
            ..Default::default()
        }
    }

    /// Marks the Request-URI as used for forking (failure_route, a branch
    /// appended from it), so that tm does not send to it again.
    pub fn consume_ruri(&mut self) {
        self.ruri_consumed = Some((self.ruri().to_string(), self.dst_uri.clone()));
    }

    /// Makes the Request-URI usable again without changing it (Kamailio's
    /// `ruri_mark_new`, as uac's `uac_auth` does).
    pub fn renew_ruri(&mut self) {
        self.ruri_consumed = None;
    }

    /// Whether the Request-URI was used for forking and neither it nor
    /// `$du` changed since (the script's `$ru`/`$rU`/`$du` writes also
    /// renew it with the same value; a module that changes either does by
    /// changing it).
    pub fn ruri_is_consumed(&self) -> bool {
        self.ruri_consumed
            .as_ref()
            .is_some_and(|(u, d)| u == self.ruri() && *d == self.dst_uri)
    }

    /// The current Request-URI, parsed: the one parsed with the message
    /// when the script did not rewrite it (no second parse).
    pub fn ruri_parsed(&self) -> Result<sip_msg::Uri<'_>, sip_msg::ParseError> {
        match (&self.new_uri, self.msg().request_uri()) {
            (None, Some(u)) => Ok(*u),
            _ => sip_msg::Uri::parse(self.ruri()),
        }
    }

    /// Replaces the original with new bytes (after `msg_apply_changes`):
    /// recorded edits are dropped, the rest of the state is kept.
    pub fn reparse(&mut self, buf: Bytes) -> Result<(), ParseError> {
        self.orig = Orig::Own(OwnedMessage::parse(buf)?);
        self.edits.clear();
        Ok(())
    }

    /// Records an internal error code for `sl_reply_error`.
    pub fn set_error(&mut self, code: u16, reason: impl Into<String>) {
        self.last_error = Some((code, reason.into(), 0));
    }

    /// Records one of Kamailio's numbered errors (477 a send error, 478
    /// an unresolvable destination), whose number is its SIP code.
    pub fn set_numbered_error(&mut self, code: u16, reason: impl Into<String>) {
        self.last_error = Some((code, reason.into(), code));
    }

    /// The reply `sl_reply_error` (`signature` "SL") or `t_reply_error`
    /// ("TM") sends for the last error, as Kamailio writes it: a numbered
    /// error's reason followed by `(number/signature)`, and without an
    /// error Kamailio's unspecified one.
    pub fn error_reply(&self, signature: &str) -> (u16, String) {
        match &self.last_error {
            None => (
                500,
                format!("I'm terribly sorry, server error occurred (1/{signature})"),
            ),
            Some((code, reason, 0)) => (*code, reason.clone()),
            Some((code, reason, n)) => (*code, format!("{reason} ({n}/{signature})")),
        }
    }
}

#[cfg(test)]
mod faked_tests {
    use super::*;

    #[test]
    fn faked_message_parses() {
        let m = SipMsg::faked();
        assert!(m.faked);
        assert!(m.is_request());
        assert_eq!(m.ruri(), "sip:you@kamailio.org");
        assert!(m.xavps.is_empty());
    }
}

/// What [`SipMsg::push_reply_headers`] changed, for
/// [`SipMsg::restore_reply_headers`].
#[derive(Debug)]
#[must_use = "give it to restore_reply_headers"]
pub struct SavedReplyHeaders {
    keep: usize,
    copy: Option<String>,
}

impl SipMsg {
    /// Appends `extra` (parts written one after the other, so header lines
    /// ending in CRLF) to [`SipMsg::reply_headers`] for one reply; give
    /// the result to [`SipMsg::restore_reply_headers`] once it is sent.
    /// The lines the script added before are copied only when there are
    /// some.
    pub fn push_reply_headers(&mut self, extra: &[&str]) -> SavedReplyHeaders {
        let keep = self.reply_headers.len();
        let copy = (keep > 0).then(|| self.reply_headers.clone());
        self.reply_headers
            .reserve(extra.iter().map(|p| p.len()).sum());
        for p in extra {
            self.reply_headers.push_str(p);
        }
        SavedReplyHeaders { keep, copy }
    }

    /// Puts the reply headers back as they were before
    /// [`SipMsg::push_reply_headers`], also when sending took them (a
    /// module in a shared library hands them to the core that way).
    pub fn restore_reply_headers(&mut self, saved: SavedReplyHeaders) {
        match saved.copy {
            Some(copy) if self.reply_headers.len() < saved.keep => self.reply_headers = copy,
            _ => self.reply_headers.truncate(saved.keep),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQ: &[u8] = b"INVITE sip:b@example.org SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\nFrom: <sip:a@example.org>;tag=1\r\nTo: <sip:b@example.org>\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";

    fn msg() -> SipMsg {
        SipMsg::parse(Bytes::from_static(REQ), RecvInfo::loopback(), 7).unwrap()
    }

    #[test]
    fn reply_headers_for_one_reply_leave_the_scripts_own_as_they_were() {
        let mut m = msg();
        let s = m.push_reply_headers(&["X-A: ", "1", "\r\n"]);
        assert_eq!(m.reply_headers, "X-A: 1\r\n");
        m.restore_reply_headers(s);
        assert_eq!(m.reply_headers, "");
        m.reply_headers.push_str("X-Script: s\r\n");
        let s = m.push_reply_headers(&["X-A: 2\r\n"]);
        assert_eq!(m.reply_headers, "X-Script: s\r\nX-A: 2\r\n");
        m.restore_reply_headers(s);
        assert_eq!(m.reply_headers, "X-Script: s\r\n");
        // Sending took them (as a guest module's send does): back from
        // the copy.
        let s = m.push_reply_headers(&["X-A: 3\r\n"]);
        m.reply_headers.clear();
        m.restore_reply_headers(s);
        assert_eq!(m.reply_headers, "X-Script: s\r\n");
    }

    #[test]
    fn copies_share_a_shared_original_and_copy_an_own_one() {
        let mut m = msg();
        m.flags = 5;
        let copied = m.over_same_original(8).unwrap();
        assert!(!std::ptr::eq(copied.original(), m.original()));
        assert_eq!(copied.msg().raw(), m.msg().raw());
        m.share();
        let a = m.over_same_original(9).unwrap();
        let b = a.over_same_original(10).unwrap();
        assert!(std::ptr::eq(a.original(), m.original()));
        assert!(std::ptr::eq(b.original(), m.original()));
        assert_eq!(
            (a.id, a.flags, b.id),
            (9, 0, 10),
            "no routing state is copied"
        );
        assert_eq!(a.msg().call_id().unwrap(), "c1");
    }

    #[test]
    fn reparsing_after_sharing_leaves_the_copies_alone() {
        let mut m = msg();
        m.share();
        let copy = m.over_same_original(2).unwrap();
        let other = REQ
            .to_vec()
            .iter()
            .map(|&c| if c == b'1' { b'2' } else { c })
            .collect::<Vec<_>>();
        m.reparse(Bytes::from(other)).unwrap();
        assert_eq!(m.msg().call_id().unwrap(), "c2");
        assert_eq!(copy.msg().call_id().unwrap(), "c1");
        assert!(m.over_same_original(3).is_some());
    }
}
