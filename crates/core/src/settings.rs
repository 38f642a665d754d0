//! Core (global) parameters of the config: `listen`, `port`, `children`,
//! `debug`, `alias`, ... Each one siprouter supports does what Kamailio's
//! does; the ones that only tune Kamailio's own memory or process model are
//! accepted and documented as having no effect; an unknown one is an
//! error naming it.

use sr_cfg::{CfgError, Config, Global, GlobalValue, Span, TopItem};
use sr_sdk::Proto;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

/// One socket to listen on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenSpec {
    /// Transport.
    pub proto: Proto,
    /// Address and port.
    pub addr: SocketAddr,
    /// `advertise host[:port]`.
    pub advertise: Option<(String, Option<u16>)>,
    /// `name "x"`.
    pub name: Option<String>,
}

/// The core settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Sockets.
    pub listen: Vec<ListenSpec>,
    /// Default port (`port=`).
    pub port: u16,
    /// UDP workers per socket (`children`, `-n`).
    pub children: usize,
    /// TCP workers in total (`tcp_children`; default: `children`).
    pub tcp_children: Option<usize>,
    /// Log level (`debug`).
    pub debug: i32,
    /// Log to stderr (`log_stderror`, `-E`).
    pub log_stderror: bool,
    /// Prefix of every log line (`log_prefix`).
    pub log_prefix: Option<String>,
    /// Syslog facility (`log_facility`).
    pub log_facility: String,
    /// Syslog identity (`log_name`).
    pub log_name: Option<String>,
    /// Extra names that are "us" (`alias`).
    pub aliases: Vec<(String, Option<u16>)>,
    /// `advertised_address`.
    pub advertised_address: Option<String>,
    /// `advertised_port`.
    pub advertised_port: Option<u16>,
    /// `disable_tcp`.
    pub disable_tcp: bool,
    /// `force_rport`: every request is handled as if the script called
    /// `force_rport()` (replies to the source port, RFC 3581).
    pub force_rport: bool,
    /// `enable_tls`: listen on TLS where no `listen` names the sockets
    /// (with explicit `listen=tls:` lines, they decide).
    pub enable_tls: bool,
    /// `tls_port_no` (5061): the port of a TLS socket that names none.
    pub tls_port: u16,
    /// Idle TCP connections are closed after this many seconds.
    pub tcp_connection_lifetime: u64,
    /// Most TCP connections at once.
    pub tcp_max_connections: usize,
    /// Microseconds a busy UDP worker waits to gather a batch of datagrams
    /// (`udp_batch_wait`; 0: never wait, block whenever the queue is
    /// empty). See
    /// [`crate::udp_pace`].
    pub udp_batch_wait_us: u64,
    /// A UDP worker holds the datagrams it sends while it handles a batch
    /// and sends them together at its end (`udp_hold_sends`). See
    /// [`crate::udp_send_queue`].
    pub udp_hold_sends: bool,
    /// At low load every datagram of an address goes to one UDP worker,
    /// spread over all of them when the load grows (`udp_steer_low_load`).
    /// See [`crate::udp_steer`].
    pub udp_steer_low_load: bool,
    /// TCP connect timeout, seconds.
    pub tcp_connect_timeout: u64,
    /// `max_while_loops`.
    pub max_while_loops: u32,
    /// `server_id` (`$sid`).
    pub server_id: i64,
    /// `xavp_via_params`: the XAVP whose fields corex's
    /// `via_add_xavp_params(1)` adds as parameters of the local Via.
    pub xavp_via_params: String,
    /// `xavp_via_fields`: the XAVP whose `address` and `port` corex's
    /// `via_use_xavp_fields(1)` puts in the local Via.
    pub xavp_via_fields: String,
    /// Add a Server header to local replies (`server_signature`).
    pub server_signature: bool,
    /// The Server header (`server_header`).
    pub server_header: String,
    /// The User-Agent header of local requests (`user_agent_header`).
    pub user_agent_header: String,
    /// Largest message accepted.
    pub max_msg_size: usize,
    /// Module search path (`loadpath`/`mpath`, `-L`).
    pub mpath: Vec<String>,
    /// Custom `group.var = value` variables.
    pub cfg_vars: Vec<(String, String, GlobalValue)>,
    /// `tcp_accept_no_cl`: take SIP messages without Content-Length on
    /// TCP/TLS (with an empty body) instead of closing the connection.
    pub tcp_accept_no_cl: bool,
    /// `use_dst_blocklist`: keep a blocklist of failed destinations.
    pub use_dst_blocklist: bool,
    /// The blocklist's `dst_blocklist_expire`, `dst_blocklist_mem` and
    /// `dst_blocklist_*_imask`.
    pub dst_blocklist: sr_sdk::dst_blocklist::Config,
    /// Global parameters that were accepted but have no effect here.
    pub ignored: Vec<String>,
}

/// The version string.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

impl Default for Settings {
    fn default() -> Self {
        Settings {
            listen: Vec::new(),
            port: 5060,
            children: 8,
            tcp_children: None,
            debug: 0,
            log_stderror: false,
            log_prefix: None,
            xavp_via_params: String::new(),
            xavp_via_fields: String::new(),
            log_facility: "LOG_DAEMON".to_string(),
            log_name: None,
            aliases: Vec::new(),
            advertised_address: None,
            advertised_port: None,
            disable_tcp: false,
            force_rport: false,
            enable_tls: false,
            tls_port: 5061,
            tcp_connection_lifetime: 120,
            tcp_max_connections: 2048,
            udp_batch_wait_us: 1000,
            udp_hold_sends: true,
            udp_steer_low_load: true,
            tcp_connect_timeout: 10,
            max_while_loops: 100,
            server_id: 0,
            server_signature: true,
            server_header: format!("Server: siprouter ({VERSION})"),
            user_agent_header: format!("User-Agent: siprouter ({VERSION})"),
            max_msg_size: sip_msg::DEFAULT_MAX_SIZE,
            mpath: Vec::new(),
            cfg_vars: Vec::new(),
            tcp_accept_no_cl: false,
            use_dst_blocklist: false,
            dst_blocklist: sr_sdk::dst_blocklist::Config::default(),
            ignored: Vec::new(),
        }
    }
}

/// Globals accepted for compatibility that change nothing in siprouter
/// (memory sizing and debugging of Kamailio's allocators, process and DNS
/// tuning that the threaded design does not have).
const NO_EFFECT: &[&str] = &[
    "memdbg",
    "memlog",
    "mem_summary",
    "mem_safety",
    "mem_join",
    "corelog",
    "shm_mem_size",
    "shm",
    "pkg_mem_size",
    "fork",
    "dns",
    "rev_dns",
    "use_dns_cache",
    "use_dns_failover",
    "dns_try_ipv6",
    "dns_try_naptr",
    "dns_srv_lb",
    "dns_cache_init",
    "auto_aliases",
    "statistics",
    "sip_warning",
    "mhomed",
    "tcp_keepalive",
    "tcp_keepidle",
    "tcp_keepintvl",
    "tcp_keepcnt",
    "tcp_crlf_ping",
    "tcp_async",
    "tcp_reuse_port",
    "tcp_rd_buf_size",
    "tcp_accept_aliases",
    "tcp_accept_iplimit",
    "tcp_send_timeout",
    "tcp_conn_wq_max",
    "tcp_wq_max",
    "tcp_linger2",
    "tcp_delayed_ack",
    "tcp_syncnt",
    "tcp_defer_accept",
    "tcp_clone_rcvbuf",
    "tcp_max_fd_no",
    "tcp_source_ipv4",
    "tcp_source_ipv6",
    "open_files_limit",
    "maxbuffer",
    "max_recursive_level",
    "max_branches",
    "disable_core_dump",
    "latency_log",
    "latency_limit_action",
    "latency_limit_db",
    "async_workers",
    "async_usleep",
    "udp_mtu",
    "udp_mtu_try_proto",
    "udp4_raw",
    "enable_sctp",
    "sctp_children",
    "workdir",
    "rundir",
    "run_dir",
    "chroot",
    "user",
    "group",
    "uid",
    "gid",
    "socket_workers",
    "return_mode",
    "received_route_mode",
    "dst_blocklist_init",
    "dst_blocklist_gc_interval",
    "kemi.onsend_route_callback",
    "kemi.reply_route_callback",
    "kemi.event_route_callback",
    "onsend_route_reply",
    "log_color",
    "log_engine_type",
    "log_engine_data",
    "http_reply_parse",
    "tls_threads_mode",
    "tls_max_connections",
    "verbose_startup",
    "ip_free_bind",
    "tos",
    "pmtu_discovery",
];

fn val_int(v: &GlobalValue) -> Option<i64> {
    match v {
        GlobalValue::Int(i) => Some(*i),
        GlobalValue::Bool(b) => Some(*b as i64),
        GlobalValue::Str(s) | GlobalValue::Word(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn val_bool(v: &GlobalValue) -> Option<bool> {
    match v {
        GlobalValue::Bool(b) => Some(*b),
        GlobalValue::Int(i) => Some(*i != 0),
        GlobalValue::Word(s) | GlobalValue::Str(s) => match s.to_ascii_lowercase().as_str() {
            "yes" | "true" | "on" | "enable" | "1" => Some(true),
            "no" | "false" | "off" | "disable" | "0" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

fn val_str(v: &GlobalValue) -> Option<String> {
    match v {
        GlobalValue::Str(s) | GlobalValue::Word(s) => Some(s.clone()),
        GlobalValue::Int(i) => Some(i.to_string()),
        GlobalValue::Bool(b) => Some(if *b { "yes" } else { "no" }.to_string()),
        GlobalValue::List(l) => Some(l.iter().filter_map(val_str).collect::<Vec<_>>().join(" ")),
        GlobalValue::Listen(l) => Some(l.addrs.join(" ")),
        GlobalValue::Block(_) => None,
    }
}

/// Splits `[proto:]host[:port]` (IPv6 in brackets).
pub fn split_socket(s: &str) -> Result<(Option<Proto>, String, Option<u16>), String> {
    let s = s.trim().trim_matches('"');
    let (proto, rest) = match s.split_once(':') {
        Some((p, r)) if Proto::parse(p).is_some() && !p.is_empty() => (Proto::parse(p), r),
        _ => (None, s),
    };
    let (host, port) = if let Some(inner) = rest.strip_prefix('[') {
        let end = inner
            .find(']')
            .ok_or_else(|| format!("'{s}': unclosed '['"))?;
        let host = inner[..end].to_string();
        let after = &inner[end + 1..];
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p.parse().map_err(|_| format!("'{s}': bad port '{p}'"))?),
            None if after.is_empty() => None,
            None => return Err(format!("'{s}': junk after ']'")),
        };
        (host, port)
    } else if rest.matches(':').count() > 1 {
        (rest.to_string(), None)
    } else {
        match rest.split_once(':') {
            Some((h, p)) => (
                h.to_string(),
                Some(p.parse().map_err(|_| format!("'{s}': bad port '{p}'"))?),
            ),
            None => (rest.to_string(), None),
        }
    };
    if host.is_empty() {
        return Err(format!("'{s}': no address"));
    }
    Ok((proto, host, port))
}

fn resolve_ip(host: &str) -> Result<IpAddr, String> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(ip);
    }
    (host, 0)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve '{host}': {e}"))?
        .next()
        .map(|a| a.ip())
        .ok_or_else(|| format!("'{host}' has no address"))
}

/// A `listen` value waiting to be expanded: the item, addresses,
/// advertise, name.
type PendingListen<'c> = (&'c Global, Vec<String>, Option<String>, Option<String>);

struct Errs<'a> {
    cfg: &'a Config,
    out: Vec<CfgError>,
}

impl Errs<'_> {
    fn at(&mut self, span: Span, msg: String) {
        self.out.push(CfgError {
            file: self.cfg.file_path(span.file).to_path_buf(),
            line: span.line,
            col: span.col,
            message: msg,
        });
    }
}

impl Settings {
    /// Reads the globals of a config. `overrides` are command-line values
    /// applied afterwards by the caller.
    pub fn from_config(cfg: &Config) -> Result<Settings, Vec<CfgError>> {
        let mut s = Settings::default();
        let mut e = Errs {
            cfg,
            out: Vec::new(),
        };
        let mut listens: Vec<PendingListen<'_>> = Vec::new();
        for item in &cfg.items {
            match item {
                TopItem::Global(g) => s.apply(g, &mut e, &mut listens),
                TopItem::CfgVar(v) => {
                    s.cfg_vars
                        .push((v.group.clone(), v.name.clone(), v.value.clone()))
                }
                TopItem::LoadPath(p) => s.mpath.extend(
                    p.path
                        .split(':')
                        .filter(|x| !x.is_empty())
                        .map(str::to_string),
                ),
                _ => {}
            }
        }
        for (g, addrs, adv, name) in listens {
            for a in addrs {
                match s.listen_entries(&a, adv.as_deref(), name.clone()) {
                    Ok(v) => {
                        // Several protocol-less sockets on one address
                        // share its one TLS socket.
                        for l in v {
                            if !s
                                .listen
                                .iter()
                                .any(|x| x.proto == l.proto && x.addr == l.addr)
                            {
                                s.listen.push(l);
                            }
                        }
                    }
                    Err(m) => e.at(g.value_span, format!("listen: {m}")),
                }
            }
        }
        if e.out.is_empty() {
            Ok(s)
        } else {
            Err(e.out)
        }
    }

    fn apply<'c>(&mut self, g: &'c Global, e: &mut Errs<'_>, listens: &mut Vec<PendingListen<'c>>) {
        let v = &g.value;
        let bad = |e: &mut Errs<'_>, what: &str| {
            e.at(g.value_span, format!("{}: expected {what}", g.name));
        };
        match g.name.as_str() {
            "listen" | "socket" => match v {
                GlobalValue::Listen(l) => {
                    listens.push((g, l.addrs.clone(), l.advertise.clone(), l.name.clone()))
                }
                other => match val_str(other) {
                    Some(x) => listens.push((
                        g,
                        x.split_whitespace().map(str::to_string).collect(),
                        None,
                        None,
                    )),
                    None => bad(e, "a socket address"),
                },
            },
            "port" => match val_int(v).filter(|p| (1..=65535).contains(p)) {
                Some(p) => self.port = p as u16,
                None => bad(e, "a port number"),
            },
            "children" => match val_int(v).filter(|n| (1..=1024).contains(n)) {
                Some(n) => self.children = n as usize,
                None => bad(e, "a number of workers from 1 to 1024"),
            },
            "tcp_children" => match val_int(v).filter(|n| (1..=1024).contains(n)) {
                Some(n) => self.tcp_children = Some(n as usize),
                None => bad(e, "a number of workers from 1 to 1024"),
            },
            "debug" => match val_int(v) {
                Some(n) => self.debug = n as i32,
                None => bad(e, "a log level"),
            },
            "log_stderror" => match val_bool(v) {
                Some(b) => self.log_stderror = b,
                None => bad(e, "yes or no"),
            },
            "log_prefix" => self.log_prefix = val_str(v),
            "xavp_via_params" => self.xavp_via_params = val_str(v).unwrap_or_default(),
            "xavp_via_fields" => self.xavp_via_fields = val_str(v).unwrap_or_default(),
            "log_facility" => self.log_facility = val_str(v).unwrap_or_default(),
            "log_name" => self.log_name = val_str(v),
            "alias" => {
                for a in val_str(v).unwrap_or_default().split_whitespace() {
                    match split_socket(a) {
                        Ok((_, h, p)) => self.aliases.push((h, p)),
                        Err(m) => e.at(g.value_span, format!("alias: {m}")),
                    }
                }
            }
            "advertised_address" => self.advertised_address = val_str(v),
            "advertised_port" => match val_int(v).filter(|p| (1..=65535).contains(p)) {
                Some(p) => self.advertised_port = Some(p as u16),
                None => bad(e, "a port number"),
            },
            "disable_tcp" => match val_bool(v) {
                Some(b) => self.disable_tcp = b,
                None => bad(e, "yes or no"),
            },
            "force_rport" => match val_bool(v) {
                Some(b) => self.force_rport = b,
                None => bad(e, "yes or no"),
            },
            "tcp_connection_lifetime" => match val_int(v).filter(|n| *n >= 0) {
                Some(n) => self.tcp_connection_lifetime = n as u64,
                None => bad(e, "seconds"),
            },
            "udp_batch_wait" => match val_int(v).filter(|n| (0..=100_000).contains(n)) {
                Some(n) => self.udp_batch_wait_us = n as u64,
                None => bad(e, "microseconds from 0 to 100000"),
            },
            "tcp_max_connections" => match val_int(v).filter(|n| *n > 0) {
                Some(n) => self.tcp_max_connections = n as usize,
                None => bad(e, "a number"),
            },
            "tcp_accept_no_cl" => match val_bool(v) {
                Some(b) => self.tcp_accept_no_cl = b,
                None => bad(e, "yes or no"),
            },
            "use_dst_blocklist" => match val_bool(v) {
                Some(b) => self.use_dst_blocklist = b,
                None => bad(e, "yes or no"),
            },
            "dst_blocklist_expire" => match val_int(v).filter(|n| *n > 0) {
                Some(n) => self.dst_blocklist.expire = std::time::Duration::from_secs(n as u64),
                None => bad(e, "seconds"),
            },
            "dst_blocklist_mem" => match val_int(v).filter(|n| *n > 0) {
                Some(n) => self.dst_blocklist.max_bytes = n as usize * 1024,
                None => bad(e, "kilobytes"),
            },
            "dst_blocklist_udp_imask"
            | "dst_blocklist_tcp_imask"
            | "dst_blocklist_tls_imask"
            | "dst_blocklist_sctp_imask" => match val_int(v).filter(|n| (0..=255).contains(n)) {
                Some(n) => {
                    let proto = match &g.name[14..17] {
                        "udp" => Proto::Udp,
                        "tcp" => Proto::Tcp,
                        "tls" => Proto::Tls,
                        _ => Proto::Sctp,
                    };
                    self.dst_blocklist.imask[usize::from(proto.number())] = n as u8;
                }
                None => bad(e, "a mask from 0 to 255"),
            },
            "tcp_connect_timeout" => match val_int(v).filter(|n| *n > 0) {
                Some(n) => self.tcp_connect_timeout = n as u64,
                None => bad(e, "seconds"),
            },
            "server_id" => match val_int(v) {
                Some(n) => self.server_id = n,
                None => bad(e, "a number"),
            },
            "max_while_loops" => match val_int(v).filter(|n| *n > 0) {
                Some(n) => self.max_while_loops = n as u32,
                None => bad(e, "a number"),
            },
            "udp_hold_sends" => match val_bool(v) {
                Some(b) => self.udp_hold_sends = b,
                None => bad(e, "yes or no"),
            },
            "udp_steer_low_load" => match val_bool(v) {
                Some(b) => self.udp_steer_low_load = b,
                None => bad(e, "yes or no"),
            },
            "server_signature" => match val_bool(v) {
                Some(b) => self.server_signature = b,
                None => bad(e, "yes or no"),
            },
            "server_header" => self.server_header = val_str(v).unwrap_or_default(),
            "user_agent_header" => self.user_agent_header = val_str(v).unwrap_or_default(),
            "mpath" | "loadpath" => self.mpath.extend(
                val_str(v)
                    .unwrap_or_default()
                    .split(':')
                    .map(str::to_string),
            ),
            "enable_tls" => match val_bool(v) {
                Some(b) => self.enable_tls = b,
                None => bad(e, "yes or no"),
            },
            "tls_port_no" => match val_int(v).and_then(|p| u16::try_from(p).ok()) {
                Some(p) if p > 0 => self.tls_port = p,
                _ => bad(e, "a port number"),
            },
            "enable_sctp" if val_bool(v) == Some(true) => e.at(
                g.value_span,
                "enable_sctp: SCTP is not supported by siprouter".to_string(),
            ),
            name if NO_EFFECT.contains(&name) => self.ignored.push(name.to_string()),
            name => e.at(g.name_span, format!("unknown core parameter '{name}'")),
        }
    }

    /// Expands one `listen` address into sockets (a socket without a
    /// protocol listens on UDP and, unless disabled, TCP).
    pub fn listen_entries(
        &self,
        spec: &str,
        advertise: Option<&str>,
        name: Option<String>,
    ) -> Result<Vec<ListenSpec>, String> {
        let (proto, host, port) = split_socket(spec)?;
        let ip = resolve_ip(&host)?;
        let default_port = if proto == Some(Proto::Tls) {
            self.tls_port
        } else {
            self.port
        };
        let addr = SocketAddr::new(ip, port.unwrap_or(default_port));
        let adv = match advertise {
            Some(a) => {
                let (_, h, p) = split_socket(a)?;
                Some((h, p))
            }
            None => None,
        };
        let protos = match proto {
            Some(Proto::Ws) | Some(Proto::Wss) | Some(Proto::Sctp) => {
                return Err(format!(
                    "'{spec}': {} sockets are not supported by this siprouter build yet",
                    proto.map_or("", |p| p.as_str())
                ))
            }
            Some(p) => vec![p],
            None if self.disable_tcp => vec![Proto::Udp],
            None => vec![Proto::Udp, Proto::Tcp],
        };
        let mut out: Vec<ListenSpec> = protos
            .into_iter()
            .map(|p| ListenSpec {
                proto: p,
                addr,
                advertise: adv.clone(),
                name: name.clone(),
            })
            .collect();
        // As Kamailio: a socket without a protocol also listens on TLS
        // when TLS is enabled, on `tls_port_no`.
        if proto.is_none() && self.enable_tls {
            out.push(ListenSpec {
                proto: Proto::Tls,
                addr: SocketAddr::new(ip, self.tls_port),
                advertise: adv,
                name,
            });
        }
        Ok(out)
    }

    /// Workers for TCP.
    pub fn tcp_workers(&self) -> usize {
        self.tcp_children.unwrap_or(self.children)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockets() {
        assert_eq!(
            split_socket("udp:127.0.0.1:5060").unwrap(),
            (Some(Proto::Udp), "127.0.0.1".to_string(), Some(5060))
        );
        assert_eq!(
            split_socket("tcp:[::1]:5070").unwrap(),
            (Some(Proto::Tcp), "::1".to_string(), Some(5070))
        );
        assert_eq!(
            split_socket("10.0.0.1").unwrap(),
            (None, "10.0.0.1".to_string(), None)
        );
        assert!(split_socket("udp:1.2.3.4:x").is_err());
    }

    #[test]
    fn tls_sockets() {
        let cfg = sr_cfg::parse_str(
            "t.cfg",
            "listen=127.0.0.1:5070\nlisten=127.0.0.1:5080\nlisten=tls:127.0.0.1\nenable_tls=yes\ntls_port_no=5071\n",
            &Default::default(),
        )
        .unwrap();
        let s = Settings::from_config(&cfg).unwrap();
        let tls: Vec<_> = s.listen.iter().filter(|l| l.proto == Proto::Tls).collect();
        // The explicit one and the one the protocol-less sockets share,
        // on tls_port_no (set after the listen lines): one socket.
        assert_eq!(tls.len(), 1, "{:?}", s.listen);
        assert_eq!(tls[0].addr.port(), 5071);
        assert_eq!(s.listen.len(), 5);
        let cfg = sr_cfg::parse_str("t.cfg", "listen=127.0.0.1\n", &Default::default()).unwrap();
        let s = Settings::from_config(&cfg).unwrap();
        assert!(s.listen.iter().all(|l| l.proto != Proto::Tls));
        let cfg = sr_cfg::parse_str("t.cfg", "tls_port_no=0\n", &Default::default()).unwrap();
        assert!(Settings::from_config(&cfg).is_err());
    }

    #[test]
    fn globals_from_config() {
        let cfg = sr_cfg::parse_str(
            "t.cfg",
            "children=3\nport=5099\nlisten=udp:127.0.0.1:5070\nlisten=127.0.0.1\ndebug=2\nmemdbg=5\nalias=example.com:5060\n",
            &Default::default(),
        )
        .unwrap();
        let s = Settings::from_config(&cfg).unwrap();
        assert_eq!(s.children, 3);
        assert_eq!(s.listen.len(), 3);
        assert_eq!(s.listen[1].addr.port(), 5099);
        assert_eq!(s.aliases, vec![("example.com".to_string(), Some(5060))]);
        assert_eq!(s.ignored, vec!["memdbg"]);
        let cfg = sr_cfg::parse_str("t.cfg", "childrn=3\n", &Default::default()).unwrap();
        let errs = Settings::from_config(&cfg).unwrap_err();
        assert_eq!(
            errs[0].to_string(),
            "t.cfg:1:1: unknown core parameter 'childrn'"
        );
    }

    /// A yes/no core setting that is on by default: off with `no` or `0`,
    /// on with `yes` or `on`, and any other word reported at its column.
    fn on_unless_turned_off(name: &str, get: fn(&Settings) -> bool) {
        let parse = |text: &str| {
            let cfg = sr_cfg::parse_str("t.cfg", text, &Default::default()).unwrap();
            Settings::from_config(&cfg)
        };
        assert!(get(&parse("debug=2\n").unwrap()));
        for (value, want) in [("no", false), ("0", false), ("yes", true), ("on", true)] {
            let s = parse(&format!("{name}={value}\n")).unwrap();
            assert_eq!(get(&s), want, "{name}={value}");
        }
        let errs = parse(&format!("{name}=\"maybe\"\n")).unwrap_err();
        assert_eq!(
            errs[0].to_string(),
            format!("t.cfg:1:{}: {name}: expected yes or no", name.len() + 2)
        );
    }

    #[test]
    fn udp_hold_sends_is_on_unless_turned_off() {
        on_unless_turned_off("udp_hold_sends", |s| s.udp_hold_sends);
    }

    #[test]
    fn udp_steer_low_load_is_on_unless_turned_off() {
        on_unless_turned_off("udp_steer_low_load", |s| s.udp_steer_low_load);
    }
}
