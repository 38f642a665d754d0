//! Module `rtjson` (Kamailio's): forking from a JSON routing document —
//! what an HTTP routing engine answers, say:
//!
//! ```json
//! {"routing": "serial", "routes": [
//!   {"uri": "sip:a@gw1", "dst_uri": "sip:10.0.0.1", "path": "...",
//!    "socket": "udp:10.0.0.9:5060", "branch_flags": 8,
//!    "fr_timer": 5000, "fr_inv_timer": 30000,
//!    "headers": {"from": {"display": "Alice", "uri": "sip:alice@x"},
//!                "to": {"uri": "sip:bob@y"}, "extra": "X-Hdr: v\r\n"}}]}
//! ```
//!
//! - `rtjson_init_routes(json)`: keeps the document in
//!   `$xavp(rtjson=>json)` with `$xavp(rtjson=>idx)` = 0;
//! - `rtjson_push_routes()`: the first route becomes the Request-URI (its
//!   `uri`, `dst_uri`, `path`, `socket`, `branch_flags`); with
//!   `"parallel"` every other route is added as a branch;
//! - `rtjson_next_route()` (serial, in failure_route): the next route is
//!   added as a branch, -1 when none is left;
//! - `rtjson_update_branch()` (branch_route, serial): the current route's
//!   timers (tm's `t_set_fr`), `headers.extra` (added when longer than 4
//!   characters) and `headers.from`/`to` (uac's replace; a display name
//!   given for From is used for To too when To has none, as Kamailio's).
#![forbid(unsafe_code)]

use sr_mod_tm::{TmApi, TM_API};
use sr_mod_uac::{UacApi, UAC_API};
use sr_sdk::prelude::*;
use sr_sdk::serde_json;
use sr_sdk::xavp::XavpValue;
use std::sync::{Arc, OnceLock, RwLock};

#[derive(Default)]
struct RtJson {
    xavp: Arc<RwLock<String>>,
    tm: OnceLock<Arc<TmApi>>,
    uac: OnceLock<Arc<UacApi>>,
}

/// The document and index kept in the XAVP.
fn state(msg: &SipMsg, root: &str) -> Option<(String, i64)> {
    let json = msg.xavps.field(root, 0, "json", 0)?;
    let idx = msg.xavps.field(root, 0, "idx", 0)?;
    let Value::Int(i) = idx else { return None };
    Some((json.as_str().into_owned(), *i))
}

fn set_idx(msg: &mut SipMsg, root: &str, i: i64) {
    msg.xavps.set_field(root, 0, "idx", 0, Value::Int(i));
}

/// A string member; `None` also for one holding a line break (it would
/// end up in a header or the request line).
fn text<'a>(v: &'a Json, key: &str) -> Option<&'a str> {
    let t = v.get(key)?.as_str()?;
    if t.contains(['\r', '\n']) {
        lm_err!("rtjson: '{key}' holds a line break - ignored");
        return None;
    }
    Some(t)
}

/// A URI member that parses as a URI.
fn uri_of<'a>(v: &'a Json, key: &str) -> Option<&'a str> {
    let t = text(v, key)?;
    if sr_sdk::sip_msg::Uri::parse(t).is_err() {
        lm_err!("rtjson: '{key}' is not a URI: {t}");
        return None;
    }
    Some(t)
}

/// `headers.extra` checked: header lines (`Name: value`, each ending in
/// CRLF, the last one added when missing), no empty line.
fn extra_headers(x: &str) -> Option<String> {
    let body = x.strip_suffix("\r\n").unwrap_or(x);
    let mut out = String::with_capacity(x.len() + 2);
    for line in body.split("\r\n") {
        let (name, _) = line.split_once(':')?;
        let name = name.trim_end();
        let token = |b: u8| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b);
        if name.is_empty() || !name.bytes().all(token) || line.contains(['\r', '\n']) {
            return None;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    Some(out)
}

/// A route's `branch_flags` (a non-zero number).
fn flags(v: &Json, key: &str) -> Option<u32> {
    v.get(key)?.as_u64().filter(|n| *n != 0).map(|n| n as u32)
}

/// The document's `routes` (non-empty) and whether it is serial.
fn routes(doc: &Json) -> Result<(&Vec<Json>, bool), i32> {
    let routing = doc.get("routing").and_then(Json::as_str).ok_or_else(|| {
        lm_err!("rtjson: missing or invalid routing field");
        -1
    })?;
    let serial = match routing {
        "serial" => true,
        "parallel" => false,
        other => {
            lm_err!("rtjson: unsupported routing [{other}]");
            return Err(-1);
        }
    };
    match doc.get("routes").and_then(Json::as_array) {
        Some(r) if !r.is_empty() => Ok((r, serial)),
        _ => {
            lm_err!("rtjson: missing or invalid routes field");
            Err(-1)
        }
    }
}

impl RtJson {
    fn root(&self) -> String {
        params::get_str(&self.xavp)
    }

    fn load(&self, msg: &SipMsg) -> Option<(Json, i64)> {
        let Some((text, idx)) = state(msg, &self.root()) else {
            lm_warn!("rtjson: no json for routing");
            return None;
        };
        match serde_json::from_str::<Json>(&text) {
            Ok(d) => Some((d, idx)),
            Err(_) => {
                lm_err!("rtjson: invalid json doc [[{text}]]");
                None
            }
        }
    }

    fn init(&self, ctx: &mut Ctx<'_>, doc: &str) -> i32 {
        if doc.is_empty() {
            lm_err!("rtjson: no routing information");
            return -1;
        }
        if serde_json::from_str::<Json>(doc).is_err() {
            lm_err!("rtjson: invalid json doc [[{doc}]]");
            return -1;
        }
        ctx.msg.xavps.push(
            &self.root(),
            XavpValue::Fields(vec![
                ("json".into(), Value::Str(doc.to_string().into())),
                ("idx".into(), Value::Int(0)),
            ]),
        );
        1
    }

    /// The first route as the Request-URI's branch.
    fn first(&self, ctx: &mut Ctx<'_>, r: &Json) -> bool {
        ctx.msg.branches.clear();
        if let Some(uri) = text(r, "uri") {
            if sr_sdk::sip_msg::Uri::parse(uri).is_err() {
                lm_err!("rtjson: unable to rewrite Request-URI");
                return false;
            }
            ctx.msg.new_uri = Some(uri.to_string());
        }
        ctx.msg.dst_uri = uri_of(r, "dst_uri").map(str::to_string);
        ctx.msg.path = text(r, "path").map(str::to_string);
        ctx.msg.force_send_socket = text(r, "socket")
            .filter(|s| sr_sdk::socket_addr(s).is_some())
            .map(str::to_string);
        ctx.msg.renew_ruri();
        if let Some(f) = flags(r, "branch_flags") {
            ctx.msg.bflags |= f;
        }
        true
    }

    /// A route as a new branch; false without `uri`.
    fn append(ctx: &mut Ctx<'_>, r: &Json) -> bool {
        let Some(uri) = uri_of(r, "uri") else {
            return false;
        };
        ctx.msg.branches.push(Branch {
            uri: uri.to_string(),
            dst_uri: uri_of(r, "dst_uri").map(str::to_string),
            path: text(r, "path").map(str::to_string),
            socket: text(r, "socket")
                .filter(|s| sr_sdk::socket_addr(s).is_some())
                .map(str::to_string),
            ..Default::default()
        });
        true
    }

    fn push(&self, ctx: &mut Ctx<'_>) -> i32 {
        let root = self.root();
        let Some((doc, mut idx)) = self.load(ctx.msg) else {
            return -1;
        };
        let (rs, serial) = match routes(&doc) {
            Ok(x) => x,
            Err(e) => return e,
        };
        if !self.first(ctx, &rs[0]) {
            return -1;
        }
        idx += 1;
        if !serial {
            for r in &rs[1..] {
                Self::append(ctx, r);
                idx += 1;
            }
        }
        set_idx(ctx.msg, &root, idx);
        1
    }

    fn next(&self, ctx: &mut Ctx<'_>) -> i32 {
        let root = self.root();
        let Some((doc, idx)) = self.load(ctx.msg) else {
            return -1;
        };
        let Ok((rs, true)) = routes(&doc) else {
            lm_dbg!("rtjson: not serial routing");
            return -1;
        };
        let Some(r) = usize::try_from(idx).ok().and_then(|i| rs.get(i)) else {
            lm_dbg!("rtjson: no route at index {idx}");
            return -1;
        };
        set_idx(ctx.msg, &root, idx + 1);
        if Self::append(ctx, r) {
            1
        } else {
            -1
        }
    }

    fn update(&self, ctx: &mut Ctx<'_>) -> i32 {
        let Some((doc, idx)) = self.load(ctx.msg) else {
            return -1;
        };
        if idx <= 0 {
            lm_warn!("rtjson: invalid branch idx for routing");
            return -1;
        }
        let Ok((rs, true)) = routes(&doc) else {
            return -1;
        };
        let Some(r) = rs.get(idx as usize - 1) else {
            return -1;
        };
        if let Some(tm) = self.tm.get() {
            let fr = r.get("fr_timer").and_then(Json::as_u64).unwrap_or(0);
            let inv = r.get("fr_inv_timer").and_then(Json::as_u64).unwrap_or(0);
            if fr != 0 || inv != 0 {
                tm.set_fr(ctx, inv, fr);
            }
        }
        let Some(h) = r
            .get("headers")
            .filter(|h| h.as_object().is_some_and(|o| !o.is_empty()))
        else {
            return 1;
        };
        if let Some(x) = h
            .get("extra")
            .and_then(Json::as_str)
            .filter(|x| x.len() > 4)
        {
            match extra_headers(x) {
                Some(lines) => {
                    let at = ctx.msg.msg().headers_end();
                    ctx.msg.edits.insert(at, lines.as_bytes());
                }
                None => lm_err!("rtjson: headers.extra is not header lines - ignored"),
            }
        }
        if let Some(uac) = self.uac.get() {
            // (Kamailio keeps the display name and URI read for From when
            // To names none.)
            let (mut dsp, mut uri) = (String::new(), String::new());
            for (key, to) in [("from", false), ("to", true)] {
                let Some(o) = h.get(key).filter(|o| o.is_object()) else {
                    continue;
                };
                if let Some(d) = text(o, "display") {
                    dsp = d.to_string();
                }
                if let Some(u) = text(o, "uri") {
                    uri = u.to_string();
                }
                if dsp.is_empty() && uri.is_empty() {
                    continue;
                }
                let d = (!dsp.is_empty()).then_some(dsp.as_str());
                if to {
                    uac.replace_to(ctx, d, &uri);
                } else {
                    uac.replace_from(ctx, d, &uri);
                }
            }
        }
        1
    }
}

/// The module definition.
pub fn module() -> ModuleDef {
    let rt = Arc::new(RtJson {
        xavp: params::str_cell("rtjson"),
        ..Default::default()
    });
    let (init, r1, r2, r3, r4) = (rt.clone(), rt.clone(), rt.clone(), rt.clone(), rt.clone());
    ModuleDef::new("rtjson")
        .param("xavp_cfg", ParamKind::Str, params::string(&rt.xavp))
        .on_init(move |core| {
            if params::get_str(&init.xavp).is_empty() {
                return Err("rtjson: invalid xavp name".into());
            }
            match bind::<TmApi>(core, TM_API) {
                Some(t) => {
                    let _ = init.tm.set(t);
                }
                None => lm_notice!("rtjson: cannot load the TM API - some features are disabled"),
            }
            match bind::<UacApi>(core, UAC_API) {
                Some(u) => {
                    let _ = init.uac.set(u);
                }
                None => lm_notice!("rtjson: cannot bind to UAC API - some features are disabled"),
            }
            Ok(())
        })
        .cmd(
            "rtjson_init_routes",
            1,
            RouteType::REQUEST,
            Some(fixup::f(fixup::spve)),
            move |ctx, p| {
                let doc = p[0].str(ctx).into_owned();
                r1.init(ctx, &doc)
            },
        )
        .cmd(
            "rtjson_push_routes",
            0,
            RouteType::REQUEST,
            None,
            move |ctx, _| r2.push(ctx),
        )
        .cmd(
            "rtjson_next_route",
            0,
            RouteType::REQUEST | RouteType::FAILURE,
            None,
            move |ctx, _| r3.next(ctx),
        )
        .cmd(
            "rtjson_update_branch",
            0,
            RouteType::BRANCH,
            None,
            move |ctx, _| r4.update(ctx),
        )
}

#[cfg(test)]
mod tests {
    use super::extra_headers;

    #[test]
    fn extra_headers_are_header_lines_only() {
        assert_eq!(extra_headers("X-A: 1\r\n").as_deref(), Some("X-A: 1\r\n"));
        assert_eq!(
            extra_headers("X-A: 1\r\nX-B: two words").as_deref(),
            Some("X-A: 1\r\nX-B: two words\r\n")
        );
        assert_eq!(extra_headers("X-A: 1\r\n\r\nINVITE sip:x SIP/2.0"), None);
        assert_eq!(extra_headers("no colon here"), None);
        assert_eq!(extra_headers("X-A: 1\nX-B: 2"), None);
        assert_eq!(extra_headers("Bad Name: 1"), None);
    }
}
