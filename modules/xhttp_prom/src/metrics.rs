//! User-defined metrics (Kamailio's `prom_metric.c`): counters, gauges and
//! histograms declared by `modparam`, each with up to three label names;
//! a value per set of label values, made when first used, listed in the
//! order of declaration and, within a metric, of first use; values not
//! used for `xhttp_prom_timeout` minutes are dropped.

use std::fmt::Write as _;

/// A metric's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only grows (or is reset).
    Counter,
    /// Set to any value.
    Gauge,
    /// Observations counted into buckets.
    Histogram,
}

impl Kind {
    /// The kind's name in messages.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// The buckets of a histogram without `buckets`.
pub const DEFAULT_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The value of one set of labels.
#[derive(Debug, Clone, PartialEq)]
enum Val {
    Counter(u64),
    Gauge(f64),
    Histogram {
        buckets: Vec<u64>,
        count: u64,
        sum: f64,
    },
}

#[derive(Debug, Clone)]
struct LabelValue {
    labels: Vec<String>,
    /// Last use, milliseconds since the epoch.
    used_ms: u64,
    val: Val,
}

/// A declared metric.
#[derive(Debug, Clone)]
pub struct Metric {
    kind: Kind,
    name: String,
    labels: Vec<String>,
    buckets: Vec<f64>,
    values: Vec<LabelValue>,
}

/// Reads a number as C's `atof` does: leading blanks skipped, the longest
/// decimal number (or `inf`, `infinity`, `nan`) at the start taken, 0 when
/// there is none.
pub fn atof(s: &str) -> f64 {
    let t = s.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let b = t.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    let lower = t[i..].to_ascii_lowercase();
    for word in ["infinity", "inf", "nan"] {
        if lower.starts_with(word) {
            return t[..i + word.len()].parse().unwrap_or(0.0);
        }
    }
    if let Some(v) = hex_float(&t[i..]) {
        return if t.starts_with('-') { -v } else { v };
    }
    let digits = |mut j: usize| {
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        j
    };
    let int_end = digits(i);
    let mut end = int_end;
    if end < b.len() && b[end] == b'.' {
        let frac_end = digits(end + 1);
        if frac_end > end + 1 || int_end > i {
            end = frac_end;
        }
    }
    if end == i || (end == i + 1 && b[i] == b'.') {
        return 0.0;
    }
    if end < b.len() && (b[end] == b'e' || b[end] == b'E') {
        let mut k = end + 1;
        if k < b.len() && (b[k] == b'+' || b[k] == b'-') {
            k += 1;
        }
        let exp_end = digits(k);
        if exp_end > k {
            end = exp_end;
        }
    }
    t[..end].parse().unwrap_or(0.0)
}

/// A C hexadecimal float (`0x1A`, `0x1.8p3`) at the start of `s`.
fn hex_float(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    if b.len() < 3 || b[0] != b'0' || (b[1] | 0x20) != b'x' {
        return None;
    }
    let mut i = 2;
    let mut mant = 0f64;
    let mut any = false;
    let mut scale = 0i32;
    // Digits past what a double holds only move the exponent.
    let digit = |d: u32, frac: bool, mant: &mut f64, scale: &mut i32| {
        if *mant < 9.007_199_254_740_992e15 {
            *mant = *mant * 16.0 + f64::from(d);
            if frac {
                *scale = scale.saturating_sub(4);
            }
        } else if !frac {
            *scale = scale.saturating_add(4);
        }
    };
    while i < b.len() && b[i].is_ascii_hexdigit() {
        digit((b[i] as char).to_digit(16)?, false, &mut mant, &mut scale);
        i += 1;
        any = true;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        while i < b.len() && b[i].is_ascii_hexdigit() {
            digit((b[i] as char).to_digit(16)?, true, &mut mant, &mut scale);
            i += 1;
            any = true;
        }
    }
    if !any {
        return None;
    }
    if i < b.len() && (b[i] | 0x20) == b'p' {
        let mut k = i + 1;
        let neg = k < b.len() && b[k] == b'-';
        if k < b.len() && (b[k] == b'+' || b[k] == b'-') {
            k += 1;
        }
        let start = k;
        let mut e = 0i32;
        while k < b.len() && b[k].is_ascii_digit() {
            e = e.saturating_mul(10).saturating_add(i32::from(b[k] - b'0'));
            k += 1;
        }
        if k > start {
            scale = scale.saturating_add(if neg { -e } else { e });
        }
    }
    // Two steps, so that a large mantissa with a small scale does not
    // overflow or underflow on the way.
    let half = scale / 2;
    Some(mant * 2f64.powi(half) * 2f64.powi(scale - half))
}

/// A label value as the text format requires: `\\`, `\"` and `\n`
/// escaped (Kamailio prints them as they are, which breaks the format).
fn escape(v: &str) -> std::borrow::Cow<'_, str> {
    if !v.contains(['\\', '"', '\n']) {
        return std::borrow::Cow::Borrowed(v);
    }
    std::borrow::Cow::Owned(
        v.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n"),
    )
}

/// A number as C's `%f` prints it.
pub fn c_float(v: f64) -> String {
    if v.is_nan() {
        if v.is_sign_negative() { "-nan" } else { "nan" }.to_string()
    } else if v.is_infinite() {
        if v < 0.0 { "-inf" } else { "inf" }.to_string()
    } else {
        format!("{v:.6}")
    }
}

/// Reads a declaration (`name=x; label=a:b; buckets=1:2.5`) of `kind`.
pub fn parse_declaration(kind: Kind, spec: &str) -> Result<Metric, String> {
    let spec = spec.strip_suffix(';').unwrap_or(spec);
    let mut m = Metric {
        kind,
        name: String::new(),
        labels: Vec::new(),
        buckets: Vec::new(),
        values: Vec::new(),
    };
    let mut has_labels = false;
    let mut has_buckets = false;
    for part in spec.split(';') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        let (k, v) = (k.trim(), v.trim());
        match k {
            "name" => m.name = v.to_string(),
            "label" => {
                if has_labels {
                    return Err(format!("{} '{spec}': label given twice", kind.name()));
                }
                has_labels = true;
                for l in v.split(':') {
                    if l.is_empty() {
                        return Err(format!("{} '{spec}': an empty label name", kind.name()));
                    }
                    m.labels.push(l.to_string());
                }
                if m.labels.len() > 3 {
                    return Err(format!("{} '{spec}': at most three labels", kind.name()));
                }
            }
            "buckets" if kind == Kind::Histogram => {
                has_buckets = true;
                for b in v.split(':') {
                    if b.is_empty() {
                        return Err(format!("histogram '{spec}': an empty bucket"));
                    }
                    m.buckets.push(atof(b));
                }
                if m.buckets.windows(2).any(|w| w[1] < w[0]) {
                    return Err(format!("histogram '{spec}': buckets must increase"));
                }
            }
            _ => return Err(format!("{} '{spec}': unknown field '{k}'", kind.name())),
        }
    }
    if m.name.is_empty() {
        return Err(format!("{} '{spec}': no name", kind.name()));
    }
    if kind == Kind::Histogram && !has_buckets {
        m.buckets = DEFAULT_BUCKETS.to_vec();
    }
    Ok(m)
}

/// What a use of a metric does.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Change {
    /// Adds to a counter.
    Add(u64),
    /// Sets a counter or a gauge (the kind named) to zero.
    Reset(Kind),
    /// Sets a gauge.
    Set(f64),
    /// Observes a value in a histogram.
    Observe(f64),
}

impl Change {
    fn kind(self) -> Kind {
        match self {
            Change::Add(_) => Kind::Counter,
            Change::Set(_) => Kind::Gauge,
            Change::Observe(_) => Kind::Histogram,
            Change::Reset(k) => k,
        }
    }
}

/// The declared metrics and their values.
#[derive(Debug, Default)]
pub struct Registry {
    metrics: Vec<Metric>,
    /// Values unused this long are dropped (0: never).
    timeout_ms: u64,
}

impl Registry {
    /// An empty registry dropping values unused for `timeout_ms`.
    pub fn new(timeout_ms: u64) -> Registry {
        Registry {
            metrics: Vec::new(),
            timeout_ms,
        }
    }

    /// Sets the timeout.
    pub fn set_timeout(&mut self, timeout_ms: u64) {
        self.timeout_ms = timeout_ms;
    }

    /// Declares a metric; a name is declared once.
    pub fn declare(&mut self, m: Metric) -> Result<(), String> {
        if self.metrics.iter().any(|x| x.name == m.name) {
            return Err(format!("metric '{}' declared twice", m.name));
        }
        self.metrics.push(m);
        Ok(())
    }

    /// Applies `change` to metric `name` with label values `labels` (the
    /// value made at first use), at `now_ms`.
    pub fn apply(
        &mut self,
        name: &str,
        labels: &[&str],
        change: Change,
        now_ms: u64,
    ) -> Result<(), String> {
        if self.timeout_ms > 0 {
            let t = self.timeout_ms;
            for m in &mut self.metrics {
                m.values.retain(|v| now_ms.saturating_sub(v.used_ms) <= t);
            }
        }
        let m = self
            .metrics
            .iter_mut()
            .find(|m| m.name == name)
            .ok_or_else(|| format!("no metric named '{name}'"))?;
        let want = change.kind();
        if want != m.kind {
            return Err(format!(
                "'{name}' is a {}, not a {}",
                m.kind.name(),
                want.name()
            ));
        }
        if labels.len() != m.labels.len() {
            return Err(format!(
                "'{name}' has {} labels, {} given",
                m.labels.len(),
                labels.len()
            ));
        }
        if labels.iter().any(|l| l.is_empty()) {
            return Err(format!("'{name}': an empty label value"));
        }
        let i = match m
            .values
            .iter()
            .position(|v| v.labels.iter().eq(labels.iter()))
        {
            Some(i) => i,
            None => {
                let val = match m.kind {
                    Kind::Counter => Val::Counter(0),
                    Kind::Gauge => Val::Gauge(0.0),
                    Kind::Histogram => Val::Histogram {
                        buckets: vec![0; m.buckets.len()],
                        count: 0,
                        sum: 0.0,
                    },
                };
                m.values.push(LabelValue {
                    labels: labels.iter().map(|l| l.to_string()).collect(),
                    used_ms: now_ms,
                    val,
                });
                m.values.len() - 1
            }
        };
        let bounds = &m.buckets;
        let v = &mut m.values[i];
        v.used_ms = now_ms;
        match (&mut v.val, change) {
            (Val::Counter(c), Change::Add(n)) => *c = c.wrapping_add(n),
            (Val::Counter(c), Change::Reset(_)) => *c = 0,
            (Val::Gauge(g), Change::Set(x)) => *g = x,
            (Val::Gauge(g), Change::Reset(_)) => *g = 0.0,
            (
                Val::Histogram {
                    buckets,
                    count,
                    sum,
                },
                Change::Observe(x),
            ) => {
                // Kamailio counts from the top bucket down while the value
                // fits.
                for (b, bound) in buckets.iter_mut().zip(bounds).rev() {
                    if x <= *bound {
                        *b += 1;
                    } else {
                        break;
                    }
                }
                *count += 1;
                *sum += x;
            }
            _ => return Err(format!("'{name}': wrong use")),
        }
        Ok(())
    }

    /// The metrics in Prometheus' text format, each line with `prefix`
    /// before the name and `now_ms` after the value.
    pub fn print(&self, prefix: &str, now_ms: u64) -> String {
        let mut out = String::new();
        if self.metrics.is_empty() {
            out.push_str("# NO User defined metrics\n");
            return out;
        }
        out.push_str("# User defined metrics\n");
        for m in &self.metrics {
            for v in &m.values {
                let pairs: Vec<String> = m
                    .labels
                    .iter()
                    .zip(&v.labels)
                    .map(|(n, l)| format!("{n}=\"{}\"", escape(l)))
                    .collect();
                let braces = if pairs.is_empty() {
                    String::new()
                } else {
                    format!("{{{}}}", pairs.join(", "))
                };
                let name = &m.name;
                match &v.val {
                    Val::Counter(c) => {
                        let _ = writeln!(out, "{prefix}{name}{braces} {c} {now_ms}");
                    }
                    Val::Gauge(g) => {
                        let _ = writeln!(out, "{prefix}{name}{braces} {} {now_ms}", c_float(*g));
                    }
                    Val::Histogram {
                        buckets,
                        count,
                        sum,
                    } => {
                        let le = |bound: &str| {
                            let mut p = pairs.clone();
                            p.push(format!("le=\"{bound}\""));
                            format!("{{{}}}", p.join(", "))
                        };
                        for (b, bound) in buckets.iter().zip(&m.buckets) {
                            let _ = writeln!(
                                out,
                                "{prefix}{name}_bucket{} {b} {now_ms}",
                                le(&c_float(*bound))
                            );
                        }
                        let _ =
                            writeln!(out, "{prefix}{name}_bucket{} {count} {now_ms}", le("+Inf"));
                        let _ =
                            writeln!(out, "{prefix}{name}_sum{braces} {} {now_ms}", c_float(*sum));
                        let _ = writeln!(out, "{prefix}{name}_count{braces} {count} {now_ms}");
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atof_reads_the_number_at_the_start_as_c_does() {
        for (s, want) in [
            ("2.8", 2.8),
            ("  -12.5", -12.5),
            ("5abc", 5.0),
            ("abc", 0.0),
            ("", 0.0),
            (".5", 0.5),
            ("5.", 5.0),
            ("1e3x", 1000.0),
            ("1e", 1.0),
            ("-", 0.0),
            (".", 0.0),
            ("0x10", 16.0),
            ("-0x1.8p1", -3.0),
            ("0x", 0.0),
        ] {
            assert_eq!(atof(s), want, "{s:?}");
        }
        let long = format!("0x1.{}", "0".repeat(400));
        assert_eq!(atof(&long), 1.0);
        let big = format!("0x1{}", "0".repeat(20));
        assert_eq!(atof(&big), 2f64.powi(80));
        assert_eq!(atof("0x10"), 16.0);
        assert!(atof("inf").is_infinite() && atof("-Infinity") < 0.0);
        assert!(atof("nan").is_nan());
    }

    #[test]
    fn declarations_are_read_and_bad_ones_refused() {
        let m = parse_declaration(Kind::Histogram, "name=h; label=a:b; buckets=1:2.5;").unwrap();
        assert_eq!(
            (m.name.as_str(), m.labels.len(), m.buckets.clone()),
            ("h", 2, vec![1.0, 2.5])
        );
        let d = parse_declaration(Kind::Histogram, "name=d").unwrap();
        assert_eq!(d.buckets, DEFAULT_BUCKETS.to_vec());
        for bad in [
            "label=a",
            "name=x; label=a::b",
            "name=x; label=a:b:c:d",
            "name=x; color=red",
            "name=x; buckets=2:1",
            "name=x; buckets=1::2",
        ] {
            assert!(parse_declaration(Kind::Histogram, bad).is_err(), "{bad}");
        }
        assert!(parse_declaration(Kind::Counter, "name=x; buckets=1").is_err());
    }

    #[test]
    fn values_are_made_at_first_use_and_printed_in_that_order() {
        let mut r = Registry::new(0);
        r.declare(parse_declaration(Kind::Counter, "name=c; label=m").unwrap())
            .unwrap();
        r.declare(parse_declaration(Kind::Histogram, "name=h; buckets=1:2").unwrap())
            .unwrap();
        r.apply("c", &["b"], Change::Add(3), 1).unwrap();
        r.apply("c", &["a"], Change::Add(1), 1).unwrap();
        r.apply("c", &["b"], Change::Add(2), 1).unwrap();
        r.apply("h", &[], Change::Observe(2.0), 1).unwrap();
        assert!(r.apply("c", &[], Change::Add(1), 1).is_err(), "label count");
        assert!(r.apply("c", &["a"], Change::Set(1.0), 1).is_err(), "kind");
        assert!(r
            .apply("nope", &[], Change::Reset(Kind::Counter), 1)
            .is_err());
        assert!(
            r.apply("c", &["a"], Change::Reset(Kind::Gauge), 1).is_err(),
            "kind"
        );
        assert_eq!(
            r.print("k_", 7),
            "# User defined metrics\nk_c{m=\"b\"} 5 7\nk_c{m=\"a\"} 1 7\nk_h_bucket{le=\"1.000000\"} 0 7\nk_h_bucket{le=\"2.000000\"} 1 7\nk_h_bucket{le=\"+Inf\"} 1 7\nk_h_sum 2.000000 7\nk_h_count 1 7\n"
        );
    }

    #[test]
    fn label_values_are_escaped() {
        let mut r = Registry::new(0);
        r.declare(parse_declaration(Kind::Counter, "name=c; label=v").unwrap())
            .unwrap();
        r.apply("c", &["a\"b\\c\nd"], Change::Add(1), 1).unwrap();
        assert_eq!(
            r.print("", 2),
            "# User defined metrics\nc{v=\"a\\\"b\\\\c\\nd\"} 1 2\n"
        );
    }

    #[test]
    fn unused_values_expire() {
        let mut r = Registry::new(1000);
        r.declare(parse_declaration(Kind::Gauge, "name=g; label=x").unwrap())
            .unwrap();
        r.apply("g", &["old"], Change::Set(1.0), 0).unwrap();
        r.apply("g", &["new"], Change::Set(2.0), 900).unwrap();
        r.apply("g", &["new"], Change::Set(3.0), 1500).unwrap();
        assert_eq!(
            r.print("", 9),
            "# User defined metrics\ng{x=\"new\"} 3.000000 9\n"
        );
    }
}
