//! What the FEEDBACK and NETWORK pipes measure: the CPU's load from
//! `/proc/stat`, and the bytes waiting in this server's sockets'
//! receive queues (`/proc/net/{udp,udp6,tcp,tcp6}`, the sockets found
//! by their inodes in `/proc/self/fd`).

use std::collections::HashSet;
use std::io::Read;

/// CPU load between two samples of `/proc/stat`.
#[derive(Debug, Default)]
pub struct CpuSampler {
    last: Option<(u64, u64)>,
}

fn cpu_times() -> Option<(u64, u64)> {
    let s = std::fs::read_to_string("/proc/stat").ok()?;
    let line = s.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    Some((total, idle))
}

impl CpuSampler {
    /// The share of the CPUs busy since the last sample (0 the first
    /// time).
    pub fn sample(&mut self) -> f64 {
        let Some(now) = cpu_times() else { return 0.0 };
        let load = match self.last {
            Some((t, i)) if now.0 > t => {
                let (dt, di) = ((now.0 - t) as f64, now.1.saturating_sub(i) as f64);
                (1.0 - di / dt).clamp(0.0, 1.0)
            }
            _ => 0.0,
        };
        self.last = Some(now);
        load
    }
}

/// Bytes waiting in this process's sockets' receive queues.
pub fn bytes_waiting() -> i64 {
    let mut ours = HashSet::new();
    if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
        for e in dir.flatten() {
            if let Ok(t) = std::fs::read_link(e.path()) {
                let t = t.to_string_lossy();
                if let Some(n) = t.strip_prefix("socket:[").and_then(|x| x.strip_suffix(']')) {
                    ours.insert(n.to_string());
                }
            }
        }
    }
    let mut total = 0i64;
    for f in [
        "/proc/net/udp",
        "/proc/net/udp6",
        "/proc/net/tcp",
        "/proc/net/tcp6",
    ] {
        let Ok(text) = std::fs::read_to_string(f) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            // sl local rem st tx_queue:rx_queue tr:tm retrnsmt uid timeout inode
            let (Some(queues), Some(inode)) = (cols.get(4), cols.get(9)) else {
                continue;
            };
            if !ours.contains(*inode) {
                continue;
            }
            if let Some((_, rx)) = queues.split_once(':') {
                total += i64::from_str_radix(rx, 16).unwrap_or(0);
            }
        }
    }
    total
}

/// A random number from the kernel (for Retry-After ranges).
pub fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .is_err()
    {
        return std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos() as u64);
    }
    u64::from_le_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_are_read_from_proc() {
        let mut c = CpuSampler::default();
        assert_eq!(c.sample(), 0.0);
        let l = c.sample();
        assert!((0.0..=1.0).contains(&l));
        assert!(bytes_waiting() >= 0);
        assert_ne!(random_u64(), random_u64());
    }
}
