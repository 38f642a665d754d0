//! `jsonrpc_exec(cmd)` and `$jsonrpl(code|text|body)`: a JSON-RPC
//! document run from the script (Kamailio's jsonrpcs), its answer kept by
//! the worker until the next `jsonrpc_exec` there (Kamailio keeps it per
//! process, so a later message still reads it).

use sr_sdk::prelude::*;

/// The answer of the last `jsonrpc_exec` of a worker.
#[derive(Debug, Clone)]
pub struct Reply {
    /// 200, or the error's code.
    pub code: i64,
    /// `OK`, or the error's message.
    pub text: String,
    /// The JSON-RPC response document.
    pub body: String,
}

/// The answer to a JSON-RPC document run by `caller`.
pub fn run<C: crate::dispatch::Caller + ?Sized>(caller: &C, cmd: &str, pretty: bool) -> Reply {
    let resp = crate::dispatch::handle(caller, cmd);
    let err = resp.as_ref().and_then(|r| r.get("error"));
    let (code, text) = match err {
        Some(e) => (
            e.get("code").and_then(Json::as_i64).unwrap_or(500),
            e.get("message")
                .and_then(Json::as_str)
                .unwrap_or_default()
                .to_string(),
        ),
        None => (200, "OK".to_string()),
    };
    let body = match resp {
        Some(r) if pretty => sr_sdk::serde_json::to_string_pretty(&r).unwrap_or_default(),
        Some(r) => r.to_string(),
        None => String::new(),
    };
    Reply { code, text, body }
}

thread_local! {
    /// This worker's last answer.
    static LAST: std::cell::RefCell<Option<Reply>> = const { std::cell::RefCell::new(None) };
}

/// `jsonrpc_exec(cmd)`: 1, the answer in `$jsonrpl`.
pub fn exec(ctx: &mut Ctx<'_>, cmd: &str, pretty: bool) -> i32 {
    let reply = run(ctx.core, cmd, pretty);
    LAST.with(|l| *l.borrow_mut() = Some(reply));
    1
}

/// `$jsonrpl(code|text|body)`.
pub fn pv(_ctx: &mut Ctx<'_>, name: &sr_sdk::PvName) -> Value<'static> {
    LAST.with(|l| {
        let l = l.borrow();
        let Some(r) = l.as_ref() else {
            return Value::Null;
        };
        match name.inner.as_deref().map(str::trim) {
            Some("code") => Value::Int(r.code),
            Some("text") => Value::str(r.text.clone()),
            Some("body") => Value::str(r.body.clone()),
            _ => Value::Null,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sr_sdk::RpcError;

    struct Methods;
    impl crate::dispatch::Caller for Methods {
        fn call(&self, method: &str, params: &[Json]) -> Result<Json, RpcError> {
            match method {
                "echo" => Ok(Json::Array(params.to_vec())),
                _ => Err(RpcError::new(500, "command not found")),
            }
        }
    }

    #[test]
    fn answers_and_errors() {
        let r = run(
            &Methods,
            r#"{"jsonrpc":"2.0","method":"echo","params":[1],"id":7}"#,
            false,
        );
        assert_eq!((r.code, r.text.as_str()), (200, "OK"));
        let body: Json = sr_sdk::serde_json::from_str(&r.body).unwrap();
        assert_eq!(body["result"], json!([1]));
        let r = run(&Methods, r#"{"jsonrpc":"2.0","method":"x","id":1}"#, false);
        assert_eq!((r.code, r.text.as_str()), (500, "command not found"));
        let r = run(&Methods, "{", false);
        assert_eq!(r.code, -32700);
    }
}
