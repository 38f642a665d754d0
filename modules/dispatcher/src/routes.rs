//! `ds_select_routes(rules, mode [, limit])`: selections from several
//! sets in one call, their failover records in one list.

use crate::funcs::{manage, Op, Picks};
use crate::Dispatcher;
use sr_sdk::prelude::*;

/// One `setid=alg` rule of the list, as Kamailio reads it: digits, `=`,
/// digits, `;`; a missing part is 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// The destination set.
    pub set: i64,
    /// The algorithm.
    pub alg: i64,
}

/// Reads the rule starting at byte `at` of `rules`: the rule and where the
/// next starts, or the position of a character that is not allowed.
pub fn next_rule(rules: &[u8], mut at: usize) -> Result<(Rule, usize), usize> {
    let num = |end: u8, at: &mut usize| -> Result<i64, usize> {
        let mut v: i64 = 0;
        while let Some(&c) = rules.get(*at) {
            *at += 1;
            if c == end {
                break;
            }
            if !c.is_ascii_digit() {
                return Err(*at - 1);
            }
            v = v.wrapping_mul(10).wrapping_add(i64::from(c - b'0')) & 0xffff_ffff;
        }
        Ok(v)
    };
    let set = num(b'=', &mut at)?;
    let alg = num(b';', &mut at)?;
    Ok((Rule { set, alg }, at))
}

/// Where the first successful selection writes its destination: `0`/`d`
/// `$du`, `1`/`r` the Request-URI, `2`/`x` nowhere (only the records).
fn mode(m: &str) -> Option<Op> {
    match m.bytes().next()? {
        b'0' | b'd' | b'D' => Some(Op::Dst),
        b'1' | b'r' | b'R' => Some(Op::Domain),
        b'2' | b'x' | b'X' => Some(Op::Xavp),
        _ => None,
    }
}

/// Runs the rules in order: the first that selects writes the destination
/// as `mode` says, every one adds its records (at most `limit` in all,
/// each rule's chosen one listed anyway). 1 when one rule selected (the
/// count then in the context XAVP), else the last failure.
pub fn select_routes(ds: &Dispatcher, ctx: &mut Ctx<'_>, rules: &str, m: &str, limit: i64) -> i32 {
    let Some(first_op) = mode(m) else {
        lm_err!("dispatcher: invalid routing mode parameter: {m}");
        return -1;
    };
    let bytes = rules.as_bytes();
    let mut picks = Picks::new(limit);
    let (mut last, mut got, mut written) = (-1, -1, false);
    let mut at = 0;
    while at < bytes.len() {
        let (rule, next) = match next_rule(bytes, at) {
            Ok(r) => r,
            Err(pos) => {
                // What the rules before selected stays listed, uncounted.
                lm_err!("dispatcher: invalid character in [{rules}] at [{pos}]");
                picks.finish(ds, ctx, false);
                return -1;
            }
        };
        at = next;
        let op = if written { Op::Xavp } else { first_op };
        last = manage(ds, ctx, rule.set, rule.alg, op, &mut picks);
        if last > 0 {
            got = last;
            written |= op != Op::Xavp;
        }
    }
    if got < 0 {
        return last;
    }
    picks.finish(ds, ctx, true);
    got
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(s: &str) -> Result<Vec<(i64, i64)>, usize> {
        let mut at = 0;
        let mut out = Vec::new();
        while at < s.len() {
            let (r, n) = next_rule(s.as_bytes(), at)?;
            out.push((r.set, r.alg));
            at = n;
        }
        Ok(out)
    }

    #[test]
    fn rules_as_kamailio_reads_them() {
        assert_eq!(all("1=4;2=8"), Ok(vec![(1, 4), (2, 8)]));
        assert_eq!(all("1=4;2=8;"), Ok(vec![(1, 4), (2, 8)]));
        assert_eq!(all("3"), Ok(vec![(3, 0)]));
        assert_eq!(all("1=4; 2=8"), Err(4));
        assert_eq!(all("a=4"), Err(0));
        assert_eq!(all(""), Ok(vec![]));
    }

    #[test]
    fn modes() {
        assert_eq!(mode("d"), Some(Op::Dst));
        assert_eq!(mode("1"), Some(Op::Domain));
        assert_eq!(mode("X"), Some(Op::Xavp));
        assert_eq!(mode(""), None);
        assert_eq!(mode("q"), None);
    }
}
