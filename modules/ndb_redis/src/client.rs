//! One connection to a Redis server: TCP or a UNIX socket, the address
//! asked of Sentinels when configured so, `AUTH` and `SELECT` on
//! connecting, the connect and command timeouts, and commands sent one
//! at a time or pipelined (all written, then every reply read).

use crate::resp::{self, Reply};
use crate::server::{Server, Target};
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::time::Duration;

/// The two kinds of stream.
enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Stream {
    fn write_all(&mut self, b: &[u8]) -> std::io::Result<()> {
        match self {
            Stream::Tcp(s) => s.write_all(b),
            Stream::Unix(s) => s.write_all(b),
        }
    }

    fn read(&mut self, b: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(b),
            Stream::Unix(s) => s.read(b),
        }
    }
}

/// Timeouts, from the module's parameters (milliseconds; 0 is none).
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// Connecting (`connect_timeout`).
    pub connect: Duration,
    /// Waiting for a reply (`cmd_timeout`).
    pub cmd: Duration,
}

fn opt(d: Duration) -> Option<Duration> {
    (!d.is_zero()).then_some(d)
}

/// Most bytes one reply may take (Redis' largest string and its framing).
const MAX_BUFFER: usize = 513 * 1024 * 1024;

/// A connection.
pub struct Conn {
    stream: Stream,
    buf: Vec<u8>,
    cmd_timeout: Duration,
}

fn tcp(host: &str, port: u16, t: Timeouts) -> Result<TcpStream, String> {
    let addrs: Vec<_> = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .collect();
    let mut last = format!("no address for {host}");
    for a in addrs {
        let r = match opt(t.connect) {
            Some(d) => TcpStream::connect_timeout(&a, d),
            None => TcpStream::connect(a),
        };
        match r {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                s.set_read_timeout(opt(t.cmd)).map_err(|e| e.to_string())?;
                s.set_write_timeout(opt(t.cmd)).map_err(|e| e.to_string())?;
                return Ok(s);
            }
            Err(e) => last = format!("cannot connect to {a}: {e}"),
        }
    }
    Err(last)
}

/// `host:port` of a Sentinel (IPv6 in brackets or bare).
fn host_port(s: &str) -> Result<(String, u16), String> {
    let (h, p) = s
        .rsplit_once(':')
        .ok_or_else(|| format!("sentinel [{s}] without a port"))?;
    let p = p
        .parse::<u16>()
        .map_err(|_| format!("sentinel [{s}]: bad port"))?;
    Ok((
        h.trim_start_matches('[').trim_end_matches(']').to_string(),
        p,
    ))
}

/// The address a Sentinel gives for `group`.
fn ask_sentinel(at: &str, group: &str, master: bool, t: Timeouts) -> Result<(String, u16), String> {
    let (h, p) = host_port(at)?;
    let mut c = Conn {
        stream: Stream::Tcp(tcp(&h, p, t)?),
        buf: Vec::new(),
        cmd_timeout: t.cmd,
    };
    let bad = || format!("sentinel {at}: no address for group [{group}]");
    let r = if master {
        c.command(&[
            b"SENTINEL".to_vec(),
            b"get-master-addr-by-name".to_vec(),
            group.as_bytes().to_vec(),
        ])?
    } else {
        let r = c.command(&[
            b"SENTINEL".to_vec(),
            b"slaves".to_vec(),
            group.as_bytes().to_vec(),
        ])?;
        // Each replica is a flat list of names and values.
        let Reply::Array(replicas) = r else {
            return Err(bad());
        };
        let first = replicas.into_iter().find_map(|x| match x {
            Reply::Array(kv) => {
                let field = |name: &[u8]| {
                    kv.chunks(2).find_map(|p| match p {
                        [Reply::Str(k), Reply::Str(v)] if k == name => Some(v.clone()),
                        _ => None,
                    })
                };
                Some(Reply::Array(vec![
                    Reply::Str(field(b"ip")?),
                    Reply::Str(field(b"port")?),
                ]))
            }
            _ => None,
        });
        first.ok_or_else(bad)?
    };
    match r {
        Reply::Array(v) => match v.as_slice() {
            [Reply::Str(ip), Reply::Str(port)] => {
                let port = std::str::from_utf8(port)
                    .ok()
                    .and_then(|p| p.parse().ok())
                    .ok_or_else(bad)?;
                Ok((String::from_utf8_lossy(ip).into_owned(), port))
            }
            _ => Err(bad()),
        },
        _ => Err(bad()),
    }
}

impl Conn {
    /// Connects to `srv` and authenticates and selects its database.
    pub fn open(srv: &Server, t: Timeouts) -> Result<Conn, String> {
        let stream = match &srv.target {
            Target::Tcp(h, p) => Stream::Tcp(tcp(h, *p, t)?),
            Target::Unix(path) => {
                let s = UnixStream::connect(path)
                    .map_err(|e| format!("cannot connect to {path}: {e}"))?;
                s.set_read_timeout(opt(t.cmd)).map_err(|e| e.to_string())?;
                s.set_write_timeout(opt(t.cmd)).map_err(|e| e.to_string())?;
                Stream::Unix(s)
            }
            Target::Sentinel {
                group,
                master,
                sentinels,
            } => {
                let mut last = String::new();
                let mut found = None;
                for s in sentinels {
                    match ask_sentinel(s, group, *master, t) {
                        Ok(a) => {
                            found = Some(a);
                            break;
                        }
                        Err(e) => last = e,
                    }
                }
                let (h, p) = found.ok_or(last)?;
                Stream::Tcp(tcp(&h, p, t)?)
            }
        };
        let mut c = Conn {
            stream,
            buf: Vec::new(),
            cmd_timeout: t.cmd,
        };
        if let Some(pass) = &srv.pass {
            if let Reply::Error(e) = c.command(&[b"AUTH".to_vec(), pass.as_bytes().to_vec()])? {
                return Err(format!("authentication failed: {e}"));
            }
        }
        match c.command(&[b"SELECT".to_vec(), srv.db.to_string().into_bytes()])? {
            Reply::Error(e) => Err(format!("cannot select database {}: {e}", srv.db)),
            _ => Ok(c),
        }
    }

    /// Sends one command and reads its reply.
    pub fn command(&mut self, args: &[Vec<u8>]) -> Result<Reply, String> {
        let mut r = self.pipeline(std::slice::from_ref(&args.to_vec()))?;
        r.pop().ok_or_else(|| "no reply".to_string())
    }

    /// Sends every command, then reads one reply for each, in order.
    pub fn pipeline(&mut self, cmds: &[Vec<Vec<u8>>]) -> Result<Vec<Reply>, String> {
        let mut out = Vec::new();
        for c in cmds {
            resp::encode(c, &mut out);
        }
        self.stream
            .write_all(&out)
            .map_err(|e| format!("cannot send: {e}"))?;
        let mut replies = Vec::with_capacity(cmds.len());
        while replies.len() < cmds.len() {
            replies.push(self.read_reply()?);
        }
        Ok(replies)
    }

    /// Whether nothing beyond the replies read has come (else the
    /// connection is out of step and must not be used again).
    pub fn in_step(&self) -> bool {
        self.buf.is_empty()
    }

    fn set_read_timeout(&mut self, d: Option<Duration>) {
        let _ = match &self.stream {
            Stream::Tcp(s) => s.set_read_timeout(d),
            Stream::Unix(s) => s.set_read_timeout(d),
        };
    }

    /// Reads one reply, within `cmd_timeout` for all of it.
    fn read_reply(&mut self) -> Result<Reply, String> {
        let deadline = opt(self.cmd_timeout).and_then(|d| std::time::Instant::now().checked_add(d));
        let mut scan = resp::Scan::default();
        let mut chunk = vec![0u8; 65536];
        loop {
            if let Some(n) = scan.end(&self.buf)? {
                let (r, used) =
                    resp::parse(&self.buf[..n])?.ok_or_else(|| "reply cut short".to_string())?;
                self.buf.drain(..used);
                return Ok(r);
            }
            if self.buf.len() > MAX_BUFFER {
                return Err(format!("reply larger than {MAX_BUFFER} bytes"));
            }
            if let Some(d) = deadline {
                let left = d.saturating_duration_since(std::time::Instant::now());
                if left.is_zero() {
                    return Err("timeout waiting for the reply".into());
                }
                self.set_read_timeout(Some(left));
            }
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err("connection closed by the server".into()),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err("timeout waiting for the reply".into())
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("cannot read: {e}")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentinel_addresses_read() {
        assert_eq!(
            host_port("1.2.3.4:26379").unwrap(),
            ("1.2.3.4".into(), 26379)
        );
        assert_eq!(host_port("[::1]:26379").unwrap(), ("::1".into(), 26379));
        assert!(host_port("nohost").is_err());
        assert!(host_port("h:x").is_err());
    }
}
