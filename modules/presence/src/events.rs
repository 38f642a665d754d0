//! Event packages: presence serves only the events other modules add
//! (presence_xml adds `presence`, `presence.winfo` and `xcap-diff`), each
//! with its content type and the hooks that shape its bodies — Kamailio's
//! `add_event` API.

use std::sync::{Arc, OnceLock, RwLock};

/// The name under which presence publishes its [`PresenceApi`].
pub const PRESENCE_API: &str = "presence";

/// Merges the bodies of a presentity's publications, newest first.
pub type AggFn = Arc<dyn Fn(&[&str]) -> Option<String> + Send + Sync>;
/// Makes a body from another (the offline body of a removed publication).
pub type BodyFn = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;
/// Checks a published body (false: 415).
pub type CheckFn = Arc<dyn Fn(&str) -> bool + Send + Sync>;
/// Decides a new watcher's state: watcher URI, presentity URI.
pub type AuthFn = Arc<dyn Fn(&str, &str) -> Status + Send + Sync>;

/// A subscription's state (Kamailio's numbers, as in `active_watchers`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Status {
    /// Authorised: NOTIFYs carry the state.
    Active = 1,
    /// Waiting for authorisation: NOTIFYs carry no body.
    #[default]
    Pending = 2,
    /// Ended.
    Terminated = 3,
    /// Pending, seen by no watcher-info subscriber yet.
    Waiting = 4,
}

impl Status {
    /// From the number stored in the database.
    pub fn from_i64(n: i64) -> Status {
        match n {
            1 => Status::Active,
            3 => Status::Terminated,
            4 => Status::Waiting,
            _ => Status::Pending,
        }
    }

    /// The word of `Subscription-State` and of watcher-info documents.
    pub fn word(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Pending => "pending",
            Status::Terminated => "terminated",
            Status::Waiting => "waiting",
        }
    }
}

/// What kind of event package.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// State published with PUBLISH (`presence`, `xcap-diff`).
    Publ,
    /// Watcher information about another package's subscriptions
    /// (`presence.winfo`).
    Winfo,
}

/// An event package.
#[derive(Clone)]
pub struct EventDef {
    /// The package name (`presence`).
    pub name: String,
    /// The Content-Type of its bodies.
    pub content_type: String,
    /// Publication or watcher information.
    pub kind: Kind,
    /// Expires when a request names none.
    pub default_expires: u32,
    /// Whether new watchers need authorisation (`auth` decides).
    pub req_auth: bool,
    /// Merges several publications into one body; without it the newest
    /// body is sent as it is.
    pub agg: Option<AggFn>,
    /// The body that stands for a removed publication.
    pub offline: Option<BodyFn>,
    /// Checks published bodies.
    pub check: Option<CheckFn>,
    /// Whether a body the check refuses gets 500 (Kamailio's presence_mwi
    /// sends no reply of its own) rather than 415 (presence_xml's).
    pub check_fails_with_500: bool,
    /// Authorises new watchers (when `req_auth`); without it they wait.
    pub auth: Option<AuthFn>,
}

impl std::fmt::Debug for EventDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventDef")
            .field("name", &self.name)
            .field("content_type", &self.content_type)
            .field("kind", &self.kind)
            .finish()
    }
}

impl EventDef {
    /// A publication package with no hooks.
    pub fn publ(name: &str, content_type: &str) -> EventDef {
        EventDef {
            name: name.to_string(),
            content_type: content_type.to_string(),
            kind: Kind::Publ,
            default_expires: 3600,
            req_auth: false,
            agg: None,
            offline: None,
            check: None,
            check_fails_with_500: false,
            auth: None,
        }
    }
}

/// Reads a presentity's state body: (presentity URI, event) → the body
/// watchers would be sent now.
pub type StateReader = Arc<dyn Fn(&str, &str) -> Option<String> + Send + Sync>;

/// The events presence serves; other modules add theirs at `mod_init`.
#[derive(Default)]
pub struct PresenceApi {
    events: RwLock<Vec<Arc<EventDef>>>,
    state: OnceLock<StateReader>,
}

impl std::fmt::Debug for PresenceApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PresenceApi")
            .field("events", &self.events)
            .finish_non_exhaustive()
    }
}

impl PresenceApi {
    /// Adds an event package (refused when one of that name exists).
    pub fn add_event(&self, e: EventDef) -> Result<(), String> {
        let mut evs = self.events.write().map_err(|_| "presence: lock")?;
        if evs.iter().any(|x| x.name.eq_ignore_ascii_case(&e.name)) {
            return Err(format!("presence: event '{}' added twice", e.name));
        }
        evs.push(Arc::new(e));
        Ok(())
    }

    /// The package of this name (case-insensitive).
    pub fn find(&self, name: &str) -> Option<Arc<EventDef>> {
        self.events
            .read()
            .ok()?
            .iter()
            .find(|e| e.name.eq_ignore_ascii_case(name))
            .cloned()
    }

    /// The watcher-info package watching `e` (`presence.winfo` for
    /// `presence`).
    pub fn winfo_of(&self, e: &EventDef) -> Option<Arc<EventDef>> {
        if e.kind != Kind::Publ {
            return None;
        }
        self.find(&format!("{}.winfo", e.name))
            .filter(|w| w.kind == Kind::Winfo)
    }

    /// Sets how [`PresenceApi::presentity_body`] reads the state (the
    /// presence module does, at start).
    pub fn set_state_reader(&self, f: StateReader) {
        let _ = self.state.set(f);
    }

    /// The body a watcher of `uri` for `event` would get now (the live
    /// publications merged; Kamailio's `pres_get_presentity`), or `None`
    /// when there is none.
    pub fn presentity_body(&self, uri: &str, event: &str) -> Option<String> {
        self.state.get().and_then(|f| f(uri, event))
    }

    /// The value of `Allow-Events`: the packages, last added first (as
    /// Kamailio lists them).
    pub fn allow_events(&self) -> String {
        self.events.read().map_or(String::new(), |evs| {
            evs.iter()
                .rev()
                .map(|e| e.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_listed_last_first_and_found_in_any_case() {
        let api = PresenceApi::default();
        api.add_event(EventDef::publ("presence", "application/pidf+xml"))
            .unwrap();
        let mut w = EventDef::publ("presence.winfo", "application/watcherinfo+xml");
        w.kind = Kind::Winfo;
        api.add_event(w).unwrap();
        api.add_event(EventDef::publ("xcap-diff", "application/xcap-diff+xml"))
            .unwrap();
        assert_eq!(api.allow_events(), "xcap-diff, presence.winfo, presence");
        assert!(api.add_event(EventDef::publ("Presence", "x")).is_err());
        let p = api.find("PRESENCE").unwrap();
        assert_eq!(api.winfo_of(&p).unwrap().name, "presence.winfo");
        assert!(api.winfo_of(&api.find("xcap-diff").unwrap()).is_none());
        assert!(api.find("dialog").is_none());
    }
}
