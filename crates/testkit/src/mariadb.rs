//! A real MariaDB server for tests: Debian's `mariadb-server` binaries,
//! a data folder of its own, TCP on 127.0.0.1 at a free port, and a
//! `kamailio` database with a `kamailio`/`kamailiorw` account (the stock
//! configuration's names).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SERVER: &str = "/usr/sbin/mariadbd";
const INSTALL: &str = "/usr/bin/mariadb-install-db";
const CLIENT: &str = "/usr/bin/mariadb";

/// A running MariaDB server; dropping it stops it and removes its data.
pub struct MariaDb {
    child: Child,
    dir: PathBuf,
    /// Its TCP port on 127.0.0.1.
    pub port: u16,
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl MariaDb {
    /// The `mysql://` URL of the test database.
    pub fn url(&self) -> String {
        format!(
            "mysql://kamailio:kamailiorw@127.0.0.1:{}/kamailio",
            self.port
        )
    }

    /// Runs SQL as the server's root user (through its socket).
    pub fn root_sql(&self, sql: &str) {
        let out = Command::new(CLIENT)
            .args(["--no-defaults", "-uroot", "-S"])
            .arg(self.dir.join("sock"))
            .args(["-e", sql])
            .output()
            .expect("the mariadb client");
        assert!(
            out.status.success(),
            "mariadb: {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Starts a MariaDB server. `None` when MariaDB is not installed (a
/// notice is printed), unless `SR_MARIADB_REQUIRED=1` (as `.ci/run`
/// sets), which makes it a failure.
pub fn start(name: &str) -> Option<MariaDb> {
    if !Path::new(SERVER).exists() || !Path::new(INSTALL).exists() {
        assert!(
            std::env::var("SR_MARIADB_REQUIRED").as_deref() != Ok("1"),
            "SR_MARIADB_REQUIRED=1 but MariaDB is not installed ({SERVER})"
        );
        eprintln!("SKIPPED: MariaDB is not installed (apt-get install mariadb-server)");
        return None;
    }
    let dir = std::env::temp_dir().join(format!("sr-mariadb-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a folder for MariaDB");
    let data = dir.join("data");
    // Each server's temporary files in its own folder: with the shared
    // /tmp, a bootstrap once failed to remove its temporary table.
    let tmp = dir.join("tmp");
    std::fs::create_dir_all(&tmp).expect("a temporary folder for MariaDB");
    let out = Command::new(INSTALL)
        .args([
            "--no-defaults",
            "--user=root",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
        ])
        .arg(format!("--datadir={}", data.display()))
        .arg(format!("--tmpdir={}", tmp.display()))
        .output()
        .expect("mariadb-install-db");
    assert!(
        out.status.success(),
        "mariadb-install-db: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let port = crate::free_port();
    let log = std::fs::File::create(dir.join("server.log")).expect("the server log");
    let child = Command::new(SERVER)
        .arg("--no-defaults")
        .arg(format!("--datadir={}", data.display()))
        .arg(format!("--socket={}", dir.join("sock").display()))
        .arg(format!("--tmpdir={}", tmp.display()))
        .arg(format!("--pid-file={}", dir.join("pid").display()))
        .arg(format!("--port={port}"))
        .args([
            "--bind-address=127.0.0.1",
            "--user=root",
            "--skip-log-bin",
            "--innodb-buffer-pool-size=16M",
            "--skip-name-resolve",
        ])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("mariadbd");
    let db = MariaDb { child, dir, port };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ok = Command::new(CLIENT)
            .args(["--no-defaults", "-uroot", "-S"])
            .arg(db.dir.join("sock"))
            .args(["-e", "SELECT 1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "MariaDB did not start: {}",
            std::fs::read_to_string(db.dir.join("server.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    db.root_sql(
        "CREATE DATABASE kamailio; \
         CREATE USER 'kamailio'@'%' IDENTIFIED BY 'kamailiorw'; \
         GRANT ALL ON kamailio.* TO 'kamailio'@'%';",
    );
    Some(db)
}
