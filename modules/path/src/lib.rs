//! # path: Path headers for edge proxies (RFC 3327)
//!
//! Kamailio's `path` module. `add_path()` puts a `Path` header with this
//! proxy's address in a REGISTER before it goes on to the registrar, so
//! that requests for the registered contact come back through this
//! proxy; `add_path_received()` adds the address the REGISTER came from
//! (`;received=sip:ip:port`), and with `use_received` a request routed
//! back through our Path entry goes to that address (rr's loose_route
//! callback sets `$du`). With the `outbound` module loaded, `add_path()`
//! on a REGISTER that uses outbound (RFC 5626) writes a flow token as the
//! user part and `;ob` (see sr_mod_outbound).
#![forbid(unsafe_code)]

pub mod received;

use received::Format;
use sr_mod_outbound::ObBinding;
use sr_mod_rr::{RrApi, RR_API};
use sr_sdk::msg::SendInfo;
use sr_sdk::prelude::*;
use sr_sdk::sip_msg::edit::Edits;
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, RwLock};

/// Stands for our address in an inserted Path header until the request
/// is sent and the socket it leaves from is known (Kamailio's
/// `SUBST_SND_ALL` lump).
const ADDR_MARK: &str = "\u{1}path-addr\u{1}";

/// What follows `;lr` in our Path entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mark {
    None,
    /// `;received=` the address the REGISTER came from.
    Received,
    /// `;ob`: this proxy is the first hop of an outbound flow (RFC 5626).
    Ob,
}

/// The parameters.
struct Path {
    use_received: Arc<AtomicI64>,
    received_name: Arc<RwLock<String>>,
    received_format: Arc<AtomicI64>,
    enable_r2: Arc<AtomicI64>,
    sockname_mode: Arc<AtomicI64>,
    outbound: ObBinding,
}

impl Path {
    fn format(&self) -> Format {
        Format::from_param(params::get_int(&self.received_format))
    }

    /// Kamailio's `prepend_path`: `Path: <sip:[user@]ADDR;lr[;received=..][;params]>`
    /// before the first Path header, else after the last header.
    fn prepend(&self, ctx: &mut Ctx<'_>, user: &str, mark: Mark, extra: &str) -> i32 {
        if !ctx.msg.is_request() {
            return -1;
        }
        let mut line = String::with_capacity(64 + user.len() + extra.len());
        line.push_str("Path: <sip:");
        if !user.is_empty() {
            line.push_str(user);
            line.push('@');
        }
        line.push_str(ADDR_MARK);
        line.push_str(";lr");
        if mark == Mark::Ob {
            line.push_str(";ob");
        }
        if mark == Mark::Received {
            let name = params::get_str(&self.received_name);
            line.push(';');
            line.push_str(&name);
            line.push('=');
            line.push_str(&self.format().encode(&ctx.msg.rcv));
        }
        if !extra.is_empty() {
            line.push(';');
            line.push_str(extra);
        }
        line.push_str(">\r\n");
        // One fix-up fills every Path header of ours.
        let first = !ctx
            .msg
            .edits
            .ops()
            .any(|(_, _, t)| contains(t, ADDR_MARK.as_bytes()));
        if first && !ctx.msg.send_fixups.push(fill_addr) {
            lm_err!("path: too many send-time changes on this request");
            return -1;
        }
        let m = ctx.msg.msg();
        let at = m
            .header(HeaderName::Path)
            .map_or(m.headers_end(), |h| h.start);
        ctx.msg.edits.insert(at, line.as_bytes());
        1
    }

    /// `add_path()`: with the outbound module loaded and a REGISTER that
    /// uses outbound, the user part is a token of the flow it came on,
    /// and `;ob` says so when this proxy is the first hop (one Via).
    fn add_path(&self, ctx: &mut Ctx<'_>) -> i32 {
        let mut user = String::new();
        let mut mark = Mark::None;
        if let Some(ob) = self.outbound.get(ctx.core) {
            if ctx.msg.is_request() && ob.use_outbound(ctx.core, ctx.msg) != 0 {
                user = ob.encode(&ctx.msg.rcv);
                if ctx.msg.msg().vias().nth(1).is_none() {
                    mark = Mark::Ob;
                }
            }
        }
        self.prepend(ctx, &user, mark, "")
    }

    /// rr's callback: our Route entry's `received` parameter, when it has
    /// one, becomes the destination URI.
    fn on_route(&self, ctx: &mut Ctx<'_>, route_params: &str) {
        let name = params::get_str(&self.received_name);
        let Some(value) = route_params
            .split(';')
            .filter_map(|p| p.split_once('='))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case(&name))
            .map(|(_, v)| v.trim().trim_matches('"'))
        else {
            lm_dbg!("path: no {name} parameter in route header");
            return;
        };
        match self.format().decode(value) {
            Some(uri) => ctx.msg.dst_uri = Some(uri),
            None => lm_err!("path: invalid received format: {value}"),
        }
    }
}

/// The send-time fix-up: our address on the socket the request leaves
/// from (`host:port`, and `;transport=` when not UDP) in every Path
/// header this module inserted.
fn fill_addr(edits: &mut Edits, to: &SendInfo<'_>) {
    let mut addr = format!("{}:{}", to.host, to.port);
    if to.proto != Proto::Udp {
        addr.push_str(";transport=");
        addr.push_str(to.proto.as_str());
    }
    let marked: Vec<usize> = edits
        .ops()
        .enumerate()
        .filter(|(_, (_, _, t))| contains(t, ADDR_MARK.as_bytes()))
        .map(|(i, _)| i)
        .collect();
    for i in marked {
        let Some(text) = edits
            .text(i)
            .map(|t| String::from_utf8_lossy(t).into_owned())
        else {
            continue;
        };
        edits.set_text(i, text.replace(ADDR_MARK, &addr).as_bytes());
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The module definition.
pub fn module() -> ModuleDef {
    let p = Arc::new(Path {
        use_received: params::int_cell(0),
        received_name: params::str_cell("received"),
        received_format: params::int_cell(0),
        enable_r2: params::int_cell(0),
        sockname_mode: params::int_cell(0),
        outbound: ObBinding::default(),
    });
    let mut def = ModuleDef::new("path")
        .param("use_received", ParamKind::Int, params::int(&p.use_received))
        .param(
            "received_name",
            ParamKind::Str,
            params::string(&p.received_name),
        )
        .param(
            "received_format",
            ParamKind::Int,
            params::int(&p.received_format),
        )
        .param("enable_r2", ParamKind::Int, params::int(&p.enable_r2))
        .param(
            "sockname_mode",
            ParamKind::Int,
            params::int(&p.sockname_mode),
        );
    let init = p.clone();
    def = def.on_init(move |core| {
        for (name, cell) in [
            ("enable_r2", &init.enable_r2),
            ("sockname_mode", &init.sockname_mode),
        ] {
            if params::get_int(cell) != 0 {
                return Err(format!("path: {name} other than 0 is not supported"));
            }
        }
        if params::get_str(&init.received_name).trim().is_empty() {
            return Err("path: received_name is empty".into());
        }
        if params::get_int(&init.use_received) != 0 {
            let rr = bind::<RrApi>(core, RR_API)
                .ok_or("path: use_received needs the rr module (load rr before path)")?;
            let cb = init.clone();
            rr.register_callback(Arc::new(move |ctx, params| cb.on_route(ctx, params)));
        }
        Ok(())
    });
    for (name, received) in [("add_path", false), ("add_path_received", true)] {
        for nargs in 0..=2usize {
            let path = p.clone();
            def = def.cmd(
                name,
                nargs,
                RouteType::REQUEST,
                (nargs > 0).then(|| fixup::f(fixup::spve)),
                move |ctx, a| {
                    if !received && nargs == 0 {
                        return path.add_path(ctx);
                    }
                    let user = a
                        .first()
                        .map(|u| u.str(ctx).into_owned())
                        .unwrap_or_default();
                    let extra = a
                        .get(1)
                        .map(|x| x.str(ctx).into_owned())
                        .unwrap_or_default();
                    let mark = if received { Mark::Received } else { Mark::None };
                    path.prepend(ctx, &user, mark, &extra)
                },
            );
        }
    }
    def
}
