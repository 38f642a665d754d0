//! Sockets: UDP (one SO_REUSEPORT socket per worker on each address) and
//! TCP and TLS (an accept thread per address, a reader thread per
//! connection that frames messages, a shared connection table for replies
//! and reuse).

use crate::udp_send_queue::HeldKind;
use crate::ws_codec::WsDecoder;
use bytes::Bytes;
use sip_msg::framer::{Frame, FrameError, StreamFramer};
use socket2::{Domain, Protocol, Socket, Type};
use sr_sdk::{lm_dbg, lm_err, lm_warn, ConnEnd, Dest, Proto, RecvInfo};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A message read from a stream, for the TCP workers.
pub type Inbound = (Bytes, RecvInfo);

/// Opens a UDP socket with SO_REUSEPORT so several workers can bind the
/// same address and the kernel spreads datagrams over them.
pub fn udp_socket(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    s.set_reuse_address(true)?;
    s.set_reuse_port(true)?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    let _ = s.set_recv_buffer_size(4 << 20);
    let _ = s.set_send_buffer_size(4 << 20);
    s.bind(&addr.into())?;
    Ok(s.into())
}

/// Opens a TCP listening socket.
pub fn tcp_listener(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    s.set_reuse_address(true)?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.bind(&addr.into())?;
    s.listen(1024)?;
    let l: TcpListener = s.into();
    l.set_nonblocking(true)?;
    Ok(l)
}

/// The writing side of a connection: the socket, and for TLS the session
/// (whose state both directions share, so the reader takes this lock too
/// while it decrypts what it read).
#[derive(Debug)]
enum Wire {
    Plain(TcpStream),
    Tls {
        sock: TcpStream,
        tls: Box<rustls::Connection>,
    },
}

impl Wire {
    fn sock(&self) -> &TcpStream {
        match self {
            Wire::Plain(s) | Wire::Tls { sock: s, .. } => s,
        }
    }

    /// Sends what the TLS session has to send (records, handshake),
    /// giving up after `limit` in all (a peer that reads slowly could
    /// otherwise keep the session's lock, and its connection's senders,
    /// for ever).
    fn flush_tls(
        sock: &mut TcpStream,
        tls: &mut rustls::Connection,
        limit: Duration,
    ) -> std::io::Result<()> {
        let deadline = Instant::now() + limit;
        while tls.wants_write() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(std::io::ErrorKind::TimedOut.into());
            }
            sock.set_write_timeout(Some(left))?;
            tls.write_tls(sock)?;
        }
        Ok(())
    }
}

/// One TCP or TLS connection.
#[derive(Debug)]
pub struct Conn {
    /// Connection id (`$conid`).
    pub id: u64,
    /// Remote address.
    pub peer: SocketAddr,
    /// Local address.
    pub local: SocketAddr,
    /// `Tcp` or `Tls`: the stream under any WebSocket (see
    /// [`Conn::sip_proto`]).
    pub proto: Proto,
    /// Upgraded to WebSocket (RFC 6455 framing both ways).
    ws: AtomicBool,
    /// Frames received and sent on WebSocket connections (the table's).
    pub(crate) ws_counters: Arc<WsCounters>,
    writer: Mutex<Wire>,
    last_used: Mutex<Instant>,
    last_read: Mutex<Instant>,
    closed: AtomicBool,
    /// A write failed: nothing more is sent (no close_notify either).
    broken: AtomicBool,
    /// Its own idle lifetime in milliseconds (tcpops'
    /// `tcp_set_connection_lifetime`); 0: `tcp_connection_lifetime`.
    pub(crate) lifetime_ms: AtomicU64,
    /// Its end is wanted as an event (`tcp_enable_closed_event`).
    pub(crate) end_event: AtomicBool,
    /// The WebSocket peer sent a Close frame.
    pub(crate) peer_closed: AtomicBool,
}

/// WebSocket counts, shared by a table's connections.
#[derive(Debug, Default)]
pub(crate) struct WsCounters {
    pub(crate) received: AtomicU64,
    pub(crate) sent: AtomicU64,
    pub(crate) remote_closed: AtomicU64,
    pub(crate) failed: AtomicU64,
}

impl Conn {
    /// The protocol SIP messages on this connection use: `Ws` or `Wss`
    /// once upgraded to WebSocket, else `Tcp` or `Tls`.
    pub fn sip_proto(&self) -> Proto {
        match (self.is_ws(), self.proto) {
            (true, Proto::Tls) => Proto::Wss,
            (true, _) => Proto::Ws,
            (false, p) => p,
        }
    }

    /// Marks the connection as closing on our side (before a Close frame
    /// goes, so that the client's answering Close is not taken for one of
    /// its own).
    pub(crate) fn mark_closing(&self) {
        self.closed.store(true, Ordering::Relaxed);
    }

    /// Whether our side is closing the connection.
    pub(crate) fn closing(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    /// Whether the connection was upgraded to WebSocket.
    pub fn is_ws(&self) -> bool {
        self.ws.load(Ordering::Acquire)
    }

    fn touch(&self) {
        if let Ok(mut t) = self.last_used.lock() {
            *t = Instant::now();
        }
    }

    /// Something was read: the connection is used, and the peer alive.
    fn touch_read(&self) {
        self.touch();
        if let Ok(mut t) = self.last_read.lock() {
            *t = Instant::now();
        }
    }

    /// Time since anything was read.
    pub(crate) fn silent_for(&self) -> Duration {
        self.last_read
            .lock()
            .map_or(Duration::ZERO, |t| t.elapsed())
    }

    pub(crate) fn idle_for(&self) -> Duration {
        self.last_used
            .lock()
            .map_or(Duration::ZERO, |t| t.elapsed())
    }

    /// Writes a whole message (on TLS, encrypted; before the handshake is
    /// over it waits in the session and goes when it is; on a WebSocket,
    /// as one text frame, or a binary one when it is not UTF-8, which a
    /// text frame must be).
    pub fn write(&self, data: &[u8]) -> std::io::Result<()> {
        if self.is_ws() {
            let op = if std::str::from_utf8(data).is_ok() {
                crate::ws_codec::opcode::TEXT
            } else {
                crate::ws_codec::opcode::BINARY
            };
            return self.write_frame(op, data);
        }
        let mut w = self.lock_writer()?;
        self.put(&mut w, data)
    }

    /// Writes one WebSocket frame.
    pub(crate) fn write_frame(&self, op: u8, payload: &[u8]) -> std::io::Result<()> {
        let mut frame = Vec::new();
        crate::ws_codec::encode(op, payload, &mut frame);
        let mut w = self.lock_writer()?;
        // (Counted first: the peer may act on the frame before `put`
        // returns.)
        self.ws_counters.sent.fetch_add(1, Ordering::Relaxed);
        self.put(&mut w, &frame)
    }

    /// Switches to WebSocket, then writes `reply` (the HTTP 101) as it
    /// is. The switch comes first, under the writer's lock: the client
    /// sends frames only after it read the reply, and by then the reader
    /// decodes frames.
    pub(crate) fn upgrade_ws(&self, reply: &[u8]) -> std::io::Result<()> {
        let mut w = self.lock_writer()?;
        if self.ws.swap(true, Ordering::AcqRel) {
            return Err(std::io::Error::other("already a WebSocket"));
        }
        self.put(&mut w, reply)
    }

    fn lock_writer(&self) -> std::io::Result<std::sync::MutexGuard<'_, Wire>> {
        self.writer
            .lock()
            .map_err(|_| std::io::Error::other("connection lock poisoned"))
    }

    /// Writes bytes as they are (encrypted on TLS). Nothing more goes on
    /// a connection after a write on it failed (a frame or message may
    /// have been cut).
    fn put(&self, w: &mut Wire, data: &[u8]) -> std::io::Result<()> {
        if self.broken.load(Ordering::Relaxed) {
            return Err(std::io::Error::other("an earlier write failed"));
        }
        match w {
            Wire::Plain(s) => {
                if let Err(e) = s.write_all(data) {
                    self.broken.store(true, Ordering::Relaxed);
                    return Err(e);
                }
            }
            Wire::Tls { sock, tls } => {
                // The session's buffer is unlimited (see `adopt_as`), so
                // this takes everything; then it goes out.
                tls.writer().write_all(data)?;
                if let Err(e) = Wire::flush_tls(sock, tls, SEND_TIMEOUT) {
                    self.broken.store(true, Ordering::Relaxed);
                    return Err(e);
                }
            }
        }
        self.touch();
        Ok(())
    }

    /// Closes both directions (the reader thread then ends).
    pub fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
        if let Ok(mut w) = self.writer.lock() {
            if let Wire::Tls { sock, tls } = &mut *w {
                if !self.broken.load(Ordering::Relaxed) {
                    tls.send_close_notify();
                    let _ = Wire::flush_tls(sock, tls, Duration::from_secs(1));
                }
            }
            let _ = w.sock().shutdown(Shutdown::Both);
        }
    }

    /// Sets or clears TCP keepalive probes on the socket.
    pub(crate) fn set_keepalive(&self, ka: Option<sr_sdk::Keepalive>) -> std::io::Result<()> {
        let w = self
            .writer
            .lock()
            .map_err(|_| std::io::Error::other("connection lock poisoned"))?;
        let sock = socket2::SockRef::from(w.sock());
        match ka {
            None => sock.set_keepalive(false),
            Some(k) => sock.set_tcp_keepalive(
                &socket2::TcpKeepalive::new()
                    .with_time(Duration::from_secs(u64::from(k.idle.max(1))))
                    .with_interval(Duration::from_secs(u64::from(k.interval.max(1))))
                    .with_retries(k.count.max(1)),
            ),
        }
    }

    /// Whether the connection is open: not closed by either side, no
    /// write failed.
    pub(crate) fn usable(&self) -> bool {
        !self.closed.load(Ordering::Relaxed) && !self.broken.load(Ordering::Relaxed)
    }

    /// Whether a TLS session's handshake is still going on.
    fn handshaking(&self) -> bool {
        match self.writer.lock().as_deref() {
            Ok(Wire::Tls { tls, .. }) => tls.is_handshaking(),
            _ => false,
        }
    }

    /// Whether this is a TLS connection we accepted (we are its server).
    pub(crate) fn accepted_tls(&self) -> bool {
        self.writer
            .lock()
            .is_ok_and(|w| matches!(&*w, Wire::Tls { tls, .. } if matches!(**tls, rustls::Connection::Server(_))))
    }

    /// The TLS session's agreed version and cipher suite (IANA code),
    /// the peer's certificates, the server name the client asked for and
    /// whether we are the server; `None` on plain TCP or while the
    /// handshake goes on.
    pub(crate) fn tls_state(&self) -> Option<TlsState> {
        let w = self.writer.lock().ok()?;
        let Wire::Tls { tls, .. } = &*w else {
            return None;
        };
        if tls.is_handshaking() {
            return None;
        }
        let version = match tls.protocol_version()? {
            rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3",
            rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2",
            _ => "unknown",
        };
        let suite = u16::from(tls.negotiated_cipher_suite()?.suite());
        let peer_certs = tls
            .peer_certificates()
            .map(|c| c.iter().map(|d| d.as_ref().to_vec()).collect())
            .unwrap_or_default();
        let (server_name, accepted) = match &**tls {
            rustls::Connection::Server(c) => (c.server_name().map(str::to_string), true),
            rustls::Connection::Client(_) => (None, false),
        };
        Some(TlsState {
            version,
            suite,
            peer_certs,
            server_name,
            accepted,
        })
    }

    /// Feeds bytes read from the socket to the TLS session and appends
    /// the plaintext to `out`; sends what the session answers
    /// (handshake). `Ok(false)` when the peer closed the session.
    fn decrypt(&self, mut data: &[u8], out: &mut Vec<u8>) -> std::io::Result<bool> {
        let mut w = self.lock_writer()?;
        let Wire::Tls { sock, tls } = &mut *w else {
            return Err(std::io::Error::other("not a TLS connection"));
        };
        let mut open = true;
        let mut plain = [0u8; 16384];
        while !data.is_empty() {
            if tls.read_tls(&mut data)? == 0 {
                break;
            }
            let state = tls.process_new_packets().map_err(|e| {
                // Tell the peer why (an alert), then give up.
                let _ = Wire::flush_tls(sock, tls, Duration::from_secs(1));
                std::io::Error::other(e)
            })?;
            let mut left = state.plaintext_bytes_to_read();
            while left > 0 {
                let n = tls.reader().read(&mut plain[..left.min(16384)])?;
                if n == 0 {
                    break;
                }
                out.extend_from_slice(&plain[..n]);
                left -= n;
            }
            if state.peer_has_closed() {
                open = false;
            }
        }
        Wire::flush_tls(sock, tls, SEND_TIMEOUT)?;
        Ok(open)
    }
}

/// The TCP and TLS connection table.
#[derive(Debug)]
pub struct TcpConns {
    next_id: AtomicU64,
    conns: Mutex<HashMap<u64, Arc<Conn>>>,
    by_peer: Mutex<HashMap<SocketAddr, u64>>,
    /// One queue per TCP worker; a connection always uses the same one.
    inbound: Vec<Sender<Inbound>>,
    max_size: usize,
    max_conns: usize,
    connect_timeout: Duration,
    /// The TLS configurations, when the tls module is loaded (replaced
    /// by `tls.reload`; connections keep the one they began with).
    tls: std::sync::RwLock<Option<crate::tls::TlsConfigs>>,
    /// WebSocket frame counts.
    pub(crate) ws_counters: Arc<WsCounters>,
    /// Told when a WebSocket connection is gone.
    ws_closed: std::sync::OnceLock<WsClosedHook>,
    /// Told how a connection ended (tcpops).
    pub(crate) on_end: std::sync::OnceLock<EndHook>,
    /// `tcp_accept_no_cl`: a SIP message without Content-Length is taken
    /// with an empty body instead of closing the connection.
    accept_no_cl: AtomicBool,
}

/// The holder of [`sr_sdk::ConnEndFn`].
pub(crate) struct EndHook(pub(crate) sr_sdk::ConnEndFn);

impl std::fmt::Debug for EndHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EndHook")
    }
}

/// What runs when a WebSocket connection is gone (given the connection
/// as a message received on it would see it).
pub type WsClosedFn = Arc<dyn Fn(RecvInfo) + Send + Sync>;

struct WsClosedHook(WsClosedFn);

impl std::fmt::Debug for WsClosedHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WsClosedHook")
    }
}

impl TcpConns {
    /// A table whose readers hand messages to the workers' queues
    /// (connection `id` to queue `id % n`, keeping each connection's order).
    pub fn new(
        inbound: Vec<Sender<Inbound>>,
        max_size: usize,
        max_conns: usize,
        connect_timeout: Duration,
        tls: Option<crate::tls::TlsConfigs>,
    ) -> TcpConns {
        TcpConns {
            next_id: AtomicU64::new(1),
            conns: Mutex::new(HashMap::new()),
            by_peer: Mutex::new(HashMap::new()),
            inbound,
            max_size,
            max_conns,
            connect_timeout,
            tls: std::sync::RwLock::new(tls),
            ws_counters: Arc::default(),
            ws_closed: std::sync::OnceLock::new(),
            on_end: std::sync::OnceLock::new(),
            accept_no_cl: AtomicBool::new(false),
        }
    }

    /// Sets `tcp_accept_no_cl`.
    pub fn set_accept_no_cl(&self, yes: bool) {
        self.accept_no_cl.store(yes, Ordering::Relaxed);
    }

    /// Sets what runs when a WebSocket connection is gone (once).
    pub fn on_ws_closed(&self, f: WsClosedFn) {
        let _ = self.ws_closed.set(WsClosedHook(f));
    }

    /// Number of open connections.
    pub fn len(&self) -> usize {
        self.conns.lock().map_or(0, |c| c.len())
    }

    /// Whether no connection is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A connection by id, if open.
    pub fn get(&self, id: u64) -> Option<Arc<Conn>> {
        self.conns.lock().ok()?.get(&id).cloned()
    }

    /// The open connection to a peer, if any.
    pub fn by_peer(&self, peer: SocketAddr) -> Option<Arc<Conn>> {
        let id = *self.by_peer.lock().ok()?.get(&peer)?;
        self.get(id)
    }

    /// The open connection a message to `dest` goes on: the one it names
    /// (`conn_id`), else the one to its address, if it carries the
    /// destination's protocol.
    pub fn open_for(&self, dest: &Dest) -> Option<Arc<Conn>> {
        dest.conn_id
            .and_then(|id| self.get(id))
            .filter(|c| c.sip_proto() == dest.proto)
            .or_else(|| {
                self.by_peer(dest.addr)
                    .filter(|c| c.sip_proto() == dest.proto)
            })
    }

    /// Registers a plain TCP stream and starts its reader thread.
    pub fn adopt(self: &Arc<Self>, stream: TcpStream) -> std::io::Result<Arc<Conn>> {
        self.adopt_as(stream, None)
    }

    /// Registers a stream: plain TCP when `side` is `None`, else TLS as
    /// the server (accepted on a TLS socket) or the client (opened to a
    /// TLS destination).
    fn adopt_as(
        self: &Arc<Self>,
        stream: TcpStream,
        side: Option<TlsSide>,
    ) -> std::io::Result<Arc<Conn>> {
        if self.len() >= self.max_conns {
            return Err(std::io::Error::other("too many TCP connections"));
        }
        let peer = stream.peer_addr()?;
        let local = stream.local_addr()?;
        stream.set_nodelay(true)?;
        let sock = stream.try_clone()?;
        let (proto, wire) = match side {
            None => {
                // A peer that stops reading fails the write after this
                // long, instead of holding a worker for ever.
                sock.set_write_timeout(Some(SEND_TIMEOUT))?;
                (Proto::Tcp, Wire::Plain(sock))
            }
            Some(side) => {
                let cfgs = self.tls_configs()?;
                let tls = match side {
                    TlsSide::Server => {
                        let cfg = cfgs.server.clone().ok_or_else(|| {
                            std::io::Error::other("no TLS certificate (tls module)")
                        })?;
                        rustls::Connection::Server(
                            rustls::ServerConnection::new(cfg).map_err(std::io::Error::other)?,
                        )
                    }
                    TlsSide::Client => rustls::Connection::Client(
                        rustls::ClientConnection::new(
                            cfgs.client.clone(),
                            rustls::pki_types::ServerName::IpAddress(peer.ip().into()),
                        )
                        .map_err(std::io::Error::other)?,
                    ),
                };
                let mut sock = sock;
                let mut tls = Box::new(tls);
                // What is written before the handshake is over waits in
                // the session; no limit, so that a burst of requests to a
                // new TLS destination is not refused (rustls's default
                // would refuse beyond 64 KiB).
                tls.set_buffer_limit(None);
                // A client starts the handshake.
                Wire::flush_tls(&mut sock, &mut tls, SEND_TIMEOUT)?;
                (Proto::Tls, Wire::Tls { sock, tls })
            }
        };
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let conn = Arc::new(Conn {
            id,
            peer,
            local,
            proto,
            ws: AtomicBool::new(false),
            ws_counters: self.ws_counters.clone(),
            writer: Mutex::new(wire),
            last_used: Mutex::new(Instant::now()),
            last_read: Mutex::new(Instant::now()),
            closed: AtomicBool::new(false),
            broken: AtomicBool::new(false),
            lifetime_ms: AtomicU64::new(0),
            end_event: AtomicBool::new(false),
            peer_closed: AtomicBool::new(false),
        });
        if let Ok(mut c) = self.conns.lock() {
            c.insert(id, conn.clone());
        }
        if let Ok(mut p) = self.by_peer.lock() {
            p.insert(peer, id);
        }
        let table = self.clone();
        let c2 = conn.clone();
        std::thread::Builder::new()
            .name(format!("tcp-conn-{id}"))
            .spawn(move || {
                // A bug met while reading costs this connection only, and
                // it is removed all the same.
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    table.read_loop(stream, c2)
                }));
                if r.is_err() {
                    lm_err!("connection {id}: its reader panicked; closing it");
                    table.remove(id);
                }
            })?;
        Ok(conn)
    }

    fn read_loop(&self, mut stream: TcpStream, conn: Arc<Conn>) {
        let mut framer = StreamFramer::new(self.max_size);
        let mut ws: Option<WsDecoder> = None;
        let mut buf = vec![0u8; 65536];
        let mut plain = Vec::new();
        // A TLS handshake must be over within the connect timeout (an
        // idle connection would otherwise hold its slot for the whole
        // connection lifetime).
        let mut handshake = conn.proto == Proto::Tls;
        // How the peer ended it (`None`: this server did, or gave up).
        let mut end = None;
        if handshake {
            let _ =
                stream.set_read_timeout(Some(self.connect_timeout.max(Duration::from_millis(1))));
        }
        loop {
            let n = match stream.read(&mut buf) {
                Ok(0) => {
                    // (Not when our side closed it.)
                    if !conn.closed.load(Ordering::Relaxed) {
                        if conn.is_ws() {
                            self.ws_counters
                                .remote_closed
                                .fetch_add(1, Ordering::Relaxed);
                        }
                        end = Some(ConnEnd::Closed);
                    }
                    break;
                }
                Ok(n) => n,
                Err(e)
                    if handshake
                        && matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) =>
                {
                    lm_warn!(
                        "tls {}: no handshake within {:?}; closing the connection",
                        conn.peer,
                        self.connect_timeout
                    );
                    break;
                }
                Err(e) => {
                    // As Kamailio's reader: a reset, or keepalive probes
                    // unanswered; other errors are not reported.
                    if !conn.closed.load(Ordering::Relaxed) {
                        end = match e.kind() {
                            std::io::ErrorKind::ConnectionReset
                            | std::io::ErrorKind::ConnectionAborted => Some(ConnEnd::Reset),
                            std::io::ErrorKind::TimedOut => Some(ConnEnd::Timeout),
                            _ => None,
                        };
                    }
                    break;
                }
            };
            conn.touch_read();
            let data = if conn.proto == Proto::Tcp {
                &buf[..n]
            } else {
                plain.clear();
                match conn.decrypt(&buf[..n], &mut plain) {
                    Ok(true) => {}
                    Ok(false) => {
                        // close_notify: take what came with it, then end.
                        if !conn.closed.load(Ordering::Relaxed) {
                            end = Some(ConnEnd::Closed);
                        }
                        conn.closed.store(true, Ordering::Relaxed);
                    }
                    Err(e) => {
                        lm_warn!("tls {}: {e}; closing the connection", conn.peer);
                        break;
                    }
                }
                if handshake && !conn.handshaking() {
                    handshake = false;
                    let _ = stream.set_read_timeout(None);
                }
                &plain[..]
            };
            let open = if conn.is_ws() {
                let dec = ws.get_or_insert_with(|| {
                    // What followed the handshake request in its read.
                    let mut d = WsDecoder::new(self.max_size);
                    d.push(&framer.take_buffered());
                    d
                });
                dec.push(data);
                self.ws_events(dec, &conn)
            } else {
                framer.push(data);
                self.sip_frames(&mut framer, &conn)
            };
            if !open || conn.closed.load(Ordering::Relaxed) {
                if conn.peer_closed.load(Ordering::Relaxed) {
                    end = Some(ConnEnd::Closed);
                }
                break;
            }
        }
        self.remove_as(conn.id, end);
    }

    /// Hands a worker the message read on `conn` (`false` when the
    /// workers are gone).
    pub(crate) fn hand_over(&self, conn: &Conn, msg: Bytes) -> bool {
        let rcv = RecvInfo {
            src: conn.peer,
            dst: conn.local,
            proto: conn.sip_proto(),
            conn_id: conn.id,
        };
        let q = self
            .inbound
            .get((conn.id as usize) % self.inbound.len().max(1));
        q.is_some_and(|q| q.send((msg, rcv)).is_ok())
    }

    /// Takes the SIP (or HTTP) messages framed so far; `false` to stop
    /// reading. Once a worker upgraded the connection (the answer to an
    /// HTTP request), what follows is left for the WebSocket decoder: a
    /// client sends frames only after it read the upgrade, and the flag
    /// is set before the upgrade is written.
    fn sip_frames(&self, framer: &mut StreamFramer, conn: &Conn) -> bool {
        while !conn.is_ws() {
            let Some(f) = framer.next_frame() else {
                break;
            };
            match f {
                Ok(Frame::Message(b)) => {
                    if !self.hand_over(conn, b) {
                        return false;
                    }
                }
                Ok(Frame::Ping) => {
                    let _ = conn.write(b"\r\n");
                }
                Ok(Frame::Pong) => {}
                Err(FrameError::BadChunked) => {
                    lm_warn!("tcp {}: bad chunked HTTP body, closing", conn.peer);
                    conn.close();
                }
                Err(FrameError::TooLarge) => {
                    lm_warn!("tcp {}: message too large, closing", conn.peer);
                    conn.close();
                }
                // RFC 3261 18.3: Content-Length is mandatory on streams.
                // Without it the message is taken with no body only with
                // tcp_accept_no_cl; else, as Kamailio, the connection
                // closes (its framing cannot be trusted).
                Err(FrameError::MissingContentLength(head)) => {
                    if self.accept_no_cl.load(Ordering::Relaxed) {
                        if !self.hand_over(conn, head) {
                            return false;
                        }
                    } else {
                        lm_warn!(
                            "tcp {}: a message without Content-Length, closing (tcp_accept_no_cl=no)",
                            conn.peer
                        );
                        conn.close();
                        return false;
                    }
                }
                Err(FrameError::BadContentLength(_)) => {
                    lm_warn!("tcp {}: a bad Content-Length, closing", conn.peer);
                    conn.close();
                    return false;
                }
                Err(e) => lm_dbg!("tcp {}: framing: {e:?}", conn.peer),
            }
        }
        true
    }

    /// Every open connection.
    pub(crate) fn all(&self) -> Vec<Arc<Conn>> {
        self.conns
            .lock()
            .map(|c| c.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Removes and closes connection `id` (this server's decision).
    pub(crate) fn remove(&self, id: u64) {
        self.remove_as(id, None);
    }

    /// Removes and closes connection `id`; `end` says how the peer ended
    /// it (or that it timed out), for the hook of
    /// [`sr_sdk::StreamConns::on_end`].
    pub(crate) fn remove_as(&self, id: u64, end: Option<ConnEnd>) {
        let removed = self.conns.lock().ok().and_then(|mut c| c.remove(&id));
        if let Some(c) = removed {
            if let Ok(mut p) = self.by_peer.lock() {
                if p.get(&c.peer) == Some(&id) {
                    p.remove(&c.peer);
                }
            }
            c.close();
            if let Some(hook) = self.ws_closed.get().filter(|_| c.is_ws()) {
                let rcv = RecvInfo {
                    src: c.peer,
                    dst: c.local,
                    proto: c.sip_proto(),
                    conn_id: c.id,
                };
                (hook.0)(rcv);
            }
            if let (Some(kind), Some(hook)) = (end, self.on_end.get()) {
                let rcv = RecvInfo {
                    src: c.peer,
                    dst: c.local,
                    proto: c.sip_proto(),
                    conn_id: c.id,
                };
                (hook.0)(rcv, kind, c.end_event.load(Ordering::Relaxed));
            }
        }
    }

    /// Opens a TCP connection to `addr`.
    pub fn connect(self: &Arc<Self>, addr: SocketAddr) -> std::io::Result<Arc<Conn>> {
        let s = TcpStream::connect_timeout(&addr, self.connect_timeout)?;
        self.adopt(s)
    }

    /// The TLS configurations now in force.
    pub(crate) fn tls_configs(&self) -> std::io::Result<crate::tls::TlsConfigs> {
        self.tls
            .read()
            .map_err(|_| std::io::Error::other("TLS configuration lock poisoned"))?
            .clone()
            .ok_or_else(|| std::io::Error::other("TLS is not enabled (tls module)"))
    }

    /// Puts new TLS configurations in force for the connections opened
    /// or accepted from now on (`tls.reload`).
    pub(crate) fn set_tls_configs(&self, cfgs: crate::tls::TlsConfigs) {
        if let Ok(mut g) = self.tls.write() {
            *g = Some(cfgs);
        }
    }

    /// Opens a TLS connection to `addr` (the handshake goes on in its
    /// reader thread; what is written meanwhile is sent after it).
    pub fn connect_tls(self: &Arc<Self>, addr: SocketAddr) -> std::io::Result<Arc<Conn>> {
        self.tls_configs()?;
        let s = TcpStream::connect_timeout(&addr, self.connect_timeout)?;
        self.adopt_as(s, Some(TlsSide::Client))
    }

    /// Closes connections idle for longer than their lifetime: their own
    /// (`tcp_set_connection_lifetime`), else `lifetime`.
    pub fn close_idle(&self, lifetime: Duration) -> usize {
        let mut n = 0;
        for c in self.all() {
            let own = c.lifetime_ms.load(Ordering::Relaxed);
            let limit = if own > 0 {
                Duration::from_millis(own)
            } else {
                lifetime
            };
            if c.idle_for() > limit {
                self.remove_as(c.id, Some(ConnEnd::Timeout));
                n += 1;
            }
        }
        n
    }

    /// Closes everything (shutdown).
    pub fn close_all(&self) {
        for c in self.all() {
            self.remove(c.id);
        }
    }

    /// Accept loop for one listener (a TLS socket's when `tls`), until
    /// `stop`.
    pub fn accept_loop(self: &Arc<Self>, l: TcpListener, tls: bool, stop: &AtomicBool) {
        let side = tls.then_some(TlsSide::Server);
        while !stop.load(Ordering::Relaxed) {
            match l.accept() {
                Ok((s, _)) => {
                    let _ = s.set_nonblocking(false);
                    if let Err(e) = self.adopt_as(s, side) {
                        lm_err!("tcp accept: {e}");
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => {
                    lm_err!("tcp accept: {e}");
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
    }
}

/// How long sending one message on a TCP or TLS connection may take in all
/// (Kamailio's `tcp_send_timeout` default); then the connection is closed.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// A TLS session's state once its handshake is over (see
/// [`Conn::tls_state`]).
#[derive(Debug, Clone)]
pub(crate) struct TlsState {
    pub(crate) version: &'static str,
    pub(crate) suite: u16,
    pub(crate) peer_certs: Vec<Vec<u8>>,
    pub(crate) server_name: Option<String>,
    pub(crate) accepted: bool,
}

/// Which end of a TLS session siprouter is.
#[derive(Debug, Clone, Copy)]
enum TlsSide {
    Server,
    Client,
}

/// The sending side of all sockets.
pub struct Transport {
    /// UDP sockets to send from, by local address.
    pub udp: Vec<(SocketAddr, Arc<UdpSocket>)>,
    /// TCP connections.
    pub tcp: Option<Arc<TcpConns>>,
    /// The modules' sent-data hooks (topoh), run on every message sent.
    pub net_data_out: Vec<sr_sdk::exports::NetDataOutFn>,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("udp", &self.udp)
            .field("tcp", &self.tcp)
            .field("net_data_out", &self.net_data_out.len())
            .finish()
    }
}

impl Transport {
    /// The UDP socket (index into `udp`) to send to `dest` from: the one
    /// `force_send_socket` named, else the first of the address's family.
    fn udp_for(&self, dest: &Dest) -> Result<usize, String> {
        self.udp
            .iter()
            .position(|(a, _)| Some(*a) == dest.send_socket)
            .or_else(|| {
                self.udp
                    .iter()
                    .position(|(a, _)| a.is_ipv6() == dest.addr.is_ipv6())
            })
            .ok_or_else(|| format!("no UDP socket for {}", dest.addr))
    }

    /// The local address of the open connection a message to `dest`
    /// would use (stream transports), without opening one.
    pub fn stream_local(&self, dest: &Dest) -> Option<SocketAddr> {
        if !dest.proto.is_reliable() {
            return None;
        }
        self.tcp.as_ref()?.open_for(dest).map(|c| c.local)
    }

    /// Sends `data` to `dest` now. On a UDP worker, what it holds from
    /// [`Transport::send_batched`] goes first, so its datagrams keep their
    /// order and none waits behind a TCP connect; a UDP datagram goes in
    /// the same system call as the held ones.
    pub fn send(&self, dest: &Dest, data: &[u8]) -> Result<(), String> {
        match self.hooked(dest, data) {
            Some(b) => self.send_now(dest, &b),
            None => self.send_now(dest, data),
        }
    }

    /// What the sent-data hooks make of `data` for `dest`; `None` when
    /// there are none or none changed it. While they run, `$snd*`/`to_*`
    /// name the destination.
    fn hooked(&self, dest: &Dest, data: &[u8]) -> Option<Vec<u8>> {
        if self.net_data_out.is_empty() {
            return None;
        }
        let local = dest.send_socket.or_else(|| match dest.proto {
            Proto::Udp => self.udp_for(dest).ok().map(|i| self.udp[i].0),
            _ => self.stream_local(dest),
        });
        crate::script::state::set_send_dest(Some(crate::script::state::SendDest {
            local,
            to: dest.addr,
            proto: dest.proto,
        }));
        // The hooks see the local socket it leaves from.
        let dest = &Dest {
            send_socket: local,
            ..*dest
        };
        let mut out: Option<Vec<u8>> = None;
        for h in &self.net_data_out {
            if let Some(b) = h(out.as_deref().unwrap_or(data), dest) {
                out = Some(b);
            }
        }
        crate::script::state::set_send_dest(None);
        out
    }

    /// [`Transport::send`] without the sent-data hooks.
    pub(crate) fn send_now(&self, dest: &Dest, data: &[u8]) -> Result<(), String> {
        let failed = |e: std::io::Error| format!("send to {}: {e}", dest.addr);
        match dest.proto {
            Proto::Udp => {
                let i = self.udp_for(dest)?;
                if let Some(r) = crate::udp_send_queue::send_after_held(i, dest.addr, data) {
                    return r.map_err(failed);
                }
                self.udp[i]
                    .1
                    .send_to(data, dest.addr)
                    .map(|_| ())
                    .map_err(failed)
            }
            Proto::Tcp | Proto::Tls | Proto::Ws | Proto::Wss => {
                crate::udp_send_queue::flush();
                let tcp = self.tcp.as_ref().ok_or("TCP is disabled")?;
                let conn = match tcp.open_for(dest) {
                    Some(c) => c,
                    // Only clients open WebSocket connections.
                    None if matches!(dest.proto, Proto::Ws | Proto::Wss) => {
                        return Err(format!(
                            "no open {} connection to {}",
                            dest.proto, dest.addr
                        ))
                    }
                    None if dest.no_connect => {
                        return Err(format!("no open connection to {}", dest.addr))
                    }
                    None if dest.proto == Proto::Tls => tcp
                        .connect_tls(dest.addr)
                        .map_err(|e| format!("connect to tls:{}: {e}", dest.addr))?,
                    None => tcp
                        .connect(dest.addr)
                        .map_err(|e| format!("connect to {}: {e}", dest.addr))?,
                };
                conn.write(data).map_err(|e| {
                    if conn.is_ws() {
                        tcp.ws_counters.failed.fetch_add(1, Ordering::Relaxed);
                    }
                    conn.close();
                    format!("write to {}: {e}", dest.addr)
                })
            }
            other => Err(format!("{other} is not supported")),
        }
    }

    /// Sends `data` to `dest`; a UDP worker may hold a UDP datagram until
    /// the end of its batch ([`crate::udp_send_queue`]). A failure is
    /// logged, not returned: at debug level when it happens here (a reply
    /// over a TCP connection that is gone is common), as an error when a
    /// held datagram fails.
    pub fn send_batched(&self, dest: &Dest, data: &[u8]) {
        if let Err(e) = self.send_counted_batched(dest, data, HeldKind::Logged) {
            lm_dbg!("not sent: {e}");
        }
    }

    /// Sends `data` to `dest`, held on a UDP worker until the end of its
    /// batch; `kind` says what a failure then means (a reply or a request
    /// forwarded statelessly is counted by
    /// [`crate::udp_send_queue::take_failed`]). Other sends happen now and
    /// return their result.
    pub fn send_counted_batched(
        &self,
        dest: &Dest,
        data: &[u8],
        kind: HeldKind,
    ) -> Result<(), String> {
        self.send_counted_batched_then(dest, data, kind, None)
    }

    /// [`Transport::send_counted_batched`], with `on_fail` run if a held
    /// datagram then cannot be sent (a send that happens now returns its
    /// error instead).
    pub fn send_counted_batched_then(
        &self,
        dest: &Dest,
        data: &[u8],
        kind: HeldKind,
        on_fail: Option<sr_sdk::LateFailure>,
    ) -> Result<(), String> {
        let hooked = self.hooked(dest, data);
        let data = hooked.as_deref().unwrap_or(data);
        if self.hold(dest, data, kind, on_fail) {
            return Ok(());
        }
        self.send_now(dest, data)
    }

    /// Holds a UDP datagram on a UDP worker; `false` when not held.
    fn hold(
        &self,
        dest: &Dest,
        data: &[u8],
        kind: HeldKind,
        on_fail: Option<sr_sdk::LateFailure>,
    ) -> bool {
        dest.proto == Proto::Udp
            && self
                .udp_for(dest)
                .is_ok_and(|i| crate::udp_send_queue::hold_then(i, dest.addr, data, kind, on_fail))
    }
}
