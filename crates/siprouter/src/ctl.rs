//! `siprouter ctl`: the management client (like `kamcmd`/`kamctl rpc`).
//! Sends one JSON-RPC 2.0 request to the server's RPC socket (a UNIX
//! stream socket, one JSON document per line) or its HTTP endpoint, and
//! prints the result plainly or, with `--json`, as JSON.

use sr_sdk::serde_json::{self, json, Value as Json};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

/// The default RPC socket (the `jsonrpcs` module's `socket` parameter).
pub const DEFAULT_SOCKET: &str = "/run/siprouter/siprouter_rpc.sock";

/// The socket of the built-in default configuration.
pub const DEFAULT_CONFIG_SOCKET: &str = "/tmp/siprouter/siprouter_rpc.sock";

/// The socket to use without `-s`: `$SIPROUTER_CTL`, else the module's
/// default when it exists, else the default configuration's.
fn default_target() -> String {
    if let Ok(s) = std::env::var("SIPROUTER_CTL") {
        return s;
    }
    if !std::path::Path::new(DEFAULT_SOCKET).exists()
        && std::path::Path::new(DEFAULT_CONFIG_SOCKET).exists()
    {
        return DEFAULT_CONFIG_SOCKET.to_string();
    }
    DEFAULT_SOCKET.to_string()
}

const USAGE: &str = "\
Usage: siprouter ctl [-s SOCKET|URL] [--json] METHOD [PARAM...]
  -s SOCKET   UNIX socket path or http://host:port/RPC (default: $SIPROUTER_CTL,
              else /run/siprouter/siprouter_rpc.sock, else the default
              config's /tmp/siprouter/siprouter_rpc.sock)
  --json      print the raw JSON-RPC result
Parameters that look like integers are sent as numbers, others as strings.
Examples:
  siprouter ctl system.listMethods
  siprouter ctl stats.get_statistics all
  siprouter ctl ul.dump
";

/// Builds the JSON-RPC request for a method and command-line parameters.
pub fn request(method: &str, params: &[String]) -> Json {
    let ps: Vec<Json> = params
        .iter()
        .map(|p| match p.parse::<i64>() {
            Ok(n) if !(p.starts_with('+') || p.len() > 1 && p.starts_with('0')) => json!(n),
            _ => json!(p),
        })
        .collect();
    json!({"jsonrpc": "2.0", "method": method, "params": ps, "id": 1})
}

/// Sends a request over a UNIX socket and reads the response line.
pub fn call_unix(path: &str, req: &Json) -> Result<Json, String> {
    let mut s = UnixStream::connect(path).map_err(|e| format!("cannot connect to {path}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok();
    let mut line = req.to_string();
    line.push('\n');
    s.write_all(line.as_bytes()).map_err(|e| e.to_string())?;
    let mut resp = String::new();
    BufReader::new(s)
        .read_line(&mut resp)
        .map_err(|e| format!("reading the reply: {e}"))?;
    serde_json::from_str(&resp).map_err(|e| format!("bad reply from server: {e}"))
}

/// Sends a request as an HTTP POST and reads the response body.
pub fn call_http(url: &str, req: &Json) -> Result<Json, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("unsupported URL '{url}' (http:// only)"))?;
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/RPC"),
    };
    let mut s = std::net::TcpStream::connect(hostport)
        .map_err(|e| format!("cannot connect to {hostport}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok();
    let body = req.to_string();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {hostport}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).map_err(|e| e.to_string())?;
    s.write_all(body.as_bytes()).map_err(|e| e.to_string())?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).map_err(|e| e.to_string())?;
    let body = resp.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    serde_json::from_str(body).map_err(|e| format!("bad reply from server: {e}"))
}

/// Renders a result for people: scalars as they are, arrays one item per
/// line, objects as `key: value` with nesting indented.
pub fn render(v: &Json, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match v {
        Json::Array(a) => {
            for x in a {
                if x.is_object() || x.is_array() {
                    render(x, indent, out);
                    out.push_str(&format!("{pad}--\n"));
                } else {
                    out.push_str(&format!("{pad}{}\n", scalar(x)));
                }
            }
        }
        Json::Object(o) => {
            for (k, x) in o {
                if x.is_object() || x.is_array() {
                    out.push_str(&format!("{pad}{k}:\n"));
                    render(x, indent + 2, out);
                } else {
                    out.push_str(&format!("{pad}{k}: {}\n", scalar(x)));
                }
            }
        }
        x => out.push_str(&format!("{pad}{}\n", scalar(x))),
    }
}

fn scalar(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Entry point of `siprouter ctl`; returns the exit code.
pub fn main(args: &[String]) -> i32 {
    let mut target = default_target();
    let mut raw = false;
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "-s" => {
                i += 1;
                match args.get(i) {
                    Some(s) => target = s.clone(),
                    None => {
                        eprintln!("ctl: -s needs a socket path or URL");
                        return 2;
                    }
                }
            }
            "--json" => raw = true,
            "-h" | "--help" => {
                print!("{USAGE}");
                return 0;
            }
            _ => break,
        }
        i += 1;
    }
    let Some(method) = args.get(i) else {
        eprint!("{USAGE}");
        return 2;
    };
    let req = request(method, &args[i + 1..]);
    let resp = if target.starts_with("http://") {
        call_http(&target, &req)
    } else {
        call_unix(&target, &req)
    };
    let resp = match resp {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ctl: {e}");
            return 1;
        }
    };
    if let Some(err) = resp.get("error") {
        if raw {
            write_out(&format!("{resp}\n"));
        } else {
            let code = err.get("code").map(|c| c.to_string()).unwrap_or_default();
            let msg = err.get("message").map(scalar).unwrap_or_default();
            eprintln!("error: {code} - {msg}");
        }
        return 1;
    }
    let result = resp.get("result").cloned().unwrap_or(Json::Null);
    let out = if raw {
        serde_json::to_string_pretty(&result).unwrap_or_default() + "\n"
    } else {
        let mut out = String::new();
        render(&result, 0, &mut out);
        out
    };
    if write_out(&out) {
        0
    } else {
        1
    }
}

/// Writes the result to standard output; false when that fails. A reader
/// that went away (`siprouter ctl ... | head`) is not an error.
fn write_out(text: &str) -> bool {
    use std::io::Write;
    let mut so = std::io::stdout().lock();
    match so.write_all(text.as_bytes()).and_then(|()| so.flush()) {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => true,
        Err(e) => {
            eprintln!("ctl: {e}");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_params_and_render() {
        let r = request("ul.lookup", &["location".into(), "42".into(), "007".into()]);
        assert_eq!(r["params"], json!(["location", 42, "007"]));
        let mut out = String::new();
        render(
            &json!({"a": 1, "b": ["x", "y"], "c": {"d": "e"}}),
            0,
            &mut out,
        );
        assert_eq!(out, "a: 1\nb:\n  x\n  y\nc:\n  d: e\n");
    }
}
