//! Gateways and rules as drouting reads them from its tables, and the
//! text formats of their columns: a rule's group list, its gateway list
//! (`1,2;3` or `#list`), its route name.

use sr_mod_tmrec::TmRec;
use std::net::IpAddr;

/// A gateway (`dr_gateways` row).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gateway {
    /// `gwid`.
    pub id: u32,
    /// `address` as written: it becomes the host part of the Request-URI.
    pub address: String,
    /// Leading characters of the user to strip.
    pub strip: usize,
    /// Prefix to add to the user.
    pub pri_prefix: String,
    /// `type` (for `is_from_gw`/`goes_to_gw`).
    pub gw_type: i64,
    /// `attrs`, opaque.
    pub attrs: String,
    /// The address resolved, with its explicit port (0 when none): `None`
    /// when it did not resolve (and `force_dns` is 0).
    pub addr: Option<(IpAddr, u16)>,
}

/// A rule (`dr_rules` row).
#[derive(Debug, Clone)]
pub struct Rule {
    /// `ruleid`.
    pub id: u32,
    /// `priority`, as the unsigned number Kamailio keeps.
    pub priority: u32,
    /// `timerec` (`None`: always).
    pub time: Option<TmRec>,
    /// The route block to run when the rule matches (by name).
    pub route: Option<String>,
    /// Gateways (indexes into the gateway table) with their sort group.
    pub gws: Vec<(usize, u32)>,
}

impl Rule {
    /// Whether the rule's time recurrence holds at `now`.
    pub fn active(&self, now: i64) -> bool {
        self.time.as_ref().is_none_or(|t| t.matches(now))
    }
}

/// The groups of a rule: integers separated by `,` or `|`, blanks
/// around them allowed.
pub fn parse_groups(s: &str) -> Result<Vec<u32>, String> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    let blank = |c: u8| matches!(c, b' ' | b'\t' | b'\r' | b'\n');
    while i < b.len() {
        while i < b.len() && blank(b[i]) {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let (v, used) = strtol(&s[i..]);
        if used == 0 {
            return Err(format!("bad group list '{s}'"));
        }
        out.push(v as u32);
        i += used;
        while i < b.len() && blank(b[i]) {
            i += 1;
        }
        if i < b.len() {
            if b[i] != b',' && b[i] != b'|' {
                return Err(format!("bad separator in group list '{s}'"));
            }
            i += 1;
        }
    }
    if out.is_empty() {
        return Err(format!("empty group list '{s}'"));
    }
    Ok(out)
}

/// C's `strtol` base 10: the value and the bytes used (0: no number).
fn strtol(s: &str) -> (i64, usize) {
    sr_sdk::text::strtol(s, 10)
}

/// A gateway list: ids separated by `,` or `|` within a sort group, a `;`
/// right after an id closing the group. Returns (gateway id, group).
pub fn parse_gwlist(s: &str) -> Result<Vec<(i64, u32)>, String> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut group = 0u32;
    let mut i = 0;
    while i < b.len() {
        let (v, used) = strtol(&s[i..]);
        if used == 0 {
            return Err(format!("bad gateway list '{s}'"));
        }
        out.push((v, group));
        i += used;
        match b.get(i) {
            None => break,
            Some(b';') => {
                group += 1;
                i += 1;
            }
            Some(b',' | b'|') => i += 1,
            Some(c) if c.is_ascii_whitespace() => {
                // Blanks, then perhaps a separator (a `;` after a blank
                // does not close the group, as in Kamailio).
                while i < b.len() && b[i].is_ascii_whitespace() {
                    i += 1;
                }
                if matches!(b.get(i), Some(b',' | b'|' | b';')) {
                    i += 1;
                }
            }
            Some(_) => return Err(format!("bad character in gateway list '{s}'")),
        }
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
    }
    if out.is_empty() {
        return Err(format!("empty gateway list '{s}'"));
    }
    Ok(out)
}

/// A rule's route: none for an empty name or one starting with `0`.
pub fn route_name(s: &str) -> Option<String> {
    (!s.is_empty() && !s.starts_with('0')).then(|| s.to_string())
}

/// The order to try a rule's gateways in (`sort_order`): 0 as written;
/// 1 each group shuffled in its first two places; 2 one gateway drawn
/// from each group, none twice. `rand(n)` draws below `n`.
pub fn order(
    gws: &[(usize, u32)],
    sort_order: i64,
    rand: &mut dyn FnMut(usize) -> usize,
) -> Vec<usize> {
    if sort_order == 0 || gws.len() <= 1 {
        return gws.iter().map(|g| g.0).collect();
    }
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut last = None;
    for &(gw, g) in gws {
        if last != Some(g) {
            groups.push(Vec::new());
            last = Some(g);
        }
        if let Some(cur) = groups.last_mut() {
            cur.push(gw);
        }
    }
    let mut out = Vec::new();
    for grp in groups {
        if sort_order == 1 {
            match grp.len() {
                1 => out.push(grp[0]),
                2 => {
                    let first = rand(2);
                    out.push(grp[first]);
                    out.push(grp[1 - first]);
                }
                n => {
                    let a = rand(n);
                    let mut b = rand(n - 1);
                    if b >= a {
                        b += 1;
                    }
                    out.push(grp[a]);
                    out.push(grp[b]);
                    out.extend(
                        grp.iter()
                            .enumerate()
                            .filter(|(i, _)| *i != a && *i != b)
                            .map(|(_, g)| *g),
                    );
                }
            }
        } else {
            // One per group, not one already taken (a group made only of
            // taken gateways is skipped: Kamailio loops for ever there).
            let fresh: Vec<usize> = grp.iter().copied().filter(|g| !out.contains(g)).collect();
            if out.is_empty() {
                out.push(grp[rand(grp.len())]);
            } else if !fresh.is_empty() {
                out.push(fresh[rand(fresh.len())]);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_parse_as_kamailio_reads_them() {
        assert_eq!(parse_groups("1").unwrap(), vec![1]);
        assert_eq!(parse_groups(" 1 , 2|3 ").unwrap(), vec![1, 2, 3]);
        assert!(parse_groups("1;2").is_err());
        assert!(parse_groups("").is_err());
        assert!(parse_groups("a").is_err());
        assert_eq!(parse_gwlist("1,2;3").unwrap(), vec![(1, 0), (2, 0), (3, 1)]);
        assert_eq!(
            parse_gwlist("1 ;2").unwrap(),
            vec![(1, 0), (2, 0)],
            "a blank before ;"
        );
        assert_eq!(parse_gwlist("1|2;").unwrap(), vec![(1, 0), (2, 0)]);
        assert!(parse_gwlist("1,,2").is_err());
        assert!(parse_gwlist("1x").is_err());
        assert!(parse_gwlist("").is_err());
        assert_eq!(route_name(""), None);
        assert_eq!(route_name("0"), None);
        assert_eq!(route_name("gw_out").as_deref(), Some("gw_out"));
    }

    #[test]
    fn sort_orders() {
        let gws = vec![(0, 0), (1, 0), (2, 0), (3, 1), (4, 2)];
        let mut zero = |_n: usize| 0;
        assert_eq!(order(&gws, 0, &mut zero), vec![0, 1, 2, 3, 4]);
        let mut last = |n: usize| n - 1;
        assert_eq!(order(&gws, 1, &mut last), vec![2, 1, 0, 3, 4]);
        assert_eq!(order(&gws, 2, &mut zero), vec![0, 3, 4]);
        // The same gateway in every group: each once.
        let same = vec![(0, 0), (1, 0), (0, 1), (1, 1), (0, 2), (1, 2)];
        let mut first = |_n: usize| 0;
        assert_eq!(order(&same, 2, &mut first), vec![0, 1]);
        // Kamailio's endless loop: no loop here.
        let loopy = vec![(0, 0), (0, 1), (0, 1)];
        assert_eq!(order(&loopy, 2, &mut first), vec![0]);
    }
}
