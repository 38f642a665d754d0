//! CPU time of a process from `/proc/PID/stat` (user + system, all
//! threads), so a report can say whether the generator was the
//! bottleneck.

use std::time::Duration;

/// Clock ticks per second of `/proc/*/stat` times (USER_HZ, 100 on Linux).
pub const TICKS_PER_SEC: u64 = 100;

/// User and system time of this process so far.
pub fn self_cpu() -> Option<Duration> {
    process_cpu("self")
}

/// User and system time of process `pid` (`"self"` for this one).
pub fn process_cpu(pid: &str) -> Option<Duration> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let ticks = stat_ticks(&s)?;
    Some(Duration::from_millis(ticks * 1000 / TICKS_PER_SEC))
}

/// utime + stime (fields 14 and 15) of a `/proc/PID/stat` line. The
/// command name (field 2) may hold spaces and parentheses, so fields are
/// counted from the last `)`.
pub fn stat_ticks(line: &str) -> Option<u64> {
    let rest = &line[line.rfind(')')? + 1..];
    let mut f = rest.split_ascii_whitespace();
    // rest starts at field 3 (state); utime is field 14.
    let utime: u64 = f.nth(11)?.parse().ok()?;
    let stime: u64 = f.next()?.parse().ok()?;
    Some(utime + stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_utime_and_stime() {
        let l =
            "1234 (a (b) c) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 17 0 0 20 0 3 0 99 1000 10 0";
        assert_eq!(stat_ticks(l), Some(267));
        assert!(stat_ticks("garbage").is_none());
        assert!(self_cpu().is_some());
    }
}
