//! What siprouter can say about its memory: the kernel's view of the
//! process (`/proc/self/status`), in bytes.

use sr_sdk::prelude::*;

/// Fields read from `/proc/self/status`, with the key they get.
const FIELDS: [(&str, &str); 6] = [
    ("VmRSS", "resident"),
    ("VmHWM", "max_resident"),
    ("VmSize", "virtual"),
    ("VmPeak", "max_virtual"),
    ("VmData", "data"),
    ("RssAnon", "resident_anon"),
];

/// Parses the `kB` values of `/proc/self/status` text into bytes.
pub fn parse_status(text: &str) -> JsonMap<String, Json> {
    let mut out = JsonMap::new();
    for line in text.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let Some((_, key)) = FIELDS.iter().find(|(f, _)| *f == k.trim()) else {
            continue;
        };
        let kb = v
            .split_whitespace()
            .next()
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(kb) = kb {
            out.insert(key.to_string(), json!(kb.saturating_mul(1024)));
        }
    }
    out
}

/// The `core.memory` result.
pub fn report() -> Result<Json, String> {
    let text = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| format!("cannot read /proc/self/status: {e}"))?;
    let mut m = parse_status(&text);
    let threads = text
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse::<u64>().ok());
    if let Some(t) = threads {
        m.insert("threads".into(), json!(t));
    }
    Ok(Json::Object(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines() {
        let m = parse_status("Name:\tx\nVmRSS:\t   100 kB\nVmHWM:\t200 kB\nVmSize: bad\n");
        assert_eq!(m.get("resident"), Some(&json!(102400)));
        assert_eq!(m.get("max_resident"), Some(&json!(204800)));
        assert!(!m.contains_key("virtual"));
        assert!(report().is_ok());
    }
}
