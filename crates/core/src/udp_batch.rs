//! Batched UDP receive: one `recvmmsg` system call takes every datagram
//! already queued on a worker's socket (up to [`RecvBatch::CAPACITY`]).

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;

/// Room for one datagram: the largest a UDP/IPv4 or IPv6 payload can be.
const DATAGRAM_MAX: usize = 65536;

/// The size of an address slot, which the kernel overwrites with the
/// length of the address it wrote.
const ADDR_LEN: u32 = std::mem::size_of::<libc::sockaddr_storage>() as u32;

/// Buffers and headers for one `recvmmsg` call, reused for every call.
///
/// One zeroed allocation holds all the 64 KiB slots; at this size the
/// allocator maps fresh pages, and the kernel writes only the bytes it
/// receives, so untouched pages cost address space, not memory. The
/// headers point into the slots, the address slots and the `iovec`s: all
/// heap storage that is never reallocated and does not move with the
/// batch, so the pointers are set once, at construction (from
/// `Vec::as_mut_ptr`, which creates no reference: moving the batch does
/// not invalidate them, as it would pointers into a moved `Box`). A receive resets
/// only what the kernel wrote in the headers of the previous one (the
/// length, the address length, the flags; it does not write `iovec`s).
/// It holds raw pointers, so it is not `Send`: each worker makes its own.
pub struct RecvBatch {
    bufs: Vec<u8>,
    addrs: Vec<libc::sockaddr_storage>,
    iovs: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
    len: usize,
}

impl RecvBatch {
    /// Datagrams taken by one call at most.
    pub const CAPACITY: usize = 64;

    /// Allocates the buffers.
    pub fn new() -> RecvBatch {
        let n = Self::CAPACITY;
        let mut b = RecvBatch {
            bufs: vec![0u8; n * DATAGRAM_MAX],
            // SAFETY: sockaddr_storage, iovec and mmsghdr are plain C data
            // for which all-zero (null pointers, zero lengths) is valid.
            addrs: vec![unsafe { std::mem::zeroed() }; n],
            iovs: vec![unsafe { std::mem::zeroed() }; n],
            hdrs: vec![unsafe { std::mem::zeroed() }; n],
            len: 0,
        };
        let buf = b.bufs.as_mut_ptr();
        let addrs = b.addrs.as_mut_ptr();
        let iovs = b.iovs.as_mut_ptr();
        for (i, h) in b.hdrs.iter_mut().enumerate() {
            // SAFETY: i < CAPACITY, the length of `addrs` and `iovs`, and
            // i * DATAGRAM_MAX + DATAGRAM_MAX <= the length of `bufs`.
            unsafe {
                iovs.add(i).write(libc::iovec {
                    iov_base: buf.add(i * DATAGRAM_MAX).cast(),
                    iov_len: DATAGRAM_MAX,
                });
                h.msg_hdr.msg_name = addrs.add(i).cast();
                h.msg_hdr.msg_iov = iovs.add(i);
            }
            h.msg_hdr.msg_iovlen = 1;
            h.msg_hdr.msg_namelen = ADDR_LEN;
        }
        b
    }

    /// Receives into the batch: blocks until one datagram is there, then
    /// takes the others already queued without waiting (`MSG_WAITFORONE`),
    /// or, with `nonblocking`, returns at once. Returns how many came.
    pub fn recv(&mut self, sock: &impl AsRawFd, nonblocking: bool) -> io::Result<usize> {
        // Only the headers the last call filled were written by the kernel.
        for h in &mut self.hdrs[..self.len] {
            h.msg_hdr.msg_namelen = ADDR_LEN;
            h.msg_hdr.msg_flags = 0;
            h.msg_len = 0;
        }
        self.len = 0;
        let flags = if nonblocking {
            libc::MSG_DONTWAIT
        } else {
            libc::MSG_WAITFORONE
        };
        // SAFETY: every header points at a live buffer and address slot of
        // this batch (heap storage that lives and stays put as long as the
        // batch), with their true sizes; `hdrs.len()` headers exist.
        let n = unsafe {
            libc::recvmmsg(
                sock.as_raw_fd(),
                self.hdrs.as_mut_ptr(),
                self.hdrs.len() as u32,
                flags as _,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        self.len = n as usize;
        Ok(self.len)
    }

    /// The datagrams of the last call with their sources (skipping any
    /// whose source is not an IP address).
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], SocketAddr)> {
        (0..self.len).filter_map(|i| {
            let h = &self.hdrs[i];
            let start = i * DATAGRAM_MAX;
            let data = &self.bufs[start..start + (h.msg_len as usize).min(DATAGRAM_MAX)];
            let src = sockaddr_to_std(&self.addrs[i], h.msg_hdr.msg_namelen)?;
            Some((data, src))
        })
    }
}

impl Default for RecvBatch {
    fn default() -> Self {
        Self::new()
    }
}

/// The source address, or `None` when the kernel gave none that is long
/// enough: after `shutdown(SHUT_RD)` a blocking `recvmmsg` returns one
/// empty "message" with `msg_namelen` 0, whose stale family must not be
/// read as a datagram.
fn sockaddr_to_std(ss: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<SocketAddr> {
    match ss.ss_family as libc::c_int {
        libc::AF_INET if len as usize >= std::mem::size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family says the storage holds a sockaddr_in.
            let a = unsafe { &*(ss as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            let ip = std::net::Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Some(SocketAddr::new(ip.into(), u16::from_be(a.sin_port)))
        }
        libc::AF_INET6 if len as usize >= std::mem::size_of::<libc::sockaddr_in6>() => {
            // SAFETY: the family says the storage holds a sockaddr_in6.
            let a = unsafe { &*(ss as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            let ip = std::net::Ipv6Addr::from(a.sin6_addr.s6_addr);
            Some(SocketAddr::V6(std::net::SocketAddrV6::new(
                ip,
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::time::Duration;

    fn bound(addr: &str) -> UdpSocket {
        let s = UdpSocket::bind(addr).expect("bind");
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        s
    }

    #[test]
    fn one_call_takes_every_queued_datagram_with_its_source() {
        let rx = bound("127.0.0.1:0");
        let (a, b) = (bound("127.0.0.1:0"), bound("127.0.0.1:0"));
        let to = rx.local_addr().unwrap();
        a.send_to(b"first", to).unwrap();
        b.send_to(b"second, longer", to).unwrap();
        a.send_to(b"", to).unwrap();
        // Loopback delivers at send time; all three are queued now.
        let mut batch = RecvBatch::new();
        assert_eq!(batch.recv(&rx, false).unwrap(), 3);
        let got: Vec<(Vec<u8>, SocketAddr)> = batch.iter().map(|(d, s)| (d.to_vec(), s)).collect();
        assert_eq!(
            got,
            vec![
                (b"first".to_vec(), a.local_addr().unwrap()),
                (b"second, longer".to_vec(), b.local_addr().unwrap()),
                (Vec::new(), a.local_addr().unwrap()),
            ]
        );
        // Nothing left: a receive that does not wait says so.
        let e = batch.recv(&rx, true).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        assert_eq!(batch.iter().count(), 0);
    }

    #[test]
    fn more_than_a_batch_comes_in_several_calls_in_order() {
        let rx = bound("127.0.0.1:0");
        let tx = bound("127.0.0.1:0");
        let to = rx.local_addr().unwrap();
        let total = RecvBatch::CAPACITY + 5;
        for i in 0..total {
            tx.send_to(i.to_string().as_bytes(), to).unwrap();
        }
        let mut batch = RecvBatch::new();
        let mut seen = Vec::new();
        assert_eq!(batch.recv(&rx, false).unwrap(), RecvBatch::CAPACITY);
        seen.extend(batch.iter().map(|(d, _)| d.to_vec()));
        assert_eq!(batch.recv(&rx, true).unwrap(), 5);
        seen.extend(batch.iter().map(|(d, _)| d.to_vec()));
        let want: Vec<Vec<u8>> = (0..total).map(|i| i.to_string().into_bytes()).collect();
        assert_eq!(seen, want);
    }

    #[test]
    fn a_receive_resets_what_the_kernel_wrote_in_the_last_one() {
        let rx = bound("127.0.0.1:0");
        let tx = bound("127.0.0.1:0");
        tx.send_to(b"one", rx.local_addr().unwrap()).unwrap();
        let mut batch = RecvBatch::new();
        assert_eq!(batch.recv(&rx, false).unwrap(), 1);
        // The kernel wrote an IPv4 address's length (16) in the first slot.
        assert!(batch.hdrs[0].msg_hdr.msg_namelen < ADDR_LEN);
        let e = batch.recv(&rx, true).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        assert!(batch
            .hdrs
            .iter()
            .all(|h| h.msg_hdr.msg_namelen == ADDR_LEN && h.msg_len == 0));
        assert_eq!(batch.iter().count(), 0);
    }

    #[test]
    fn ipv6_sources_keep_address_and_port() {
        let Ok(rx) = UdpSocket::bind("[::1]:0") else {
            eprintln!("no IPv6 loopback here; skipped");
            return;
        };
        rx.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let tx = bound("[::1]:0");
        tx.send_to(b"v6", rx.local_addr().unwrap()).unwrap();
        let mut batch = RecvBatch::new();
        assert_eq!(batch.recv(&rx, false).unwrap(), 1);
        let (data, src) = batch.iter().next().unwrap();
        assert_eq!(data, b"v6");
        assert_eq!(src, tx.local_addr().unwrap());
    }

    #[test]
    fn a_socket_shut_down_for_reading_yields_no_datagram() {
        // How the server stops a worker: the blocked receive returns, and
        // what it returns (one empty entry without an address on Linux)
        // must not be taken for a datagram.
        let rx = bound("127.0.0.1:0");
        let tx = bound("127.0.0.1:0");
        tx.send_to(b"before", rx.local_addr().unwrap()).unwrap();
        let mut batch = RecvBatch::new();
        assert_eq!(batch.recv(&rx, false).unwrap(), 1);
        assert_eq!(batch.iter().count(), 1);
        socket2::SockRef::from(&rx)
            .shutdown(std::net::Shutdown::Read)
            .ok();
        let _ = batch.recv(&rx, false);
        assert_eq!(batch.iter().count(), 0);
    }

    #[test]
    fn a_large_datagram_arrives_whole() {
        let rx = bound("127.0.0.1:0");
        let tx = bound("127.0.0.1:0");
        let big: Vec<u8> = (0..60_000u32).map(|i| (i % 251) as u8).collect();
        tx.send_to(&big, rx.local_addr().unwrap()).unwrap();
        let mut batch = RecvBatch::new();
        assert_eq!(batch.recv(&rx, false).unwrap(), 1);
        assert_eq!(batch.iter().next().unwrap().0, &big[..]);
    }
}
