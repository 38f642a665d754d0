//! `mysql://user:password@host[:port]/database` as Kamailio reads it.

use sr_sdk::db::{DbError, DbResult};

/// The parts of a `mysql://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MysqlUrl {
    /// User name (may be empty).
    pub user: String,
    /// Password (may be empty).
    pub password: String,
    /// Host name or address.
    pub host: String,
    /// Port (3306 when not given).
    pub port: u16,
    /// The database.
    pub database: String,
}

/// Parses a `mysql://` URL. The password may contain `@` and `:` (the
/// last `@` ends it, as in Kamailio's parser).
pub fn parse(url: &str) -> DbResult<MysqlUrl> {
    let bad = |why: &str| DbError(format!("invalid database URL '{}': {why}", redact(url)));
    let rest = url
        .strip_prefix("mysql://")
        .or_else(|| url.strip_prefix("MYSQL://"))
        .ok_or_else(|| bad("expected mysql://user:password@host[:port]/database"))?;
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
        None => 3306,
        Some(p) => p.parse().map_err(|_| bad("the port is not a number"))?,
    };
    Ok(MysqlUrl {
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
        (Some(s), Some(at)) if at > s => {
            let auth = &url[s + 3..at];
            match auth.split_once(':') {
                Some((u, _)) => format!("{}{u}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = parse("mysql://kamailio:kamailiorw@localhost/kamailio").unwrap();
        assert_eq!(
            (
                u.user.as_str(),
                u.password.as_str(),
                u.host.as_str(),
                u.port
            ),
            ("kamailio", "kamailiorw", "localhost", 3306)
        );
        assert_eq!(u.database, "kamailio");
        let u = parse("mysql://u:p@ss:w@127.0.0.1:3307/db").unwrap();
        assert_eq!((u.password.as_str(), u.port), ("p@ss:w", 3307));
        let u = parse("mysql://u@[::1]:3308/db").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.password.as_str()),
            ("::1", 3308, "")
        );
        assert!(parse("mysql://u:p@host").is_err());
        assert!(parse("mysql://u:p@host:x/db").is_err());
        assert!(parse("sqlite:///x.db").is_err());
        assert_eq!(
            redact("mysql://kamailio:secret@h/db"),
            "mysql://kamailio:***@h/db"
        );
    }
}
