//! `postgres://user:password@host[:port]/database` as Kamailio reads it.

use sr_sdk::db::{DbError, DbResult};

/// The parts of a `postgres://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgUrl {
    /// User name (may be empty).
    pub user: String,
    /// Password (may be empty).
    pub password: String,
    /// Host name or address.
    pub host: String,
    /// Port (5432 when not given).
    pub port: u16,
    /// The database.
    pub database: String,
}

/// Parses a `postgres://` URL (Kamailio's scheme); the last `@` ends the
/// password.
pub fn parse(url: &str) -> DbResult<PgUrl> {
    let bad = |why: &str| DbError(format!("invalid database URL '{}': {why}", redact(url)));
    let rest = ["postgres://", "POSTGRES://"]
        .iter()
        .find_map(|p| url.strip_prefix(p))
        .ok_or_else(|| bad("expected postgres://user:password@host[:port]/database"))?;
    let (auth, hostpart) = match rest.rfind('@') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => ("", rest),
    };
    let (user, password) = auth.split_once(':').unwrap_or((auth, ""));
    let (hostport, database) = hostpart
        .split_once('/')
        .ok_or_else(|| bad("no database after the host"))?;
    if database.is_empty() || database.contains('/') {
        return Err(bad("the database name is missing or has a '/'"));
    }
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (h, p) = v6.split_once(']').ok_or_else(|| bad("unclosed '['"))?;
        (h, p.strip_prefix(':'))
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    if host.is_empty() {
        return Err(bad("no host"));
    }
    let port = match port {
        None => 5432,
        Some(p) => p.parse().map_err(|_| bad("the port is not a number"))?,
    };
    Ok(PgUrl {
        user: user.to_string(),
        password: password.to_string(),
        host: host.to_string(),
        port,
        database: database.to_string(),
    })
}

/// The URL with its password replaced, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => match url[s + 3..at].split_once(':') {
            Some((u, _)) => format!("{}{u}:***{}", &url[..s + 3], &url[at..]),
            None => url.to_string(),
        },
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = parse("postgres://kamailio:kamailiorw@localhost/kamailio").unwrap();
        assert_eq!(
            (u.user.as_str(), u.port, u.database.as_str()),
            ("kamailio", 5432, "kamailio")
        );
        let u = parse("postgres://u:p@ss@127.0.0.1:5433/db").unwrap();
        assert_eq!((u.password.as_str(), u.port), ("p@ss", 5433));
        assert!(parse("postgres://u:p@h").is_err());
        assert!(parse("mysql://u:p@h/db").is_err());
        assert_eq!(redact("postgres://a:secret@h/db"), "postgres://a:***@h/db");
    }
}
