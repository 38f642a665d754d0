//! `siprouter db ...`: creates Kamailio's tables and manages subscribers
//! (as `kamctl add/passwd/rm`), against the same database the server
//! uses, also while it runs (SQLite in WAL mode takes a writer at a time
//! and readers meanwhile).

use sr_mod_auth::digest::{ha1, Alg};
use sr_sdk::db::{self, schema, Cond, DbConn, DbDriver, DbValue};
use std::sync::Arc;

/// The database used when neither `-u` nor `SIPROUTER_DB_URL` is given.
pub const DEFAULT_URL: &str = "sqlite:///var/lib/siprouter/siprouter.db";

/// The usage text.
pub const USAGE: &str = "\
Usage: siprouter db [-u URL] COMMAND
  init [URL]                 create the version, location, location_attrs,
                             subscriber, acc, missed_calls, dispatcher,
                             address, trusted, domain and domain_attrs
                             tables (Kamailio's schema) if missing
  add USER@DOMAIN PASSWORD   add a subscriber (password, ha1 and ha1b stored)
  passwd USER@DOMAIN PASS    change a subscriber's password
  rm USER@DOMAIN             remove a subscriber
  list                       list the subscribers
  version                    show the rows of the version table
The URL comes from -u, else $SIPROUTER_DB_URL, else
  sqlite:///var/lib/siprouter/siprouter.db
URLs: sqlite:///path/file.db, mysql://user:password@host[:port]/database,
  postgres://user:password@host[:port]/database, text:///folder (db_text)
";

/// The drivers compiled into the binary, by scheme.
fn driver(url: &str) -> Result<Arc<dyn DbDriver>, String> {
    match db::url_scheme(url).map_err(|e| e.0)? {
        s if s.eq_ignore_ascii_case("sqlite") => Ok(sr_mod_db_sqlite::driver()),
        s if s.eq_ignore_ascii_case("mysql") => Ok(sr_mod_db_mysql::driver()),
        s if s.eq_ignore_ascii_case("postgres") => Ok(sr_mod_db_postgres::driver()),
        s if s.eq_ignore_ascii_case("text") => Ok(sr_mod_db_text::driver()),
        s => Err(format!("no database driver for '{s}://'")),
    }
}

fn open(url: &str) -> Result<Box<dyn DbConn>, String> {
    driver(url)?.open(url).map_err(|e| e.0)
}

/// Creates every standard table that is missing and its version row.
pub fn init(conn: &mut dyn DbConn) -> Result<Vec<String>, String> {
    db::init_standard_tables(conn).map_err(|e| e.0)
}

fn split_user(s: &str) -> Result<(&str, &str), String> {
    match s.split_once('@') {
        Some((u, d)) if !u.is_empty() && !d.is_empty() => Ok((u, d)),
        _ => Err(format!("'{s}' is not USER@DOMAIN")),
    }
}

fn account(user: &str, domain: &str) -> [Cond; 2] {
    [
        Cond::eq("username", DbValue::str(user)),
        Cond::eq("domain", DbValue::str(domain)),
    ]
}

/// The password columns as `kamctl` writes them: the plain password,
/// `ha1` = MD5(user:domain:password), `ha1b` = MD5(user@domain:domain:password).
pub fn password_values(user: &str, domain: &str, pass: &str) -> Vec<(&'static str, DbValue)> {
    vec![
        ("password", DbValue::str(pass)),
        ("ha1", DbValue::str(ha1(Alg::Md5, user, domain, pass))),
        (
            "ha1b",
            DbValue::str(ha1(Alg::Md5, &format!("{user}@{domain}"), domain, pass)),
        ),
    ]
}

fn subscribers(conn: &mut dyn DbConn) -> Result<(), String> {
    db::check_version(conn, "subscriber", schema::SUBSCRIBER_VERSION).map_err(|e| e.0)
}

/// Runs one command on an open connection; the text to print.
pub fn command(conn: &mut dyn DbConn, cmd: &str, args: &[String]) -> Result<String, String> {
    let arg = |i: usize, what: &str| {
        args.get(i)
            .map(String::as_str)
            .ok_or_else(|| format!("{cmd}: missing {what} (see siprouter db -h)"))
    };
    match cmd {
        "init" => {
            let made = init(conn)?;
            Ok(if made.is_empty() {
                "all tables are in place (made when the database was opened, or before)\n".into()
            } else {
                format!("created: {}\n", made.join(", "))
            })
        }
        "add" => {
            subscribers(conn)?;
            let (u, d) = split_user(arg(0, "USER@DOMAIN")?)?;
            let pass = arg(1, "PASSWORD")?;
            let have = conn
                .query("subscriber", &account(u, d), &["id"], None)
                .map_err(|e| e.0)?;
            if !have.is_empty() {
                return Err(format!("user {u}@{d} already exists"));
            }
            let mut vals = vec![("username", DbValue::str(u)), ("domain", DbValue::str(d))];
            vals.extend(password_values(u, d, pass));
            conn.insert("subscriber", &vals).map_err(|e| e.0)?;
            Ok(format!("added {u}@{d}\n"))
        }
        "passwd" => {
            subscribers(conn)?;
            let (u, d) = split_user(arg(0, "USER@DOMAIN")?)?;
            let pass = arg(1, "PASSWORD")?;
            let n = conn
                .update("subscriber", &account(u, d), &password_values(u, d, pass))
                .map_err(|e| e.0)?;
            if n == 0 {
                return Err(format!("no user {u}@{d}"));
            }
            Ok(format!("password of {u}@{d} changed\n"))
        }
        "rm" => {
            subscribers(conn)?;
            let (u, d) = split_user(arg(0, "USER@DOMAIN")?)?;
            let n = conn.delete("subscriber", &account(u, d)).map_err(|e| e.0)?;
            if n == 0 {
                return Err(format!("no user {u}@{d}"));
            }
            Ok(format!("removed {u}@{d}\n"))
        }
        "list" => {
            subscribers(conn)?;
            let rows = conn
                .query(
                    "subscriber",
                    &[],
                    &["username", "domain"],
                    Some(&db::Order {
                        col: "username".into(),
                        desc: false,
                    }),
                )
                .map_err(|e| e.0)?;
            let mut out = String::new();
            for i in 0..rows.len() {
                let u = rows.get(i, "username").as_string().unwrap_or_default();
                let d = rows.get(i, "domain").as_string().unwrap_or_default();
                out.push_str(&format!("{u}@{d}\n"));
            }
            Ok(out)
        }
        "version" => {
            let rows = conn.query("version", &[], &[], None).map_err(|e| e.0)?;
            let mut out = String::new();
            for i in 0..rows.len() {
                out.push_str(&format!(
                    "{} {}\n",
                    rows.get(i, "table_name").as_string().unwrap_or_default(),
                    rows.get(i, "table_version").as_string().unwrap_or_default()
                ));
            }
            Ok(out)
        }
        other => Err(format!("unknown command '{other}' (see siprouter db -h)")),
    }
}

/// `siprouter db ARGS`: the exit code.
pub fn main(args: &[String]) -> i32 {
    let mut url = std::env::var("SIPROUTER_DB_URL").ok();
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "-u" | "--url" => {
                i += 1;
                url = args.get(i).cloned();
            }
            "-h" | "--help" => {
                print!("{USAGE}");
                return 0;
            }
            _ => break,
        }
        i += 1;
    }
    let Some(cmd) = args.get(i) else {
        eprint!("{USAGE}");
        return 2;
    };
    let rest = &args[i + 1..];
    if cmd == "init" {
        if let Some(u) = rest.first() {
            url = Some(u.clone());
        }
    }
    let url = url.unwrap_or_else(|| DEFAULT_URL.to_string());
    let result = open(&url).and_then(|mut c| {
        let out = command(c.as_mut(), cmd, rest)?;
        // db_text keeps its tables in memory: write them now, so that a
        // failure is this command's (and its exit code).
        sr_mod_db_text::flush_all().map_err(|e| format!("db_text: {e}"))?;
        Ok(out)
    });
    match result {
        Ok(out) => {
            print!("{out}");
            0
        }
        Err(e) => {
            eprintln!("siprouter db: {e}");
            1
        }
    }
}
