//! Probing (Kamailio's `ds_check_timer` and `ds_options_callback`): every
//! `ds_ping_interval` the destinations `ds_probing_mode` selects get a
//! `ds_ping_method` request; each is a non-INVITE client transaction of
//! its own (sip-txn: retransmitted over UDP at tm's `retr_timer1`/
//! `retr_timer2`, given up after tm's `fr_timer` as a 408). A 2xx, or a
//! code of `ds_ping_reply_codes`, is a success, anything else a failure;
//! the state then changes with the thresholds (see [`crate::state`]).

use crate::dest::{Dest, DISABLED, INACTIVE, NODNS, NOPING, PROBING, TRYING};
use sip_txn::TimerConfig;
use sr_mod_tm::local::{Ended, LocalRequests};
use sr_sdk::prelude::*;

/// `ds_probing_mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// 0: only destinations flagged probing, once.
    Flagged,
    /// 1: every destination, always.
    All,
    /// 2: only inactive destinations flagged probing.
    Inactive,
    /// 3: destinations flagged probing, for as long as they are.
    OnlyFlagged,
}

impl Mode {
    /// From the parameter's value.
    pub fn from_int(v: i64) -> Mode {
        match v {
            1 => Mode::All,
            2 => Mode::Inactive,
            3 => Mode::OnlyFlagged,
            _ => Mode::Flagged,
        }
    }

    /// Whether a destination with `flags` is pinged.
    pub fn wants(self, flags: u32) -> bool {
        if flags & (DISABLED | NODNS | NOPING) != 0 {
            return false;
        }
        match self {
            Mode::All => true,
            Mode::Flagged | Mode::OnlyFlagged => flags & PROBING != 0,
            Mode::Inactive => flags & PROBING != 0 && flags & INACTIVE != 0,
        }
    }

    /// The state a ping's result asks for, given the destination's flags
    /// now; `None` when the result is to be ignored (mode 3 with the
    /// probing flag cleared meanwhile).
    pub fn result_state(self, ok: bool, flags: u32) -> Option<u32> {
        if self == Mode::OnlyFlagged && flags & PROBING == 0 {
            return None;
        }
        Some(if ok {
            match self {
                Mode::All | Mode::OnlyFlagged => PROBING,
                _ => 0,
            }
        } else if self == Mode::Flagged {
            TRYING
        } else {
            TRYING | PROBING
        })
    }
}

/// `ds_ping_reply_codes`: classes and codes that count as an answer
/// besides 2xx (`class=2;code=403;code=488`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplyCodes {
    classes: Vec<u16>,
    codes: Vec<u16>,
}

impl ReplyCodes {
    /// Parses the parameter (items split by `;` or `:`).
    pub fn parse(s: &str) -> Result<ReplyCodes, String> {
        let mut r = ReplyCodes::default();
        for item in s.split([';', ':']).map(str::trim).filter(|i| !i.is_empty()) {
            let (k, v) = item
                .split_once('=')
                .ok_or_else(|| format!("ds_ping_reply_codes: '{item}' is not class=N or code=N"))?;
            let n: u16 = v
                .trim()
                .parse()
                .map_err(|_| format!("ds_ping_reply_codes: '{v}' is not a number"))?;
            match k.trim().to_ascii_lowercase().as_str() {
                "class" if (1..=6).contains(&n) => r.classes.push(n),
                "code" if (100..=699).contains(&n) => r.codes.push(n),
                _ => return Err(format!("ds_ping_reply_codes: '{item}' is out of range")),
            }
        }
        Ok(r)
    }

    /// Whether `code` is a success.
    pub fn ok(&self, code: u16) -> bool {
        (200..300).contains(&code)
            || self.codes.contains(&code)
            || self.classes.contains(&(code / 100))
    }
}

/// A ping's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The destination's set.
    pub setid: i32,
    /// The destination's URI.
    pub uri: String,
    /// The reply code (408 when none came, 500 when sending failed).
    pub code: u16,
    /// The reason phrase.
    pub reason: String,
    /// Whether a real reply came.
    pub replied: bool,
    /// The request that was sent (for the event route's message).
    pub request: Vec<u8>,
}

impl Outcome {
    /// A ping that could not be sent (code 500, as Kamailio's).
    pub fn send_failed(d: &Dest, request: Vec<u8>) -> Outcome {
        Outcome {
            setid: d.setid,
            uri: d.uri.clone(),
            code: 500,
            reason: "Sending keepalive failed".into(),
            replied: false,
            request,
        }
    }
}

/// What a ping in flight is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PingTag {
    /// The destination's set.
    pub setid: i32,
    /// The destination's URI.
    pub uri: String,
}

/// The pings in flight: tm's requests of a module's own.
pub struct Pinger {
    reqs: LocalRequests<PingTag>,
}

impl Default for Pinger {
    fn default() -> Self {
        Pinger::new()
    }
}

impl From<Ended<PingTag>> for Outcome {
    fn from(e: Ended<PingTag>) -> Outcome {
        Outcome {
            setid: e.tag.setid,
            uri: e.tag.uri,
            code: e.code,
            reason: e.reason,
            replied: e.replied,
            request: e.request,
        }
    }
}

impl Pinger {
    /// A pinger with a key of its own in its branches, so that only
    /// replies to its requests are taken.
    pub fn new() -> Pinger {
        Pinger {
            reqs: LocalRequests::new("ds"),
        }
    }

    /// Pings in flight.
    pub fn in_flight(&self) -> usize {
        self.reqs.in_flight()
    }

    /// The request for `d`: `method` from `from`, sent from `local`
    /// (`host:port`) over `proto`, with the core's User-Agent line `ua`;
    /// its number. Its headers in the order of Kamailio's tm requests.
    pub fn request(
        &self,
        d: &Dest,
        method: &str,
        from: &str,
        proto: Proto,
        local: &str,
        ua: Option<&str>,
    ) -> (u64, Vec<u8>) {
        let (n, branch) = self.reqs.next_branch();
        let key = self.reqs.key();
        let ua = ua.map_or(String::new(), |u| format!("{u}\r\n"));
        let text = format!(
            "{method} {uri} SIP/2.0\r\nVia: SIP/2.0/{via} {local};branch={branch}\r\nTo: <{uri}>\r\nFrom: <{from}>;tag={key}.{n}\r\nCSeq: 10 {method}\r\nCall-ID: ds{key}.{n}@{local}\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n{ua}\r\n",
            uri = d.uri,
            via = proto.via_name(),
        );
        (n, text.into_bytes())
    }

    /// Starts a ping; the outcome at once when the send fails (500, as
    /// Kamailio's).
    pub fn start(
        &self,
        core: &dyn Core,
        d: &Dest,
        n: u64,
        data: Vec<u8>,
        to: Target,
        timers: &TimerConfig,
    ) -> Option<Outcome> {
        let tag = PingTag {
            setid: d.setid,
            uri: d.uri.clone(),
        };
        self.reqs
            .start(core, n, data, to, timers, tag)
            .map(|e| Outcome::send_failed(d, e.request))
    }

    /// A reply from the module's reply hook: whether it answers one of
    /// our pings, and if it ends one, its outcome.
    pub fn take_reply(&self, msg: &SipMsg) -> sr_mod_tm::local::Taken<PingTag> {
        self.reqs.take_reply(msg)
    }

    /// Runs the transactions' timers: retransmits, and gives the pings
    /// that got no final reply in time (408).
    pub fn tick(&self, core: &dyn Core) -> Vec<Outcome> {
        self.reqs
            .tick(core)
            .into_iter()
            .map(Outcome::from)
            .collect()
    }
}

/// Where a ping goes (the core's destination type).
pub type Target = sr_sdk::Dest;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn who_is_pinged() {
        assert!(Mode::All.wants(0));
        assert!(!Mode::All.wants(DISABLED));
        assert!(!Mode::All.wants(NOPING));
        assert!(!Mode::Flagged.wants(0));
        assert!(Mode::Flagged.wants(PROBING));
        assert!(!Mode::Inactive.wants(PROBING));
        assert!(Mode::Inactive.wants(PROBING | INACTIVE));
        assert!(Mode::OnlyFlagged.wants(PROBING | TRYING));
    }

    #[test]
    fn results_to_states() {
        assert_eq!(Mode::All.result_state(true, 0), Some(PROBING));
        assert_eq!(
            Mode::Flagged.result_state(true, PROBING),
            Some(0),
            "mode 0: pinged once"
        );
        assert_eq!(Mode::Flagged.result_state(false, PROBING), Some(TRYING));
        assert_eq!(Mode::All.result_state(false, 0), Some(TRYING | PROBING));
        assert_eq!(Mode::OnlyFlagged.result_state(true, 0), None);
        assert_eq!(
            Mode::Inactive.result_state(true, INACTIVE | PROBING),
            Some(0)
        );
    }

    #[test]
    fn reply_codes() {
        let r = ReplyCodes::parse("class=6;code=503").unwrap();
        assert!(r.ok(200) && r.ok(603) && r.ok(503));
        assert!(!r.ok(500) && !r.ok(408) && !r.ok(100));
        assert!(ReplyCodes::parse("class=9").is_err());
        assert!(ReplyCodes::parse("code").is_err());
        assert_eq!(ReplyCodes::parse("").unwrap(), ReplyCodes::default());
    }

    #[test]
    fn replies_end_their_pings() {
        let p = Pinger::new();
        let d = Dest {
            uri: "sip:a".into(),
            setid: 1,
            priority: 0,
            attrs: Default::default(),
            load_flags: 0,
            flags: Default::default(),
            count: Default::default(),
            addr: None,
            socket_addr: None,
        };
        let (n, req) = p.request(
            &d,
            "OPTIONS",
            "sip:ds@x",
            Proto::Udp,
            "127.0.0.1:5060",
            None,
        );
        let text = String::from_utf8(req).unwrap();
        let branch = text
            .split("branch=")
            .nth(1)
            .and_then(|b| b.split("\r\n").next())
            .unwrap()
            .to_string();
        assert!(branch.starts_with("z9hG4bKds") && branch.ends_with(&format!(".{n}")));
        let reply = |b: &str| {
            let t = format!("SIP/2.0 503 Busy\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch={b}\r\nFrom: <sip:ds@x>;tag=1\r\nTo: <sip:a>;tag=2\r\nCall-ID: c\r\nCSeq: 10 OPTIONS\r\nContent-Length: 0\r\n\r\n");
            SipMsg::parse(bytes::Bytes::from(t), sr_sdk::RecvInfo::loopback(), 1).unwrap()
        };
        use sr_mod_tm::local::Taken;
        assert!(
            matches!(p.take_reply(&reply("z9hG4bKother")), Taken::NotOurs),
            "not ours"
        );
        assert!(
            matches!(p.take_reply(&reply(&branch)), Taken::Absorbed),
            "ours, not in flight"
        );
    }
}
