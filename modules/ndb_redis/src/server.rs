//! The `server` parameter: `name=srvN;addr=127.0.0.1;port=6379;db=1;pass=x`,
//! `unix=/path` instead of the address, or Sentinel's
//! `sentinel_group=g;sentinel_master=1;sentinel=host:port` (repeatable).

/// Where a server is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// TCP to an address and port.
    Tcp(String, u16),
    /// A UNIX socket (takes precedence over `addr`/`port`, as Kamailio's).
    Unix(String),
    /// Asked of Sentinels: the master (`true`) or a replica of a group.
    Sentinel {
        /// The monitored group's name.
        group: String,
        /// The master, else the first replica listed.
        master: bool,
        /// The Sentinels, `host:port`, asked in order.
        sentinels: Vec<String>,
    },
}

/// One configured server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    /// The name the functions use.
    pub name: String,
    /// Where it is.
    pub target: Target,
    /// The database number (`SELECT`), 0 by default.
    pub db: i64,
    /// The password (`AUTH`), if any.
    pub pass: Option<String>,
}

/// Reads one `server` value.
pub fn parse(v: &str) -> Result<Server, String> {
    let mut name = None;
    let mut addr = "127.0.0.1".to_string();
    let mut port = 6379u16;
    let mut unix = None;
    let mut db = 0i64;
    let mut pass = None;
    let mut group = None;
    let mut master = false;
    let mut sentinels = Vec::new();
    for part in v.split(';') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let (k, val) = part
            .split_once('=')
            .ok_or_else(|| format!("invalid server attribute [{part}] in [{v}]"))?;
        let (k, val) = (k.trim(), val.trim());
        let int = |what: &str| {
            val.parse::<i64>()
                .map_err(|_| format!("invalid {what} [{val}] in [{v}]"))
        };
        match k {
            "name" => name = Some(val.to_string()),
            "addr" => addr = val.to_string(),
            "port" => {
                port = u16::try_from(int("port")?)
                    .map_err(|_| format!("invalid port [{val}] in [{v}]"))?
            }
            "unix" => unix = Some(val.to_string()),
            "db" => db = int("db")?,
            "pass" => pass = Some(val.to_string()),
            "sentinel_group" => group = Some(val.to_string()),
            "sentinel_master" => master = int("sentinel_master")? != 0,
            "sentinel" => sentinels.push(val.to_string()),
            other => return Err(format!("unknown server attribute [{other}] in [{v}]")),
        }
    }
    let name = name
        .filter(|n| !n.is_empty())
        .ok_or_else(|| format!("server without a name in [{v}]"))?;
    let target = match (unix, group) {
        (Some(path), _) => Target::Unix(path),
        (None, Some(group)) if !sentinels.is_empty() => Target::Sentinel {
            group,
            master,
            sentinels,
        },
        (None, Some(_)) => return Err(format!("sentinel_group without a sentinel in [{v}]")),
        (None, None) => Target::Tcp(addr, port),
    };
    Ok(Server {
        name,
        target,
        db,
        pass,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_forms_read() {
        let s = parse("name=srvN;addr=127.0.0.2;port=6380;db=1;pass=my password").unwrap();
        assert_eq!(s.name, "srvN");
        assert_eq!(s.target, Target::Tcp("127.0.0.2".into(), 6380));
        assert_eq!((s.db, s.pass.as_deref()), (1, Some("my password")));
        let s = parse("name=srvY;unix=/tmp/redis.sock;db=3;addr=1.2.3.4").unwrap();
        assert_eq!(s.target, Target::Unix("/tmp/redis.sock".into()));
        let s = parse("name=srvZ;sentinel_group=g;sentinel_master=1;sentinel=1.2.3.4:26379;sentinel=1.2.3.5:26379").unwrap();
        assert_eq!(
            s.target,
            Target::Sentinel {
                group: "g".into(),
                master: true,
                sentinels: vec!["1.2.3.4:26379".into(), "1.2.3.5:26379".into()]
            }
        );
        let s = parse("name=d").unwrap();
        assert_eq!(s.target, Target::Tcp("127.0.0.1".into(), 6379));
        assert_eq!(s.db, 0);
    }

    #[test]
    fn bad_values_are_named() {
        for (v, what) in [
            ("addr=1.2.3.4", "without a name"),
            ("name=a;port=x", "invalid port"),
            ("name=a;port=70000", "invalid port"),
            ("name=a;db=", "invalid db"),
            ("name=a;colour=red", "unknown server attribute"),
            ("name=a;junk", "invalid server attribute"),
            ("name=a;sentinel_group=g", "without a sentinel"),
        ] {
            let e = parse(v).unwrap_err();
            assert!(e.contains(what), "{v}: {e}");
        }
    }
}
