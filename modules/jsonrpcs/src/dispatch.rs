//! JSON-RPC 2.0 request handling: one request, a batch, or a notification
//! in; the response document (or nothing) out. Every failure becomes a
//! JSON-RPC error object; nothing here panics on input.

use sr_sdk::prelude::*;
use sr_sdk::RpcError;

/// Parse error (JSON-RPC 2.0).
pub const PARSE_ERROR: i64 = -32700;
/// Invalid request.
pub const INVALID_REQUEST: i64 = -32600;
/// Invalid parameters.
pub const INVALID_PARAMS: i64 = -32602;
/// No such method.
pub const METHOD_NOT_FOUND: i64 = -32601;

/// Something that runs RPC methods (the core, or a test double).
pub trait Caller {
    /// Runs `method` with positional parameters.
    fn call(&self, method: &str, params: &[Json]) -> Result<Json, RpcError>;
}

impl<T: Core + ?Sized> Caller for T {
    fn call(&self, method: &str, params: &[Json]) -> Result<Json, RpcError> {
        self.rpc_call(method, params)
    }
}

fn error(code: i64, message: &str, id: Json) -> Json {
    json!({"jsonrpc": "2.0", "error": {"code": code, "message": message}, "id": id})
}

/// Handles one request object; `None` for a notification (no `id`).
fn one<C: Caller + ?Sized>(c: &C, req: &Json) -> Option<Json> {
    let Some(obj) = req.as_object() else {
        return Some(error(INVALID_REQUEST, "Invalid Request", Json::Null));
    };
    let id = obj.get("id").cloned();
    let reply_id = match &id {
        Some(v @ (Json::Number(_) | Json::String(_) | Json::Null)) => v.clone(),
        Some(_) => {
            return Some(error(
                INVALID_REQUEST,
                "Invalid Request: bad id",
                Json::Null,
            ))
        }
        None => Json::Null,
    };
    let method = match obj.get("method") {
        Some(Json::String(m)) if !m.is_empty() => m.as_str(),
        _ => {
            return Some(error(
                INVALID_REQUEST,
                "Invalid Request: no method",
                reply_id,
            ))
        }
    };
    let params: &[Json] = match obj.get("params") {
        None | Some(Json::Null) => &[],
        Some(Json::Array(a)) => a,
        Some(_) => {
            let e = error(
                INVALID_PARAMS,
                "Invalid params: params must be an array",
                reply_id,
            );
            return id.is_some().then_some(e);
        }
    };
    let out = match c.call(method, params) {
        // A method that answers nothing gives `{}`, as Kamailio's jsonrpcs
        // (checked by kamailio_parity_rpc).
        Ok(Json::Null) => json!({"jsonrpc": "2.0", "result": {}, "id": reply_id}),
        Ok(result) => json!({"jsonrpc": "2.0", "result": result, "id": reply_id}),
        Err(e) => error(e.code, &e.message, reply_id),
    };
    // A request without "id" is a notification: run, answer nothing.
    id.is_some().then_some(out)
}

/// [`handle`] for HTTP: the status, reason and body to answer with (200
/// with the response, as written with `pretty`; 204 when the document
/// held only notifications).
pub fn http_answer<C: Caller + ?Sized>(
    c: &C,
    text: &str,
    pretty: bool,
) -> (u16, &'static str, String) {
    match handle(c, text) {
        Some(resp) if pretty => (
            200,
            "OK",
            sr_sdk::serde_json::to_string_pretty(&resp).unwrap_or_default(),
        ),
        Some(resp) => (200, "OK", resp.to_string()),
        None => (204, "No Content", String::new()),
    }
}

/// Handles a JSON-RPC document (text). Returns the response document, or
/// `None` when there is nothing to answer (only notifications).
pub fn handle<C: Caller + ?Sized>(c: &C, text: &str) -> Option<Json> {
    let doc: Json = match sr_sdk::serde_json::from_str(text) {
        Ok(d) => d,
        Err(e) => return Some(error(PARSE_ERROR, &format!("Parse error: {e}"), Json::Null)),
    };
    match &doc {
        Json::Array(items) if items.is_empty() => Some(error(
            INVALID_REQUEST,
            "Invalid Request: empty batch",
            Json::Null,
        )),
        Json::Array(items) => {
            let out: Vec<Json> = items.iter().filter_map(|r| one(c, r)).collect();
            (!out.is_empty()).then_some(Json::Array(out))
        }
        _ => one(c, &doc),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Echo;
    impl Caller for Echo {
        fn call(&self, method: &str, params: &[Json]) -> Result<Json, RpcError> {
            match method {
                "echo" => Ok(Json::Array(params.to_vec())),
                _ => Err(RpcError::new(-32601, "Method not found")),
            }
        }
    }

    #[test]
    fn shapes() {
        let r = handle(
            &Echo,
            r#"{"jsonrpc":"2.0","method":"echo","params":[1,"a"],"id":7}"#,
        );
        assert_eq!(r, Some(json!({"jsonrpc":"2.0","result":[1,"a"],"id":7})));
        let r = handle(&Echo, "{nope").unwrap_or_default();
        assert_eq!(r["error"]["code"], json!(PARSE_ERROR));
        assert_eq!(r["id"], Json::Null);
        let r = handle(&Echo, r#"{"method":"x","id":"a"}"#).unwrap_or_default();
        assert_eq!(r["error"]["code"], json!(-32601));
        assert_eq!(r["id"], json!("a"));
        assert_eq!(handle(&Echo, r#"{"method":"echo"}"#), None);
        let r = handle(&Echo, r#"[{"method":"echo","id":1},{"method":"echo"},5]"#);
        let r = r.unwrap_or_default();
        assert_eq!(r.as_array().map(Vec::len), Some(2));
        assert_eq!(r[1]["error"]["code"], json!(INVALID_REQUEST));
        let r = handle(&Echo, "[]").unwrap_or_default();
        assert_eq!(r["error"]["code"], json!(INVALID_REQUEST));
        let r = handle(&Echo, r#"{"method":"echo","params":{"a":1},"id":1}"#).unwrap_or_default();
        assert_eq!(r["error"]["code"], json!(INVALID_PARAMS));
        let r = handle(&Echo, r#"{"params":[],"id":1}"#).unwrap_or_default();
        assert_eq!(r["error"]["code"], json!(INVALID_REQUEST));
    }
}
