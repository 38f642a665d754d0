//! # diversion: the Diversion header
//!
//! Kamailio's `diversion` module: `add_diversion(reason[, uri])` adds
//! `Diversion: <uri>;reason=reason` (draft-levy-sip-diversion) for the
//! next hop, the URI being the Request-URI as received unless given: the
//! header goes before the first Diversion header already there, else
//! after the last header; a second call's header goes on top.
#![forbid(unsafe_code)]

use sr_sdk::prelude::*;

/// The header line `add_diversion` inserts.
pub fn diversion_line(uri: &str, reason: &str) -> String {
    format!("Diversion: <{uri}>;reason={reason}\r\n")
}

/// The index of the edit holding the Diversion headers this module added
/// to a message.
struct OurEdit(usize);

fn add(ctx: &mut Ctx<'_>, reason: &str, uri: Option<&str>) -> i32 {
    let m = ctx.msg.msg();
    let uri = match uri {
        Some(u) => u.to_string(),
        // The Request-URI as received, not as rewritten (as Kamailio).
        None => match m.request_uri() {
            Some(u) => u.raw.to_string(),
            None => {
                lm_err!("add_diversion: not a request");
                return -1;
            }
        },
    };
    let line = diversion_line(&uri, reason);
    // A second call goes on top of the first one's header (the newest
    // first, as in Kamailio): the edit this module made, found by the
    // index it kept (a Diversion header `append_hf` added is not ours).
    let ours = ctx.msg.ext.get::<OurEdit>().map(|e| e.0).filter(|&i| {
        ctx.msg
            .edits
            .text(i)
            .is_some_and(|t| t.starts_with(b"Diversion: <"))
    });
    if let Some(i) = ours {
        let mut text = line.into_bytes();
        text.extend_from_slice(ctx.msg.edits.text(i).unwrap_or_default());
        ctx.msg.edits.set_text(i, &text);
        return 1;
    }
    let at = m
        .headers_by_name("Diversion")
        .next()
        .map_or(m.headers_end(), |h| h.start);
    ctx.msg.edits.insert(at, line.as_bytes());
    let index = ctx.msg.edits.ops().count() - 1;
    ctx.msg.ext.insert(OurEdit(index));
    1
}

/// The module definition.
pub fn module() -> ModuleDef {
    let suffix = params::str_cell("");
    let rt = RouteType(RouteType::REQUEST.0 | RouteType::FAILURE.0 | RouteType::BRANCH.0);
    let mut def = ModuleDef::new("diversion").param(
        "suffix",
        ParamKind::Str,
        // Accepted as in Kamailio, where it is not used either.
        params::string(&suffix),
    );
    for n in [1usize, 2] {
        def = def.cmd(
            "add_diversion",
            n,
            rt,
            Some(fixup::f(fixup::spve)),
            |ctx, p| {
                let reason = p[0].str(ctx).into_owned();
                let uri = p.get(1).map(|u| u.str(ctx).into_owned());
                add(ctx, &reason, uri.as_deref())
            },
        );
    }
    def
}

#[cfg(test)]
mod tests {
    use super::diversion_line;

    #[test]
    fn line_has_the_uri_and_reason() {
        assert_eq!(
            diversion_line("sip:bob@example.com", "user-busy"),
            "Diversion: <sip:bob@example.com>;reason=user-busy\r\n"
        );
    }
}
