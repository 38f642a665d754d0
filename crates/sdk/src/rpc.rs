//! RPC (management) methods a module exports, JSON-RPC 2.0 shaped.

use serde_json::Value as Json;
use std::fmt;
use std::sync::Arc;

/// An RPC failure: a code and a message, sent back as a JSON-RPC error.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
    /// Error code (JSON-RPC's -32602 for bad parameters, or a SIP-like
    /// code such as 404 or 500 as Kamailio's RPCs use).
    pub code: i64,
    /// What went wrong.
    pub message: String,
}

impl RpcError {
    /// An error with a code and message.
    pub fn new(code: i64, message: impl Into<String>) -> RpcError {
        RpcError {
            code,
            message: message.into(),
        }
    }

    /// Invalid parameters (JSON-RPC -32602).
    pub fn invalid_params(message: impl Into<String>) -> RpcError {
        RpcError::new(-32602, message)
    }
}

impl fmt::Display for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code, self.message)
    }
}

impl std::error::Error for RpcError {}

/// An RPC handler: positional parameters in, a JSON result out.
pub type RpcFn = Arc<dyn Fn(&[Json]) -> Result<Json, RpcError> + Send + Sync>;

/// An RPC method a module exports.
#[derive(Clone)]
pub struct RpcExport {
    /// Full method name, e.g. `ul.dump`.
    pub name: String,
    /// One-line help for `system.methodHelp`.
    pub doc: String,
    /// The handler.
    pub handler: RpcFn,
}

impl fmt::Debug for RpcExport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RpcExport({})", self.name)
    }
}

/// Positional parameter `i` as a string (numbers are accepted), or `None`
/// when it is missing or of another type.
pub fn param_opt_str(params: &[Json], i: usize) -> Option<String> {
    match params.get(i)? {
        Json::String(s) => Some(s.clone()),
        Json::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Reads positional parameter `i` as a string (numbers are accepted).
pub fn param_str(params: &[Json], i: usize, what: &str) -> Result<String, RpcError> {
    if let Some(s) = param_opt_str(params, i) {
        return Ok(s);
    }
    match params.get(i) {
        Some(_) => Err(RpcError::invalid_params(format!(
            "{what}: expected a string"
        ))),
        None => Err(RpcError::invalid_params(format!(
            "missing parameter: {what}"
        ))),
    }
}

/// Reads positional parameter `i` as an integer (numeric strings are
/// accepted, as kamcmd sends everything as text).
pub fn param_int(params: &[Json], i: usize, what: &str) -> Result<i64, RpcError> {
    match params.get(i) {
        Some(Json::Number(n)) => n
            .as_i64()
            .ok_or_else(|| RpcError::invalid_params(format!("{what}: expected an integer"))),
        Some(Json::String(s)) => s
            .trim()
            .parse()
            .map_err(|_| RpcError::invalid_params(format!("{what}: expected an integer"))),
        Some(_) => Err(RpcError::invalid_params(format!(
            "{what}: expected an integer"
        ))),
        None => Err(RpcError::invalid_params(format!(
            "missing parameter: {what}"
        ))),
    }
}
