//! siputils functions on URIs, as text rules without I/O: `tel2sip`, the
//! user or host of a URI replaced (`set_uri_user`, `set_uri_host`), a
//! Request-URI parameter found or removed (`uri_param_any`,
//! `uri_param_rm`), `is_gruu`.

use sr_sdk::sip_msg::Uri;

/// `tel2sip(uri, host, result)` (RFC 3261 19.1.6): a `tel:` URI made a
/// `sip:` one at `host`, the number's visual separators (`-.()`) dropped
/// and the whole lowercased, `;user=phone` added. `None` for a URI that is
/// not `tel:` (no conversion needed).
pub fn tel2sip(uri: &str, host: &str) -> Option<String> {
    if uri.len() < 4 || !uri[..4].eq_ignore_ascii_case("tel:") {
        return None;
    }
    let mut out = String::with_capacity(uri.len() + host.len() + 16);
    out.push_str("sip:");
    let mut in_params = false;
    for c in uri[4..].chars() {
        if c == ';' {
            in_params = true;
        }
        if !in_params && matches!(c, '-' | '.' | '(' | ')') {
            continue;
        }
        out.push(c.to_ascii_lowercase());
    }
    out.push('@');
    out.push_str(host);
    out.push_str(";user=phone");
    Some(out)
}

/// The URI with its user part replaced (`user` empty: removed); `None`
/// when `uri` is not a URI.
pub fn with_user(uri: &str, user: &str) -> Option<String> {
    let u = Uri::parse(uri).ok()?;
    let (head, rest) = uri.split_once(':')?;
    let hostpart = match rest.find('@') {
        Some(at) if u.user.is_some() => &rest[at + 1..],
        _ => rest,
    };
    Some(if user.is_empty() {
        format!("{head}:{hostpart}")
    } else {
        format!("{head}:{user}@{hostpart}")
    })
}

/// The URI with its host replaced; `None` when `uri` is not a URI.
pub fn with_host(uri: &str, host: &str) -> Option<String> {
    let u = Uri::parse(uri).ok()?;
    let start = u.host_str.as_ptr() as usize - uri.as_ptr() as usize;
    let end = start + u.host_str.len();
    Some(format!("{}{host}{}", &uri[..start], &uri[end..]))
}

/// The `;name[=value]` parameters of a URI's parameter part: the byte
/// range of each (its `;` included) with its lower-cased name.
fn param_spans(params: &str) -> Vec<(usize, usize, String)> {
    let mut out = Vec::new();
    let mut i = 0;
    let b = params.as_bytes();
    while i < b.len() {
        if b[i] != b';' {
            i += 1;
            continue;
        }
        let start = i;
        let mut j = i + 1;
        while j < b.len() && b[j] != b';' {
            j += 1;
        }
        let text = &params[start + 1..j];
        let name = text
            .split('=')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        out.push((start, j, name));
        i = j;
    }
    out
}

/// Whether the URI has parameter `name`, with or without a value.
pub fn has_param(uri: &str, name: &str) -> bool {
    let Ok(u) = Uri::parse(uri) else {
        return false;
    };
    let want = name.to_ascii_lowercase();
    let params = if u.params.is_empty() {
        String::new()
    } else {
        format!(";{}", u.params.trim_start_matches(';'))
    };
    param_spans(&params).iter().any(|(_, _, n)| *n == want)
}

/// The value of the URI's first parameter `name` (names ignoring case;
/// empty for one without a value); `None` without it.
pub fn param_value(uri: &str, name: &str) -> Option<String> {
    let u = Uri::parse(uri).ok()?;
    u.param_iter()
        .find(|p| p.name.eq_ignore_ascii_case(name))
        .map(|p| p.value.unwrap_or("").to_string())
}

/// The URI without parameter `name` (every occurrence); `None` when it
/// has no such parameter or is not a URI.
pub fn without_param(uri: &str, name: &str) -> Option<String> {
    strip_param(uri, name, false)
}

/// The URI without the last occurrence of parameter `name` (siputils'
/// `contact_param_rm`, as Kamailio's removes one); `None` as
/// [`without_param`].
pub fn without_last_param(uri: &str, name: &str) -> Option<String> {
    strip_param(uri, name, true)
}

fn strip_param(uri: &str, name: &str, last_only: bool) -> Option<String> {
    let u = Uri::parse(uri).ok()?;
    if u.params.is_empty() {
        return None;
    }
    let base = u.params.as_ptr() as usize - uri.as_ptr() as usize;
    // The parameter part as it is in the URI, with the `;` before it.
    let (pstart, ptext) = if base > 0 && uri.as_bytes()[base - 1] == b';' {
        (base - 1, &uri[base - 1..base + u.params.len()])
    } else {
        (base, &uri[base..base + u.params.len()])
    };
    let want = name.to_ascii_lowercase();
    let spans = param_spans(ptext);
    if !spans.iter().any(|(_, _, n)| *n == want) {
        return None;
    }
    let last = spans.iter().rposition(|(_, _, n)| *n == want);
    let mut out = String::with_capacity(uri.len());
    out.push_str(&uri[..pstart]);
    let mut at = 0;
    for (i, (s, e, n)) in spans.iter().enumerate() {
        if *n == want && (!last_only || Some(i) == last) {
            out.push_str(&ptext[at..*s]);
            at = *e;
        }
    }
    out.push_str(&ptext[at..]);
    out.push_str(&uri[pstart + ptext.len()..]);
    Some(out)
}

/// `is_gruu`: 1 for a public GRUU (`;gr=value`), 2 for a temporary one
/// (`;gr` without value), `None` without `gr`.
pub fn gruu_kind(uri: &str) -> Option<i32> {
    let u = Uri::parse(uri).ok()?;
    match u.param("gr")? {
        Some(v) if !v.is_empty() => Some(1),
        _ => Some(2),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tel_uris_become_sip_uris() {
        assert_eq!(
            tel2sip("tel:+(34)-999-888-777", "foo.com").as_deref(),
            Some("sip:+34999888777@foo.com;user=phone")
        );
        assert_eq!(
            tel2sip("tel:+12-(34)-56-78;Ext=200;ISUB=+123-456", "foo.com").as_deref(),
            Some("sip:+12345678;ext=200;isub=+123-456@foo.com;user=phone")
        );
        assert_eq!(tel2sip("sip:a@b", "x"), None);
    }

    #[test]
    fn users_hosts_and_params() {
        assert_eq!(
            with_user("sip:a@b;x=1", "c").as_deref(),
            Some("sip:c@b;x=1")
        );
        assert_eq!(
            with_user("sip:b:5060", "c").as_deref(),
            Some("sip:c@b:5060")
        );
        assert_eq!(with_user("sip:a@b", "").as_deref(), Some("sip:b"));
        assert_eq!(
            with_host("sip:a@b:5060;x", "h.org").as_deref(),
            Some("sip:a@h.org:5060;x")
        );
        assert!(has_param("sip:a@b;x;y=1", "Y"));
        assert!(!has_param("sip:a@b;xy=1", "x"));
        assert_eq!(
            without_param("sip:a@b;x=1;y;x=2?h=v", "x").as_deref(),
            Some("sip:a@b;y?h=v")
        );
        assert_eq!(without_param("sip:a@b;y", "x"), None);
        assert_eq!(gruu_kind("sip:a@b;gr=urn:uuid:1"), Some(1));
        assert_eq!(gruu_kind("sip:t@b;gr"), Some(2));
        assert_eq!(gruu_kind("sip:a@b"), None);
    }
}
