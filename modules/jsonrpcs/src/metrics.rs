//! Statistics in the Prometheus text exposition format (version 0.0.4):
//! `group:name` becomes `siprouter_<group>_<name>`, with every character
//! outside `[A-Za-z0-9_]` replaced by `_`; each is a `gauge`.

use std::collections::HashSet;
use std::fmt::Write;

/// The metric name for a statistic.
pub fn metric_name(group: &str, name: &str) -> String {
    let mut out = String::with_capacity(11 + group.len() + name.len());
    out.push_str("siprouter_");
    for c in group
        .chars()
        .chain(std::iter::once('_'))
        .chain(name.chars())
    {
        out.push(if c.is_ascii_alphanumeric() || c == '_' {
            c
        } else {
            '_'
        });
    }
    out
}

/// Renders every statistic; a name seen twice (after cleaning) is
/// written once.
pub fn render(stats: &[(String, String, i64)]) -> String {
    let mut out = String::with_capacity(stats.len() * 64);
    let mut seen = HashSet::new();
    for (g, n, v) in stats {
        let m = metric_name(g, n);
        if !seen.insert(m.clone()) {
            continue;
        }
        let _ = writeln!(out, "# TYPE {m} gauge");
        let _ = writeln!(out, "{m} {v}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_lines() {
        assert_eq!(
            metric_name("core", "rcv_requests"),
            "siprouter_core_rcv_requests"
        );
        assert_eq!(metric_name("usrloc", "a.b-c"), "siprouter_usrloc_a_b_c");
        let t = render(&[
            ("core".into(), "x".into(), 3),
            ("core".into(), "x".into(), 4),
        ]);
        assert_eq!(t, "# TYPE siprouter_core_x gauge\nsiprouter_core_x 3\n");
    }
}
