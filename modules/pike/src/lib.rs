//! # pike: flood detection
//!
//! Kamailio's `pike` module: counts the requests of each source address
//! and tells the script when one sends more than `reqs_density_per_unit`
//! requests per `sampling_time_unit` seconds, so it can drop them (the
//! stock configuration's WITH_ANTIFLOOD then bans the address in an
//! htable).
//!
//! - `pike_check_req()`: counts the request's source address; **1** under
//!   the limit, **-2** when it goes over it, **-1** while it stays over.
//! - `pike_check_ip(ip)`: the same for an address given as text.
//! - Parameters: `sampling_time_unit` (2 s), `reqs_density_per_unit` (30),
//!   `remove_latency` (120 s: an address is forgotten after this long
//!   without requests), `pike_log_level` (accepted).
//! - RPC `pike.top [ALL|HOT|WARM]`: the addresses remembered, busiest
//!   first (the ones over the limit by default, WARM those with a quarter
//!   of it in the current unit), as Kamailio shows them.
//!
//! Counting is Kamailio's IP tree ([`tree`]): prefixes grow a byte at a
//! time where requests come from, and an address counts once its branch
//! is built, so the same flood is refused at the same request.
#![forbid(unsafe_code)]

pub mod tree;

use sr_sdk::prelude::*;
use std::net::IpAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tree::{Tree, Verdict};

#[derive(Default)]
struct Pike {
    unit: Arc<AtomicI64>,
    density: Arc<AtomicI64>,
    latency: Arc<AtomicI64>,
    log_level: Arc<AtomicI64>,
    rates: OnceLock<Arc<Tree>>,
}

impl Pike {
    fn check(&self, ip: IpAddr) -> i32 {
        let Some(r) = self.rates.get() else {
            return 1;
        };
        match r.hit(ip, Instant::now()) {
            Verdict::Ok => 1,
            Verdict::Started => {
                lm_notice!("pike: {ip} is over the limit");
                -2
            }
            Verdict::Block => -1,
        }
    }
}

fn secs(a: &AtomicI64, default: u64) -> Duration {
    Duration::from_secs(
        u64::try_from(a.load(Ordering::Relaxed))
            .unwrap_or(default)
            .max(1),
    )
}

/// The module definition.
pub fn module() -> ModuleDef {
    let p = Arc::new(Pike::default());
    p.unit.store(2, Ordering::Relaxed);
    p.density.store(30, Ordering::Relaxed);
    p.latency.store(120, Ordering::Relaxed);
    let (pi, pr, pc, pt) = (p.clone(), p.clone(), p.clone(), p.clone());
    ModuleDef::new("pike")
        .param("sampling_time_unit", ParamKind::Int, params::int(&p.unit))
        .param(
            "reqs_density_per_unit",
            ParamKind::Int,
            params::int(&p.density),
        )
        .param("remove_latency", ParamKind::Int, params::int(&p.latency))
        .param("pike_log_level", ParamKind::Int, params::int(&p.log_level))
        .on_init(move |core| {
            let density = u32::try_from(pi.density.load(Ordering::Relaxed))
                .map_err(|_| "pike: reqs_density_per_unit must be positive".to_string())?;
            let rates = Arc::new(Tree::new(density, secs(&pi.latency, 120)));
            let r2 = rates.clone();
            // Every sampling_time_unit: the counts move on a unit, and
            // quiet branches go.
            core.add_timer(
                "pike-swap",
                secs(&pi.unit, 2),
                Arc::new(move || {
                    r2.swap();
                    r2.sweep(Instant::now());
                }),
            );
            let _ = pi.rates.set(rates);
            Ok(())
        })
        .cmd(
            "pike_check_req",
            0,
            RouteType::REQUEST,
            None,
            move |ctx, _| pr.check(ctx.msg.rcv.src.ip()),
        )
        .cmd(
            "pike_check_ip",
            1,
            RouteType::ANY,
            Some(fixup::f(fixup::spve)),
            move |ctx, a| match a[0].str(ctx).trim().parse::<IpAddr>() {
                Ok(ip) => pc.check(ip),
                Err(_) => {
                    lm_err!("pike_check_ip: '{}' is not an address", a[0].str(ctx));
                    -1
                }
            },
        )
        .rpc(
            "pike.top",
            "The addresses counted, busiest first: pike.top [ALL|HOT|WARM] (HOT by default).",
            move |p| {
                let which = p
                    .first()
                    .and_then(Json::as_str)
                    .unwrap_or("HOT")
                    .to_ascii_uppercase();
                let list: Vec<Json> = pt
                    .rates
                    .get()
                    .map(|r| r.top(Instant::now()))
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|e| match which.as_str() {
                        "ALL" => true,
                        "WARM" => e.warm && !e.hot,
                        _ => e.hot,
                    })
                    .map(|e| {
                        json!({
                            "ip_addr": e.ip.to_string(),
                            "leaf_hits_prev": e.prev,
                            "leaf_hits_curr": e.cur,
                            "expires": e.expires,
                            "status": if e.hot {
                                "HOT"
                            } else if e.warm {
                                "WARM"
                            } else {
                                ""
                            },
                        })
                    })
                    .collect();
                let n = list.len();
                Ok(json!({
                    "max_hits": pt.density.load(Ordering::Relaxed),
                    "list": list,
                    "number_of_rows": n,
                }))
            },
        )
}
