//! # rr: record routing
//!
//! Kamailio's `rr` module: `record_route([params])`,
//! `record_route_preset(addr[, addr2])` (two Record-Route headers when the
//! request changes transport, `enable_double_rr`), `add_rr_param`,
//! `loose_route()` (RFC 3261 §16.4 and strict-router handling of
//! §16.12), `loose_route_preloaded()`, `loose_route_mode(mode)`,
//! `rr_next_hop_route()`, `remove_record_route()`,
//! `check_route_param(re)`, `is_direction(dir)` (needs `append_fromtag`),
//! `$route_uri`, `$rdir(id|name)` and the dialog's initial tags `$fti`,
//! `$tti` (From and To tags as the first request had them).
#![forbid(unsafe_code)]

pub mod api;
pub mod loose;
pub mod record;
pub mod route_set;

pub use api::{RrApi, RrCallback, RR_API};
use sr_sdk::prelude::*;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// rr's per-message state.
#[derive(Debug, Default)]
pub struct RrCtx {
    /// `add_rr_param` text waiting for `record_route`.
    pub pending: String,
    /// Parameters of our Route entry that `loose_route` processed.
    pub route_params: Option<String>,
    /// `loose_route` took the next hop from a Route header.
    pub next_hop_route: bool,
    /// A `record_route*` function ran (also when `remove_record_route`
    /// took its header away again: Kamailio's `FL_RR_ADDED`).
    pub rr_added: bool,
}

/// The module parameters.
#[derive(Debug, Clone)]
pub struct Params {
    append_fromtag: Arc<AtomicI64>,
    enable_full_lr: Arc<AtomicI64>,
    enable_double_rr: Arc<AtomicI64>,
    /// The outbound module's API, when it is loaded (flow tokens).
    pub(crate) outbound: sr_mod_outbound::ObBinding,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            append_fromtag: Arc::new(AtomicI64::new(1)),
            enable_full_lr: Arc::new(AtomicI64::new(0)),
            enable_double_rr: Arc::new(AtomicI64::new(1)),
            outbound: sr_mod_outbound::ObBinding::default(),
        }
    }
}

impl Params {
    /// `append_fromtag`.
    pub fn append_fromtag(&self) -> bool {
        self.append_fromtag.load(Ordering::Relaxed) != 0
    }
    /// `enable_full_lr`.
    pub fn full_lr(&self) -> bool {
        self.enable_full_lr.load(Ordering::Relaxed) != 0
    }
    /// `enable_double_rr` (0, 1 or 2).
    pub fn double_rr(&self) -> i64 {
        self.enable_double_rr.load(Ordering::Relaxed)
    }
}

fn route_params(ctx: &Ctx<'_>) -> Option<String> {
    ctx.msg
        .ext
        .get::<RrCtx>()
        .and_then(|r| r.route_params.clone())
}

/// Whether the request goes the way the dialog's first request went:
/// the `ftag` parameter of the Route `loose_route()` took is the From
/// tag. `None` when there is no such parameter.
fn downstream(ctx: &Ctx<'_>) -> Option<bool> {
    let ps = route_params(ctx)?;
    let ftag = ps
        .split(';')
        .find_map(|x| x.strip_prefix("ftag="))
        .map(str::to_string)?;
    let from = ctx
        .msg
        .msg()
        .from()
        .ok()
        .and_then(|f| f.tag())
        .unwrap_or("");
    Some(ftag == from)
}

/// `$fti` (`from`) / `$tti`: the From / To tag of the dialog's first
/// request: the To / From tag of an upstream request, the message's own
/// otherwise.
fn initial_tag(ctx: &Ctx<'_>, from: bool) -> Value<'static> {
    let upstream = downstream(ctx) == Some(false);
    let msg = ctx.msg.msg();
    let hdr = if from != upstream {
        msg.from()
    } else {
        msg.to()
    };
    hdr.ok()
        .and_then(|h| h.tag())
        .map_or(Value::Null, |t| Value::Str(t.to_string().into()))
}

/// The module definition.
pub fn module() -> ModuleDef {
    let p = Params::default();
    let req = RouteType::REQUEST | RouteType::FAILURE | RouteType::BRANCH;
    let spve = Some(fixup::f(fixup::spve));
    let (p1, p2, p3, p4, p5) = (p.clone(), p.clone(), p.clone(), p.clone(), p.clone());
    let p8 = p.clone();
    let (p6, p7) = (p.clone(), p.clone());
    let api = RrApi::default();
    let (a1, a2, a3) = (api.clone(), api.clone(), api.clone());
    let published = Arc::new(api.clone());
    let p0 = p.clone();
    ModuleDef::new("rr")
        .on_init(move |core| {
            published.set_append_fromtag(p0.append_fromtag());
            core.register_api(RR_API, published.clone());
            Ok(())
        })
        .param(
            "append_fromtag",
            ParamKind::Int,
            params::int(&p.append_fromtag),
        )
        .param(
            "enable_full_lr",
            ParamKind::Int,
            params::int(&p.enable_full_lr),
        )
        .param(
            "enable_double_rr",
            ParamKind::Int,
            params::int(&p.enable_double_rr),
        )
        .cmd("record_route", 0, req, None, move |ctx, _| {
            record::record_route(ctx, &p1, "")
        })
        .cmd("record_route", 1, req, spve.clone(), move |ctx, a| {
            let s = a[0].str(ctx).into_owned();
            record::record_route(ctx, &p2, &s)
        })
        .cmd(
            "record_route_preset",
            1,
            req,
            spve.clone(),
            move |ctx, a| {
                let s = a[0].str(ctx).into_owned();
                record::record_route_preset(ctx, &p3, &s, None)
            },
        )
        .cmd(
            "record_route_preset",
            2,
            req,
            spve.clone(),
            move |ctx, a| {
                let s = a[0].str(ctx).into_owned();
                let t = a[1].str(ctx).into_owned();
                record::record_route_preset(ctx, &p4, &s, Some(&t))
            },
        )
        .cmd(
            "record_route_advertised_address",
            1,
            req,
            spve.clone(),
            move |ctx, a| {
                let s = a[0].str(ctx).into_owned();
                record::record_route_advertised(ctx, &p8, &s)
            },
        )
        .cmd("add_rr_param", 1, req, spve, |ctx, a| {
            let s = a[0].str(ctx).into_owned();
            record::add_rr_param(ctx, &s)
        })
        .cmd("loose_route", 0, RouteType::REQUEST, None, move |ctx, _| {
            loose::loose_route(ctx, &p5, &a1)
        })
        // 1 only for a preloaded route set (out of dialog) that was ours.
        .cmd(
            "loose_route_preloaded",
            0,
            RouteType::REQUEST,
            None,
            move |ctx, _| {
                if loose::loose_route(ctx, &p6, &a2) == loose::RR_PRELOADED {
                    1
                } else {
                    -1
                }
            },
        )
        .cmd(
            "loose_route_mode",
            1,
            RouteType::REQUEST,
            Some(fixup::f(fixup::igp)),
            move |ctx, a| {
                let mode = a[0].int(ctx);
                loose::loose_route_mode(ctx, &p7, &a3, mode)
            },
        )
        .cmd("rr_next_hop_route", 0, RouteType::ANY, None, |ctx, _| {
            if ctx.msg.ext.get::<RrCtx>().is_some_and(|r| r.next_hop_route) {
                1
            } else {
                -1
            }
        })
        .cmd("remove_record_route", 0, req, None, |ctx, _| {
            while let Some(i) = ctx.msg.edits.find_text(record::RR_PREFIX) {
                ctx.msg.edits.set_text(i, b"");
            }
            1
        })
        .cmd(
            "check_route_param",
            1,
            RouteType::REQUEST,
            Some(fixup::f(fixup::regexp)),
            |ctx, a| {
                let Some(ps) = route_params(ctx) else {
                    return -1;
                };
                match &a[0] {
                    Fixed::Regex(r) if r.is_match(&ps) => 1,
                    _ => -1,
                }
            },
        )
        .cmd(
            "is_direction",
            1,
            RouteType::REQUEST,
            Some(fixup::f(fixup::const_str)),
            |ctx, a| {
                let dir = a[0].str(ctx).into_owned();
                let Some(downstream) = downstream(ctx) else {
                    return -1;
                };
                match dir.as_str() {
                    "downstream" if downstream => 1,
                    "upstream" if !downstream => 1,
                    _ => -1,
                }
            },
        )
        // $rdir(id): 1 downstream, 2 upstream; $rdir(name): the word.
        .pv("rdir", |ctx, n| {
            let up = downstream(ctx) == Some(false);
            match n.inner.as_deref() {
                Some("name") => Value::from(if up { "upstream" } else { "downstream" }),
                _ => Value::Int(if up { 2 } else { 1 }),
            }
        })
        .pv("fti", |ctx, _| initial_tag(ctx, true))
        .pv("tti", |ctx, _| initial_tag(ctx, false))
        .pv("route_uri", |ctx, _| {
            match crate::route_set::entries(ctx.msg.msg()).first() {
                Some(e) => Value::from(e.uri(ctx.msg.msg()).to_string()),
                None => Value::Null,
            }
        })
}
