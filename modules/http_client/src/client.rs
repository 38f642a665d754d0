//! A blocking HTTP/1.1 client for the script's HTTP calls: one request per
//! connection (`http://` and `https://`), redirects followed as curl
//! follows them,
//! curl's error numbers and texts for what goes wrong (the script reads
//! them from the return code and `$curlerror`).

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A failure, as curl numbers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CurlError(pub u32);

impl CurlError {
    /// Unsupported protocol.
    pub const UNSUPPORTED_PROTOCOL: CurlError = CurlError(1);
    /// Malformed URL.
    pub const URL_MALFORMAT: CurlError = CurlError(3);
    /// The host name does not resolve.
    pub const COULDNT_RESOLVE_HOST: CurlError = CurlError(6);
    /// Connection refused or unreachable.
    pub const COULDNT_CONNECT: CurlError = CurlError(7);
    /// The response was larger than allowed.
    pub const WRITE_ERROR: CurlError = CurlError(23);
    /// Timeout.
    pub const OPERATION_TIMEDOUT: CurlError = CurlError(28);
    /// Too many redirects.
    pub const TOO_MANY_REDIRECTS: CurlError = CurlError(47);
    /// Nothing came back.
    pub const GOT_NOTHING: CurlError = CurlError(52);
    /// The TLS handshake failed.
    pub const SSL_CONNECT_ERROR: CurlError = CurlError(35);
    /// The server's certificate was not accepted.
    pub const PEER_FAILED_VERIFICATION: CurlError = CurlError(60);
    /// The trusted certificates could not be read.
    pub const SSL_CACERT_BADFILE: CurlError = CurlError(77);
    /// Reading failed.
    pub const RECV_ERROR: CurlError = CurlError(56);

    /// curl's text for the error (`curl_easy_strerror`).
    pub fn text(self) -> &'static str {
        match self.0 {
            0 => "No error",
            1 => "Unsupported protocol",
            3 => "URL using bad/illegal format or missing URL",
            6 => "Couldn't resolve host name",
            7 => "Couldn't connect to server",
            8 => "Weird server reply",
            23 => "Failed writing received data to disk/application",
            28 => "Timeout was reached",
            35 => "SSL connect error",
            60 => "SSL peer certificate or SSH remote key was not OK",
            77 => "Problem with the SSL CA cert (path? access rights?)",
            47 => "Number of redirects hit maximum amount",
            52 => "Server returned nothing (no headers, no data)",
            56 => "Failure when receiving data from the peer",
            _ => "Unknown error",
        }
    }
}

/// A request.
#[derive(Debug, Clone)]
pub struct Request {
    /// Method.
    pub method: String,
    /// `http://host[:port]/path?query`.
    pub url: String,
    /// Body, if any.
    pub body: Option<Vec<u8>>,
    /// Header lines given by the script (`Name: value`).
    pub headers: Vec<String>,
    /// The whole exchange may take this long.
    pub timeout: Option<Duration>,
    /// `User-Agent`.
    pub user_agent: String,
    /// Follow 3xx with a Location.
    pub follow: bool,
    /// Largest body accepted (0: any).
    pub max_size: usize,
    /// How to talk to `https://` servers (`None`: HTTPS refused, curl's
    /// error 77).
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

/// A connection: plain, or TLS over it.
trait Wire: Read + Write {
    /// Limits the next reads and writes.
    fn limit(&self, t: Option<Duration>);
}

impl Wire for TcpStream {
    fn limit(&self, t: Option<Duration>) {
        self.set_read_timeout(t).ok();
        self.set_write_timeout(t).ok();
    }
}

impl Wire for rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    fn limit(&self, t: Option<Duration>) {
        self.sock.limit(t);
    }
}

/// A response.
#[derive(Debug, Clone, Default)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// The reason phrase of the status line.
    pub reason: String,
    /// Header fields, in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// The URL the response came from (after redirects).
    pub url: String,
}

impl Response {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

struct Url {
    tls: bool,
    host: String,
    port: u16,
    target: String,
}

fn parse_url(url: &str) -> Result<Url, CurlError> {
    let (scheme, rest) = url.split_once("://").ok_or(CurlError::URL_MALFORMAT)?;
    let tls = match scheme.to_ascii_lowercase().as_str() {
        "http" => false,
        "https" => true,
        _ => return Err(CurlError::UNSUPPORTED_PROTOCOL),
    };
    let default_port = if tls { 443 } else { 80 };
    let (auth, target) = match rest.find(['/', '?']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let auth = auth.rsplit_once('@').map_or(auth, |(_, h)| h);
    if auth.is_empty() {
        return Err(CurlError::URL_MALFORMAT);
    }
    let (host, port) = if let Some(v6) = auth.strip_prefix('[') {
        let (h, rest) = v6.split_once(']').ok_or(CurlError::URL_MALFORMAT)?;
        let port = match rest.strip_prefix(':') {
            Some(p) => p.parse().map_err(|_| CurlError::URL_MALFORMAT)?,
            None => default_port,
        };
        (format!("[{h}]"), port)
    } else {
        match auth.rsplit_once(':') {
            Some((h, p)) => (
                h.to_string(),
                p.parse().map_err(|_| CurlError::URL_MALFORMAT)?,
            ),
            None => (auth.to_string(), default_port),
        }
    };
    let target = if target.starts_with('?') {
        format!("/{target}")
    } else {
        target.to_string()
    };
    Ok(Url {
        tls,
        host,
        port,
        target,
    })
}

/// Sends `req`, following redirects when asked.
pub fn send(req: &Request) -> Result<Response, CurlError> {
    let deadline = req.timeout.map(|t| Instant::now() + t);
    let mut req = req.clone();
    for _ in 0..50 {
        let resp = once(&req, deadline)?;
        let location = resp.header("Location").map(str::to_string);
        match (req.follow, resp.status, location) {
            (true, 301..=303 | 307 | 308, Some(loc)) => {
                req.url = resolve(&req.url, &loc);
                if matches!(resp.status, 301..=303) && req.method != "GET" && req.method != "HEAD" {
                    req.method = "GET".into();
                    req.body = None;
                }
            }
            _ => return Ok(resp),
        }
    }
    Err(CurlError::TOO_MANY_REDIRECTS)
}

/// A Location against the URL it came from.
fn resolve(base: &str, loc: &str) -> String {
    if loc.contains("://") {
        return loc.to_string();
    }
    let (scheme, rest) = base.split_once("://").unwrap_or(("http", base));
    let auth_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let auth = &rest[..auth_end];
    if loc.starts_with('/') {
        format!("{scheme}://{auth}{loc}")
    } else {
        let path = &rest[auth_end..];
        let dir = path.rfind('/').map_or("/", |i| &path[..=i]);
        format!("{scheme}://{auth}{dir}{loc}")
    }
}

fn left(deadline: Option<Instant>) -> Result<Option<Duration>, CurlError> {
    match deadline {
        None => Ok(None),
        Some(d) => d
            .checked_duration_since(Instant::now())
            .filter(|l| !l.is_zero())
            .map(Some)
            .ok_or(CurlError::OPERATION_TIMEDOUT),
    }
}

fn once(req: &Request, deadline: Option<Instant>) -> Result<Response, CurlError> {
    let u = parse_url(&req.url)?;
    let addrs: Vec<_> = (u.host.trim_matches(['[', ']']), u.port)
        .to_socket_addrs()
        .map_err(|_| CurlError::COULDNT_RESOLVE_HOST)?
        .collect();
    let mut stream = None;
    for a in &addrs {
        let r = match left(deadline)? {
            Some(t) => TcpStream::connect_timeout(a, t),
            None => TcpStream::connect(a),
        };
        match r {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                return Err(CurlError::OPERATION_TIMEDOUT)
            }
            Err(_) => {}
        }
    }
    let tcp = stream.ok_or(CurlError::COULDNT_CONNECT)?;
    let mut s: Box<dyn Wire> = if u.tls {
        let cfg = req.tls.clone().ok_or(CurlError::SSL_CACERT_BADFILE)?;
        let name =
            rustls::pki_types::ServerName::try_from(u.host.trim_matches(['[', ']']).to_string())
                .map_err(|_| CurlError::URL_MALFORMAT)?;
        let conn =
            rustls::ClientConnection::new(cfg, name).map_err(|_| CurlError::SSL_CONNECT_ERROR)?;
        let mut t = rustls::StreamOwned::new(conn, tcp);
        t.limit(left(deadline)?);
        // The handshake now, so that its failure is told apart.
        while t.conn.is_handshaking() {
            if let Err(e) = t.conn.complete_io(&mut t.sock) {
                let text = e.to_string();
                return Err(
                    if text.contains("certificate") || text.contains("Certificate") {
                        CurlError::PEER_FAILED_VERIFICATION
                    } else if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) {
                        CurlError::OPERATION_TIMEDOUT
                    } else {
                        CurlError::SSL_CONNECT_ERROR
                    },
                );
            }
        }
        Box::new(t)
    } else {
        Box::new(tcp)
    };
    let default_port = if u.tls { 443 } else { 80 };
    let host = if u.port == default_port {
        u.host.clone()
    } else {
        format!("{}:{}", u.host, u.port)
    };
    let mut head = format!("{} {} HTTP/1.1\r\nHost: {host}\r\n", req.method, u.target);
    if !req.user_agent.is_empty() {
        head.push_str(&format!("User-Agent: {}\r\n", req.user_agent));
    }
    head.push_str("Accept: */*\r\n");
    let has = |n: &str| {
        req.headers.iter().any(|h| {
            h.split(':')
                .next()
                .is_some_and(|x| x.trim().eq_ignore_ascii_case(n))
        })
    };
    // Each item is one header for curl: a Content-Type on a later line of
    // an item (the script's headers come as one text) does not replace
    // the default one.
    for h in &req.headers {
        head.push_str(h.trim_end());
        head.push_str("\r\n");
    }
    if let Some(b) = &req.body {
        head.push_str(&format!("Content-Length: {}\r\n", b.len()));
        if !has("Content-Type") {
            head.push_str("Content-Type: application/x-www-form-urlencoded\r\n");
        }
    }
    head.push_str("\r\n");
    s.limit(left(deadline)?);
    s.write_all(head.as_bytes())
        .and_then(|_| s.write_all(req.body.as_deref().unwrap_or(&[])))
        .map_err(|_| CurlError(55))?;
    read_response(&mut s, deadline, req.max_size, req.method == "HEAD").map(|mut r| {
        r.url = req.url.clone();
        r
    })
}

fn read_response(
    s: &mut Box<dyn Wire>,
    deadline: Option<Instant>,
    max: usize,
    head_only: bool,
) -> Result<Response, CurlError> {
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 8192];
    let mut read = |s: &mut Box<dyn Wire>, buf: &mut Vec<u8>| -> Result<usize, CurlError> {
        s.limit(left(deadline)?);
        match s.read(&mut chunk) {
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                Ok(n)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                Err(CurlError::OPERATION_TIMEDOUT)
            }
            Err(_) => Err(CurlError::RECV_ERROR),
        }
    };
    // The head.
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 64 * 1024 {
            return Err(CurlError(8));
        }
        if read(s, &mut buf)? == 0 {
            return Err(if buf.is_empty() {
                CurlError::GOT_NOTHING
            } else {
                CurlError::RECV_ERROR
            });
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    if !version.starts_with("HTTP/") {
        return Err(CurlError(8));
    }
    let status: u16 = parts
        .next()
        .and_then(|c| c.parse().ok())
        .ok_or(CurlError(8))?;
    let reason = parts.next().unwrap_or("").to_string();
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut resp = Response {
        status,
        reason,
        headers,
        ..Default::default()
    };
    let mut body = buf.split_off(head_end);
    let too_big = |n: usize| max > 0 && n > max;
    if head_only || status == 204 || status == 304 || (100..200).contains(&status) {
        return Ok(resp);
    }
    if resp
        .header("Transfer-Encoding")
        .is_some_and(|t| t.to_ascii_lowercase().contains("chunked"))
    {
        let mut out = Vec::new();
        let mut at = 0;
        loop {
            // A chunk size line.
            let line_end = loop {
                if let Some(i) = body[at..].windows(2).position(|w| w == b"\r\n") {
                    break at + i;
                }
                if read(s, &mut body)? == 0 {
                    return Err(CurlError::RECV_ERROR);
                }
            };
            let size_text = String::from_utf8_lossy(&body[at..line_end]);
            let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| CurlError::RECV_ERROR)?;
            at = line_end + 2;
            if size == 0 {
                break;
            }
            // A chunk larger than allowed (or than memory) ends it here.
            if size > (1 << 30) || too_big(out.len() + size) {
                return Err(CurlError::WRITE_ERROR);
            }
            while body.len() < at + size + 2 {
                if read(s, &mut body)? == 0 {
                    return Err(CurlError::RECV_ERROR);
                }
            }
            out.extend_from_slice(&body[at..at + size]);
            if too_big(out.len()) {
                return Err(CurlError::WRITE_ERROR);
            }
            at += size + 2;
        }
        resp.body = out;
    } else if let Some(n) = resp
        .header("Content-Length")
        .and_then(|v| v.parse::<usize>().ok())
    {
        if too_big(n) || n > (1 << 30) {
            return Err(CurlError::WRITE_ERROR);
        }
        while body.len() < n {
            if read(s, &mut body)? == 0 {
                return Err(CurlError::RECV_ERROR);
            }
        }
        body.truncate(n);
        resp.body = body;
    } else {
        while read(s, &mut body)? > 0 {
            if too_big(body.len()) {
                return Err(CurlError::WRITE_ERROR);
            }
        }
        resp.body = body;
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_locations_are_read_as_curl_reads_them() {
        let u = parse_url("http://user:pw@127.0.0.1:8080/a/b?c=d").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.target.as_str()),
            ("127.0.0.1", 8080, "/a/b?c=d")
        );
        let u = parse_url("http://[::1]?x").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.target.as_str()),
            ("[::1]", 80, "/?x")
        );
        assert_eq!(
            parse_url("ftp://x/").err(),
            Some(CurlError::UNSUPPORTED_PROTOCOL)
        );
        assert_eq!(parse_url("nothing").err(), Some(CurlError::URL_MALFORMAT));
        assert_eq!(resolve("http://h:1/a/b?q", "/x"), "http://h:1/x");
        assert_eq!(resolve("http://h:1/a/b?q", "c"), "http://h:1/a/c");
        assert_eq!(resolve("http://h:1/a", "http://o/"), "http://o/");
    }

    /// Sends `req` to a server that answers `reply` and closes.
    fn against(reply: &'static [u8]) -> Result<Response, CurlError> {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        std::thread::spawn(move || {
            if let Ok((mut s, _)) = l.accept() {
                let mut b = [0u8; 1024];
                let _ = s.read(&mut b);
                let _ = s.write_all(reply);
            }
        });
        send(&Request {
            method: "GET".into(),
            url: format!("http://127.0.0.1:{port}/"),
            body: None,
            headers: vec![],
            timeout: Some(Duration::from_secs(2)),
            user_agent: String::new(),
            follow: false,
            max_size: 0,
            tls: None,
        })
    }

    #[test]
    fn bad_answers_give_errors_not_panics() {
        assert_eq!(against(b"garbage\r\n\r\n").err(), Some(CurlError(8)));
        assert_eq!(against(b"").err(), Some(CurlError::GOT_NOTHING));
        assert_eq!(
            against(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFF\r\n")
                .err(),
            Some(CurlError::WRITE_ERROR)
        );
        assert_eq!(
            against(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n").err(),
            Some(CurlError::RECV_ERROR)
        );
        assert_eq!(
            against(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort").err(),
            Some(CurlError::RECV_ERROR)
        );
        let r = against(b"HTTP/1.1 200 OK\r\nX-A: 1\r\n\r\nuntil close").unwrap();
        assert_eq!(
            (r.status, r.body.as_slice(), r.header("x-a")),
            (200, &b"until close"[..], Some("1"))
        );
    }

    #[test]
    fn a_refused_connection_is_curl_error_7() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        let r = send(&Request {
            method: "GET".into(),
            url: format!("http://127.0.0.1:{port}/"),
            body: None,
            headers: vec![],
            timeout: Some(Duration::from_secs(2)),
            user_agent: String::new(),
            follow: true,
            max_size: 0,
            tls: None,
        });
        assert_eq!(r.err(), Some(CurlError::COULDNT_CONNECT));
        assert_eq!(CurlError(7).text(), "Couldn't connect to server");
    }
}
