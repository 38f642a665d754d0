//! The FEEDBACK controller pipelimit and ratelimit share: the PID over the
//! CPU load, its RPC commands (`<prefix>.get_pid`, `set_pid`,
//! `push_load`), and the number parameters of RPC calls.

use crate::load::CpuSampler;
use crate::pipes::Pid;
use sr_sdk::prelude::*;
use sr_sdk::serde_json::{json, Value as Json};
use std::sync::{Arc, Mutex};

/// The controller and its CPU sampler.
#[derive(Debug, Default)]
pub struct Feedback {
    /// The PID controller.
    pub pid: Mutex<Pid>,
    cpu: Mutex<CpuSampler>,
}

impl Feedback {
    /// Samples the CPU and gives the share to drop now.
    pub fn tick(&self) -> i64 {
        let load = self.cpu.lock().map(|mut c| c.sample()).unwrap_or(0.0);
        self.pid.lock().map(|mut p| p.update(load)).unwrap_or(0)
    }

    /// Sets the wanted load.
    pub fn set_setpoint(&self, v: f64) {
        if let Ok(mut p) = self.pid.lock() {
            p.setpoint = v;
        }
    }
}

/// RPC parameter `i` as an integer (a number or its text).
pub fn rpc_int(params: &[Json], i: usize) -> Result<i64, RpcError> {
    params
        .get(i)
        .and_then(|v| {
            v.as_i64()
                .or_else(|| v.as_str().and_then(|x| x.trim().parse().ok()))
        })
        .ok_or_else(|| RpcError::new(400, "Invalid Parameters"))
}

/// RPC parameter `i` as a real number (a number or its text).
pub fn rpc_f64(params: &[Json], i: usize) -> Result<f64, RpcError> {
    params
        .get(i)
        .and_then(|v| {
            v.as_f64()
                .or_else(|| v.as_str().and_then(|x| x.trim().parse().ok()))
        })
        .ok_or_else(|| RpcError::new(400, "Invalid Parameters"))
}

/// Adds `<prefix>.get_pid`, `<prefix>.set_pid ki kp kd` and
/// `<prefix>.push_load load` (0-1; `set_rate` gets the new share).
pub fn add_rpcs(
    def: ModuleDef,
    prefix: &str,
    fb: Arc<Feedback>,
    set_rate: Arc<dyn Fn(i64) + Send + Sync>,
) -> ModuleDef {
    let internal = || RpcError::new(500, "Internal error");
    let f1 = fb.clone();
    let f2 = fb.clone();
    def.rpc(
        &format!("{prefix}.get_pid"),
        "The FEEDBACK controller's gains.",
        move |_p| {
            let p = f1.pid.lock().map_err(|_| internal())?;
            Ok(json!(format!(
                "ki[{:.6}] kp[{:.6}] kd[{:.6}] ",
                p.ki, p.kp, p.kd
            )))
        },
    )
    .rpc(
        &format!("{prefix}.set_pid"),
        "Sets the FEEDBACK controller's gains: ki kp kd.",
        move |params| {
            let (ki, kp, kd) = (
                rpc_f64(params, 0)?,
                rpc_f64(params, 1)?,
                rpc_f64(params, 2)?,
            );
            let mut p = f2.pid.lock().map_err(|_| internal())?;
            p.ki = ki;
            p.kp = kp;
            p.kd = kd;
            Ok(Json::Null)
        },
    )
    .rpc(
        &format!("{prefix}.push_load"),
        "Feeds the FEEDBACK controller a load (0-1).",
        move |params| {
            let v = rpc_f64(params, 0)?;
            if !(0.0..=1.0).contains(&v) {
                return Err(RpcError::new(400, "Value out of range"));
            }
            let rate = fb.pid.lock().map(|mut p| p.update(v)).unwrap_or(0);
            set_rate(rate);
            Ok(Json::Null)
        },
    )
}
