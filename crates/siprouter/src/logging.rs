//! The log sink: stderr (`log_stderror=yes`, `-E`) or syslog, with
//! Kamailio's line format.

use sr_sdk::log;
use std::ffi::CString;
use std::io::Write;

/// The calling thread's id (`gettid`, what `$pp` gives), looked up once
/// per thread: Kamailio's lines carry the pid of the process that wrote
/// them, siprouter's the thread's, so that workers can be told apart.
fn thread_id() -> i64 {
    thread_local! {
        // SAFETY: gettid has no preconditions.
        #[allow(unsafe_code)]
        static TID: i64 = i64::from(unsafe { libc::gettid() });
    }
    TID.with(|t| *t)
}

/// Installs the sink.
pub fn install(stderr: bool, facility: &str, name: Option<&str>) {
    if stderr {
        log::set_sink(Box::new(move |lvl, target, args| {
            let tid = thread_id();
            let mut e = std::io::stderr().lock();
            let _ = writeln!(e, " 0({tid}) {}: {args}", log::head(lvl, target));
        }));
        return;
    }
    let ident = CString::new(name.unwrap_or("siprouter")).unwrap_or_default();
    let fac = facility_code(facility);
    // openlog keeps the pointer: leak the ident for the process lifetime.
    let ident: &'static CString = Box::leak(Box::new(ident));
    // SAFETY: ident lives for the whole process; openlog has no other
    // preconditions.
    #[allow(unsafe_code)]
    unsafe {
        libc::openlog(ident.as_ptr(), libc::LOG_PID, fac);
    }
    log::set_sink(Box::new(move |lvl, target, args| {
        let line = format!("{}: {args}", log::head(lvl, target));
        let Ok(c) = CString::new(line.replace('\0', " ")) else {
            return;
        };
        let prio = match lvl {
            i32::MIN..=-4 => libc::LOG_ALERT,
            -3 | -2 => libc::LOG_CRIT,
            -1 => libc::LOG_ERR,
            0 => libc::LOG_WARNING,
            1 => libc::LOG_NOTICE,
            2 => libc::LOG_INFO,
            _ => libc::LOG_DEBUG,
        };
        // SAFETY: "%s" with a valid NUL-terminated string.
        #[allow(unsafe_code)]
        unsafe {
            libc::syslog(prio, c"%s".as_ptr(), c.as_ptr());
        }
    }));
}

fn facility_code(f: &str) -> libc::c_int {
    match f.to_ascii_uppercase().as_str() {
        "LOG_LOCAL0" => libc::LOG_LOCAL0,
        "LOG_LOCAL1" => libc::LOG_LOCAL1,
        "LOG_LOCAL2" => libc::LOG_LOCAL2,
        "LOG_LOCAL3" => libc::LOG_LOCAL3,
        "LOG_LOCAL4" => libc::LOG_LOCAL4,
        "LOG_LOCAL5" => libc::LOG_LOCAL5,
        "LOG_LOCAL6" => libc::LOG_LOCAL6,
        "LOG_LOCAL7" => libc::LOG_LOCAL7,
        "LOG_USER" => libc::LOG_USER,
        _ => libc::LOG_DAEMON,
    }
}

#[cfg(test)]
mod tests {
    use super::thread_id;

    #[test]
    fn each_thread_logs_its_own_id() {
        let here = thread_id();
        assert_eq!(here, thread_id(), "stable within a thread");
        let there = std::thread::spawn(thread_id).join().unwrap();
        assert_ne!(here, there);
        assert!(here > 0 && there > 0);
    }
}
