//! Choosing a destination of a set (Kamailio's `ds_manage_routes`): the
//! index a hash gives, stepping past unusable destinations, and the
//! failover list kept in the XAVPs. Pure: the caller reads the states
//! once and hands them in.

/// What a selection gives: the chosen index and the failover order
/// (chosen first), limited as asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    /// The chosen destination.
    pub chosen: usize,
    /// The destinations for the XAVP list, in order, the chosen first.
    pub order: Vec<usize>,
}

/// Picks from `n` destinations whose usability is `usable(i)` with hash
/// `hash`: index `hash % n` (`% (n - 1)` with `use_default`, whose last
/// destination is then kept for when no other is usable), then the next
/// usable one round the list. `None` when nothing is usable.
pub fn pick(
    n: usize,
    hash: u32,
    usable: &dyn Fn(usize) -> bool,
    use_default: bool,
) -> Option<usize> {
    if n == 0 {
        return None;
    }
    let m = if use_default && n > 1 { n - 1 } else { n };
    let start = hash as usize % m;
    let mut i = start;
    loop {
        if usable(i) {
            return Some(i);
        }
        i = (i + 1) % m;
        if i == start {
            return (use_default && usable(n - 1)).then_some(n - 1);
        }
    }
}

/// The failover order after choosing `chosen`: it, then the usable
/// destinations after it, then those before it (the default, with
/// `use_default`, only at the end), at most `limit` of them (0: all).
pub fn failover(
    n: usize,
    chosen: usize,
    usable: &dyn Fn(usize) -> bool,
    use_default: bool,
    limit: usize,
) -> Vec<usize> {
    let limit = if limit == 0 { usize::MAX } else { limit };
    let m = if use_default && n > 1 { n - 1 } else { n };
    let mut order = vec![chosen];
    if chosen < m {
        for k in 1..m {
            if order.len() >= limit {
                break;
            }
            let i = (chosen + k) % m;
            if usable(i) {
                order.push(i);
            }
        }
    }
    with_default(&mut order, n, chosen, use_default, limit);
    order
}

/// With `use_default`, the default (last) destination goes at the end of
/// the failover order when it was not chosen and there is room (as
/// Kamailio, whatever its state).
fn with_default(order: &mut Vec<usize>, n: usize, chosen: usize, use_default: bool, limit: usize) {
    if use_default && n > 1 && chosen != n - 1 && order.len() < limit {
        order.push(n - 1);
    }
}

/// Algorithm 13 (latency-optimised round robin; here without latency
/// figures, so each destination's priority as it is): the destinations
/// in turn from the round-robin position `start`, stably sorted by
/// priority (highest first, unusable ones last). The first is chosen and
/// the order is the failover list; `None` when nothing is usable. Also
/// the index the walk put first, which the round-robin position moves
/// past (Kamailio's `last`; with `use_default` it can differ from the
/// chosen one).
pub fn latency(
    n: usize,
    start: usize,
    priority: &dyn Fn(usize) -> i32,
    usable: &dyn Fn(usize) -> bool,
    use_default: bool,
    limit: usize,
) -> Option<(Choice, usize)> {
    if n == 0 {
        return None;
    }
    let limit = if limit == 0 { usize::MAX } else { limit };
    let m = if use_default && n > 1 { n - 1 } else { n };
    // n steps from `start`, wrapping before the default with use_default
    // (so one destination may come twice, and the default only when the
    // walk starts on it), as Kamailio 5.6 walks.
    let mut z = start % n;
    let mut turn: Vec<Option<(usize, i32)>> = Vec::with_capacity(n);
    for _ in 0..n {
        turn.push(usable(z).then(|| (z, priority(z))));
        z = (z + 1) % m;
    }
    turn.sort_by_key(|e| std::cmp::Reverse(e.map_or(-1, |(_, p)| p)));
    let first = turn.first().copied().flatten()?.0;
    let mut order: Vec<usize> = turn
        .iter()
        .flatten()
        .map(|&(i, _)| i)
        .filter(|&i| !(use_default && i == n - 1))
        .take(limit)
        .collect();
    let chosen = first % m;
    with_default(&mut order, n, chosen, use_default, limit);
    Some((Choice { chosen, order }, first))
}

/// Both at once.
pub fn choose(
    n: usize,
    hash: u32,
    usable: &dyn Fn(usize) -> bool,
    use_default: bool,
    limit: usize,
) -> Option<Choice> {
    let chosen = pick(n, hash, usable, use_default)?;
    Some(Choice {
        chosen,
        order: failover(n, chosen, usable, use_default, limit),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(_: usize) -> bool {
        true
    }

    #[test]
    fn hash_then_next_usable() {
        assert_eq!(pick(3, 7, &all, false), Some(1));
        assert_eq!(pick(3, 7, &|i| i != 1, false), Some(2));
        assert_eq!(pick(3, 8, &|i| i == 0, false), Some(0), "wraps round");
        assert_eq!(pick(3, 8, &|_| false, false), None);
        assert_eq!(pick(0, 8, &all, false), None);
    }

    #[test]
    fn the_default_is_the_last_resort() {
        // Kamailio 5.6, three destinations, use_default=1: the Call-ID
        // a84b4c76e66710@pc33.atlanta.com (hash 2175018094) picks the
        // first, then the second, then the default.
        let h = 2_175_018_094;
        assert_eq!(choose(3, h, &all, true, 0).unwrap().order, vec![0, 1, 2]);
        assert_eq!(choose(3, h, &all, true, 2).unwrap().order, vec![0, 1]);
        assert_eq!(choose(3, 1, &all, true, 0).unwrap().order, vec![1, 0, 2]);
        assert_eq!(pick(3, h, &|i| i == 2, true), Some(2));
        assert_eq!(choose(3, h, &|i| i == 2, true, 0).unwrap().order, vec![2]);
        assert_eq!(
            choose(3, h, &|i| i != 2, true, 0).unwrap().order,
            vec![0, 1, 2],
            "the default is listed whatever its state"
        );
        assert_eq!(pick(3, h, &|i| i != 2 && i != 0 && i != 1, true), None);
        assert_eq!(pick(1, h, &all, true), Some(0));
    }

    #[test]
    fn latency_without_figures_is_priority_then_turn() {
        // Priorities 5, 0, 0, 0 (as loaded, highest first); round robin
        // among the equal ones from the position given.
        let prio = |i: usize| [5, 0, 0, 0][i];
        let run = |start, usable: &dyn Fn(usize) -> bool, def, limit| {
            let (c, first) = latency(4, start, &prio, usable, def, limit).unwrap();
            (c.chosen, c.order, first)
        };
        assert_eq!(run(0, &all, false, 0), (0, vec![0, 1, 2, 3], 0));
        assert_eq!(run(2, &all, false, 0), (0, vec![0, 2, 3, 1], 0));
        assert_eq!(run(2, &|i| i != 0, false, 2), (2, vec![2, 3], 2));
        assert!(latency(4, 1, &prio, &|_| false, false, 0).is_none());
        // Kamailio 5.6.3 with use_default and the first inactive, three
        // calls in a row (positions 0, 2, 3): a destination listed twice,
        // then the walk starting on the default, which makes the chosen
        // index 3 % 3 = 0, the inactive one.
        let up = |i: usize| i != 0;
        assert_eq!(run(0, &up, true, 0), (1, vec![1, 2, 3], 1));
        assert_eq!(run(2, &up, true, 0), (2, vec![2, 1, 2, 3], 2));
        assert_eq!(run(3, &up, true, 0), (0, vec![1, 2, 3], 3));
        let (one, _) = latency(1, 0, &prio, &all, false, 0).unwrap();
        assert_eq!((one.chosen, one.order), (0, vec![0]));
        // With use_default the only destination is the default: Kamailio
        // lists nothing.
        let (one, _) = latency(1, 0, &prio, &all, true, 0).unwrap();
        assert_eq!((one.chosen, one.order), (0, vec![]));
    }

    #[test]
    fn failover_skips_unusable_and_wraps() {
        let c = choose(4, 2, &|i| i != 3, false, 0).unwrap();
        assert_eq!(c.order, vec![2, 0, 1]);
        let c = choose(4, 2, &all, false, 3).unwrap();
        assert_eq!(c.order, vec![2, 3, 0]);
    }
}
