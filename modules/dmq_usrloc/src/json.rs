//! Contacts as dmq_usrloc's JSON messages carry them (Kamailio 5.6): a flat
//! object with `action` (1 update, 2 delete, 3 sync), `aor`, `ruid`, `c`
//! (the contact URI), `received`, `path`, `callid`, `user_agent`,
//! `instance`, `expires` and `last_modified` (absolute Unix times),
//! `cseq`, `flags`, `cflags`, `q` (thousandths, -1 unset), `methods`,
//! `reg_id`, `server_id` and, with `replicate_socket_info`, `sock`. Empty
//! strings stand for unset values.

use sr_mod_usrloc::{Contact, FL_RPL, METHODS_ALL, Q_UNSPECIFIED};
use sr_sdk::prelude::*;

/// Update (insert or update) a contact.
pub const UPDATE: i64 = 1;
/// Remove a contact.
pub const DELETE: i64 = 2;
/// Send me every contact.
pub const SYNC: i64 = 3;

/// The message for `c` with this action.
pub fn contact_json(action: i64, c: &Contact, with_socket: bool) -> Json {
    let mut m = JsonMap::new();
    m.insert("action".into(), json!(action));
    m.insert("aor".into(), json!(c.aor));
    m.insert("ruid".into(), json!(c.ruid));
    m.insert("c".into(), json!(c.contact));
    m.insert(
        "received".into(),
        json!(c.received.clone().unwrap_or_default()),
    );
    if with_socket {
        m.insert("sock".into(), json!(c.socket.clone().unwrap_or_default()));
    }
    m.insert("path".into(), json!(c.path.clone().unwrap_or_default()));
    m.insert("callid".into(), json!(c.callid));
    m.insert("user_agent".into(), json!(c.user_agent));
    m.insert(
        "instance".into(),
        json!(c.instance.clone().unwrap_or_default()),
    );
    m.insert("expires".into(), json!(c.expires));
    m.insert("cseq".into(), json!(c.cseq));
    m.insert("flags".into(), json!(c.flags & !FL_RPL));
    m.insert("cflags".into(), json!(c.cflags));
    m.insert("q".into(), json!(c.q));
    m.insert("last_modified".into(), json!(c.last_modified));
    m.insert("methods".into(), json!(c.methods));
    m.insert("reg_id".into(), json!(c.reg_id));
    m.insert("server_id".into(), json!(0));
    Json::Object(m)
}

fn text(o: &JsonMap<String, Json>, k: &str) -> String {
    o.get(k)
        .and_then(Json::as_str)
        .unwrap_or_default()
        .to_string()
}

fn opt(o: &JsonMap<String, Json>, k: &str) -> Option<String> {
    Some(text(o, k)).filter(|s| !s.is_empty())
}

fn int(o: &JsonMap<String, Json>, k: &str, default: i64) -> i64 {
    o.get(k).and_then(Json::as_i64).unwrap_or(default)
}

/// The contact a message carries, marked as replicated (`FL_RPL`);
/// `None` without an AoR, a ruid or an `expires`. `sock` is taken only when `local`
/// says it is one of our sockets.
pub fn contact_of(o: &JsonMap<String, Json>, local: impl Fn(&str) -> bool) -> Option<Contact> {
    let aor = opt(o, "aor")?;
    let ruid = opt(o, "ruid")?;
    // Without it the copy would never expire.
    o.get("expires")?.as_i64()?;
    let mut c = Contact::new(&aor, &text(o, "c"));
    c.ruid = ruid;
    c.received = opt(o, "received");
    c.path = opt(o, "path");
    c.callid = text(o, "callid");
    c.user_agent = text(o, "user_agent");
    c.instance = opt(o, "instance");
    c.expires = int(o, "expires", 0);
    c.cseq = int(o, "cseq", 1).clamp(0, i64::from(u32::MAX)) as u32;
    c.flags = (int(o, "flags", 0) as u32) | FL_RPL;
    c.cflags = int(o, "cflags", 0) as u32;
    c.q = int(o, "q", i64::from(Q_UNSPECIFIED)).clamp(-1, 1000) as i32;
    c.last_modified = int(o, "last_modified", 0);
    c.methods = o
        .get("methods")
        .and_then(Json::as_u64)
        .map_or(METHODS_ALL, |m| m as u32);
    c.reg_id = int(o, "reg_id", 0).clamp(0, i64::from(u32::MAX)) as u32;
    c.socket = opt(o, "sock").filter(|s| {
        let ok = local(s);
        if !ok {
            lm_warn!("dmq_usrloc: non-local socket <{s}>...ignoring");
        }
        ok
    });
    Some(c)
}

/// The contacts of a message: one object, or `{"multi": {"1": {...},
/// ...}}`; `Err` when the body is not such JSON.
pub fn messages(body: &str) -> Result<Vec<JsonMap<String, Json>>, String> {
    let v: Json = sr_sdk::serde_json::from_str(body).map_err(|e| e.to_string())?;
    let Json::Object(o) = v else {
        return Err("not a JSON object".into());
    };
    match o.get("multi") {
        Some(Json::Object(m)) => Ok(m.values().filter_map(|x| x.as_object().cloned()).collect()),
        Some(_) => Err("multi is not an object".into()),
        None => Ok(vec![o]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kamailio_messages_round_trip() {
        // As Kamailio 5.6.3 sends an update (observed).
        let k = r#"{"action":1,"aor":"alice","ruid":"uloc-6b0aa969-7da4-1","c":"sip:alice@127.0.0.1:35086","received":"","path":"","callid":"c388298262@127.0.0.1","user_agent":"n/a","instance":"","expires":1795861237,"cseq":1,"flags":0,"cflags":0,"q":-1,"last_modified":1795860937,"methods":4294967295,"reg_id":0,"server_id":0}"#;
        let ms = messages(k).unwrap();
        assert_eq!(ms.len(), 1);
        assert_eq!(ms[0]["action"], json!(1));
        let c = contact_of(&ms[0], |_| true).unwrap();
        assert_eq!(
            (c.aor.as_str(), c.ruid.as_str(), c.contact.as_str()),
            ("alice", "uloc-6b0aa969-7da4-1", "sip:alice@127.0.0.1:35086")
        );
        assert_eq!((c.expires, c.q, c.methods), (1795861237, -1, METHODS_ALL));
        assert_eq!((&c.received, &c.path, &c.instance), (&None, &None, &None));
        assert_eq!(c.flags & FL_RPL, FL_RPL);
        // Back out: the same fields, FL_RPL cleared.
        let back = contact_json(UPDATE, &c, false);
        let orig: Json = sr_sdk::serde_json::from_str(k).unwrap();
        assert_eq!(back, orig);
        // multi, a foreign socket ignored, missing ruid refused.
        let m = format!(r#"{{"multi":{{"1":{k},"2":{k}}}}}"#);
        assert_eq!(messages(&m).unwrap().len(), 2);
        let mut o = ms[0].clone();
        o.insert("sock".into(), json!("udp:10.9.9.9:5060"));
        assert_eq!(contact_of(&o, |_| false).unwrap().socket, None);
        let mut no_exp = o.clone();
        no_exp.remove("expires");
        assert!(contact_of(&no_exp, |_| true).is_none());
        o.remove("ruid");
        assert!(contact_of(&o, |_| true).is_none());
        assert!(messages("[1]").is_err() && messages("{").is_err());
    }
}
