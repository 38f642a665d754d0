//! # dialplan: translation rules from a database table
//!
//! Kamailio's `dialplan` module. Rules of the `dialplan` table (version 2)
//! are loaded at start and on `dialplan.reload`: for a dialplan id, an
//! input matches a rule's `match_exp` (equal, regular expression or
//! wildcard, optionally only for inputs of `match_len` characters); the
//! rule's `subst_exp` and `repl_exp` build the output and its `attrs`
//! go to `attrs_pvar`. `dp_translate(id[, "src/dest"])`,
//! `dp_match(id, src)`, `dp_replace(id, src, dst)`, `dp_reload()`; RPC
//! `dialplan.reload`, `dialplan.translate`, `dialplan.dump`.
#![forbid(unsafe_code)]

pub mod fnmatch;
pub mod load;
pub mod repl;
pub mod rules;

use load::Settings;
use rules::{Miss, Table, Translation};
use sr_sdk::fixup::{Assign, Eval, FixupEnv};
use sr_sdk::prelude::*;
use std::sync::{Arc, Mutex, OnceLock, RwLock, Weak};
use std::time::{Duration, Instant};

/// The module's state.
struct Dialplan {
    settings: Settings,
    /// The core, kept for reloads (rows with pseudo-variables are
    /// compiled by it).
    core: OnceLock<Weak<dyn Core>>,
    rules: RwLock<Arc<Table>>,
    last_rpc_reload: Mutex<Option<Instant>>,
}

/// `dp_translate`'s second parameter: the input and where the output goes.
struct SrcDest {
    src: Arc<dyn Eval>,
    dest: Option<Dest2>,
}

/// A destination and whether it is the Request-URI (`$ru`, `$rU`), which
/// in failure_route also appends a branch (`append_branch`).
struct Dest2 {
    pv: Arc<dyn Assign>,
    ruri: bool,
}

/// What the first parameter of the functions may be in Kamailio: a
/// number, or an AVP, XAVP or script variable.
fn is_id_var(s: &str) -> bool {
    ["$avp(", "$(avp(", "$xavp(", "$(xavp(", "$var(", "$(var("]
        .iter()
        .any(|p| s.starts_with(p))
}

/// Kamailio's `str2sint`: an optional sign, then digits only.
fn parse_id(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn translate_fixup(env: &dyn FixupEnv, i: usize, a: &Arg) -> Result<Fixed, String> {
    let text = a.text().trim().to_string();
    if text.is_empty() {
        return Err(format!("dp_translate: parameter {} is empty", i + 1));
    }
    if i == 0 {
        if let Arg::Int(n) = a {
            return Ok(Fixed::Int(*n));
        }
        if !text.starts_with('$') {
            return parse_id(&text)
                .map(Fixed::Int)
                .ok_or_else(|| format!("dp_translate: bad number <{text}>"));
        }
        if !is_id_var(&text) {
            return Err(format!(
                "dp_translate: the dialplan id must be a number, an AVP, an XAVP or a $var, not {text}"
            ));
        }
        return env.compile_pv(&text).map(Fixed::Dyn);
    }
    let (src, dest) = match text.split_once('/') {
        Some((_, "")) => {
            return Err(format!(
                "dp_translate: '{text}' has no destination after '/'"
            ))
        }
        Some((s, d)) => (s, Some(d)),
        None => (text.as_str(), None),
    };
    let src = env.compile_pv(src)?;
    let dest = match dest {
        None => None,
        Some(d) => {
            let ruri = d == "$ru" || d == "$rU";
            if !ruri && !is_id_var(d) {
                return Err(format!(
                    "dp_translate: the destination must be $ru, $rU, an AVP, an XAVP or a $var, not {d}"
                ));
            }
            Some(Dest2 {
                pv: env.compile_lvalue(d)?,
                ruri,
            })
        }
    };
    Ok(Fixed::Custom(Arc::new(SrcDest { src, dest })))
}

/// The dialplan id for this call: a constant, or a variable holding an
/// integer (a string in it, even of digits, is refused, as in Kamailio).
fn id_of(ctx: &mut Ctx<'_>, f: &Fixed) -> Option<i64> {
    match f {
        Fixed::Int(i) => Some(*i),
        Fixed::Str(s) => parse_id(s.trim()),
        Fixed::Dyn(e) => match e.eval(ctx) {
            Value::Int(i) => Some(i),
            _ => None,
        },
        Fixed::Pv(p) => match p.eval(ctx) {
            Value::Int(i) => Some(i),
            _ => None,
        },
        _ => None,
    }
}

impl Dialplan {
    fn table(&self) -> Arc<Table> {
        self.rules
            .read()
            .map(|t| t.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }

    /// Reads the table again and swaps the rules in; on any error the
    /// rules loaded before stay.
    fn reload(&self) -> Result<usize, String> {
        let core = self
            .core
            .get()
            .and_then(Weak::upgrade)
            .ok_or("dialplan: not initialised")?;
        let t = self.settings.load(&*core)?;
        let n = t.len();
        *self.rules.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(t);
        Ok(n)
    }

    /// Sets the output and the attributes as Kamailio's `dp_update`.
    fn update(
        &self,
        ctx: &mut Ctx<'_>,
        dest: Option<&Dest2>,
        tr: &Translation,
        attrs: bool,
    ) -> i32 {
        if let Some(d) = dest.filter(|_| !tr.output.is_empty()) {
            if let Err(e) = d.pv.assign(ctx, Value::str(tr.output.clone())) {
                lm_err!("dialplan: setting the destination failed: {e}");
                return -1;
            }
            if d.ruri && ctx.route == RouteType::FAILURE && self.settings.append_branch() {
                // As Kamailio's dp_update: a branch of the new Request-URI
                // alone (no `$du`, no flags), the Request-URI itself still
                // usable (it was just written).
                let uri = ctx.msg.ruri().to_string();
                ctx.msg.branches.push(Branch {
                    uri,
                    ..Default::default()
                });
            }
        }
        if attrs {
            if let Some(name) = self.settings.attrs_pvar() {
                if let Err(e) = ctx
                    .core
                    .pv_set(ctx.msg, &name, Value::str(tr.attrs.clone()))
                {
                    lm_err!("dialplan: setting {name} failed: {e}");
                    return -1;
                }
            }
        }
        1
    }

    /// `dp_match`/`dp_replace`: -2 for an id without rules, -1 when no
    /// rule matches, 1 after setting `dst` (when given) and the attributes.
    fn replace(
        &self,
        ctx: &mut Ctx<'_>,
        dpid: i64,
        src: &str,
        dst: Option<&Arc<dyn Assign>>,
    ) -> i32 {
        let table = self.table();
        match table.translate(dpid, src, dst.is_some(), Some(ctx)) {
            Err(Miss::NoId) => -2,
            Err(Miss::NoMatch) => -1,
            Ok(tr) => {
                let dest = dst.map(|pv| Dest2 {
                    pv: pv.clone(),
                    ruri: false,
                });
                self.update(ctx, dest.as_ref(), &tr, true)
            }
        }
    }
}

fn rc(m: Miss) -> i32 {
    match m {
        Miss::NoId => -2,
        Miss::NoMatch => -1,
    }
}

/// The module definition.
pub fn module() -> ModuleDef {
    let dp = Arc::new(Dialplan {
        settings: Settings::default(),
        core: OnceLock::new(),
        rules: RwLock::new(Arc::new(Table::default())),
        last_rpc_reload: Mutex::new(None),
    });
    let mut def = dp.settings.params(ModuleDef::new("dialplan"));
    let d = dp.clone();
    def = def.on_init(move |core| {
        d.settings.check()?;
        let weak = core
            .handle()
            .ok_or("dialplan: the core gives no handle for reloads")?;
        let _ = d.core.set(weak);
        let n = d.reload()?;
        lm_info!("dialplan: {n} rules loaded");
        Ok(())
    });
    // The default second parameter: the Request-URI's user in and out.
    let default_src = OnceLock::<SrcDest>::new();
    let default_src = Arc::new(default_src);
    for n in [1usize, 2] {
        let d = dp.clone();
        let dflt = default_src.clone();
        def = def.cmd(
            "dp_translate",
            n,
            RouteType::ANY,
            Some(Arc::new(translate_fixup)),
            move |ctx, p| {
                let Some(dpid) = id_of(ctx, &p[0]) else {
                    lm_err!("dialplan: no dpid value");
                    return -1;
                };
                let table = d.table();
                if !table.has(dpid) {
                    return -2;
                }
                let sd = match p.get(1) {
                    Some(f) => f.custom::<SrcDest>().expect("dp_translate fixup"),
                    None => dflt.get_or_init(|| SrcDest {
                        src: Arc::new(RuriUser),
                        dest: Some(Dest2 {
                            pv: Arc::new(RuriUser),
                            ruri: true,
                        }),
                    }),
                };
                let input = match sd.src.eval(ctx) {
                    Value::Null => {
                        lm_err!("dialplan: the input variable has no value");
                        return -1;
                    }
                    v => v.as_str().into_owned(),
                };
                if input.is_empty() {
                    lm_err!("dialplan: the input variable is empty");
                    return -1;
                }
                match table.translate(dpid, &input, true, Some(ctx)) {
                    Err(m) => rc(m),
                    Ok(tr) => d.update(ctx, sd.dest.as_ref(), &tr, true),
                }
            },
        );
    }
    let d = dp.clone();
    def = def.cmd(
        "dp_match",
        2,
        RouteType::ANY,
        Some(fixup::f(|env, i, a| {
            if i == 0 {
                fixup::igp(env, i, a)
            } else {
                fixup::spve(env, i, a)
            }
        })),
        move |ctx, p| {
            let Some(dpid) = id_of(ctx, &p[0]) else {
                lm_err!("dialplan: failed to get the dialplan id value");
                return -1;
            };
            let src = p[1].str(ctx).into_owned();
            d.replace(ctx, dpid, &src, None)
        },
    );
    let d = dp.clone();
    def = def.cmd(
        "dp_replace",
        3,
        RouteType::ANY,
        Some(fixup::f(|env, i, a| match i {
            0 => fixup::igp(env, i, a),
            1 => fixup::spve(env, i, a),
            _ => fixup::pvar(env, i, a),
        })),
        move |ctx, p| {
            let Some(dpid) = id_of(ctx, &p[0]) else {
                lm_err!("dialplan: failed to get the dialplan id value");
                return -1;
            };
            let src = p[1].str(ctx).into_owned();
            let Fixed::Pv(dst) = &p[2] else {
                return -1;
            };
            d.replace(ctx, dpid, &src, Some(dst))
        },
    );
    let d = dp.clone();
    def = def.cmd(
        "dp_reload",
        0,
        RouteType::ANY,
        None,
        move |_ctx, _| match d.reload() {
            Ok(_) => 1,
            Err(e) => {
                lm_err!("dialplan: failed to reload rules from the database: {e}");
                -1
            }
        },
    );
    let d = dp.clone();
    def = def.rpc(
        "dialplan.reload",
        "Reload dialplan table from database",
        move |_| {
            {
                let mut last = d.last_rpc_reload.lock().unwrap_or_else(|e| e.into_inner());
                let delta = Duration::from_secs(d.settings.reload_delta());
                if last.is_some_and(|t| t.elapsed() < delta) {
                    return Err(RpcError::new(500, "ongoing reload"));
                }
                *last = Some(Instant::now());
            }
            d.reload().map_err(|e| {
                lm_err!("dialplan: failed to reload rules from the database: {e}");
                RpcError::new(500, "Dialplan Reload Failed")
            })?;
            Ok(Json::Null)
        },
    );
    let d = dp.clone();
    def = def.rpc(
        "dialplan.translate",
        "Perform dialplan translation",
        move |params| {
            let dpid = params.first().and_then(json_int);
            let input = params.get(1).and_then(|v| match v {
                Json::String(s) => Some(s.clone()),
                Json::Number(n) => Some(n.to_string()),
                _ => None,
            });
            let (Some(dpid), Some(input)) = (dpid, input) else {
                return Err(RpcError::new(500, "Invalid parameters"));
            };
            let table = d.table();
            if !table.has(dpid) {
                return Err(RpcError::new(500, "Dialplan ID not matched"));
            }
            if input.is_empty() {
                return Err(RpcError::new(500, "Empty input parameter"));
            }
            let tr = table
                .translate(dpid, &input, true, None)
                .map_err(|_| RpcError::new(500, "No translation"))?;
            Ok(json!({ "Output": tr.output, "Attributes": tr.attrs }))
        },
    );
    let d = dp;
    def.rpc("dialplan.dump", "Dump dialplan content", move |params| {
        let Some(dpid) = params.first().and_then(json_int) else {
            return Err(RpcError::new(500, "Missing parameter"));
        };
        let table = d.table();
        let Some(idx) = table.indexes(dpid) else {
            return Err(RpcError::new(500, "Dialplan ID not matched"));
        };
        let entries: Vec<Json> = idx
            .iter()
            .flat_map(|i| i.rules.iter())
            .map(|r| {
                let row = &r.row;
                // As Kamailio's: each entry named ENTRY, an empty text null.
                let text = |t: &str| if t.is_empty() { Json::Null } else { json!(t) };
                json!({ "ENTRY": {
                    "PRIO": row.pr,
                    "MATCHOP": row.match_op,
                    "MATCHEXP": text(&row.match_exp),
                    "MATCHLEN": row.match_len,
                    "SUBSTEXP": text(&row.subst_exp),
                    "REPLEXP": text(&row.repl_exp),
                    "ATTRS": text(&row.attrs),
                }})
            })
            .collect();
        Ok(json!({ "DPID": dpid, "ENTRIES": entries }))
    })
}

/// An integer RPC parameter: a number or a string of digits.
fn json_int(v: &Json) -> Option<i64> {
    match v {
        Json::Number(n) => n.as_i64(),
        Json::String(s) => parse_id(s.trim()),
        _ => None,
    }
}

/// `$rU`, read and written, for `dp_translate(id)`.
#[derive(Debug)]
struct RuriUser;

impl Eval for RuriUser {
    fn eval(&self, ctx: &mut Ctx<'_>) -> Value<'static> {
        match ctx.msg.ruri_parsed() {
            Ok(u) => match u.user {
                Some(user) if !user.is_empty() => Value::str(user.to_string()),
                _ => Value::Null,
            },
            Err(_) => Value::Null,
        }
    }
}

impl Assign for RuriUser {
    fn assign(&self, ctx: &mut Ctx<'_>, v: Value<'_>) -> Result<(), String> {
        ctx.core.pv_set(ctx.msg, "$rU", v)
    }
}
