//! Core statistics with Kamailio's names (`core:rcv_requests`,
//! `rcv_requests_invite`, `rcv_replies_2xx`, `fwd_requests`, ...).

use sr_sdk::stats::{StatExport, StatSource};
use sr_sdk::Stat;

/// Methods with their own `rcv_requests_<method>` counter.
pub const METHODS: [&str; 15] = [
    "invite",
    "cancel",
    "ack",
    "bye",
    "info",
    "register",
    "subscribe",
    "notify",
    "message",
    "options",
    "prack",
    "update",
    "refer",
    "publish",
    "kdmq",
];

/// Reply classes with their own counter.
pub const CLASSES: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "6xx"];

/// The core counters.
#[derive(Debug, Default)]
pub struct CoreStats {
    /// `rcv_requests`
    pub rcv_requests: Stat,
    /// `rcv_requests_<method>`, in [`METHODS`] order.
    pub rcv_by_method: [Stat; 15],
    /// `rcv_replies`
    pub rcv_replies: Stat,
    /// `rcv_replies_<class>`, in [`CLASSES`] order.
    pub rcv_by_class: [Stat; 6],
    /// `rcv_replies_18x`
    pub rcv_18x: Stat,
    /// `rcv_replies_401`, `_404`, `_407`, `_480`, `_486`
    pub rcv_codes: [Stat; 5],
    /// `fwd_requests`
    pub fwd_requests: Stat,
    /// `fwd_replies`
    pub fwd_replies: Stat,
    /// `drop_requests`
    pub drop_requests: Stat,
    /// `drop_replies`
    pub drop_replies: Stat,
    /// `err_requests`
    pub err_requests: Stat,
    /// `err_replies`
    pub err_replies: Stat,
    /// `bad_URIs_rcvd`
    pub bad_uris_rcvd: Stat,
    /// `unsupported_methods`
    pub unsupported_methods: Stat,
    /// `bad_msg_hdr`
    pub bad_msg_hdr: Stat,
    /// `udp_recv_batches` (siprouter's own): receive calls of the UDP
    /// workers that returned datagrams.
    pub udp_recv_batches: Stat,
    /// `udp_batch_waits` (siprouter's own): times a UDP worker slept
    /// between batches under load (`udp_batch_wait`).
    pub udp_batch_waits: Stat,
    /// `udp_steered` (siprouter's own, a gauge): UDP addresses whose
    /// datagrams all go to one worker now (`udp_steer_low_load`).
    pub udp_steered: Stat,
}

const CODES: [u16; 5] = [401, 404, 407, 480, 486];

impl CoreStats {
    /// Counts a received request.
    pub fn request(&self, method: &str) {
        self.rcv_requests.inc();
        match METHODS.iter().position(|m| m.eq_ignore_ascii_case(method)) {
            Some(i) => self.rcv_by_method[i].inc(),
            None => self.unsupported_methods.inc(),
        }
    }

    /// Counts a received reply.
    pub fn reply(&self, code: u16) {
        self.rcv_replies.inc();
        let class = (code / 100) as usize;
        if (1..=6).contains(&class) {
            self.rcv_by_class[class - 1].inc();
        }
        if (180..190).contains(&code) {
            self.rcv_18x.inc();
        }
        if let Some(i) = CODES.iter().position(|c| *c == code) {
            self.rcv_codes[i].inc();
        }
    }

    /// The statistics for the registry, in Kamailio's order.
    pub fn exports(&self) -> Vec<StatExport> {
        let mut v = Vec::new();
        let mut add = |name: String, s: &Stat| {
            v.push(StatExport {
                name,
                no_reset: false,
                source: StatSource::Value(s.clone()),
            })
        };
        add("rcv_requests".into(), &self.rcv_requests);
        for (m, s) in METHODS.iter().zip(&self.rcv_by_method) {
            add(format!("rcv_requests_{m}"), s);
        }
        add("rcv_replies".into(), &self.rcv_replies);
        for (c, s) in CLASSES.iter().zip(&self.rcv_by_class) {
            add(format!("rcv_replies_{c}"), s);
        }
        add("rcv_replies_18x".into(), &self.rcv_18x);
        for (c, s) in CODES.iter().zip(&self.rcv_codes) {
            add(format!("rcv_replies_{c}"), s);
        }
        add("fwd_requests".into(), &self.fwd_requests);
        add("fwd_replies".into(), &self.fwd_replies);
        add("drop_requests".into(), &self.drop_requests);
        add("drop_replies".into(), &self.drop_replies);
        add("err_requests".into(), &self.err_requests);
        add("err_replies".into(), &self.err_replies);
        add("bad_URIs_rcvd".into(), &self.bad_uris_rcvd);
        add("unsupported_methods".into(), &self.unsupported_methods);
        add("bad_msg_hdr".into(), &self.bad_msg_hdr);
        add("udp_recv_batches".into(), &self.udp_recv_batches);
        add("udp_batch_waits".into(), &self.udp_batch_waits);
        // A gauge: a reset of the statistics must not zero it.
        v.push(StatExport {
            name: "udp_steered".into(),
            no_reset: true,
            source: StatSource::Value(self.udp_steered.clone()),
        });
        v
    }
}
