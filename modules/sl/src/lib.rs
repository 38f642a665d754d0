//! # sl: stateless replies
//!
//! Kamailio's `sl` module: `sl_send_reply(code, reason)`,
//! `send_reply(code, reason)` (stateful when the request has a
//! transaction, else stateless), `sl_reply_error()` /
//! `send_reply_error()` (a reply chosen from the last internal error),
//! and the statistics `sl:1xx_replies` ... `sl:xxx_replies`,
//! `sent_replies`, `sent_err_replies`, `failures`, `received_ACKs`, with
//! the RPC `sl.stats`. Like Kamailio's, it absorbs the ACK of a negative
//! reply it sent statelessly before the script runs.
//!
//! Stateful replies go through the API the `tm` module publishes under the
//! name `tm` as [`StatefulReply`].
#![forbid(unsafe_code)]

use sr_sdk::prelude::*;
use sr_sdk::LateFailure;
use std::sync::{Arc, OnceLock};

/// What `tm` offers `sl` for `send_reply`: reply within the transaction
/// of this request, if it has one. Returns `None` when there is no
/// transaction (sl then replies statelessly).
pub trait StatefulReply: Send + Sync {
    /// Replies statefully; `Some(rc)` when a transaction took the reply.
    fn reply_if_transaction(&self, ctx: &mut Ctx<'_>, code: u16, reason: &str) -> Option<i32>;
}

/// The name under which `tm` publishes its [`StatefulReply`] API.
pub const STATEFUL_API: &str = "sl.stateful_reply";

/// The name under which sl publishes [`SlApi`].
pub const SL_API: &str = "sl";

/// sl's stateless reply for other modules (Kamailio's sl API, which the
/// registrar and auth reply through): sent and counted as
/// `sl_send_reply` does.
pub struct SlApi(Arc<Stats>);

impl SlApi {
    /// Replies statelessly as `sl_send_reply`: 1 sent, -1 not.
    pub fn reply(&self, ctx: &mut Ctx<'_>, code: u16, reason: &str) -> i32 {
        stateless(ctx, &self.0, code, reason)
    }
}

/// Replies to a request for a module: within its transaction when `tm`
/// has one, else statelessly through sl when it is loaded (counted in sl's
/// statistics, as in Kamailio), else through the core. tm's and sl's APIs
/// are looked up at the first reply (when every module's `mod_init` has
/// run) and kept. The registrar and auth keep one; sl's own `send_reply()`
/// uses one too.
#[derive(Default)]
pub struct Replier {
    tm: OnceLock<Option<Arc<dyn StatefulReply>>>,
    sl: OnceLock<Option<Arc<SlApi>>>,
}

impl std::fmt::Debug for Replier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Replier")
    }
}

impl Replier {
    /// Replies; `true` when the reply was sent (or handed to the worker's
    /// batch).
    pub fn send(&self, ctx: &mut Ctx<'_>, code: u16, reason: &str) -> bool {
        self.reply(ctx, code, reason) > 0
    }

    /// Replies; the return code of tm's reply or of `sl_send_reply`.
    fn reply(&self, ctx: &mut Ctx<'_>, code: u16, reason: &str) -> i32 {
        let core = ctx.core;
        let tm = self.tm.get_or_init(|| {
            core.get_api(STATEFUL_API)
                .and_then(|a| a.downcast::<Arc<dyn StatefulReply>>().ok())
                .map(|a| (*a).clone())
        });
        if let Some(rc) = tm
            .as_ref()
            .and_then(|tm| tm.reply_if_transaction(ctx, code, reason))
        {
            return rc;
        }
        let sl = self.sl.get_or_init(|| {
            core.get_api(SL_API)
                .and_then(|a| a.downcast::<SlApi>().ok())
        });
        if let Some(sl) = sl {
            return sl.reply(ctx, code, reason);
        }
        match core.send_reply(ctx.msg, code, reason) {
            Ok(()) => 1,
            Err(e) => {
                lm_err!("cannot send {code} reply: {e}");
                -1
            }
        }
    }
}

/// Codes with a counter of their own, in Kamailio's order.
const NAMED: [u16; 13] = [
    200, 202, 300, 301, 302, 400, 401, 403, 404, 407, 408, 483, 500,
];

/// sl's counters.
struct Stats {
    named: Vec<(u16, Stat)>,
    classes: [Stat; 6],
    xxx: Stat,
    sent: Stat,
    sent_err: Stat,
    failures: Stat,
    acks: Stat,
    /// The late-failure hook of each status code 100–699, made on first
    /// use, so that a stateless reply does not allocate one.
    hooks: Box<[OnceLock<LateFailure>]>,
}

impl Stats {
    fn new() -> Stats {
        Stats {
            hooks: (100..700).map(|_| OnceLock::new()).collect(),
            named: NAMED.iter().map(|c| (*c, Stat::new())).collect(),
            classes: Default::default(),
            xxx: Stat::new(),
            sent: Stat::new(),
            sent_err: Stat::new(),
            failures: Stat::new(),
            acks: Stat::new(),
        }
    }

    /// Counts a reply with `code` as sent.
    fn count(&self, code: u16) {
        self.add(code, 1);
    }

    /// What the core runs when a reply with `code`, held for the end of
    /// the batch, is refused by the kernel: [`Stats::failed_late`]. The
    /// hook holds the statistics weakly (they hold the hook).
    fn hook(self: &Arc<Self>, code: u16) -> LateFailure {
        let make = || -> LateFailure {
            let st = Arc::downgrade(self);
            Arc::new(move || {
                if let Some(st) = st.upgrade() {
                    st.failed_late(code);
                }
            })
        };
        match self.hooks.get(usize::from(code).wrapping_sub(100)) {
            Some(h) => h.get_or_init(make).clone(),
            None => make(),
        }
    }

    /// Undoes [`Stats::count`] for a reply the kernel refused after it was
    /// held for the end of a batch, and counts it as a failure.
    fn failed_late(&self, code: u16) {
        self.add(code, -1);
        self.failures.inc();
    }

    /// Adds `n` to the sent-reply counters that `code` belongs to.
    fn add(&self, code: u16, n: i64) {
        self.sent.add(n);
        if let Some((_, s)) = self.named.iter().find(|(c, _)| *c == code) {
            s.add(n);
        } else if (100..700).contains(&code) {
            self.classes[(code / 100 - 1) as usize].add(n);
        } else {
            self.xxx.add(n);
        }
    }

    /// The statistics in Kamailio's order: each class after its named codes.
    fn export(&self, mut def: ModuleDef) -> ModuleDef {
        for class in 1..=6u16 {
            for (c, s) in self.named.iter().filter(|(c, _)| c / 100 == class) {
                def = def.stat(&format!("{c}_replies"), s.clone());
            }
            def = def.stat(
                &format!("{class}xx_replies"),
                self.classes[class as usize - 1].clone(),
            );
        }
        def.stat("xxx_replies", self.xxx.clone())
            .stat("sent_replies", self.sent.clone())
            .stat("sent_err_replies", self.sent_err.clone())
            .stat("failures", self.failures.clone())
            .stat("received_ACKs", self.acks.clone())
    }
}

fn parse_code(ctx: &mut Ctx<'_>, p: &Fixed) -> Option<u16> {
    let c = p.int(ctx);
    (100..700).contains(&c).then_some(c as u16)
}

fn stateless(ctx: &mut Ctx<'_>, st: &Arc<Stats>, code: u16, reason: &str) -> i32 {
    if !ctx.msg.is_request() {
        lm_err!("sl_send_reply: not a request");
        return -1;
    }
    if ctx.msg.msg().method() == Some(Method::Ack) {
        return 1;
    }
    let core = ctx.core;
    match core.send_reply_then(ctx.msg, code, reason, st.hook(code)) {
        Ok(()) => {
            st.count(code);
            1
        }
        Err(e) => {
            st.failures.inc();
            lm_err!("sl_send_reply {code}: {e}");
            -1
        }
    }
}

fn last_error(ctx: &mut Ctx<'_>) -> (u16, String) {
    ctx.msg.error_reply("SL")
}

/// The module definition.
pub fn module() -> ModuleDef {
    let st = Arc::new(Stats::new());
    let sl_api = Arc::new(SlApi(st.clone()));
    // sl's own send_reply(): tm's transaction if any, else this module.
    let replier = Arc::new(Replier {
        tm: OnceLock::new(),
        sl: OnceLock::from(Some(sl_api.clone())),
    });
    let rt = RouteType::REQUEST | RouteType::FAILURE | RouteType::BRANCH | RouteType::EVENT;
    let fx = Some(fixup::f(reply_fixup));
    let (s1, s3, s5, s6) = (st.clone(), st.clone(), st.clone(), st.clone());
    let (r1, r2, r3) = (replier.clone(), replier.clone(), replier);
    let mut def = ModuleDef::new("sl")
        .cmd("sl_send_reply", 2, rt, fx.clone(), move |ctx, p| {
            let Some(code) = parse_code(ctx, &p[0]) else {
                lm_err!("sl_send_reply: invalid status code");
                return -1;
            };
            let reason = p[1].str(ctx).into_owned();
            stateless(ctx, &s1, code, &reason)
        })
        .cmd("send_reply", 2, rt, fx, move |ctx, p| {
            let Some(code) = parse_code(ctx, &p[0]) else {
                lm_err!("send_reply: invalid status code");
                return -1;
            };
            let reason = p[1].str(ctx).into_owned();
            r1.reply(ctx, code, &reason)
        })
        .cmd(
            "send_reply_mode",
            3,
            rt,
            Some(fixup::f(reply_fixup3)),
            move |ctx, p| {
                let Some(code) = parse_code(ctx, &p[0]) else {
                    lm_err!("send_reply_mode: invalid status code");
                    return -1;
                };
                let reason = p[1].str(ctx).into_owned();
                let mode = p[2].int(ctx);
                // 1: no new connection for the reply; 2: close the
                // connection after it.
                if mode & 1 != 0 {
                    ctx.msg.reply_flags.no_connect = true;
                }
                if mode & 2 != 0 {
                    ctx.msg.reply_flags.close = true;
                }
                r3.reply(ctx, code, &reason)
            },
        )
        .pipe(|d| {
            let mut d = d;
            for n in 0..=2usize {
                d = d.cmd(
                    "sl_forward_reply",
                    n,
                    RouteType::ONREPLY,
                    Some(fixup::f(reply_fixup)),
                    |ctx, p| {
                        let code = match p.first() {
                            Some(c) => match parse_code(ctx, c) {
                                Some(c) => Some(c),
                                None => {
                                    lm_err!("sl_forward_reply: invalid status code");
                                    return -1;
                                }
                            },
                            None => None,
                        };
                        let reason = p.get(1).map(|r| r.str(ctx).into_owned());
                        forward_reply_now(ctx, code, reason.as_deref())
                    },
                );
            }
            d
        })
        .cmd("sl_reply_error", 0, rt, None, move |ctx, _| {
            let (c, r) = last_error(ctx);
            let rc = stateless(ctx, &s3, c, &r);
            // Kamailio counts in sent_err_replies the replies of
            // sl_reply_error only (not every reply of 300 and above).
            if rc > 0 {
                s3.sent_err.inc();
            }
            rc
        })
        .cmd("send_reply_error", 0, rt, None, move |ctx, _| {
            let (c, r) = last_error(ctx);
            r2.reply(ctx, c, &r)
        });
    // Kamailio's sl_filter_ACK: the ACK of a negative reply sent
    // statelessly ends there (the reply has no transaction to absorb it),
    // before the script could relay it to the Request-URI.
    def = def.on_request(move |ctx| {
        if ctx.msg.msg().method() != Some(Method::Ack) || !ctx.core.is_local_ack(ctx.msg) {
            return false;
        }
        s6.acks.inc();
        lm_dbg!("sl: ACK of a local stateless reply absorbed");
        true
    });
    def = st.export(def);
    def = def.on_init(move |core| {
        core.register_api(SL_API, sl_api.clone());
        Ok(())
    });
    def.rpc("sl.stats", "Stateless reply counters.", move |_| {
        // Kamailio's fields and order: from 2xx on, each class's named
        // codes then the class, then the codes outside them.
        let mut m = JsonMap::new();
        for class in 2..=6u16 {
            for (c, s) in s5.named.iter().filter(|(c, _)| c / 100 == class) {
                m.insert(c.to_string(), json!(s.get()));
            }
            m.insert(
                format!("{class}xx"),
                json!(s5.classes[class as usize - 1].get()),
            );
        }
        m.insert("xxx".into(), json!(s5.xxx.get()));
        Ok(Json::Object(m))
    })
}

/// `send_reply_mode`'s parameters: as `sl_send_reply`'s, then the mode
/// (an integer or a PV).
fn reply_fixup3(env: &dyn fixup::FixupEnv, i: usize, a: &Arg) -> Result<Fixed, String> {
    if i == 2 {
        fixup::igp(env, i, a)
    } else {
        reply_fixup(env, i, a)
    }
}

/// `sl_forward_reply([code[, reason]])`: a copy of the received reply sent
/// on now (the core still relays the reply itself when the route ends,
/// unless the route drops it, as in Kamailio), with another code of the
/// same class and reason when given.
fn forward_reply_now(ctx: &mut Ctx<'_>, code: Option<u16>, reason: Option<&str>) -> i32 {
    let Some(old) = ctx.msg.msg().status() else {
        lm_err!("sl_forward_reply: not a reply");
        return -1;
    };
    let Some(mut copy) = ctx.msg.over_same_original(ctx.msg.id) else {
        return -1;
    };
    copy.edits = ctx.msg.edits.clone();
    if let Some(code) = code {
        // The new status line replaces one the route changed already
        // (change_reply_status...): those edits are left out of the copy.
        let status_at = {
            let raw = ctx.msg.msg().raw();
            raw.iter()
                .position(|&b| b == b' ')
                .map_or(0, |i| i as u32 + 1)
        };
        let mut e = sr_sdk::sip_msg::edit::Edits::new();
        for (at, end, text) in ctx.msg.edits.ops() {
            if at != status_at {
                e.replace(at, end, text);
            }
        }
        if let Some((body, ct)) = ctx.msg.edits.body() {
            e.set_body(body, ct);
        }
        copy.edits = e;
        if code / 100 != old / 100 {
            lm_err!("sl_forward_reply: reply code class cannot be changed");
            return -1;
        }
        let m = copy.msg();
        let raw = m.raw();
        let line_end = raw
            .iter()
            .position(|&b| b == b'\r' || b == b'\n')
            .unwrap_or(raw.len());
        let Some(sp) = raw[..line_end].iter().position(|&b| b == b' ') else {
            return -1;
        };
        let reason = match reason {
            Some(r) => r.to_string(),
            None => m.reason().unwrap_or("").to_string(),
        };
        let text = format!("{code} {reason}");
        copy.edits
            .replace((sp + 1) as u32, line_end as u32, text.as_bytes());
    }
    match ctx.core.forward_reply(&mut copy) {
        Ok(()) => 1,
        Err(e) => {
            lm_err!("sl_forward_reply: {e}");
            -1
        }
    }
}

/// Code (integer or PV) then reason (one PV, else a string with PVs:
/// Kamailio's `fixup_var_pve_str`).
fn reply_fixup(env: &dyn fixup::FixupEnv, i: usize, a: &Arg) -> Result<Fixed, String> {
    if i == 0 {
        let f = fixup::igp(env, i, a)?;
        if let Fixed::Int(c) = f {
            if !(100..700).contains(&c) {
                return Err(format!("{c} is not a status code (100-699)"));
            }
        }
        Ok(f)
    } else {
        fixup::var_pve_str(env, i, a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_codes_late_failure_hook_is_made_once_and_undoes_its_count() {
        let st = Arc::new(Stats::new());
        let (a, b) = (st.hook(200), st.hook(200));
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &st.hook(404)));
        st.count(200);
        st.count(200);
        a();
        let named = |code| st.named.iter().find(|(c, _)| *c == code).unwrap().1.get();
        assert_eq!((named(200), st.sent.get(), st.failures.get()), (1, 1, 1));
        // A code outside 100-699 (from a module's set_error) still works.
        let odd = st.hook(99);
        st.count(99);
        odd();
        assert_eq!((st.xxx.get(), st.failures.get()), (0, 2));
        // The last codes with a hook of their own, and the first without.
        assert!(Arc::ptr_eq(&st.hook(699), &st.hook(699)));
        assert!(!Arc::ptr_eq(&st.hook(700), &st.hook(700)));
        // The hooks hold the statistics weakly: no cycle keeps them alive.
        let w = Arc::downgrade(&st);
        drop((a, b, odd, st));
        assert!(w.upgrade().is_none());
    }
}
