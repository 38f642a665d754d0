//! # dmq: Distributed Message Queue between SIP servers
//!
//! Kamailio's `dmq` module, speaking its protocol on the wire (so that a
//! siprouter node and Kamailio nodes form one cluster): `KDMQ` requests
//! whose Request-URI user is the channel (`notification_peer` for the node
//! list, or any name the script or a module uses), sent as non-INVITE
//! client transactions from `server_address`. At start the node sends its
//! list to `notification_address` (Max-Forwards 2); a node receiving a
//! list merges it, answers 200 with its own and, when it learned
//! something, passes it on to the active nodes (Max-Forwards one less).
//! Every `ping_interval` seconds each node sends its list to every other
//! node; a node that does not answer is disabled, then removed (a
//! `notification_address` is set back to pending instead).
//!
//! Script: `dmq_handle_message([continue])` (and `dmq_process_message`)
//! for received KDMQ requests, `dmq_send_message(channel, node, body,
//! content_type)`, `dmq_bcast_message(channel, body, content_type)`,
//! `dmq_t_replicate([skip_loop_test])` (the request relayed statefully to
//! every active node, one branch each) and `dmq_is_from_node()`. RPC:
//! `dmq.list_nodes`, `dmq.remove`. See `docs/modules/dmq.md`.
#![forbid(unsafe_code)]

pub mod node;
mod send;

use node::{NodeList, NodeUri, Status};
use sr_mod_tm::local::{Ended, LocalRequests, Taken};
use sr_mod_tm::{TmApi, TM_API};
use sr_sdk::prelude::*;
use sr_sdk::RpcError;
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLock};
use std::time::Duration;

/// The name dmq publishes [`DmqApi`] under (Kamailio's `dmq_load_api`).
pub const DMQ_API: &str = "dmq";

/// What a module's channel answers a KDMQ request: `code` 0 sends no
/// reply.
#[derive(Debug, Clone, Default)]
pub struct PeerReply {
    /// Status code.
    pub code: u16,
    /// Reason phrase.
    pub reason: String,
    /// Content-Type and body, if any.
    pub body: Option<(String, String)>,
}

/// A module's channel handler: the request and the node it came from (by
/// its From URI's host and port, when that is a listed node).
pub type PeerFn = Arc<dyn Fn(&dyn Core, &SipMsg, Option<&NodeUri>) -> PeerReply + Send + Sync>;

/// Run once, when this node first exchanges node lists with another (a
/// list received, or a 200 to ours): dmq_usrloc asks for the contacts
/// there.
pub type InitFn = Arc<dyn Fn(&dyn Core) + Send + Sync>;

/// dmq's API for other modules.
#[derive(Clone)]
pub struct DmqApi {
    d: Arc<Dmq>,
}

impl DmqApi {
    /// Registers a channel served by a module (`register_dmq_peer`), and
    /// what to run once the node has met another.
    pub fn register_peer(&self, channel: &str, handler: PeerFn, on_init: Option<InitFn>) {
        self.d
            .peers
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(channel.to_string(), handler);
        if let Some(f) = on_init {
            lock(&self.d.init_cbs).push(f);
        }
    }

    /// Sends `body` on `channel` to every active node but this one.
    pub fn bcast(&self, core: &dyn Core, channel: &str, body: &str, content_type: &str) {
        for t in self.d.active_nodes() {
            self.d.send(core, &t, channel, body, content_type, 1);
        }
    }

    /// Sends `body` on `channel` to one node; false when it is not listed.
    pub fn send_to(
        &self,
        core: &dyn Core,
        node: &NodeUri,
        channel: &str,
        body: &str,
        content_type: &str,
    ) -> bool {
        let target = {
            let l = lock(&self.d.list);
            l.find(&node.key()).map(|i| l.nodes[i].uri.clone())
        };
        match target {
            Some(t) => {
                self.d.send(core, &t, channel, body, content_type, 1);
                true
            }
            None => false,
        }
    }
}

/// The module's state.
pub struct Dmq {
    server_address: Arc<RwLock<String>>,
    server_socket: Arc<RwLock<String>>,
    notification_addresses: Mutex<Vec<String>>,
    channel: Arc<RwLock<String>>,
    multi_notify: Arc<AtomicI64>,
    num_workers: Arc<AtomicI64>,
    worker_usleep: Arc<AtomicI64>,
    ping_interval: Arc<AtomicI64>,
    /// This node (from `server_address`).
    me: OnceLock<NodeUri>,
    /// The socket KDMQ requests and replicated requests leave from:
    /// `proto:ip:port` and the address.
    socket: OnceLock<Option<(String, SocketAddr)>>,
    /// The notification addresses, parsed.
    notify: OnceLock<Vec<NodeUri>>,
    list: Mutex<NodeList>,
    /// Channels the script sent on (answered 202).
    script_channels: Mutex<HashSet<String>>,
    sent: LocalRequests<String>,
    tm: OnceLock<Arc<TmApi>>,
    joined: AtomicBool,
    /// Channels served by modules.
    peers: RwLock<HashMap<String, PeerFn>>,
    init_cbs: Mutex<Vec<InitFn>>,
    init_done: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A node's address: its host when it is one, else resolved.
fn resolve(u: &NodeUri) -> Option<IpAddr> {
    let h = u.host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = h.parse() {
        return Some(ip);
    }
    (h, u.port_no())
        .to_socket_addrs()
        .ok()?
        .next()
        .map(|a| a.ip())
}

/// The addresses of the nodes a received list names, found before the
/// list is locked: literal addresses as they are, host names looked up (at
/// most 8 per list; the others are skipped).
fn addresses_of(body: &str) -> HashMap<String, IpAddr> {
    let mut out = HashMap::new();
    let mut lookups = 0;
    for line in body.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let Ok(u) = NodeUri::parse(line) else {
            continue;
        };
        let h = u.host.trim_start_matches('[').trim_end_matches(']');
        let ip = match h.parse::<IpAddr>() {
            Ok(ip) => Some(ip),
            Err(_) if lookups < 8 => {
                lookups += 1;
                resolve(&u)
            }
            Err(_) => None,
        };
        if let Some(ip) = ip {
            out.insert(u.key(), ip);
        }
    }
    out
}

impl Dmq {
    fn channel(&self) -> String {
        params::get_str(&self.channel)
    }

    /// Whether `key` (`host:port`) is one of the notification addresses.
    fn is_notification_address(&self, key: &str) -> bool {
        self.notify
            .get()
            .is_some_and(|n| n.iter().any(|u| u.key() == key))
    }

    /// Sends the node list to the notification addresses (each added as
    /// pending when not listed) and every other node, Max-Forwards 2.
    fn join(&self, core: &dyn Core) {
        {
            let mut l = lock(&self.list);
            for u in self.notify.get().into_iter().flatten() {
                if l.find(&u.key()).is_some() {
                    continue;
                }
                match resolve(u) {
                    Some(ip) => l.add(u.clone(), ip, Status::Pending, false),
                    None => lm_err!("dmq: cannot resolve notification address {}", u.orig),
                }
            }
        }
        self.broadcast_list(core, 2, true);
    }

    /// Sends our list on the notification channel to the other nodes
    /// (only the active ones unless `all`).
    fn broadcast_list(&self, core: &dyn Core, max_forwards: u32, all: bool) {
        let (body, targets) = {
            let l = lock(&self.list);
            let t: Vec<NodeUri> = l
                .nodes
                .iter()
                .filter(|n| !n.local && (all || n.status == Status::Active))
                .map(|n| n.uri.clone())
                .collect();
            (l.body(), t)
        };
        let ch = self.channel();
        for t in targets {
            self.send(core, &t, &ch, &body, "text/plain", max_forwards);
        }
    }

    /// The active nodes but this one.
    fn active_nodes(&self) -> Vec<NodeUri> {
        lock(&self.list)
            .nodes
            .iter()
            .filter(|n| !n.local && n.status == Status::Active)
            .map(|n| n.uri.clone())
            .collect()
    }

    /// Runs the modules' start-up callbacks, the first time only.
    fn first_contact(&self, core: &dyn Core) {
        if self.init_done.swap(true, Ordering::Relaxed) {
            return;
        }
        let cbs = lock(&self.init_cbs).clone();
        for f in cbs {
            f(core);
        }
    }

    /// The ping timer: the list to every other node, or a new join when
    /// we know of no other node.
    fn ping(&self, core: &dyn Core) {
        let alone = lock(&self.list).nodes.iter().all(|n| n.local);
        if alone {
            if self.notify.get().is_some_and(|n| !n.is_empty()) {
                // Met again later, the modules sync again.
                self.init_done.store(false, Ordering::Relaxed);
                self.join(core);
            } else {
                lm_dbg!("dmq: no notification address");
            }
            return;
        }
        self.broadcast_list(core, 1, true);
    }

    /// The outcome of a request we sent (its tag is the node's key).
    fn ended(&self, core: &dyn Core, e: Ended<String>, body: &str) {
        let key = e.tag;
        let mut l = lock(&self.list);
        match e.code {
            200 => {
                drop(l);
                let addrs = addresses_of(body);
                let mut l = lock(&self.list);
                if let Some(i) = l.find(&key) {
                    l.nodes[i].status = Status::Active;
                }
                let m = l.merge(body, |u| addrs.get(&u.key()).copied());
                for b in m.bad {
                    lm_err!("dmq: node list from {key}: {b}");
                }
                drop(l);
                self.first_contact(core);
            }
            408 => {
                let Some(i) = l.find(&key) else { return };
                if self.is_notification_address(&key) {
                    lm_warn!("dmq: not deleting notification peer {key}");
                    l.nodes[i].status = Status::Pending;
                } else if l.nodes[i].status == Status::Disabled {
                    lm_warn!("dmq: deleting server node {key} because of failed request");
                    l.nodes.remove(i);
                } else {
                    l.nodes[i].status = Status::Disabled;
                }
            }
            _ => {}
        }
    }

    /// `dmq_handle_message`: a received KDMQ request, by its Request-URI
    /// user (the channel).
    fn handle(&self, ctx: &mut Ctx<'_>, cont: bool) -> i32 {
        if params::get_int(&self.num_workers) <= 0 {
            lm_err!("dmq: no workers spawned");
            return -1;
        }
        let Some(user) = ctx
            .msg
            .ruri_parsed()
            .ok()
            .and_then(|u| u.user.map(str::to_string))
        else {
            return -1;
        };
        let rc = i32::from(cont);
        let peer = self
            .peers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&user)
            .cloned();
        if user == self.channel() {
            let m = ctx.msg.msg();
            let body = String::from_utf8_lossy(m.body()).into_owned();
            let mf = m.max_forwards().ok().flatten().unwrap_or(0);
            let addrs = addresses_of(&body);
            let (merged, list) = {
                let mut l = lock(&self.list);
                let merged = l.merge(&body, |u| addrs.get(&u.key()).copied());
                (merged, l.body())
            };
            for b in &merged.bad {
                lm_err!("dmq: node list from {}: {b}", ctx.msg.rcv.src);
            }
            reply_with_body(ctx, 200, "OK", "text/plain", &list);
            if merged.changed > 0 && mf > 1 {
                self.broadcast_list(ctx.core, mf - 1, false);
            }
            self.first_contact(ctx.core);
        } else if let Some(peer) = peer {
            let from = ctx.msg.msg().from().ok().and_then(|f| {
                let u = NodeUri::parse(f.uri.raw).ok()?;
                let l = lock(&self.list);
                l.find(&u.key()).map(|i| l.nodes[i].uri.clone())
            });
            let r = peer(ctx.core, ctx.msg, from.as_ref());
            match (r.code, r.body) {
                (0, _) => {}
                (code, Some((ct, body))) => reply_with_body(ctx, code, &r.reason, &ct, &body),
                (code, None) => {
                    let _ = ctx.core.send_reply(ctx.msg, code, &r.reason);
                }
            }
        } else if lock(&self.script_channels).contains(&user) {
            let _ = ctx.core.send_reply(ctx.msg, 202, "Accepted DMQ");
        } else {
            let _ = ctx.core.send_reply(ctx.msg, 404, "User Not Found");
        }
        rc
    }

    /// Whether a request came from another node's address (the port is not
    /// compared, as in Kamailio).
    fn is_from_node(&self, msg: &SipMsg) -> bool {
        let src = msg.rcv.src.ip();
        lock(&self.list)
            .nodes
            .iter()
            .any(|n| !n.local && n.ip == src)
    }

    /// `dmq_send_message`: 1, -1 when `node` is not in the list.
    fn send_message(&self, core: &dyn Core, ch: &str, node: &str, body: &str, ct: &str) -> i32 {
        lock(&self.script_channels).insert(ch.to_string());
        let Ok(u) = NodeUri::parse(node) else {
            lm_err!("dmq: invalid node uri '{node}'");
            return -1;
        };
        let target = {
            let l = lock(&self.list);
            l.find(&u.key()).map(|i| l.nodes[i].uri.clone())
        };
        let Some(target) = target else {
            lm_err!("dmq: cannot find dmq_node: {node}");
            return -1;
        };
        self.send(core, &target, ch, body, ct, 1);
        1
    }

    /// `dmq_bcast_message`: to every active node but this one.
    fn bcast_message(&self, core: &dyn Core, ch: &str, body: &str, ct: &str) -> i32 {
        lock(&self.script_channels).insert(ch.to_string());
        for t in self.active_nodes() {
            self.send(core, &t, ch, body, ct, 1);
        }
        1
    }

    /// `dmq_t_replicate`: the request relayed statefully to every active
    /// node (one transaction, a branch each), the Request-URI unchanged.
    /// 0 (the script ends) when done, -1 when it came from a node (unless
    /// `skip_loop_test`) or tm failed.
    fn t_replicate(&self, ctx: &mut Ctx<'_>, skip_loop_test: bool) -> i32 {
        if !skip_loop_test && self.is_from_node(ctx.msg) {
            lm_dbg!("dmq: message is from another node - skipping replication");
            return -1;
        }
        let Some(tm) = self.tm.get() else { return -1 };
        let targets: Vec<String> = lock(&self.list)
            .nodes
            .iter()
            .filter(|n| !n.local && n.status == Status::Active)
            .map(|n| n.uri.plain_uri())
            .collect();
        let socket = self.socket.get().cloned().flatten().map(|s| s.0);
        if let Some(s) = &socket {
            ctx.msg.force_send_socket = Some(s.clone());
        }
        let Some((first, rest)) = targets.split_first() else {
            return 0;
        };
        let ruri = ctx.msg.ruri().to_string();
        let saved_du = ctx.msg.dst_uri.replace(first.clone());
        let saved_branches = std::mem::replace(
            &mut ctx.msg.branches,
            rest.iter()
                .map(|t| Branch {
                    uri: ruri.clone(),
                    dst_uri: Some(t.clone()),
                    socket: socket.clone(),
                    ..Branch::default()
                })
                .collect(),
        );
        let rc = tm.replicate(ctx);
        ctx.msg.dst_uri = saved_du;
        ctx.msg.branches = saved_branches;
        if rc < 0 {
            lm_err!("dmq: error calling t_replicate");
            return -1;
        }
        0
    }

    fn init(self: &Arc<Self>, core: &dyn Core) -> Result<(), String> {
        let addr = params::get_str(&self.server_address);
        let me = NodeUri::parse(&addr).map_err(|_| "dmq: server address invalid".to_string())?;
        let proto = me.proto.clone().unwrap_or_else(|| "udp".into());
        let ip = resolve(&me).ok_or("dmq: server address invalid (cannot resolve its host)")?;
        let (sock_text, sock_addr) = match params::get_str(&self.server_socket) {
            s if s.is_empty() => (
                format!("{proto}:{}:{}", me.host, me.port_no()),
                SocketAddr::new(ip, me.port_no()),
            ),
            s => (s.clone(), parse_socket(&s)?),
        };
        let host = sock_addr.ip().to_string();
        if !core.is_myself(&host, Some(sock_addr.port())) {
            return Err(format!(
                "dmq: server_uri is not a socket the proxy is listening on: {sock_text}"
            ));
        }
        let _ = self.socket.set(Some((sock_text, sock_addr)));
        let mut notify = Vec::new();
        let addrs = lock(&self.notification_addresses).clone();
        for (i, a) in addrs.iter().enumerate() {
            let u = NodeUri::parse(a)
                .map_err(|e| format!("dmq: could not parse notification address {e}"))?;
            if i == 0 && params::get_int(&self.multi_notify) != 0 {
                // Every address the first one's host resolves to.
                let h = u.host.trim_start_matches('[').trim_end_matches(']');
                let all: Vec<SocketAddr> = (h, u.port_no())
                    .to_socket_addrs()
                    .map(|x| x.take(30).collect())
                    .unwrap_or_default();
                for sa in all {
                    let host = match sa.ip() {
                        IpAddr::V6(v6) => format!("[{v6}]"),
                        IpAddr::V4(v4) => v4.to_string(),
                    };
                    if let Ok(x) = NodeUri::parse(&format!("sip:{host}:{}", sa.port())) {
                        notify.push(x);
                    }
                }
                break;
            }
            notify.push(u);
        }
        let _ = self.notify.set(notify);
        lock(&self.list).add(me.clone(), ip, Status::Active, true);
        let _ = self.me.set(me);
        let tm =
            bind::<TmApi>(core, TM_API).ok_or("dmq needs the tm module (load tm before dmq)")?;
        let _ = self.tm.set(tm);
        core.register_api(DMQ_API, Arc::new(DmqApi { d: self.clone() }));
        let handle = core.handle().ok_or("dmq: no core handle for its timers")?;
        let me2 = self.clone();
        let h = handle.clone();
        core.add_timer(
            "dmq-requests",
            Duration::from_millis(100),
            Arc::new(move || {
                let Some(core) = h.upgrade() else { return };
                if !me2.joined.swap(true, Ordering::Relaxed) {
                    me2.join(&*core);
                }
                for e in me2.sent.tick(&*core) {
                    me2.ended(&*core, e, "");
                }
            }),
        );
        let me3 = self.clone();
        let every = params::get_int(&self.ping_interval).max(5) as u64;
        core.add_timer(
            "dmq-ping",
            Duration::from_secs(every),
            Arc::new(move || {
                if let Some(core) = handle.upgrade() {
                    me3.ping(&*core);
                }
            }),
        );
        Ok(())
    }
}

/// `server_socket`: `[proto:]ip:port` (an IPv6 address in brackets).
fn parse_socket(s: &str) -> Result<SocketAddr, String> {
    let bad = || format!("dmq: server_socket '{s}': give proto:ip:port");
    let rest = match s.split_once(':') {
        Some((p, r))
            if ["udp", "tcp", "tls", "sctp"].contains(&p.to_ascii_lowercase().as_str()) =>
        {
            r
        }
        _ => s,
    };
    let (h, p) = rest.rsplit_once(':').ok_or_else(bad)?;
    let ip: IpAddr = h
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .map_err(|_| bad())?;
    Ok(SocketAddr::new(ip, p.parse().map_err(|_| bad())?))
}

/// A stateless reply with a body (as `set_reply_body` then `sl_send_reply`).
fn reply_with_body(ctx: &mut Ctx<'_>, code: u16, reason: &str, ct: &str, body: &str) {
    let saved_body = ctx.msg.reply_body.replace(body.as_bytes().to_vec());
    ctx.with_reply_headers(&["Content-Type: ", ct, "\r\n"], |ctx| {
        let _ = ctx.core.send_reply(ctx.msg, code, reason);
    });
    ctx.msg.reply_body = saved_body;
}

fn rpc_list(d: &Dmq) -> Json {
    let out: Vec<Json> = lock(&d.list)
        .nodes
        .iter()
        .map(|n| {
            json!({
                "host": n.uri.host,
                "port": n.uri.port,
                "proto": n.uri.proto.clone().unwrap_or_else(|| "*".into()),
                "resolved_ip": n.ip.to_string(),
                "status": n.status.as_str(),
                "last_notification": 0,
                "local": i32::from(n.local),
            })
        })
        .collect();
    Json::Array(out)
}

fn rpc_remove(d: &Dmq, p: &[Json]) -> Result<Json, RpcError> {
    let Some(uri) = p.first().and_then(|v| v.as_str()) else {
        return Err(RpcError::new(500, "Invalid Parameters"));
    };
    let u = NodeUri::parse(uri).map_err(|_| RpcError::new(500, "Failure"))?;
    lock(&d.list)
        .nodes
        .retain(|n| n.local || n.uri.key() != u.key());
    Ok(json!("Ok. DMQ node removed."))
}

/// The `dmq` module.
pub fn module() -> ModuleDef {
    let d = Arc::new(Dmq {
        server_address: params::str_cell(""),
        server_socket: params::str_cell(""),
        notification_addresses: Mutex::new(Vec::new()),
        channel: params::str_cell("notification_peer"),
        multi_notify: params::int_cell(0),
        num_workers: params::int_cell(2),
        worker_usleep: params::int_cell(0),
        ping_interval: params::int_cell(60),
        me: OnceLock::new(),
        socket: OnceLock::new(),
        notify: OnceLock::new(),
        list: Mutex::new(NodeList::default()),
        script_channels: Mutex::new(HashSet::new()),
        sent: LocalRequests::new("dmq"),
        tm: OnceLock::new(),
        joined: AtomicBool::new(false),
        peers: RwLock::new(HashMap::new()),
        init_cbs: Mutex::new(Vec::new()),
        init_done: AtomicBool::new(false),
    });
    let spve = Some(fixup::f(fixup::spve));
    let igp = Some(fixup::f(fixup::igp));
    let dn = d.clone();
    let (h1, h2, h3, h4) = (d.clone(), d.clone(), d.clone(), d.clone());
    let (s, b, r1, r2, f) = (d.clone(), d.clone(), d.clone(), d.clone(), d.clone());
    let (resp, ini, l, rm) = (d.clone(), d.clone(), d.clone(), d.clone());
    ModuleDef::new("dmq")
        .param(
            "server_address",
            ParamKind::Str,
            params::string(&d.server_address),
        )
        .param(
            "server_socket",
            ParamKind::Str,
            params::string(&d.server_socket),
        )
        .param("notification_address", ParamKind::Str, move |v| {
            let s = match v {
                ParamValue::Str(s) => s,
                ParamValue::Int(i) => i.to_string(),
            };
            NodeUri::parse(&s).map_err(|e| format!("could not parse notification address {e}"))?;
            lock(&dn.notification_addresses).push(s);
            Ok(())
        })
        .param(
            "notification_channel",
            ParamKind::Str,
            params::string(&d.channel),
        )
        .param("multi_notify", ParamKind::Int, params::int(&d.multi_notify))
        .param("num_workers", ParamKind::Int, params::int(&d.num_workers))
        .param(
            "worker_usleep",
            ParamKind::Int,
            params::int(&d.worker_usleep),
        )
        .param(
            "ping_interval",
            ParamKind::Int,
            params::int(&d.ping_interval),
        )
        .cmd(
            "dmq_handle_message",
            0,
            RouteType::REQUEST,
            None,
            move |ctx, _| h1.handle(ctx, false),
        )
        .cmd(
            "dmq_handle_message",
            1,
            RouteType::REQUEST,
            igp.clone(),
            move |ctx, p| {
                let c = p[0].int(ctx) != 0;
                h2.handle(ctx, c)
            },
        )
        .cmd(
            "dmq_process_message",
            0,
            RouteType::REQUEST,
            None,
            move |ctx, _| h3.handle(ctx, false),
        )
        .cmd(
            "dmq_process_message",
            1,
            RouteType::REQUEST,
            igp.clone(),
            move |ctx, p| {
                let c = p[0].int(ctx) != 0;
                h4.handle(ctx, c)
            },
        )
        .cmd(
            "dmq_send_message",
            4,
            RouteType::ANY,
            spve.clone(),
            move |ctx, p| {
                let ch = p[0].str(ctx).into_owned();
                let node = p[1].str(ctx).into_owned();
                let body = p[2].str(ctx).into_owned();
                let ct = p[3].str(ctx).into_owned();
                s.send_message(ctx.core, &ch, &node, &body, &ct)
            },
        )
        .cmd(
            "dmq_bcast_message",
            3,
            RouteType::ANY,
            spve,
            move |ctx, p| {
                let ch = p[0].str(ctx).into_owned();
                let body = p[1].str(ctx).into_owned();
                let ct = p[2].str(ctx).into_owned();
                b.bcast_message(ctx.core, &ch, &body, &ct)
            },
        )
        .cmd(
            "dmq_t_replicate",
            0,
            RouteType::REQUEST,
            None,
            move |ctx, _| r1.t_replicate(ctx, false),
        )
        .cmd(
            "dmq_t_replicate",
            1,
            RouteType::REQUEST,
            igp,
            move |ctx, p| {
                let skip = p[0].int(ctx) != 0;
                r2.t_replicate(ctx, skip)
            },
        )
        .cmd(
            "dmq_is_from_node",
            0,
            RouteType::REQUEST,
            None,
            move |ctx, _| {
                if f.is_from_node(ctx.msg) {
                    1
                } else {
                    -1
                }
            },
        )
        .on_response(move |ctx| match resp.sent.take_reply(ctx.msg) {
            Taken::NotOurs => false,
            Taken::Absorbed => true,
            Taken::Ended(e) => {
                let body = String::from_utf8_lossy(ctx.msg.msg().body()).into_owned();
                resp.ended(ctx.core, e, &body);
                true
            }
        })
        .on_init(move |core| ini.init(core))
        .rpc("dmq.list_nodes", "Print all nodes", move |_| {
            Ok(rpc_list(&l))
        })
        .rpc("dmq.remove", "Remove a DMQ node", move |p| {
            rpc_remove(&rm, p)
        })
}
