//! The module parameters, with Kamailio's names and defaults.

use crate::proxy::ProxyConfig;
use sr_sdk::prelude::*;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Every `modparam("tm", ...)` value.
#[derive(Debug)]
pub struct Params {
    /// `fr_timer` (ms).
    pub fr_timer: Arc<AtomicI64>,
    /// `fr_inv_timer` (ms).
    pub fr_inv_timer: Arc<AtomicI64>,
    /// `retr_timer1` (ms).
    pub retr_timer1: Arc<AtomicI64>,
    /// `retr_timer2` (ms).
    pub retr_timer2: Arc<AtomicI64>,
    /// `wt_timer` (ms).
    pub wt_timer: Arc<AtomicI64>,
    /// `max_inv_lifetime` (ms).
    pub max_inv_lifetime: Arc<AtomicI64>,
    /// `max_noninv_lifetime` (ms).
    pub max_noninv_lifetime: Arc<AtomicI64>,
    /// `failure_reply_mode`.
    pub failure_reply_mode: Arc<AtomicI64>,
    /// `restart_fr_on_each_reply`.
    pub restart_fr_on_each_reply: Arc<AtomicI64>,
    /// `auto_inv_100`.
    pub auto_inv_100: Arc<AtomicI64>,
    /// `auto_inv_100_reason`.
    pub auto_inv_100_reason: Arc<RwLock<String>>,
    /// `noisy_ctimer`.
    pub noisy_ctimer: Arc<AtomicI64>,
    /// `disable_6xx_block`: a 6xx neither ends the forking nor cancels
    /// the other branches.
    pub disable_6xx_block: Arc<AtomicI64>,
    /// `unmatched_cancel`: 0 forward statefully, 1 statelessly, 2 drop.
    pub unmatched_cancel: Arc<AtomicI64>,
    /// `e2e_cancel_reason`.
    pub e2e_cancel_reason: Arc<AtomicI64>,
    /// `aggregate_challenges`.
    pub aggregate_challenges: Arc<AtomicI64>,
    /// `reply_408_reason`.
    pub reply_408_reason: Arc<RwLock<String>>,
    /// `contacts_avp`: where `t_load_contacts` keeps the contacts still to
    /// try (empty: tm's own name).
    pub contacts_avp: Arc<RwLock<String>>,
    /// `contact_flows_avp`: where `t_next_contacts` keeps the other flows
    /// of the instances it forked to (empty: tm's own name).
    pub contact_flows_avp: Arc<RwLock<String>>,
    /// `blst_503`: blocklist the source of a 503 reply.
    pub blst_503: Arc<AtomicI64>,
    /// `blst_503_def_timeout` (s): for a 503 without Retry-After (0: not
    /// blocklisted).
    pub blst_503_def_timeout: Arc<AtomicI64>,
    /// `blst_503_min_timeout` (s).
    pub blst_503_min_timeout: Arc<AtomicI64>,
    /// `blst_503_max_timeout` (s).
    pub blst_503_max_timeout: Arc<AtomicI64>,
    /// `blst_methods_add`: the methods (Kamailio's method bits) whose
    /// timeouts blocklist the destination.
    pub blst_methods_add: Arc<AtomicI64>,
    /// `blst_methods_lookup`: the methods looked up in the blocklist
    /// before a branch is sent.
    pub blst_methods_lookup: Arc<AtomicI64>,
    /// Proxy settings already made, shared by the transactions they suit.
    proxy_configs: RwLock<Vec<(ConfigKey, Arc<ProxyConfig>)>>,
}

/// What a transaction's proxy settings are made from, but the 408 reason
/// (compared separately, without copying it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ConfigKey {
    invite: bool,
    stream_up: bool,
    overrides: Overrides,
    params: [i64; 12],
}

/// How many different settings are kept at most (more only with many
/// different per-transaction overrides; then the list starts again).
const CONFIGS_KEPT: usize = 16;

fn int(v: i64) -> Arc<AtomicI64> {
    Arc::new(AtomicI64::new(v))
}

fn text(s: &str) -> Arc<RwLock<String>> {
    Arc::new(RwLock::new(s.to_string()))
}

impl Default for Params {
    fn default() -> Self {
        Params {
            fr_timer: int(30_000),
            fr_inv_timer: int(120_000),
            retr_timer1: int(500),
            retr_timer2: int(4_000),
            wt_timer: int(5_000),
            max_inv_lifetime: int(180_000),
            max_noninv_lifetime: int(32_000),
            failure_reply_mode: int(3),
            restart_fr_on_each_reply: int(1),
            auto_inv_100: int(1),
            auto_inv_100_reason: text("trying -- your call is important to us"),
            noisy_ctimer: int(1),
            disable_6xx_block: int(0),
            unmatched_cancel: int(0),
            e2e_cancel_reason: int(1),
            aggregate_challenges: int(1),
            reply_408_reason: text("Request Timeout"),
            contacts_avp: text(""),
            contact_flows_avp: text(""),
            blst_503: int(0),
            blst_503_def_timeout: int(0),
            blst_503_min_timeout: int(0),
            blst_503_max_timeout: int(3600),
            blst_methods_add: int(1),
            blst_methods_lookup: int(4_294_967_287),
            proxy_configs: RwLock::new(Vec::new()),
        }
    }
}

/// Per-transaction overrides (`t_set_fr`, `t_set_retr`,
/// `t_set_max_lifetime`), in milliseconds; 0 keeps the default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `fr_inv_timer`.
    pub fr_inv: u64,
    /// `fr_timer`.
    pub fr: u64,
    /// `retr_timer1`.
    pub t1: u64,
    /// `retr_timer2`.
    pub t2: u64,
    /// `max_inv_lifetime`.
    pub max_inv: u64,
    /// `max_noninv_lifetime`.
    pub max_noninv: u64,
    /// `t_set_disable_6xx`.
    pub disable_6xx: Option<bool>,
}

impl Params {
    /// Reads a flag parameter.
    pub fn flag(a: &AtomicI64) -> bool {
        a.load(Ordering::Relaxed) != 0
    }

    /// Reads a string parameter.
    pub fn text(s: &RwLock<String>) -> String {
        s.read().map(|g| g.clone()).unwrap_or_default()
    }

    /// Runs `f` on a string parameter without copying it.
    pub fn with_text<R>(s: &RwLock<String>, f: impl FnOnce(&str) -> R) -> R {
        match s.read() {
            Ok(g) => f(&g),
            Err(_) => f(""),
        }
    }

    /// The proxy settings for a new transaction: one shared copy for all
    /// transactions made under the same parameters and overrides.
    pub fn proxy_config(&self, invite: bool, o: &Overrides, stream_up: bool) -> Arc<ProxyConfig> {
        let key = ConfigKey {
            invite,
            stream_up,
            overrides: *o,
            params: [
                &self.fr_timer,
                &self.fr_inv_timer,
                &self.retr_timer1,
                &self.retr_timer2,
                &self.wt_timer,
                &self.max_inv_lifetime,
                &self.max_noninv_lifetime,
                &self.restart_fr_on_each_reply,
                &self.failure_reply_mode,
                &self.aggregate_challenges,
                &self.noisy_ctimer,
                &self.disable_6xx_block,
            ]
            .map(|a| a.load(Ordering::Relaxed)),
        };
        if let Ok(kept) = self.proxy_configs.read() {
            let found = kept.iter().find(|(k, c)| {
                *k == key && Self::with_text(&self.reply_408_reason, |r| r == c.reason_408)
            });
            if let Some((_, c)) = found {
                return Arc::clone(c);
            }
        }
        let c = Arc::new(self.make_proxy_config(&key));
        if let Ok(mut kept) = self.proxy_configs.write() {
            kept.retain(|(k, _)| *k != key);
            if kept.len() >= CONFIGS_KEPT {
                kept.clear();
            }
            kept.push((key, Arc::clone(&c)));
        }
        c
    }

    /// The settings from the values in `k` (read once, so that what is
    /// kept under a key is what that key says).
    fn make_proxy_config(&self, k: &ConfigKey) -> ProxyConfig {
        let [fr, fr_inv, t1, t2, wt, max_inv, max_noninv, restart, frm, aggregate, noisy, no6xx] =
            k.params;
        let ms = |v: i64, over: u64| {
            Duration::from_millis(if over > 0 { over } else { v.max(1) as u64 })
        };
        let o = &k.overrides;
        let mut c = ProxyConfig::kamailio(
            ms(fr, o.fr),
            ms(fr_inv, o.fr_inv),
            ms(t1, o.t1),
            ms(t2, o.t2),
            ms(wt, 0),
        );
        c.restart_fr = restart != 0;
        c.max_lifetime = if k.invite {
            ms(max_inv, o.max_inv)
        } else {
            ms(max_noninv, o.max_noninv)
        };
        c.failure_reply_mode = frm.clamp(0, 3) as u8;
        c.aggregate_challenges = aggregate != 0;
        c.noisy_ctimer = noisy != 0;
        c.disable_6xx = o.disable_6xx.unwrap_or(no6xx != 0);
        c.reason_408 = Self::text(&self.reply_408_reason);
        c.upstream_stream = k.stream_up;
        c
    }

    /// Adds the parameters to the module definition.
    pub fn export(&self, def: ModuleDef) -> ModuleDef {
        let ints: [(&str, &Arc<AtomicI64>); 21] = [
            ("fr_timer", &self.fr_timer),
            ("fr_inv_timer", &self.fr_inv_timer),
            ("retr_timer1", &self.retr_timer1),
            ("retr_timer2", &self.retr_timer2),
            ("wt_timer", &self.wt_timer),
            ("max_inv_lifetime", &self.max_inv_lifetime),
            ("max_noninv_lifetime", &self.max_noninv_lifetime),
            ("failure_reply_mode", &self.failure_reply_mode),
            ("restart_fr_on_each_reply", &self.restart_fr_on_each_reply),
            ("auto_inv_100", &self.auto_inv_100),
            ("noisy_ctimer", &self.noisy_ctimer),
            ("disable_6xx_block", &self.disable_6xx_block),
            ("unmatched_cancel", &self.unmatched_cancel),
            ("e2e_cancel_reason", &self.e2e_cancel_reason),
            ("aggregate_challenges", &self.aggregate_challenges),
            ("blst_503", &self.blst_503),
            ("blst_503_def_timeout", &self.blst_503_def_timeout),
            ("blst_503_min_timeout", &self.blst_503_min_timeout),
            ("blst_503_max_timeout", &self.blst_503_max_timeout),
            ("blst_methods_add", &self.blst_methods_add),
            ("blst_methods_lookup", &self.blst_methods_lookup),
        ];
        let mut def = def;
        for (name, cell) in ints {
            def = def.param(name, ParamKind::Int, params::int(cell));
        }
        def.param(
            "auto_inv_100_reason",
            ParamKind::Str,
            params::string(&self.auto_inv_100_reason),
        )
        .param(
            "reply_408_reason",
            ParamKind::Str,
            params::string(&self.reply_408_reason),
        )
        .param(
            "contacts_avp",
            ParamKind::Str,
            params::string(&self.contacts_avp),
        )
        .param(
            "contact_flows_avp",
            ParamKind::Str,
            params::string(&self.contact_flows_avp),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transactions_share_settings_until_a_parameter_changes() {
        let p = Params::default();
        let none = Overrides::default();
        let a = p.proxy_config(true, &none, false);
        let b = p.proxy_config(true, &none, false);
        assert!(Arc::ptr_eq(&a, &b), "same parameters: one shared copy");
        assert!(!Arc::ptr_eq(&a, &p.proxy_config(false, &none, false)));
        assert!(!Arc::ptr_eq(&a, &p.proxy_config(true, &none, true)));
        let fr = Overrides {
            fr_inv: 7_000,
            ..none
        };
        let c = p.proxy_config(true, &fr, false);
        assert_eq!(c.fr_inv, Duration::from_millis(7_000));
        assert_eq!(a.fr_inv, Duration::from_millis(120_000));

        p.fr_timer.store(1_500, Ordering::Relaxed);
        let d = p.proxy_config(true, &none, false);
        assert!(!Arc::ptr_eq(&a, &d));
        assert_eq!(d.timers.timer_b, Duration::from_millis(1_500));

        *p.reply_408_reason.write().unwrap() = "Nobody Home".into();
        let e = p.proxy_config(true, &none, false);
        assert_eq!(e.reason_408, "Nobody Home");
        assert_eq!(d.reason_408, "Request Timeout");
        assert!(Arc::ptr_eq(&e, &p.proxy_config(true, &none, false)));
    }

    #[test]
    fn many_different_overrides_keep_a_bounded_list() {
        let p = Params::default();
        for i in 1..=100u64 {
            let o = Overrides {
                fr: i,
                ..Overrides::default()
            };
            assert_eq!(
                p.proxy_config(false, &o, false).timers.timer_f,
                Duration::from_millis(i)
            );
        }
        assert!(p.proxy_configs.read().unwrap().len() <= CONFIGS_KEPT);
    }
}
