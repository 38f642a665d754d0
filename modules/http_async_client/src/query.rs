//! A query's settings as the script sets them with `$http_req(key)`, and
//! what its answer shows in the callback route (`$http_rs`, `$http_hdr`,
//! ...). No I/O here.

use base64::Engine;
use sr_mod_http_client::client::{CurlError, Request, Response};
use std::time::Duration;

/// The settings of the next query (`$http_req(...)`), back to the
/// module's defaults after each query and with `$http_req(all) = $null`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params {
    /// Header lines, in order (`$http_req(hdr)`, once per header).
    pub headers: Vec<String>,
    /// `$http_req(body)`.
    pub body: Option<String>,
    /// `$http_req(method)`: GET, POST, PUT or DELETE (unset: GET, or POST
    /// with a body).
    pub method: Option<String>,
    /// `$http_req(timeout)`, ms.
    pub timeout_ms: u64,
    /// `$http_req(tls_client_cert)`.
    pub tls_client_cert: String,
    /// `$http_req(tls_client_key)`.
    pub tls_client_key: String,
    /// `$http_req(tls_ca_path)`.
    pub tls_ca_path: String,
    /// Check the server's certificate.
    pub tls_verify_peer: bool,
    /// Check that the certificate names the server.
    pub tls_verify_host: bool,
    /// `$http_req(authmethod)`: 1 Basic (the only one built), 2 Digest...
    pub authmethod: i64,
    /// `$http_req(username)`.
    pub username: String,
    /// `$http_req(password)`.
    pub password: String,
    /// `$http_req(suspend)`: suspend the transaction (when there is one).
    pub suspend: bool,
}

impl Params {
    /// The defaults the module's parameters give.
    pub fn defaults(d: &Defaults) -> Params {
        Params {
            headers: Vec::new(),
            body: None,
            method: None,
            timeout_ms: d.timeout_ms,
            tls_client_cert: d.tls_client_cert.clone(),
            tls_client_key: d.tls_client_key.clone(),
            tls_ca_path: d.tls_ca_path.clone(),
            tls_verify_peer: d.tls_verify_peer,
            tls_verify_host: d.tls_verify_host,
            authmethod: 3,
            username: String::new(),
            password: String::new(),
            suspend: true,
        }
    }

    /// Sets the method by name; `false` for another method.
    pub fn set_method(&mut self, m: &str) -> bool {
        let up = m.to_ascii_uppercase();
        if matches!(up.as_str(), "GET" | "POST" | "PUT" | "DELETE") {
            self.method = Some(up);
            true
        } else {
            false
        }
    }

    /// The HTTP request for `url`.
    pub fn request(&self, url: &str) -> Request {
        let method = self.method.clone().unwrap_or_else(|| {
            if self.body.as_deref().is_some_and(|b| !b.is_empty()) {
                "POST".to_string()
            } else {
                "GET".to_string()
            }
        });
        let mut headers = self.headers.clone();
        if !self.username.is_empty() && self.authmethod & 1 != 0 {
            let cred = base64::engine::general_purpose::STANDARD
                .encode(format!("{}:{}", self.username, self.password));
            headers.push(format!("Authorization: Basic {cred}"));
        }
        Request {
            method,
            url: url.to_string(),
            body: self.body.clone().map(String::into_bytes),
            headers,
            timeout: (self.timeout_ms > 0).then(|| Duration::from_millis(self.timeout_ms)),
            user_agent: String::new(),
            follow: false,
            max_size: 0,
            tls: None,
        }
    }
}

/// The module parameters a query starts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Defaults {
    /// `connection_timeout`, ms.
    pub timeout_ms: u64,
    /// `tls_client_cert`.
    pub tls_client_cert: String,
    /// `tls_client_key`.
    pub tls_client_key: String,
    /// `tls_ca_path`.
    pub tls_ca_path: String,
    /// `tls_verify_peer`.
    pub tls_verify_peer: bool,
    /// `tls_verify_host`.
    pub tls_verify_host: bool,
}

/// How a query ended, as the callback route reads it.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The query's id (`$http_req_id`).
    pub id: String,
    /// The answer, or curl's error.
    pub result: Result<Response, CurlError>,
}

impl Outcome {
    /// `$http_ok`: an answer came (of any status).
    pub fn ok(&self) -> bool {
        self.result.is_ok()
    }

    /// `$http_err`: curl's text for the error.
    pub fn error(&self) -> Option<&'static str> {
        self.result.as_ref().err().map(|e| e.text())
    }

    /// The answer, if one came.
    pub fn response(&self) -> Option<&Response> {
        self.result.as_ref().ok()
    }

    /// `$http_mb`: the answer as it came, status line and headers and
    /// body.
    pub fn whole(&self) -> Option<String> {
        let r = self.response()?;
        let mut s = format!("HTTP/1.1 {} {}\r\n", r.status, r.reason);
        for (n, v) in &r.headers {
            s.push_str(n);
            s.push_str(": ");
            s.push_str(v);
            s.push_str("\r\n");
        }
        s.push_str("\r\n");
        s.push_str(&String::from_utf8_lossy(&r.body));
        Some(s)
    }

    /// `$(http_hdr(name)[i])`: the i-th value of a header (0: the first,
    /// -1: the last).
    pub fn header(&self, name: &str, index: i64) -> Option<String> {
        let r = self.response()?;
        let all: Vec<&str> = r
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect();
        let i = if index < 0 {
            let back = usize::try_from(index.unsigned_abs()).ok()?;
            all.len().checked_sub(back)?
        } else {
            usize::try_from(index).ok()?
        };
        all.get(i).map(|v| v.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> Defaults {
        Defaults {
            timeout_ms: 500,
            tls_client_cert: String::new(),
            tls_client_key: String::new(),
            tls_ca_path: String::new(),
            tls_verify_peer: true,
            tls_verify_host: true,
        }
    }

    #[test]
    fn method_follows_the_body_unless_set() {
        let mut p = Params::defaults(&defaults());
        assert_eq!(p.request("http://a/").method, "GET");
        p.body = Some("x".into());
        assert_eq!(p.request("http://a/").method, "POST");
        assert!(p.set_method("delete"));
        assert_eq!(p.request("http://a/").method, "DELETE");
        assert!(!p.set_method("PATCH"));
        assert_eq!(
            p.request("http://a/").timeout,
            Some(Duration::from_millis(500))
        );
    }

    #[test]
    fn basic_credentials_become_a_header() {
        let mut p = Params::defaults(&defaults());
        p.username = "u".into();
        p.password = "p".into();
        let r = p.request("http://a/");
        assert_eq!(r.headers, vec!["Authorization: Basic dTpw".to_string()]);
        p.authmethod = 2;
        assert!(p.request("http://a/").headers.is_empty());
    }

    #[test]
    fn outcome_views() {
        let o = Outcome {
            id: "1-1".into(),
            result: Ok(Response {
                status: 201,
                reason: "Created".into(),
                headers: vec![("X-A".into(), "1".into()), ("x-a".into(), "2".into())],
                body: b"hi".to_vec(),
                url: String::new(),
            }),
        };
        assert!(o.ok());
        assert_eq!(o.header("x-A", 0).as_deref(), Some("1"));
        assert_eq!(o.header("X-A", -1).as_deref(), Some("2"));
        assert_eq!(o.header("X-A", 2), None);
        assert_eq!(
            o.whole().as_deref(),
            Some("HTTP/1.1 201 Created\r\nX-A: 1\r\nx-a: 2\r\n\r\nhi")
        );
        let e = Outcome {
            id: "1-2".into(),
            result: Err(CurlError::OPERATION_TIMEDOUT),
        };
        assert!(!e.ok());
        assert_eq!(e.error(), Some("Timeout was reached"));
        assert_eq!(e.whole(), None);
    }
}
