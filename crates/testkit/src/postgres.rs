//! A real PostgreSQL server for tests: Debian's `postgresql` binaries, a
//! data folder of its own, TCP on 127.0.0.1 at a free port, and a
//! `kamailio` database owned by a `kamailio`/`kamailiorw` account. As root
//! (CI) the server runs as the `postgres` system account, since
//! PostgreSQL refuses to run as root.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running PostgreSQL server; dropping it stops it and removes its data.
pub struct Postgres {
    child: Child,
    dir: PathBuf,
    /// Its TCP port on 127.0.0.1.
    pub port: u16,
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Postgres {
    /// The `postgres://` URL of the test database.
    pub fn url(&self) -> String {
        format!(
            "postgres://kamailio:kamailiorw@127.0.0.1:{}/kamailio",
            self.port
        )
    }

    /// Runs SQL as the `postgres` superuser.
    pub fn admin_sql(&self, db: &str, sql: &str) {
        let out = Command::new("psql")
            .args([
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
            ])
            .args(["-p", &self.port.to_string(), "-d", db, "-c", sql])
            .output()
            .expect("psql");
        assert!(
            out.status.success(),
            "psql: {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The folder of the newest PostgreSQL server binaries installed.
fn bin_dir() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("postgres").exists() && p.join("initdb").exists())
        .collect();
    dirs.sort();
    dirs.pop()
}

/// The uid and gid of the `postgres` account, from /etc/passwd.
fn postgres_account() -> Option<(u32, u32)> {
    let text = std::fs::read_to_string("/etc/passwd").ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.first() == Some(&"postgres") && f.len() > 3)
            .then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))
            .flatten()
    })
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

/// A command run as the `postgres` account when we are root.
fn as_server_user(program: &Path, account: Option<(u32, u32)>) -> Command {
    let mut c = Command::new(program);
    if let Some((uid, gid)) = account {
        c.uid(uid).gid(gid);
    }
    c
}

/// Starts a PostgreSQL server. `None` when PostgreSQL is not installed (a
/// notice is printed), unless `SR_POSTGRES_REQUIRED=1` (as `.ci/run`
/// sets), which makes it a failure.
pub fn start(name: &str) -> Option<Postgres> {
    let required = std::env::var("SR_POSTGRES_REQUIRED").as_deref() == Ok("1");
    let Some(bin) = bin_dir() else {
        assert!(
            !required,
            "SR_POSTGRES_REQUIRED=1 but PostgreSQL is not installed"
        );
        eprintln!("SKIPPED: PostgreSQL is not installed (apt-get install postgresql)");
        return None;
    };
    let account = if is_root() {
        let a = postgres_account();
        if a.is_none() {
            assert!(!required, "running as root without a postgres account");
            eprintln!("SKIPPED: running as root without a postgres account");
            return None;
        }
        a
    } else {
        None
    };
    let dir = std::env::temp_dir().join(format!("sr-postgres-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a folder for PostgreSQL");
    if let Some((uid, gid)) = account {
        std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).expect("the folder for postgres");
    }
    let data = dir.join("data");
    let out = as_server_user(&bin.join("initdb"), account)
        .arg("-D")
        .arg(&data)
        .args([
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ])
        .current_dir(&dir)
        .output()
        .expect("initdb");
    assert!(
        out.status.success(),
        "initdb: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let port = crate::free_port();
    let log = std::fs::File::create(dir.join("server.log")).expect("the server log");
    if let Some((uid, gid)) = account {
        let _ = std::os::unix::fs::chown(dir.join("server.log"), Some(uid), Some(gid));
    }
    let child = as_server_user(&bin.join("postgres"), account)
        .arg("-D")
        .arg(&data)
        .args(["-p", &port.to_string(), "-k"])
        .arg(&dir)
        .args([
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "fsync=off",
            "-c",
            "shared_buffers=16MB",
        ])
        .current_dir(&dir)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("postgres");
    let pg = Postgres { child, dir, port };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ready = Command::new(bin.join("pg_isready"))
            .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string()])
            .status()
            .is_ok_and(|s| s.success());
        if ready {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "PostgreSQL did not start: {}",
            std::fs::read_to_string(pg.dir.join("server.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    pg.admin_sql("postgres", "CREATE USER kamailio PASSWORD 'kamailiorw'");
    pg.admin_sql("postgres", "CREATE DATABASE kamailio OWNER kamailio");
    Some(pg)
}
