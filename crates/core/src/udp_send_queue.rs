//! Sends a UDP worker holds back while it handles a batch, then sends
//! together with one `sendmmsg` per socket.
//!
//! What goes through here is every UDP send on a worker whose caller does
//! not need the kernel's answer at once: [`sr_sdk::Core::send_batched`]
//! (tm's branch requests, relayed replies and retransmissions), stateless
//! reply forwarding ([`HeldKind::Reply`]: one that fails when the batch is
//! sent moves from `fwd_replies` to `drop_replies`), `forward()` and tm's
//! ACKs for 2xx ([`sr_sdk::Core::forward`], [`HeldKind::Request`]: from
//! `fwd_requests` to `drop_requests`, see [`take_failed`]) and stateless
//! replies ([`sr_sdk::Core::send_reply`]: `sl_send_reply()`, sanity's,
//! siputils' `options_reply()`, the registrar's and auth's replies, C
//! modules' `sr_send_reply`: a failure is logged, and a caller of
//! [`sr_sdk::Core::send_reply_then`] such as sl has its function run to
//! count it). Those callers still get every error that can be
//! known before the send (resolution, no socket for the address family,
//! `onsend_route`); only the kernel's refusal of the datagram itself
//! (a firewall, no route, a full buffer) comes after the script moved on,
//! as with a datagram lost on the way. `udp_hold_sends=no` turns holding
//! off: every send then happens at once and returns its result.
//!
//! Everything else sends at once — [`sr_sdk::Core::send`], any TCP send —
//! and first sends whatever is held, so that a worker's datagrams leave in
//! the order it produced them; a UDP one goes out in the same `sendmmsg`
//! as the held datagrams ([`send_after_held`]). So does a DNS query that
//! has to go to the network. A worker sends
//! what it holds after each batch, and after any message once the oldest
//! held datagram has waited [`MAX_HOLD`]. So a datagram waits at most
//! `MAX_HOLD` plus the handling of one message; work that blocks inside a
//! module (a database query, a slow script) while sends are held delays
//! them by that long. Other threads (timer, TCP workers, RPC) never hold
//! anything. On loopback every datagram sent wakes the receiver's thread if
//! it sleeps: sent together, a batch's datagrams wake each receiver once.
//!
//! tm releases a transaction before its held replies leave: with several
//! workers, a provisional reply held by one worker can leave after a final
//! reply another worker relayed for the same transaction (possible only
//! when the replies come in on different workers, e.g. from two forked
//! branches; a UAC ignores a provisional after the final reply).

use sr_sdk::{lm_dbg, lm_err};
use std::cell::RefCell;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The longest a datagram is held before the worker sends it.
pub const MAX_HOLD: Duration = Duration::from_micros(200);

/// What a failure to send a held datagram means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeldKind {
    /// It is logged.
    Logged,
    /// A reply forwarded statelessly: logged at debug level (anyone can
    /// address a reply anywhere) and counted for [`take_failed`].
    Reply,
    /// A request forwarded statelessly: logged and counted for
    /// [`take_failed`].
    Request,
    /// Sent by [`send_after_held`], whose caller gets the result.
    Caller,
}

/// One held datagram: the socket (index into the transport's UDP
/// sockets), where to, its bytes in [`Queue::bytes`], and what a failure
/// means.
struct Held {
    sock: usize,
    to: socket2::SockAddr,
    start: usize,
    len: usize,
    kind: HeldKind,
    /// Run when it fails (after logging).
    on_fail: Option<sr_sdk::LateFailure>,
}

/// A worker's held datagrams, its sockets, and scratch space for sending.
#[derive(Default)]
struct Queue {
    socks: Vec<(SocketAddr, Arc<UdpSocket>)>,
    held: Vec<Held>,
    bytes: Vec<u8>,
    oldest: Option<Instant>,
    iovs: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
    /// Held datagrams counted as forwarded that failed, not yet taken.
    failed: Failed,
    /// The failure of the [`HeldKind::Caller`] datagram, if it failed.
    caller_err: Option<std::io::Error>,
    /// The failed datagrams' `on_fail` functions, run once the queue is
    /// no longer borrowed (they may send).
    late: Vec<sr_sdk::LateFailure>,
}

thread_local! {
    static QUEUE: RefCell<Option<Queue>> = const { RefCell::new(None) };
}

/// Makes this thread (a UDP worker) hold batched sends until [`flush`];
/// `socks` are the transport's UDP sockets, by index.
pub fn hold_on_this_thread(socks: Vec<(SocketAddr, Arc<UdpSocket>)>) {
    QUEUE.with(|q| {
        *q.borrow_mut() = Some(Queue {
            socks,
            ..Queue::default()
        })
    });
}

/// Holds a copy of `data` for socket `sock` to `to`; `kind` says what a
/// failure to send it means. `false` when this thread does not hold sends
/// (the caller sends at once).
pub fn hold(sock: usize, to: SocketAddr, data: &[u8], kind: HeldKind) -> bool {
    hold_then(sock, to, data, kind, None)
}

/// [`hold`], with `on_fail` run if the datagram then cannot be sent.
pub fn hold_then(
    sock: usize,
    to: SocketAddr,
    data: &[u8],
    kind: HeldKind,
    on_fail: Option<sr_sdk::LateFailure>,
) -> bool {
    QUEUE.with(|q| {
        let mut q = q.borrow_mut();
        let Some(q) = q.as_mut() else {
            return false;
        };
        push(q, sock, to, data, kind, on_fail);
        true
    })
}

fn push(
    q: &mut Queue,
    sock: usize,
    to: SocketAddr,
    data: &[u8],
    kind: HeldKind,
    on_fail: Option<sr_sdk::LateFailure>,
) {
    q.held.push(Held {
        sock,
        to: to.into(),
        start: q.bytes.len(),
        len: data.len(),
        kind,
        on_fail,
    });
    q.bytes.extend_from_slice(data);
    q.oldest.get_or_insert_with(Instant::now);
}

/// Sends `data` on socket `sock` to `to` now, behind what this thread
/// holds: the held datagrams for the same socket that come last and `data`
/// go in one `sendmmsg`. Returns the result for `data`, or `None` when
/// nothing is held (the caller sends it itself).
pub fn send_after_held(sock: usize, to: SocketAddr, data: &[u8]) -> Option<std::io::Result<()>> {
    let (r, late) = QUEUE.with(|q| {
        let mut q = q.borrow_mut();
        let q = q.as_mut()?;
        if q.held.is_empty() {
            return None;
        }
        push(q, sock, to, data, HeldKind::Caller, None);
        send_all(q);
        let r = q.caller_err.take().map_or(Ok(()), Err);
        Some((r, std::mem::take(&mut q.late)))
    })?;
    run_late(late);
    Some(r)
}

/// Held stateless forwards that failed when sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Failed {
    /// [`HeldKind::Reply`] datagrams.
    pub replies: u64,
    /// [`HeldKind::Request`] datagrams.
    pub requests: u64,
}

/// The held stateless forwards that failed since the last call (the caller
/// moves them from the forwarded to the dropped statistics).
pub fn take_failed() -> Failed {
    QUEUE.with(|q| {
        q.borrow_mut()
            .as_mut()
            .map_or(Failed::default(), |q| std::mem::take(&mut q.failed))
    })
}

/// When the oldest held datagram was held (`None`: nothing held).
pub fn held_since() -> Option<Instant> {
    QUEUE.with(|q| q.borrow().as_ref().and_then(|q| q.oldest))
}

/// Sends everything this thread holds, in order. A datagram that cannot be
/// sent is logged and skipped; the others still go. Does nothing on a
/// thread that does not hold sends.
pub fn flush() {
    let late = QUEUE.with(|q| {
        let mut q = q.borrow_mut();
        q.as_mut().map(|q| {
            send_all(q);
            std::mem::take(&mut q.late)
        })
    });
    run_late(late.unwrap_or_default());
}

fn send_all(q: &mut Queue) {
    let mut i = 0;
    while i < q.held.len() {
        // A run of datagrams for the same socket: one sendmmsg.
        let sock = q.held[i].sock;
        let end = q.held[i..]
            .iter()
            .position(|h| h.sock != sock)
            .map_or(q.held.len(), |k| i + k);
        match q.socks.get(sock).map(|(_, s)| s.as_raw_fd()) {
            Some(fd) => send_run(q, i, end, fd),
            None => {
                for k in i..end {
                    let e = std::io::Error::other(format!("no UDP socket {sock}"));
                    failed(q, k, e);
                }
            }
        }
        i = end;
    }
    q.held.clear();
    q.bytes.clear();
    q.oldest = None;
}

/// Held datagram `k` could not be sent: logged, counted or kept for the
/// caller, by its kind.
fn failed(q: &mut Queue, k: usize, e: std::io::Error) {
    let h = &q.held[k];
    if h.kind == HeldKind::Caller {
        q.caller_err = Some(e);
        return;
    }
    let dest =
        h.to.as_socket()
            .map_or_else(|| "?".to_string(), |a| a.to_string());
    match h.kind {
        HeldKind::Reply => {
            q.failed.replies += 1;
            lm_dbg!("udp: reply to {dest} not sent: {e}");
        }
        HeldKind::Request => {
            q.failed.requests += 1;
            lm_err!("udp: send to {dest} failed: {e}");
        }
        _ => lm_err!("udp: send to {dest} failed: {e}"),
    }
    if let Some(f) = q.held[k].on_fail.take() {
        q.late.push(f);
    }
}

/// Runs the `on_fail` functions of the datagrams that failed.
fn run_late(late: Vec<sr_sdk::LateFailure>) {
    for f in late {
        f();
    }
}

fn send_run(q: &mut Queue, from: usize, to: usize, fd: std::os::fd::RawFd) {
    q.iovs.clear();
    q.hdrs.clear();
    let base = q.bytes.as_mut_ptr();
    for h in &q.held[from..to] {
        q.iovs.push(libc::iovec {
            // SAFETY: start + len is within `bytes` (pushed together).
            iov_base: unsafe { base.add(h.start) }.cast(),
            iov_len: h.len,
        });
    }
    let iovs = q.iovs.as_mut_ptr();
    for (k, h) in q.held[from..to].iter().enumerate() {
        // SAFETY: mmsghdr is plain C data; all-zero is valid.
        let mut m: libc::mmsghdr = unsafe { std::mem::zeroed() };
        m.msg_hdr.msg_name = h.to.as_ptr() as *mut libc::c_void;
        m.msg_hdr.msg_namelen = h.to.len();
        // SAFETY: k < iovs.len(): one iovec per held datagram of the run.
        m.msg_hdr.msg_iov = unsafe { iovs.add(k) };
        m.msg_hdr.msg_iovlen = 1;
        q.hdrs.push(m);
    }
    let mut off = 0;
    while off < q.hdrs.len() {
        let left = q.hdrs.len() - off;
        // SAFETY: the headers point at addresses in `held` and bytes in
        // `bytes`, both alive and unchanged until this function returns.
        let n = unsafe {
            libc::sendmmsg(
                fd,
                q.hdrs.as_mut_ptr().add(off),
                u32::try_from(left).unwrap_or(u32::MAX),
                0,
            )
        };
        if n > 0 {
            off += n as usize;
            continue;
        }
        let e = std::io::Error::last_os_error();
        if e.kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        // The first datagram of what is left failed: report it, go on.
        failed(q, from + off, e);
        off += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sock() -> Arc<UdpSocket> {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        Arc::new(s)
    }

    /// A worker's UDP sockets, by index.
    type Socks = Vec<(SocketAddr, Arc<UdpSocket>)>;

    /// The worker's one socket, and a peer socket with its address.
    fn one_socket_and_a_peer() -> (Socks, Arc<UdpSocket>, SocketAddr) {
        let s0 = sock();
        let a = sock();
        let ta = a.local_addr().unwrap();
        (vec![(s0.local_addr().unwrap(), s0)], a, ta)
    }

    /// An IPv6 destination, which the kernel refuses on an IPv4 socket.
    fn refused_v6() -> SocketAddr {
        "[::1]:9".parse().unwrap()
    }

    fn recv(s: &UdpSocket) -> (Vec<u8>, SocketAddr) {
        let mut buf = [0u8; 2048];
        let (n, from) = s.recv_from(&mut buf).expect("a datagram");
        (buf[..n].to_vec(), from)
    }

    #[test]
    fn held_datagrams_leave_in_order_from_their_sockets_at_flush() {
        let (s0, s1) = (sock(), sock());
        let socks = vec![
            (s0.local_addr().unwrap(), s0.clone()),
            (s1.local_addr().unwrap(), s1.clone()),
        ];
        let (a, b) = (sock(), sock());
        let ta = a.local_addr().unwrap();
        let tb = b.local_addr().unwrap();
        std::thread::scope(|sc| {
            sc.spawn(|| {
                // Not holding yet: the caller must send itself.
                assert!(!hold(0, ta, b"x", HeldKind::Logged));
                assert_eq!(held_since(), None);
                hold_on_this_thread(socks.clone());
                assert!(hold(0, ta, b"one", HeldKind::Logged));
                assert!(hold(0, tb, b"two", HeldKind::Logged));
                assert!(hold(1, ta, b"three", HeldKind::Logged));
                assert!(hold(0, ta, b"four", HeldKind::Logged));
                assert!(held_since().is_some());
                a.set_nonblocking(true).unwrap();
                let mut buf = [0u8; 16];
                assert!(a.recv_from(&mut buf).is_err(), "nothing sent before flush");
                a.set_nonblocking(false).unwrap();
                flush();
                assert_eq!(held_since(), None);
            });
        });
        assert_eq!(recv(&a), (b"one".to_vec(), socks[0].0));
        assert_eq!(recv(&a), (b"three".to_vec(), socks[1].0));
        assert_eq!(recv(&a), (b"four".to_vec(), socks[0].0));
        assert_eq!(recv(&b), (b"two".to_vec(), socks[0].0));
    }

    #[test]
    fn an_immediate_send_lets_what_is_held_go_first() {
        let s0 = sock();
        let socks = vec![(s0.local_addr().unwrap(), s0.clone())];
        let t = crate::transport::Transport {
            udp: socks.clone(),
            tcp: None,
            net_data_out: Vec::new(),
        };
        let a = sock();
        let to = sr_sdk::Dest::new(sr_sdk::Proto::Udp, a.local_addr().unwrap());
        std::thread::scope(|sc| {
            sc.spawn(|| {
                hold_on_this_thread(socks.clone());
                t.send_batched(&to, b"held one");
                t.send_batched(&to, b"held two");
                assert!(held_since().is_some());
                t.send(&to, b"now").unwrap();
                assert_eq!(held_since(), None, "sent by the immediate send");
            });
        });
        assert_eq!(recv(&a).0, b"held one");
        assert_eq!(recv(&a).0, b"held two");
        assert_eq!(recv(&a).0, b"now");
    }

    #[test]
    fn a_datagram_that_cannot_be_sent_does_not_stop_the_others() {
        let (socks, a, ta) = one_socket_and_a_peer();
        std::thread::scope(|sc| {
            sc.spawn(|| {
                hold_on_this_thread(socks.clone());
                hold(0, ta, b"before", HeldKind::Logged);
                // An IPv6 destination on an IPv4 socket: the kernel refuses it.
                hold(0, refused_v6(), b"refused", HeldKind::Logged);
                // No such socket: logged, nothing sent.
                hold(7, ta, b"nowhere", HeldKind::Logged);
                hold(0, ta, b"after", HeldKind::Logged);
                flush();
            });
        });
        assert_eq!(recv(&a).0, b"before");
        assert_eq!(recv(&a).0, b"after");
        a.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut buf = [0u8; 16];
        assert!(a.recv_from(&mut buf).is_err(), "nothing else arrives");
    }

    #[test]
    fn a_send_after_held_datagrams_reports_its_own_result() {
        let (socks, a, ta) = one_socket_and_a_peer();
        let v6 = refused_v6();
        std::thread::scope(|sc| {
            sc.spawn(|| {
                hold_on_this_thread(socks.clone());
                assert!(send_after_held(0, ta, b"alone").is_none(), "nothing held");
                hold(0, ta, b"held", HeldKind::Logged);
                assert!(send_after_held(0, ta, b"mine").unwrap().is_ok());
                assert_eq!(held_since(), None, "everything went");
                // A held datagram failing is not the caller's failure ...
                hold(0, v6, b"refused", HeldKind::Logged);
                assert!(send_after_held(0, ta, b"fine").unwrap().is_ok());
                // ... and the caller's own failure is returned.
                hold(0, ta, b"held again", HeldKind::Logged);
                assert!(send_after_held(0, v6, b"mine, refused").unwrap().is_err());
            });
        });
        for want in [&b"held"[..], b"mine", b"fine", b"held again"] {
            assert_eq!(recv(&a).0, want);
        }
    }

    #[test]
    fn failed_held_replies_are_counted_once() {
        let (socks, a, ta) = one_socket_and_a_peer();
        let v6 = refused_v6();
        std::thread::scope(|sc| {
            sc.spawn(|| {
                assert_eq!(
                    take_failed(),
                    Failed::default(),
                    "a thread that holds nothing"
                );
                hold_on_this_thread(socks.clone());
                hold(0, v6, b"reply, refused", HeldKind::Reply);
                hold(0, v6, b"logged, refused", HeldKind::Logged);
                hold(0, ta, b"reply", HeldKind::Reply);
                hold(7, ta, b"reply, no socket", HeldKind::Reply);
                hold(0, v6, b"request, refused", HeldKind::Request);
                hold(0, ta, b"request", HeldKind::Request);
                flush();
                let want = Failed {
                    replies: 2,
                    requests: 1,
                };
                assert_eq!(take_failed(), want);
                assert_eq!(take_failed(), Failed::default(), "taken");
            });
        });
        assert_eq!(recv(&a).0, b"reply");
        assert_eq!(recv(&a).0, b"request");
    }
}
