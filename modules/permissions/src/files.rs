//! `allow_routing`, `allow_register`, `allow_uri` and the RPC
//! `permissions.testUri`: pairs of rule files (see [`crate::rules`]),
//! read at start (the defaults) or when the script that names them is
//! loaded, never again, as in Kamailio. A name without `/` is next to the
//! main configuration file.

use crate::rules::{self, Rule};
use crate::Permissions;
use sr_sdk::prelude::*;
use sr_sdk::sip_msg::headers::ContactValue;
use sr_sdk::sip_msg::Uri;
use std::path::Path;
use std::sync::Arc;

/// An allow file and a deny file, read.
#[derive(Debug)]
pub struct Pair {
    /// Where the allow rules came from.
    pub allow_path: String,
    /// Where the deny rules came from.
    pub deny_path: String,
    allow: Vec<Rule>,
    deny: Vec<Rule>,
}

/// Where `name` is read from: as written when it has a `/`, else in
/// `dir` (the configuration file's folder).
pub fn resolve(dir: Option<&Path>, name: &str) -> String {
    if name.contains('/') {
        return name.to_string();
    }
    match dir {
        Some(dir) => dir.join(name).display().to_string(),
        None => name.to_string(),
    }
}

/// The configuration file's folder.
pub fn config_dir(core: &dyn Core) -> Option<std::path::PathBuf> {
    core.config_path()?.parent().map(Path::to_path_buf)
}

fn read(path: &str) -> Vec<Rule> {
    if path.is_empty() {
        return Vec::new();
    }
    // Bytes, as Kamailio reads them: a byte that is not UTF-8 (a Latin-1
    // comment) does not make the file unreadable.
    let text = match std::fs::read(path) {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(e) => {
            lm_info!("permissions: file not found: {path} ({e})");
            return Vec::new();
        }
    };
    let (rules, errors) = rules::parse(&text);
    for (line, e) in errors {
        lm_err!("permissions: {path}:{line}: {e} (line skipped)");
    }
    rules
}

impl Pair {
    /// Reads both files (a missing one is empty).
    pub fn load(allow_path: String, deny_path: String) -> Pair {
        Pair {
            allow: read(&allow_path),
            deny: read(&deny_path),
            allow_path,
            deny_path,
        }
    }

    /// An empty pair (files not loaded).
    pub fn empty() -> Pair {
        Pair {
            allow_path: String::new(),
            deny_path: String::new(),
            allow: Vec::new(),
            deny: Vec::new(),
        }
    }

    fn is_empty(&self) -> bool {
        self.allow.is_empty() && self.deny.is_empty()
    }

    /// The plain check: allow, then deny, else allowed.
    pub fn allows(&self, left: &str, right: &str) -> bool {
        if self.is_empty() || rules::any_match(&self.allow, left, right) {
            return true;
        }
        !rules::any_match(&self.deny, left, right)
    }
}

/// `sip:user@host`, or `sip:host` without a user (branches, Contacts).
fn plain(uri: &str) -> Option<String> {
    let u = Uri::parse(uri).ok()?;
    Some(match u.user {
        Some(user) => format!("sip:{user}@{}", u.host_str),
        None => format!("sip:{}", u.host_str),
    })
}

const MAX_URI: usize = 256;

/// `allow_routing`: the From URI against the Request-URI (as
/// `sip:user@host`), then the other branches when `check_all_branches`.
pub fn routing(pm: &Permissions, pair: &Pair, ctx: &mut Ctx<'_>) -> i32 {
    if pair.is_empty() {
        return 1;
    }
    let m = ctx.msg.msg();
    let Ok(from) = m.from().map(|f| f.uri_str.to_string()) else {
        return -1;
    };
    let Ok(r) = ctx.msg.ruri_parsed() else {
        return -1;
    };
    let ruri = format!("sip:{}@{}", r.user.unwrap_or(""), r.host_str);
    if from.len() > MAX_URI || ruri.len() > MAX_URI {
        return -1;
    }
    let all = crate::int(&pm.rule_params.check_all_branches) != 0;
    if rules::any_match(&pair.allow, &from, &ruri) {
        if !all {
            return 1;
        }
    } else if rules::any_match(&pair.deny, &from, &ruri) {
        return -1;
    } else if !all {
        return 1;
    }
    for b in &ctx.msg.branches {
        let Some(p) = plain(&b.uri).filter(|p| p.len() <= MAX_URI) else {
            return -1;
        };
        if rules::any_match(&pair.allow, &from, &p) {
            continue;
        }
        if rules::any_match(&pair.deny, &from, &p) {
            return -1;
        }
    }
    1
}

/// `allow_register`: the To URI against each Contact (as `sip:user@host`).
pub fn register(pm: &Permissions, pair: &Pair, ctx: &mut Ctx<'_>) -> i32 {
    if pair.is_empty() {
        return 1;
    }
    let m = ctx.msg.msg();
    let Ok(to) = m.to().map(|t| t.uri_str.to_string()) else {
        return -1;
    };
    let all = crate::int(&pm.rule_params.check_all_branches) != 0;
    for (i, c) in m.contacts().enumerate() {
        let c = match c {
            Ok(ContactValue::Star) if i == 0 => return 1,
            Ok(ContactValue::Star) => continue,
            Ok(ContactValue::Addr(na)) => na.uri_str.to_string(),
            Err(_) => return -1,
        };
        // (Checked once there is a Contact to check, as Kamailio does.)
        if to.len() > MAX_URI {
            return -1;
        }
        let Some(p) = plain(&c).filter(|p| p.len() <= MAX_URI) else {
            return -1;
        };
        if all && rules::any_match(&pair.allow, &to, &p) {
            continue;
        }
        if rules::any_match(&pair.deny, &to, &p) {
            return -1;
        }
    }
    1
}

/// `allow_uri`: the From URI against a value, as it is.
pub fn uri(pair: &Pair, ctx: &mut Ctx<'_>, value: Value<'_>) -> i32 {
    if pair.is_empty() {
        return 1;
    }
    // An integer counts as its decimal text, as Kamailio's integer
    // pseudo-variables carry one.
    let v = match value {
        Value::Str(v) => v.into_owned(),
        Value::Int(i) => i.to_string(),
        Value::Null => return -1,
    };
    if v.len() > MAX_URI {
        return -1;
    }
    let Ok(from) = ctx.msg.msg().from().map(|f| f.uri_str.to_string()) else {
        return -1;
    };
    if pair.allows(&from, &v) {
        1
    } else {
        -1
    }
}

/// The pair for (allow, deny) paths: one already read, or read now.
pub fn pair(pm: &Permissions, allow: String, deny: String) -> Arc<Pair> {
    let mut all = pm.rule_files.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = all
        .iter()
        .find(|p| p.allow_path == allow && p.deny_path == deny)
    {
        return p.clone();
    }
    let p = Arc::new(Pair::load(allow, deny));
    all.push(p.clone());
    p
}

/// `permissions.testUri basename uri contact`: `Allowed` or `Denied`.
pub fn test_uri(pm: &Permissions, base: &str, uri: &str, contact: &str) -> &'static str {
    let suffix = crate::text(&pm.rule_params.allow_suffix);
    let dir = pm.config_dir.get().cloned().flatten();
    let allow = resolve(dir.as_deref(), &format!("{base}{suffix}"));
    let found = pm
        .rule_files
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .find(|p| p.allow_path == allow)
        .cloned();
    match found {
        Some(p) if p.allows(uri, contact) => "Allowed",
        Some(_) => "Denied",
        None => {
            lm_err!("permissions: file {allow} has not been loaded");
            "Denied"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_uris_drop_port_parameters_and_scheme() {
        assert_eq!(
            plain("sip:bob@b.com:5070;transport=tcp").as_deref(),
            Some("sip:bob@b.com")
        );
        assert_eq!(plain("sips:bob@b.com").as_deref(), Some("sip:bob@b.com"));
        assert_eq!(
            plain("sip:hostonly.com").as_deref(),
            Some("sip:hostonly.com")
        );
        assert_eq!(plain("not a uri"), None);
    }

    #[test]
    fn a_file_with_a_latin1_comment_is_read() {
        let path = std::env::temp_dir().join(format!("sr-perm-latin1-{}.deny", std::process::id()));
        std::fs::write(&path, b"# M\xfcller\r\nALL : \"^sip:eve@\"\r\n").unwrap();
        let rules = read(path.to_str().unwrap());
        let _ = std::fs::remove_file(&path);
        assert_eq!(rules.len(), 1);
        assert!(rules[0].right.matches("sip:eve@x"));
    }

    #[test]
    fn allow_then_deny_then_allowed() {
        let (a, _) = rules::parse("\"^sip:alice@\" : ALL\n");
        let (d, _) = rules::parse("ALL : ALL\n");
        let p = Pair {
            allow_path: String::new(),
            deny_path: String::new(),
            allow: a,
            deny: d,
        };
        assert!(p.allows("sip:alice@a.com", "sip:x@y"));
        assert!(!p.allows("sip:eve@a.com", "sip:x@y"));
        assert!(Pair::empty().allows("a", "b"));
    }
}
