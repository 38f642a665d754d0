//! Module `sipdump` (Kamailio's): every SIP message received and sent,
//! with its addresses and time, written to files (`mode` 1: text, 4:
//! pcap) by a writer thread, and/or given to `event_route[sipdump:msg]`
//! (`mode` 2, `$sipdump(...)` naming it there; `drop` keeps a received
//! message out of the files).
//!
//! Parameters `enable`, `mode`, `folder`, `fprefix`, `rotate`, `fage`,
//! `wait` (accepted: the writer thread writes at once); `sipdump_send(tag)`
//! dumps the current message with another tag; RPC `sipdump.enable`.
#![forbid(unsafe_code)]

pub mod record;
pub mod writer;

use record::Record;
use sr_sdk::prelude::*;
use sr_sdk::{Dest, PvName, RecvInfo, RouteId};
use std::cell::RefCell;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use writer::{Writer, MODE_EVROUTE, MODE_PCAP, MODE_TEXT};

/// The module's settings and running state.
struct Dump {
    enable: Arc<AtomicI64>,
    mode: Arc<AtomicI64>,
    rotate: Arc<AtomicI64>,
    fage: Arc<AtomicI64>,
    wait: Arc<AtomicI64>,
    folder: Arc<RwLock<String>>,
    fprefix: Arc<RwLock<String>>,
    event_callback: Arc<RwLock<String>>,
    /// On and off at run time (`sipdump.enable`).
    on: AtomicBool,
    /// Records for the writer thread (a bounded queue: when the writer
    /// falls behind, records are dropped and counted, never piled up).
    tx: Mutex<Option<SyncSender<Record>>>,
    /// The writer thread, joined at shutdown once it wrote what is queued.
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Records dropped because the queue was full.
    dropped: AtomicI64,
    core: OnceLock<Weak<dyn Core>>,
    route: OnceLock<Option<RouteId>>,
}

thread_local! {
    /// The record `event_route[sipdump:msg]` is running for.
    static CURRENT: RefCell<Option<Record>> = const { RefCell::new(None) };
}

fn now() -> (u64, u32) {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (d.as_secs(), d.subsec_micros())
}

fn ip(a: &SocketAddr) -> String {
    a.ip().to_string()
}

impl Dump {
    fn mode(&self) -> i64 {
        self.mode.load(Ordering::Relaxed)
    }

    fn queue(&self, r: Record) {
        if let Some(tx) = &*self.tx.lock().unwrap_or_else(PoisonError::into_inner) {
            if let Err(TrySendError::Full(_)) = tx.try_send(r) {
                if self.dropped.fetch_add(1, Ordering::Relaxed) % 1000 == 0 {
                    lm_warn!("sipdump: the writer is behind, records dropped");
                }
            }
        }
    }

    /// Runs the event route for `r`; whether it dropped.
    fn event(&self, r: &Record) -> bool {
        let (Some(Some(id)), Some(core)) =
            (self.route.get(), self.core.get().and_then(Weak::upgrade))
        else {
            return false;
        };
        CURRENT.with(|c| *c.borrow_mut() = Some(r.clone()));
        let dropped = sr_sdk::core_api::event_route_drops(&*core, *id, None);
        CURRENT.with(|c| *c.borrow_mut() = None);
        dropped
    }

    fn received(&self, buf: &[u8], rcv: &RecvInfo) {
        if !self.on.load(Ordering::Relaxed) {
            return;
        }
        let (sec, usec) = now();
        let r = Record {
            tag: "rcv".into(),
            sec,
            usec,
            proto: rcv.proto.as_str(),
            ipv6: rcv.dst.is_ipv6(),
            src_ip: ip(&rcv.src),
            src_port: rcv.src.port(),
            dst_ip: ip(&rcv.dst),
            dst_port: rcv.dst.port(),
            data: buf.to_vec(),
        };
        if self.mode() & MODE_EVROUTE != 0 && self.event(&r) {
            return;
        }
        if self.mode() & (MODE_TEXT | MODE_PCAP) != 0 {
            self.queue(r);
        }
    }

    fn sending(&self, buf: &[u8], dest: &Dest) {
        if !self.on.load(Ordering::Relaxed) {
            return;
        }
        let (sec, usec) = now();
        let (src_ip, src_port, ipv6) = match &dest.send_socket {
            Some(s) => (ip(s), s.port(), s.is_ipv6()),
            None if dest.addr.is_ipv6() => ("::2".to_string(), 0, true),
            None => ("0.0.0.0".to_string(), 0, false),
        };
        let r = Record {
            tag: "snd".into(),
            sec,
            usec,
            proto: dest.proto.as_str(),
            ipv6,
            src_ip,
            src_port,
            dst_ip: ip(&dest.addr),
            dst_port: dest.addr.port(),
            data: buf.to_vec(),
        };
        if self.mode() & MODE_EVROUTE != 0 {
            self.event(&r);
        }
        if self.mode() & (MODE_TEXT | MODE_PCAP) != 0 {
            self.queue(r);
        }
    }

    /// `sipdump_send(tag)`: the message as received, with `tag`.
    fn send(&self, ctx: &mut Ctx<'_>, tag: &str) -> i32 {
        if !self.on.load(Ordering::Relaxed) {
            return 1;
        }
        if self.mode() & (MODE_TEXT | MODE_PCAP) == 0 {
            lm_warn!("sipdump_send: writing to file is disabled - ignoring");
            return 1;
        }
        let (sec, usec) = now();
        let rcv = &ctx.msg.rcv;
        self.queue(Record {
            tag: tag.to_string(),
            sec,
            usec,
            proto: rcv.proto.as_str(),
            ipv6: rcv.src.is_ipv6(),
            src_ip: ip(&rcv.src),
            src_port: rcv.src.port(),
            dst_ip: ip(&rcv.dst),
            dst_port: rcv.dst.port(),
            data: ctx.msg.msg().raw().to_vec(),
        });
        1
    }

    /// The writer thread: records as they come, old files cleaned every
    /// ten minutes with `fage`.
    fn run_writer(self: &Arc<Self>, rx: Receiver<Record>, started: i64) {
        let folder = params::get_str(&self.folder);
        let fprefix = params::get_str(&self.fprefix);
        let mut w = Writer::new(
            &folder,
            &fprefix,
            self.mode(),
            self.rotate.load(Ordering::Relaxed).max(1),
            started,
        );
        let fage = self.fage.load(Ordering::Relaxed);
        let mut last_clean = std::time::Instant::now();
        loop {
            match rx.recv_timeout(Duration::from_secs(1)) {
                Ok(r) => {
                    if let Err(e) = w.write(&r) {
                        lm_err!("sipdump: writing under {folder}: {e}");
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
            }
            if fage > 0 && last_clean.elapsed() >= Duration::from_secs(600) {
                last_clean = std::time::Instant::now();
                writer::clean(&folder, &fprefix, fage, now().0 as i64);
            }
        }
    }
}

/// How many records may wait for the writer.
const QUEUE: usize = 16384;

/// `$sipdump(name)`'s names.
const NAMES: &[&str] = &[
    "tag", "buf", "len", "af", "proto", "sproto", "src_ip", "dst_ip", "src_port", "dst_port",
];

fn pv(name: &PvName) -> Value<'static> {
    CURRENT.with(|c| {
        let c = c.borrow();
        let Some(r) = c.as_ref() else {
            return Value::Null;
        };
        match name.inner.as_deref().unwrap_or("") {
            "buf" => Value::str(String::from_utf8_lossy(&r.data).into_owned()),
            "len" => Value::Int(r.data.len() as i64),
            "af" => Value::str(r.af()),
            "proto" => Value::str(r.proto),
            "src_ip" => Value::str(r.src_ip.clone()),
            "dst_ip" => Value::str(r.dst_ip.clone()),
            "src_port" => Value::Int(i64::from(r.src_port)),
            "dst_port" => Value::Int(i64::from(r.dst_port)),
            // `tag`, and `sproto` (which Kamailio parses but reads as tag).
            _ => Value::str(r.tag.clone()),
        }
    })
}

/// The module definition.
pub fn module() -> ModuleDef {
    let d = Arc::new(Dump {
        enable: params::int_cell(0),
        mode: params::int_cell(MODE_TEXT),
        rotate: params::int_cell(7200),
        fage: params::int_cell(0),
        wait: params::int_cell(100),
        folder: params::str_cell("/tmp"),
        fprefix: params::str_cell("kamailio-sipdump-"),
        event_callback: params::str_cell(""),
        on: AtomicBool::new(false),
        tx: Mutex::new(None),
        writer: Mutex::new(None),
        dropped: AtomicI64::new(0),
        core: OnceLock::new(),
        route: OnceLock::new(),
    });
    let (di, dc, dd, din, dout, ds, dr) = (
        d.clone(),
        d.clone(),
        d.clone(),
        d.clone(),
        d.clone(),
        d.clone(),
        d.clone(),
    );
    ModuleDef::new("sipdump")
        .param("enable", ParamKind::Int, params::int(&d.enable))
        .param("mode", ParamKind::Int, params::int(&d.mode))
        .param("rotate", ParamKind::Int, params::int(&d.rotate))
        .param("fage", ParamKind::Int, params::int(&d.fage))
        .param("wait", ParamKind::Int, params::int(&d.wait))
        .param("folder", ParamKind::Str, params::string(&d.folder))
        .param("fprefix", ParamKind::Str, params::string(&d.fprefix))
        .param(
            "event_callback",
            ParamKind::Str,
            params::string(&d.event_callback),
        )
        .on_init(move |core| {
            let mode = di.mode();
            if mode & (MODE_TEXT | MODE_PCAP | MODE_EVROUTE) == 0 {
                return Err(format!("sipdump: invalid mode parameter {mode}"));
            }
            let folder = params::get_str(&di.folder);
            if folder.len() + params::get_str(&di.fprefix).len() + 1 >= 256 - 64 {
                return Err("sipdump: file path too long".into());
            }
            if mode & (MODE_TEXT | MODE_PCAP) != 0 && !std::path::Path::new(&folder).is_dir() {
                return Err(format!("sipdump: folder {folder} is not a directory"));
            }
            di.on
                .store(di.enable.load(Ordering::Relaxed) != 0, Ordering::Relaxed);
            if let Some(h) = core.handle() {
                let _ = di.core.set(h);
            }
            if mode & (MODE_TEXT | MODE_PCAP) != 0 {
                let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE);
                *di.tx.lock().unwrap_or_else(PoisonError::into_inner) = Some(tx);
                let w = di.clone();
                let started = now().0 as i64;
                let h = std::thread::Builder::new()
                    .name("sipdump".into())
                    .spawn(move || w.run_writer(rx, started))
                    .map_err(|e| format!("sipdump: cannot start the writer: {e}"))?;
                *di.writer.lock().unwrap_or_else(PoisonError::into_inner) = Some(h);
            }
            Ok(())
        })
        .on_child_init(move |core, rank| {
            if rank == sr_sdk::rank::PROC_INIT {
                let _ = dc.route.set(core.route_id(RouteType::EVENT, "sipdump:msg"));
            }
            Ok(())
        })
        .on_destroy(move || {
            // The writer drains what is queued, then ends: waited for.
            dd.tx.lock().unwrap_or_else(PoisonError::into_inner).take();
            let h = dd
                .writer
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            if let Some(h) = h {
                let _ = h.join();
            }
        })
        .on_net_data_in(move |buf, rcv| {
            din.received(buf, rcv);
            None
        })
        .on_net_data_out(move |buf, dest| {
            dout.sending(buf, dest);
            None
        })
        .cmd(
            "sipdump_send",
            1,
            RouteType::ANY,
            Some(fixup::f(fixup::spve)),
            move |ctx, p| {
                let tag = p[0].str(ctx).into_owned();
                ds.send(ctx, &tag)
            },
        )
        .pv_checked(
            "sipdump",
            |n| match n.inner.as_deref() {
                Some(x) if NAMES.contains(&x) => Ok(()),
                other => Err(format!("unknown PV sipdump name {}", other.unwrap_or(""))),
            },
            |_, n| pv(n),
        )
        .rpc(
            "sipdump.enable",
            "Command to control sipdump enable value",
            move |p| {
                let old = i64::from(dr.on.load(Ordering::Relaxed));
                let new = match p.first().and_then(Json::as_i64) {
                    Some(v @ (0 | 1)) => {
                        dr.on.store(v == 1, Ordering::Relaxed);
                        v
                    }
                    _ => old,
                };
                Ok(sr_sdk::serde_json::json!({"oldval": old, "newval": new}))
            },
        )
}
