//! Module `presence_mwi`: the `message-summary` event package (RFC 3842,
//! message waiting indication) for the presence module, as Kamailio's
//! presence_mwi: a voicemail server PUBLISHes
//! `application/simple-message-summary` bodies, phones SUBSCRIBE and get
//! the newest one. A body must start with `Messages-Waiting: yes|no` and
//! CRLF (else the PUBLISH gets 500, as in Kamailio). Bodies are not merged.
#![forbid(unsafe_code)]

use sr_mod_presence::events::{EventDef, PresenceApi, PRESENCE_API};
use sr_sdk::prelude::*;
use std::sync::Arc;

/// The check Kamailio's `mwi_publ_handl` makes: `Messages-Waiting`
/// (as written), optional spaces or tabs, `:`, optional spaces or tabs,
/// `yes` or `no` in any case, then CRLF.
pub fn body_ok(body: &str) -> bool {
    let Some(rest) = body.strip_prefix("Messages-Waiting") else {
        return false;
    };
    let rest = rest.trim_start_matches([' ', '\t']);
    let Some(rest) = rest.strip_prefix(':') else {
        return false;
    };
    let rest = rest.trim_start_matches([' ', '\t']);
    let lower = rest.get(..3).map(str::to_ascii_lowercase);
    let after = if lower.as_deref() == Some("yes") {
        &rest[3..]
    } else if rest.get(..2).map(str::to_ascii_lowercase).as_deref() == Some("no") {
        &rest[2..]
    } else {
        return false;
    };
    after.starts_with("\r\n")
}

/// The module definition.
pub fn module() -> ModuleDef {
    let expires = params::int_cell(3600);
    let mut def = ModuleDef::new("presence_mwi");
    def = def.param("default_expires", ParamKind::Int, params::int(&expires));
    def.on_init(move |core| {
        let api = bind::<PresenceApi>(core, PRESENCE_API)
            .ok_or("presence_mwi needs the presence module (load presence before presence_mwi)")?;
        let mut e = EventDef::publ("message-summary", "application/simple-message-summary");
        e.default_expires = params::get_int(&expires).clamp(0, i64::from(u32::MAX)) as u32;
        e.check = Some(Arc::new(body_ok));
        e.check_fails_with_500 = true;
        api.add_event(e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_as_kamailio_checks_them() {
        for ok in [
            "Messages-Waiting: yes\r\nMessage-Account: sip:vm@ex.test\r\n",
            "Messages-Waiting: no\r\n",
            "Messages-Waiting :\tNO\r\n",
            "Messages-Waiting:Yes\r\n",
        ] {
            assert!(body_ok(ok), "{ok:?}");
        }
        for bad in [
            "messages-waiting: YES\r\n",
            "Voice-Message: 2/8\r\n",
            "Messages-Waiting: maybe\r\n",
            "Messages-Waiting:yes",
            "  Messages-Waiting: yes\r\n",
            "Messages-Waiting yes\r\n",
            "",
        ] {
            assert!(!body_ok(bad), "{bad:?}");
        }
    }
}
