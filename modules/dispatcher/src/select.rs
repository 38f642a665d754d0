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
    if use_default && n > 1 && chosen != n - 1 && order.len() < limit && usable(n - 1) {
        order.push(n - 1);
    }
    order
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
        assert_eq!(pick(3, h, &|i| i != 2 && i != 0 && i != 1, true), None);
        assert_eq!(pick(1, h, &all, true), Some(0));
    }

    #[test]
    fn failover_skips_unusable_and_wraps() {
        let c = choose(4, 2, &|i| i != 3, false, 0).unwrap();
        assert_eq!(c.order, vec![2, 0, 1]);
        let c = choose(4, 2, &all, false, 3).unwrap();
        assert_eq!(c.order, vec![2, 3, 0]);
    }
}
