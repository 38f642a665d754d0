//! The presence module's tables, as Kamailio's `presence-create.sql`
//! makes them (and with its versions): publications (`presentity`),
//! subscriptions (`active_watchers`), watchers' authorisation states
//! (`watchers`), XCAP documents (`xcap`) and the presence client's
//! records (`pua`).

use super::schema::{col, ColType, TableDef};

/// Version of `presentity`.
pub const PRESENTITY_VERSION: i64 = 5;
/// Version of `active_watchers`.
pub const ACTIVE_WATCHERS_VERSION: i64 = 12;
/// Version of `watchers`.
pub const WATCHERS_VERSION: i64 = 3;
/// Version of `xcap`.
pub const XCAP_VERSION: i64 = 4;
/// Version of `pua`.
pub const PUA_VERSION: i64 = 7;

/// `presentity`: one row per publication (PUBLISH) not expired.
pub fn presentity() -> TableDef {
    use ColType::*;
    TableDef {
        name: "presentity",
        version: PRESENTITY_VERSION,
        columns: vec![
            col("id", Id, false, None),
            col("username", Varchar(64), false, None),
            col("domain", Varchar(64), false, None),
            col("event", Varchar(64), false, None),
            col("etag", Varchar(128), false, None),
            col("expires", Int, false, None),
            col("received_time", Int, false, None),
            col("body", Blob, false, None),
            col("sender", Varchar(255), false, None),
            col("priority", Int, false, Some("0")),
            col("ruid", Varchar(64), true, None),
        ],
        unique: vec![
            (
                "presentity_presentity_idx",
                vec!["username", "domain", "event", "etag"],
            ),
            ("presentity_ruid_idx", vec!["ruid"]),
        ],
        indexes: vec![
            ("presentity_presentity_expires", vec!["expires"]),
            (
                "presentity_account_idx",
                vec!["username", "domain", "event"],
            ),
        ],
    }
}

/// `active_watchers`: one row per subscription (SUBSCRIBE dialog).
pub fn active_watchers() -> TableDef {
    use ColType::*;
    let v = |name, n| col(name, Varchar(n), false, None);
    TableDef {
        name: "active_watchers",
        version: ACTIVE_WATCHERS_VERSION,
        columns: vec![
            col("id", Id, false, None),
            v("presentity_uri", 255),
            v("watcher_username", 64),
            v("watcher_domain", 64),
            v("to_user", 64),
            v("to_domain", 64),
            col("event", Varchar(64), false, Some("'presence'")),
            col("event_id", Varchar(64), true, None),
            v("to_tag", 128),
            v("from_tag", 128),
            v("callid", 255),
            col("local_cseq", Int, false, None),
            col("remote_cseq", Int, false, None),
            v("contact", 255),
            col("record_route", Text, true, None),
            col("expires", Int, false, None),
            col("status", Int, false, Some("2")),
            col("reason", Varchar(64), true, None),
            col("version", Int, false, Some("0")),
            v("socket_info", 64),
            v("local_contact", 255),
            v("from_user", 64),
            v("from_domain", 64),
            col("updated", Int, false, None),
            col("updated_winfo", Int, false, None),
            col("flags", Int, false, Some("0")),
            col("user_agent", Varchar(255), true, Some("''")),
        ],
        unique: vec![(
            "active_watchers_active_watchers_idx",
            vec!["callid", "to_tag", "from_tag"],
        )],
        indexes: vec![
            ("active_watchers_active_watchers_expires", vec!["expires"]),
            (
                "active_watchers_active_watchers_pres",
                vec!["presentity_uri", "event"],
            ),
            ("active_watchers_updated_idx", vec!["updated"]),
            (
                "active_watchers_updated_winfo_idx",
                vec!["updated_winfo", "presentity_uri"],
            ),
        ],
    }
}

/// `watchers`: the authorisation state of each watcher of a presentity.
pub fn watchers() -> TableDef {
    use ColType::*;
    TableDef {
        name: "watchers",
        version: WATCHERS_VERSION,
        columns: vec![
            col("id", Id, false, None),
            col("presentity_uri", Varchar(255), false, None),
            col("watcher_username", Varchar(64), false, None),
            col("watcher_domain", Varchar(64), false, None),
            col("event", Varchar(64), false, Some("'presence'")),
            col("status", Int, false, None),
            col("reason", Varchar(64), true, None),
            col("inserted_time", Int, false, None),
        ],
        unique: vec![(
            "watchers_watcher_idx",
            vec![
                "presentity_uri",
                "watcher_username",
                "watcher_domain",
                "event",
            ],
        )],
        indexes: vec![],
    }
}

/// `xcap`: XCAP documents (presence authorisation rules).
pub fn xcap() -> TableDef {
    use ColType::*;
    TableDef {
        name: "xcap",
        version: XCAP_VERSION,
        columns: vec![
            col("id", Id, false, None),
            col("username", Varchar(64), false, None),
            col("domain", Varchar(64), false, None),
            col("doc", Blob, false, None),
            col("doc_type", Int, false, None),
            col("etag", Varchar(128), false, None),
            col("source", Int, false, None),
            col("doc_uri", Varchar(255), false, None),
            col("port", Int, false, None),
        ],
        unique: vec![("xcap_doc_uri_idx", vec!["doc_uri"])],
        indexes: vec![
            (
                "xcap_account_doc_type_idx",
                vec!["username", "domain", "doc_type"],
            ),
            (
                "xcap_account_doc_type_uri_idx",
                vec!["username", "domain", "doc_type", "doc_uri"],
            ),
            (
                "xcap_account_doc_uri_idx",
                vec!["username", "domain", "doc_uri"],
            ),
        ],
    }
}

/// `pua`: the presence user agent's publications and subscriptions.
pub fn pua() -> TableDef {
    use ColType::*;
    let v = |name, n| col(name, Varchar(n), false, None);
    let i = |name| col(name, Int, false, None);
    TableDef {
        name: "pua",
        version: PUA_VERSION,
        columns: vec![
            col("id", Id, false, None),
            v("pres_uri", 255),
            v("pres_id", 255),
            i("event"),
            i("expires"),
            i("desired_expires"),
            i("flag"),
            v("etag", 128),
            col("tuple_id", Varchar(64), true, None),
            v("watcher_uri", 255),
            v("call_id", 255),
            v("to_tag", 128),
            v("from_tag", 128),
            i("cseq"),
            col("record_route", Text, true, None),
            v("contact", 255),
            v("remote_contact", 255),
            i("version"),
            col("extra_headers", Text, false, None),
        ],
        unique: vec![(
            "pua_pua_idx",
            vec!["etag", "tuple_id", "call_id", "from_tag"],
        )],
        indexes: vec![
            ("pua_expires_idx", vec!["expires"]),
            ("pua_dialog1_idx", vec!["pres_id", "pres_uri"]),
            ("pua_dialog2_idx", vec!["call_id", "from_tag"]),
            ("pua_record_idx", vec!["pres_id"]),
        ],
    }
}

/// The five tables, in Kamailio's order.
pub fn all() -> Vec<TableDef> {
    vec![presentity(), active_watchers(), watchers(), xcap(), pua()]
}
