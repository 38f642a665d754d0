//! Sockets: one UDP socket, or TCP (a client connection or a listener
//! with the connections it accepted), waited on with `ppoll` so one
//! thread serves them all with sub-millisecond timeouts.

use sip_msg::framer::{Frame, StreamFramer};
use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

/// Socket buffer size asked for (the kernel may cap it at rmem_max).
const SOCK_BUF: usize = 8 << 20;
/// Largest SIP message accepted on a stream.
const MAX_MSG: usize = 65_535;

/// Transport protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    /// UDP
    Udp,
    /// TCP
    Tcp,
}

impl Proto {
    /// `UDP` / `TCP`, as written in Via.
    pub fn via_name(self) -> &'static str {
        match self {
            Proto::Udp => "UDP",
            Proto::Tcp => "TCP",
        }
    }

    /// Whether the transport is reliable (no retransmissions then).
    pub fn reliable(self) -> bool {
        self == Proto::Tcp
    }
}

/// Where a message came from, and where its answer goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// A UDP address.
    Udp(SocketAddr),
    /// A TCP connection, by index.
    Tcp(usize),
}

struct Conn {
    stream: TcpStream,
    framer: StreamFramer,
    readable: bool,
    dead: bool,
}

/// The sockets of one engine (UAC or UAS).
pub struct Net {
    udp: Option<UdpSocket>,
    udp_readable: bool,
    listener: Option<TcpListener>,
    listener_readable: bool,
    conns: Vec<Conn>,
    frames: VecDeque<(usize, bytes::Bytes)>,
    fds: Vec<libc::pollfd>,
    chunk: Vec<u8>,
    local: SocketAddr,
    trace: bool,
}

/// Whether `SIPBENCH_TRACE` asks for every message on standard error.
fn trace_enabled() -> bool {
    std::env::var_os("SIPBENCH_TRACE").is_some_and(|v| !v.is_empty() && v != "0")
}

fn trace(local: SocketAddr, dir: &str, peer: Peer, msg: &[u8]) {
    eprintln!(
        "--- {local} {dir} {peer:?}\n{}",
        String::from_utf8_lossy(msg)
    );
}

fn big_buffers(s: socket2::SockRef<'_>) {
    let _ = s.set_recv_buffer_size(SOCK_BUF);
    let _ = s.set_send_buffer_size(SOCK_BUF);
}

impl Net {
    /// A UDP socket bound to `addr`.
    pub fn udp(addr: SocketAddr) -> std::io::Result<Net> {
        let s = UdpSocket::bind(addr)?;
        s.set_nonblocking(true)?;
        big_buffers(socket2::SockRef::from(&s));
        let local = s.local_addr()?;
        Ok(Net::with(Some(s), None, local))
    }

    /// A TCP listener on `addr` (UAS).
    pub fn tcp_listen(addr: SocketAddr) -> std::io::Result<Net> {
        let l = TcpListener::bind(addr)?;
        l.set_nonblocking(true)?;
        let local = l.local_addr()?;
        Ok(Net::with(None, Some(l), local))
    }

    /// A TCP connection to `server` (UAC); it is [`Peer::Tcp`]`(0)`.
    pub fn tcp_connect(server: SocketAddr) -> std::io::Result<Net> {
        let s = TcpStream::connect(server)?;
        s.set_nodelay(true)?;
        big_buffers(socket2::SockRef::from(&s));
        let local = s.local_addr()?;
        let mut n = Net::with(None, None, local);
        n.add_conn(s);
        Ok(n)
    }

    fn with(udp: Option<UdpSocket>, listener: Option<TcpListener>, local: SocketAddr) -> Net {
        Net {
            udp,
            udp_readable: false,
            listener,
            listener_readable: false,
            conns: Vec::new(),
            frames: VecDeque::new(),
            fds: Vec::new(),
            chunk: Vec::new(),
            local,
            trace: trace_enabled(),
        }
    }

    fn add_conn(&mut self, stream: TcpStream) {
        self.conns.push(Conn {
            stream,
            framer: StreamFramer::new(MAX_MSG),
            readable: false,
            dead: false,
        });
    }

    /// The local address (bound or connected from).
    pub fn local(&self) -> SocketAddr {
        self.local
    }

    /// Sends a message. Errors are returned for counting; a lost UDP
    /// datagram is recovered by retransmission.
    pub fn send(&mut self, to: Peer, msg: &[u8]) -> std::io::Result<()> {
        if self.trace {
            trace(self.local, "sends to", to, msg);
        }
        match to {
            Peer::Udp(a) => match &self.udp {
                Some(s) => s.send_to(msg, a).map(|_| ()),
                None => Err(ErrorKind::NotConnected.into()),
            },
            Peer::Tcp(i) => match self.conns.get_mut(i) {
                Some(c) if !c.dead => c.stream.write_all(msg),
                _ => Err(ErrorKind::NotConnected.into()),
            },
        }
    }

    /// Waits until something can be read or `timeout` passes.
    pub fn wait(&mut self, timeout: Duration) {
        if !self.frames.is_empty() {
            return;
        }
        self.fds.clear();
        let mut push = |fd: RawFd| {
            self.fds.push(libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            })
        };
        if let Some(s) = &self.udp {
            push(s.as_raw_fd());
        }
        if let Some(l) = &self.listener {
            push(l.as_raw_fd());
        }
        for c in &self.conns {
            // A dead connection polls as fd -1, which poll ignores.
            push(if c.dead { -1 } else { c.stream.as_raw_fd() });
        }
        let ts = libc::timespec {
            tv_sec: timeout.as_secs().min(3600) as libc::time_t,
            tv_nsec: timeout.subsec_nanos() as libc::c_long,
        };
        // SAFETY: `fds` is a live, initialised array of `fds.len()` pollfd
        // structs; `ts` outlives the call; a null sigmask keeps the mask.
        let n = unsafe {
            libc::ppoll(
                self.fds.as_mut_ptr(),
                self.fds.len() as libc::nfds_t,
                &ts,
                std::ptr::null(),
            )
        };
        if n <= 0 {
            return;
        }
        let ready =
            |p: &libc::pollfd| p.revents & (libc::POLLIN | libc::POLLERR | libc::POLLHUP) != 0;
        let mut i = 0;
        if self.udp.is_some() {
            self.udp_readable = ready(&self.fds[i]);
            i += 1;
        }
        if self.listener.is_some() {
            self.listener_readable = ready(&self.fds[i]);
            i += 1;
        }
        for c in self.conns.iter_mut() {
            if let Some(p) = self.fds.get(i) {
                c.readable = ready(p);
            }
            i += 1;
        }
    }

    /// Takes one received message into `buf` without blocking; `None`
    /// when nothing more is ready since the last [`Net::wait`].
    pub fn recv(&mut self, buf: &mut [u8]) -> Option<(usize, Peer)> {
        if self.udp_readable {
            if let Some(s) = &self.udp {
                match s.recv_from(buf) {
                    Ok((n, from)) => {
                        if self.trace {
                            trace(self.local, "received from", Peer::Udp(from), &buf[..n]);
                        }
                        return Some((n, Peer::Udp(from)));
                    }
                    Err(_) => self.udp_readable = false,
                }
            }
        }
        if self.listener_readable {
            self.listener_readable = false;
            let mut accepted = Vec::new();
            if let Some(l) = &self.listener {
                while let Ok((s, _)) = l.accept() {
                    let _ = s.set_nonblocking(false);
                    let _ = s.set_nodelay(true);
                    big_buffers(socket2::SockRef::from(&s));
                    accepted.push(s);
                }
            }
            for s in accepted {
                self.add_conn(s);
            }
        }
        if self.frames.is_empty() && self.conns.iter().any(|c| c.readable) {
            self.read_streams();
        }
        let (i, f) = self.frames.pop_front()?;
        let n = f.len().min(buf.len());
        buf[..n].copy_from_slice(&f[..n]);
        if self.trace {
            trace(self.local, "received from", Peer::Tcp(i), &buf[..n]);
        }
        Some((n, Peer::Tcp(i)))
    }

    fn read_streams(&mut self) {
        if self.chunk.is_empty() {
            self.chunk = vec![0u8; 65_536];
        }
        let chunk = &mut self.chunk;
        for (i, c) in self.conns.iter_mut().enumerate() {
            if !c.readable || c.dead {
                continue;
            }
            c.readable = false;
            match c.stream.read(chunk) {
                Ok(0) | Err(_) => c.dead = true,
                Ok(n) => c.framer.push(&chunk[..n]),
            }
            while let Some(fr) = c.framer.next_frame() {
                match fr {
                    Ok(Frame::Message(m)) => self.frames.push_back((i, m)),
                    Ok(Frame::Ping) => {
                        let _ = c.stream.write_all(b"\r\n");
                    }
                    Ok(Frame::Pong) => {}
                    Err(sip_msg::framer::FrameError::TooLarge) => {
                        c.dead = true;
                        break;
                    }
                    Err(_) => {}
                }
            }
        }
    }
}
