//! Module `json` (Kamailio's): a member of a JSON object copied to a
//! pseudo-variable. `json_get_field(json, name, $dst)` gives it as JSON
//! text (a string with its quotes), `json_get_string` a string's text
//! (anything else as JSON text). The JSON is read and written as the
//! json-c library does ([`sr_sdk::jsonc`]). The `{json.parse,path}`
//! transformation is the core's (it reads nested members and array
//! elements).
#![forbid(unsafe_code)]

use sr_sdk::fixup::{Arg, FixupEnv};
use sr_sdk::jsonc;
use sr_sdk::prelude::*;

fn fixup(env: &dyn FixupEnv, i: usize, arg: &Arg) -> Result<Fixed, String> {
    if i == 2 {
        fixup::pvar(env, i, arg)
    } else {
        fixup::spve(env, i, arg)
    }
}

/// Copies member `p[1]` of the JSON object `p[0]` into `p[2]`: 1, or -1
/// when the text is not JSON or the member is not there.
fn get_field(ctx: &mut Ctx<'_>, p: &[Fixed], as_string: bool) -> i32 {
    let json = p[0].str(ctx).into_owned();
    let name = p[1].str(ctx).into_owned();
    let Some(v) = jsonc::parse(&json) else {
        lm_err!("empty or invalid JSON");
        return -1;
    };
    // (json-c reads the name as a C string.)
    let name = name.split('\0').next().unwrap_or("");
    // (A `null` member is no object in json-c: not found.)
    let Some(m) = v.get(name).filter(|m| !m.is_null()) else {
        return -1;
    };
    let text = if as_string {
        m.get_string()
    } else {
        m.to_json_string()
    };
    let Fixed::Pv(dst) = &p[2] else {
        return -1;
    };
    match dst.assign(ctx, Value::Str(text.into())) {
        Ok(()) => 1,
        Err(e) => {
            lm_err!("json: cannot set the result: {e}");
            -1
        }
    }
}

/// The module definition.
pub fn module() -> ModuleDef {
    let fx = Some(fixup::f(fixup));
    ModuleDef::new("json")
        // Kamailio 5.6 takes it but keeps `%` as the escape character of
        // `{json.parse}` (nothing copies the parameter): so does siprouter.
        .param("json_escape_char", ParamKind::Str, |_| Ok(()))
        .cmd("json_get_field", 3, RouteType::ANY, fx.clone(), |c, p| {
            get_field(c, p, false)
        })
        .cmd("json_get_string", 3, RouteType::ANY, fx, |c, p| {
            get_field(c, p, true)
        })
}
