//! The module's view of the core ([`Core`] over the services table), and
//! what a module fixup may compile (pseudo-variables the host evaluates).

use super::message::{current, fetch_text, push_reply_headers};
use super::{api, cstring, log_line};
use sr_sdk::core_api::{BranchTarget, Outgoing, RouteId, RunResult, SendError};
use sr_sdk::fixup::{Assign, Eval, FixupEnv};
use sr_sdk::log::L_WARN;
use sr_sdk::serde_json;
use sr_sdk::{Core, Ctx, Dest, Proto, RouteType, RpcError, SipMsg, Value};
use std::any::Any;
use std::ffi::{c_int, CStr};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

const NOT_IN_ABI: &str = "not available to shared-library modules (module ABI 1)";

/// The module's view of the core: what the services table carries.
pub(crate) struct RemoteCore;

impl Core for RemoteCore {
    fn version(&self) -> &str {
        api()
            .filter(|a| !a.version.is_null())
            // SAFETY: the host's version is a static NUL-terminated string.
            .and_then(|a| unsafe { CStr::from_ptr(a.version) }.to_str().ok())
            .unwrap_or("siprouter")
    }

    fn send_reply(&self, msg: &mut SipMsg, code: u16, reason: &str) -> Result<(), SendError> {
        let (a, h) = current().ok_or_else(|| SendError("no message being handled".into()))?;
        push_reply_headers(a, h, msg);
        match (a.send_reply)(h, c_int::from(code), cstring(reason).as_ptr()) {
            rc if rc > 0 => Ok(()),
            rc => Err(SendError(format!("sending the reply failed ({rc})"))),
        }
    }

    fn build_reply(
        &self,
        _msg: &SipMsg,
        _code: u16,
        _reason: &str,
        _to_tag: Option<&str>,
        _body: Option<(&str, &[u8])>,
    ) -> Result<Outgoing, SendError> {
        Err(SendError(format!("build_reply: {NOT_IN_ABI}")))
    }

    fn forward(&self, _msg: &mut SipMsg, _target: Option<&str>) -> Result<(), SendError> {
        Err(SendError(format!("forward: {NOT_IN_ABI}")))
    }

    fn build_request(&self, _msg: &SipMsg, _t: &BranchTarget) -> Result<Outgoing, SendError> {
        Err(SendError(format!("build_request: {NOT_IN_ABI}")))
    }

    fn forward_reply(&self, _reply: &mut SipMsg) -> Result<(), SendError> {
        Err(SendError(format!("forward_reply: {NOT_IN_ABI}")))
    }

    fn reply_dest(&self, _msg: &SipMsg) -> Result<Dest, SendError> {
        Err(SendError(format!("reply_dest: {NOT_IN_ABI}")))
    }

    fn send(&self, _dest: &Dest, _data: &[u8]) -> Result<(), SendError> {
        Err(SendError(format!("send: {NOT_IN_ABI}")))
    }

    fn resolve(&self, _uri: &str, _proto: Option<Proto>) -> Result<Dest, SendError> {
        Err(SendError(format!("resolve: {NOT_IN_ABI}")))
    }

    fn is_myself(&self, _host: &str, _port: Option<u16>) -> bool {
        false
    }

    fn local_addr(&self, _proto: Proto, _near: Option<SocketAddr>) -> Option<(String, u16)> {
        None
    }

    fn route_id(&self, _kind: RouteType, _name: &str) -> Option<RouteId> {
        None
    }

    fn run_route(&self, _id: RouteId, _kind: RouteType, _msg: &mut SipMsg) -> RunResult {
        RunResult {
            code: -1,
            dropped: false,
        }
    }

    fn pv_get(&self, _msg: &mut SipMsg, name: &str) -> Option<Value<'static>> {
        let (a, h) = current()?;
        let n = cstring(name);
        fetch_text(|o| (a.pv_get)(h, n.as_ptr(), o)).map(Value::from)
    }

    fn pv_set(&self, _msg: &mut SipMsg, name: &str, v: Value<'_>) -> Result<(), String> {
        let (a, h) = current().ok_or("no message being handled")?;
        let (n, v) = (cstring(name), cstring(&v.as_str()));
        match (a.pv_set_str)(h, n.as_ptr(), v.as_ptr()) {
            0 => Ok(()),
            rc => Err(format!("setting {name} failed ({rc})")),
        }
    }

    fn register_api(&self, name: &str, _api: Arc<dyn Any + Send + Sync>) {
        log_line(L_WARN, &format!("register_api({name}): {NOT_IN_ABI}"));
    }

    fn get_api(&self, _name: &str) -> Option<Arc<dyn Any + Send + Sync>> {
        None
    }

    fn add_timer(&self, name: &str, _interval: Duration, _f: Arc<dyn Fn() + Send + Sync>) {
        log_line(L_WARN, &format!("add_timer({name}): {NOT_IN_ABI}"));
    }

    fn shutting_down(&self) -> bool {
        api().is_some_and(|a| (a.shutting_down)() != 0)
    }

    fn spawn_process(
        &self,
        name: &str,
        _rank: i32,
        _f: Box<dyn FnOnce() + Send + 'static>,
    ) -> Result<(), String> {
        Err(format!("spawn_process({name}): {NOT_IN_ABI}"))
    }

    fn rpc_call(
        &self,
        method: &str,
        _p: &[serde_json::Value],
    ) -> Result<serde_json::Value, RpcError> {
        Err(RpcError::new(500, format!("{method}: {NOT_IN_ABI}")))
    }

    fn statistics(&self) -> Vec<(String, String, i64)> {
        Vec::new()
    }
}

/// A pseudo-variable the host evaluates, for module fixups (`igp`,
/// `pvar`). It reads the host's message as it was when the module's
/// function was called.
#[derive(Debug)]
struct RemotePv(String);

impl Eval for RemotePv {
    fn eval(&self, ctx: &mut Ctx<'_>) -> Value<'static> {
        RemoteCore.pv_get(ctx.msg, &self.0).unwrap_or(Value::Null)
    }
}

impl Assign for RemotePv {
    fn assign(&self, ctx: &mut Ctx<'_>, v: Value<'_>) -> Result<(), String> {
        RemoteCore.pv_set(ctx.msg, &self.0, v)
    }
}

/// What a module's fixup may use at load time.
pub(crate) struct GuestEnv;

impl FixupEnv for GuestEnv {
    fn core(&self) -> &dyn Core {
        &RemoteCore
    }

    fn route_id(&self, _kind: RouteType, _name: &str) -> Option<RouteId> {
        None
    }

    /// The module ABI 1 does not carry the list of loaded modules.
    fn is_loaded(&self, _module: &str) -> bool {
        false
    }

    fn compile_format(&self, s: &str) -> Result<Arc<dyn Eval>, String> {
        Err(format!(
            "'{s}': format strings with pseudo-variables are evaluated by the server only for functions without a fixup (module ABI 1)"
        ))
    }

    fn compile_pv(&self, s: &str) -> Result<Arc<dyn Eval>, String> {
        Ok(Arc::new(RemotePv(s.to_string())))
    }

    fn compile_lvalue(&self, s: &str) -> Result<Arc<dyn Assign>, String> {
        Ok(Arc::new(RemotePv(s.to_string())))
    }
}
