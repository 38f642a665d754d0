//! Module `xhttp_prom` (Kamailio's): Prometheus metrics answered on the
//! SIP port through xhttp. `prom_dispatch()` in `event_route[xhttp:request]`
//! answers with the user-defined metrics (counters, gauges, histograms
//! declared by `modparam` and changed from the script or over RPC) and the
//! statistics `xhttp_prom_stats` names, in the text format 0.0.4, every
//! line as Kamailio writes it (name prefixed by `xhttp_prom_beginning`,
//! `-` in statistic names turned into `_`, a timestamp in milliseconds).
//!
//! siprouter also serves every statistic at `GET /metrics` on its own HTTP
//! listener (`http_listen`); this module is for configurations written for
//! Kamailio.
#![forbid(unsafe_code)]

pub mod metrics;

use metrics::{atof, parse_declaration, Change, Kind, Registry};
use sr_sdk::exports::params::{get_int, get_str, int, int_cell, str_cell, string};
use sr_sdk::fixup::{self, Arg, Fixed, FixupEnv};
use sr_sdk::prelude::*;
use sr_sdk::serde_json::Value as Json;
use sr_sdk::RpcError;
use std::sync::{Arc, Mutex};

/// The URL `prom_check_uri()` accepts.
pub const URI: &str = "/metrics";

/// Content type of the answer.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4";

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The module's state.
struct Prom {
    registry: Mutex<Registry>,
    stats: Arc<std::sync::RwLock<String>>,
    beginning: Arc<std::sync::RwLock<String>>,
    buf_size: Arc<std::sync::atomic::AtomicI64>,
}

impl Prom {
    fn change(&self, name: &str, labels: &[&str], c: Change) -> Result<(), String> {
        let mut r = self.registry.lock().map_err(|_| "poisoned")?;
        r.apply(name, labels, c, now_ms())
    }

    /// The statistics `xhttp_prom_stats` names (Kamailio's
    /// `prom_stats_get`); `Err` for a statistic that does not exist.
    fn stats_text(&self, core: &dyn Core, prefix: &str, now: u64) -> Result<String, String> {
        let which = get_str(&self.stats);
        if which.is_empty() {
            return Ok(String::new());
        }
        let mut all = core.statistics();
        all.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        let line = |g: &str, n: &str, v: i64| {
            let name = format!("{prefix}{g}_{n}").replace('-', "_");
            format!("{name} {} {now}\n", v as u64)
        };
        let mut out = String::new();
        if which == "all" {
            out.push_str("\n# Kamailio whole internal statistics\n");
            for (g, n, v) in &all {
                out.push_str(&line(g, n, *v));
            }
        } else if let Some(group) = which.strip_suffix(':') {
            if group.is_empty() {
                return Err("an empty statistics group".into());
            }
            out.push_str(&format!("\n# Kamailio statistics for group: {which}\n"));
            for (g, n, v) in all.iter().filter(|s| s.0 == group) {
                out.push_str(&line(g, n, *v));
            }
        } else {
            let (g, n, v) = all
                .iter()
                .find(|s| s.1 == which)
                .ok_or_else(|| format!("stat not found: {which}"))?;
            out.push_str(&format!("\n# Kamailio statistics for: {which}\n"));
            out.push_str(&line(g, n, *v));
        }
        Ok(out)
    }

    /// The whole answer: code and body.
    fn answer(&self, core: &dyn Core) -> (u16, &'static str, String) {
        let prefix = get_str(&self.beginning);
        let now = now_ms();
        let user = match self.registry.lock() {
            Ok(r) => r.print(&prefix, now),
            Err(_) => return (500, "Internal Server Error", "Internal Server Error".into()),
        };
        let body = match self.stats_text(core, &prefix, now) {
            Ok(s) => user + &s,
            Err(e) => {
                lm_err!("xhttp_prom: {e}");
                return (500, "Internal Server Error", "Internal Server Error".into());
            }
        };
        let limit = get_int(&self.buf_size);
        if limit > 0 && body.len() as i64 >= limit {
            lm_err!("xhttp_prom: the metrics need more than xhttp_prom_buf_size ({limit}) bytes");
            return (500, "Internal Server Error", "Internal Server Error".into());
        }
        (200, "OK", body)
    }
}

/// Fixup: the name and labels strings with pseudo-variables, the number
/// (second parameter) an integer for counters.
fn int_second(env: &dyn FixupEnv, i: usize, arg: &Arg) -> Result<Fixed, String> {
    if i == 1 {
        fixup::igp(env, i, arg)
    } else {
        fixup::spve(env, i, arg)
    }
}

/// The label values of a call: parameters from `first` on, each must be
/// non-empty.
fn labels(ctx: &mut Ctx<'_>, p: &[Fixed], first: usize) -> Option<Vec<String>> {
    let v: Vec<String> = p[first..].iter().map(|f| f.str(ctx).into_owned()).collect();
    if v.iter().any(String::is_empty) {
        lm_err!("xhttp_prom: an empty label value");
        return None;
    }
    Some(v)
}

/// Runs a change from the script: 1 done, -1 not.
fn script_change(st: &Prom, ctx: &mut Ctx<'_>, p: &[Fixed], first_label: usize, c: Change) -> i32 {
    let name = p[0].str(ctx).into_owned();
    if name.is_empty() {
        lm_err!("xhttp_prom: invalid name string");
        return -1;
    }
    let Some(l) = labels(ctx, p, first_label) else {
        return -1;
    };
    let refs: Vec<&str> = l.iter().map(String::as_str).collect();
    match st.change(&name, &refs, c) {
        Ok(()) => 1,
        Err(e) => {
            lm_err!("xhttp_prom: {e}");
            -1
        }
    }
}

/// A change with a number read as `atof` (second parameter; empty is an
/// error), labels from the third.
fn float_change(st: &Prom, ctx: &mut Ctx<'_>, p: &[Fixed], c: fn(f64) -> Change) -> i32 {
    let v = p[1].str(ctx).into_owned();
    if v.is_empty() {
        lm_err!("xhttp_prom: invalid number string");
        return -1;
    }
    script_change(st, ctx, p, 2, c(atof(&v)))
}

/// An RPC's label values (parameters from `first` on).
fn rpc_labels(p: &[Json], first: usize) -> Result<Vec<String>, RpcError> {
    (first..p.len())
        .map(|i| sr_sdk::rpc::param_str(p, i, "label"))
        .collect()
}

/// Runs a change from RPC.
fn rpc_change(
    st: &Prom,
    p: &[Json],
    first_label: usize,
    c: Change,
    what: &str,
) -> Result<Json, RpcError> {
    let name = sr_sdk::rpc::param_str(p, 0, "name")?;
    let l = rpc_labels(p, first_label)?;
    if l.len() > 3 {
        return Err(RpcError::invalid_params("at most three labels"));
    }
    let refs: Vec<&str> = l.iter().map(String::as_str).collect();
    st.change(&name, &refs, c)
        .map(|()| Json::Null)
        .map_err(|e| RpcError::new(500, format!("Failed to {what}: {name} ({e})")))
}

/// A float RPC parameter (a number, or text read as `atof`).
fn rpc_float(p: &[Json], i: usize) -> Result<f64, RpcError> {
    match p.get(i) {
        Some(Json::Number(n)) => n.as_f64().ok_or_else(|| RpcError::invalid_params("number")),
        Some(Json::String(s)) => Ok(atof(s)),
        _ => Err(RpcError::invalid_params("missing parameter: number")),
    }
}

/// The module definition.
pub fn module() -> ModuleDef {
    let timeout = int_cell(60);
    let st = Arc::new(Prom {
        registry: Mutex::new(Registry::new(0)),
        stats: str_cell(""),
        beginning: str_cell("kamailio_"),
        buf_size: int_cell(0),
    });
    let declare = |kind: Kind| {
        let st = st.clone();
        move |v: ParamValue| -> Result<(), String> {
            let spec = match v {
                ParamValue::Str(s) => s,
                ParamValue::Int(i) => i.to_string(),
            };
            let m = parse_declaration(kind, &spec).map_err(|e| format!("xhttp_prom: {e}"))?;
            st.registry
                .lock()
                .map_err(|_| "poisoned".to_string())?
                .declare(m)
                .map_err(|e| format!("xhttp_prom: {e}"))
        }
    };
    let init = {
        let (st, timeout) = (st.clone(), timeout.clone());
        move |_core: &dyn Core| -> Result<(), String> {
            let t = get_int(&timeout);
            if t < 0 {
                return Err(format!(
                    "xhttp_prom: invalid xhttp_prom_timeout {t} (minutes, 0 for none)"
                ));
            }
            st.registry
                .lock()
                .map_err(|_| "poisoned".to_string())?
                .set_timeout(t as u64 * 60_000);
            Ok(())
        }
    };
    let http = RouteType::REQUEST | RouteType::EVENT;
    let any = RouteType::ANY;
    let mut def = ModuleDef::new("xhttp_prom")
        .param("xhttp_prom_buf_size", ParamKind::Int, int(&st.buf_size))
        .param("xhttp_prom_timeout", ParamKind::Int, int(&timeout))
        .param("xhttp_prom_stats", ParamKind::Str, string(&st.stats))
        .param(
            "xhttp_prom_beginning",
            ParamKind::Str,
            string(&st.beginning),
        )
        .param("prom_counter", ParamKind::Str, declare(Kind::Counter))
        .param("prom_gauge", ParamKind::Str, declare(Kind::Gauge))
        .param("prom_histogram", ParamKind::Str, declare(Kind::Histogram))
        .on_init(init)
        .cmd("prom_check_uri", 0, http, None, |ctx, _| {
            if ctx.msg.msg().http_target() == Some(URI) {
                1
            } else {
                -1
            }
        });
    {
        let st = st.clone();
        def = def.cmd("prom_dispatch", 0, http, None, move |ctx, _| {
            if !ctx.msg.msg().is_http() {
                lm_dbg!("xhttp_prom: prom_dispatch on a SIP message");
                return -1;
            }
            let (code, reason, body) = st.answer(ctx.core);
            if sr_mod_xhttp::reply(ctx, &code.to_string(), reason, CONTENT_TYPE, &body) < 0 {
                return -1;
            }
            // As Kamailio's: 0, which ends the route.
            0
        });
    }
    for n in 1..=4 {
        let (s1, s2) = (st.clone(), st.clone());
        def = def
            .cmd(
                "prom_counter_reset",
                n,
                any,
                Some(fixup::f(fixup::spve)),
                move |ctx, p| script_change(&s1, ctx, p, 1, Change::Reset(Kind::Counter)),
            )
            .cmd(
                "prom_gauge_reset",
                n,
                any,
                Some(fixup::f(fixup::spve)),
                move |ctx, p| script_change(&s2, ctx, p, 1, Change::Reset(Kind::Gauge)),
            );
    }
    for n in 2..=5 {
        let (s1, s2, s3) = (st.clone(), st.clone(), st.clone());
        def = def
            .cmd(
                "prom_counter_inc",
                n,
                any,
                Some(fixup::f(int_second)),
                move |ctx, p| {
                    let Some(v) = p[1].int_strict(ctx) else {
                        lm_err!("xhttp_prom: prom_counter_inc: no number");
                        return -1;
                    };
                    if v < 0 {
                        lm_err!("xhttp_prom: invalid negative number parameter");
                        return -1;
                    }
                    script_change(&s1, ctx, p, 2, Change::Add(v as u64))
                },
            )
            .cmd(
                "prom_gauge_set",
                n,
                any,
                Some(fixup::f(fixup::spve)),
                move |ctx, p| float_change(&s2, ctx, p, Change::Set),
            )
            .cmd(
                "prom_histogram_observe",
                n,
                any,
                Some(fixup::f(fixup::spve)),
                move |ctx, p| float_change(&s3, ctx, p, Change::Observe),
            );
    }
    let (r1, r2, r3, r4, r5, r6) = (
        st.clone(),
        st.clone(),
        st.clone(),
        st.clone(),
        st.clone(),
        st,
    );
    def.rpc(
        "xhttp_prom.counter_reset",
        "Sets a counter to zero: name [l0 [l1 [l2]]].",
        move |p| rpc_change(&r1, p, 1, Change::Reset(Kind::Counter), "reset counter"),
    )
    .rpc(
        "xhttp_prom.counter_inc",
        "Adds a non-negative integer to a counter: name number [l0 [l1 [l2]]].",
        move |p| {
            let n = sr_sdk::rpc::param_int(p, 1, "number")?;
            if n < 0 {
                return Err(RpcError::invalid_params("the number must not be negative"));
            }
            rpc_change(
                &r2,
                p,
                2,
                Change::Add(n as u64),
                &format!("add {n} to counter"),
            )
        },
    )
    .rpc(
        "xhttp_prom.gauge_reset",
        "Sets a gauge to zero: name [l0 [l1 [l2]]].",
        move |p| rpc_change(&r3, p, 1, Change::Reset(Kind::Gauge), "reset gauge"),
    )
    .rpc(
        "xhttp_prom.gauge_set",
        "Sets a gauge: name number [l0 [l1 [l2]]].",
        move |p| {
            let v = rpc_float(p, 1)?;
            rpc_change(&r4, p, 2, Change::Set(v), "set gauge")
        },
    )
    .rpc(
        "xhttp_prom.histogram_observe",
        "Observes a value in a histogram: name number [l0 [l1 [l2]]].",
        move |p| {
            let v = rpc_float(p, 1)?;
            rpc_change(&r5, p, 2, Change::Observe(v), "observe in histogram")
        },
    )
    .rpc(
        "xhttp_prom.metric_list_print",
        "The user-defined metrics as prom_dispatch() lists them.",
        move |_| {
            let prefix = get_str(&r6.beginning);
            let r = r6
                .registry
                .lock()
                .map_err(|_| RpcError::new(500, "poisoned"))?;
            Ok(Json::String(r.print(&prefix, now_ms())))
        },
    )
}
