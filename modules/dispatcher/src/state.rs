//! State changes with thresholds (Kamailio's `ds_update_state`): a
//! destination failing `ds_probing_threshold` times in a row becomes
//! inactive; an inactive one answering `ds_inactive_threshold` times in a
//! row becomes active again. Pure: flags and counter in, flags and
//! counter out, and whether it went down or up.

use crate::dest::{skipped, INACTIVE, PROBING, STATES, TRYING};

/// What a state change did to a destination's use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Turn {
    /// It was usable and is not now (`event_route[dispatcher:dst-down]`).
    Down,
    /// It was not usable and is now (`event_route[dispatcher:dst-up]`).
    Up,
    /// Neither.
    Same,
}

/// The thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// Failures before inactive.
    pub probing: u32,
    /// Successes before active again.
    pub inactive: u32,
}

/// Applies `state` (state bits) to a destination with `old` flags and
/// counter `count`: the new flags, the new counter and the turn.
pub fn update(old: u32, count: u32, state: u32, t: Thresholds) -> (u32, u32, Turn) {
    let init = state;
    let mut state = state & STATES;
    let mut count = count;
    if state & TRYING != 0 && old & INACTIVE != 0 {
        // Still failing while inactive: it stays inactive.
        state = (state | INACTIVE) & !TRYING;
    }
    if state & TRYING != 0 {
        count += 1;
        if count >= t.probing {
            state = (state & !TRYING) | INACTIVE;
            count = 0;
        }
    } else if init & TRYING == 0 && old & INACTIVE != 0 {
        count += 1;
        if count < t.inactive {
            state |= INACTIVE | (old & PROBING);
        } else {
            count = 0;
        }
    } else {
        count = 0;
    }
    let flags = (old & !STATES) | state;
    let turn = match (skipped(old), skipped(flags)) {
        (false, true) => Turn::Down,
        (true, false) => Turn::Up,
        _ => Turn::Same,
    };
    (flags, count, turn)
}

/// The state `ds_mark_dst` letters ask for (`a`ctive, `i`nactive,
/// `t`rying, `d`isabled, `p`robing, case-insensitive); `None` for any
/// other letter.
pub fn from_letters(s: &str) -> Option<u32> {
    let mut state = 0;
    for c in s.chars() {
        match c.to_ascii_lowercase() {
            'a' => state &= !STATES,
            'i' => state |= INACTIVE,
            't' => state |= TRYING,
            'd' => state |= crate::dest::DISABLED,
            'p' => state |= PROBING,
            _ => return None,
        }
    }
    Some(state)
}

/// The state `dispatcher.set_state` asks for, as Kamailio reads it: the
/// first character `0`/`i`, `1`/`a`, `2`/`d` or `3`/`t` (any case), then
/// `p` for probing (not with `d`); anything after is ignored.
pub fn from_rpc(s: &str) -> Option<u32> {
    let mut chars = s.chars().map(|c| c.to_ascii_lowercase());
    let (base, may_probe) = match chars.next()? {
        '0' | 'i' => (INACTIVE, true),
        '1' | 'a' => (0, true),
        '2' | 'd' => (crate::dest::DISABLED, false),
        '3' | 't' => (TRYING, true),
        _ => return None,
    };
    let probing = may_probe && chars.next() == Some('p');
    Some(if probing { base | PROBING } else { base })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dest::DISABLED;

    const T1: Thresholds = Thresholds {
        probing: 1,
        inactive: 1,
    };
    const T3: Thresholds = Thresholds {
        probing: 3,
        inactive: 2,
    };

    #[test]
    fn one_failure_takes_it_down_by_default() {
        assert_eq!(
            update(PROBING, 0, TRYING | PROBING, T1),
            (INACTIVE | PROBING, 0, Turn::Down)
        );
        assert_eq!(
            update(INACTIVE | PROBING, 0, PROBING, T1),
            (PROBING, 0, Turn::Up)
        );
        assert_eq!(update(0, 0, INACTIVE, T1), (INACTIVE, 0, Turn::Down));
    }

    #[test]
    fn thresholds_count_in_a_row() {
        let (f, c, t) = update(PROBING, 0, TRYING | PROBING, T3);
        assert_eq!(
            (f, c, t),
            (TRYING | PROBING, 1, Turn::Same),
            "trying: still selected"
        );
        let (f, c, _) = update(f, c, TRYING | PROBING, T3);
        assert_eq!((f, c), (TRYING | PROBING, 2));
        let (f, c, t) = update(f, c, TRYING | PROBING, T3);
        assert_eq!((f, c, t), (INACTIVE | PROBING, 0, Turn::Down));
        // Failing on while inactive: stays, counter back to 0.
        let (f, c, t) = update(f, 0, TRYING | PROBING, T3);
        assert_eq!((f, c, t), (INACTIVE | PROBING, 0, Turn::Same));
        // Two answers to come back.
        let (f, c, t) = update(f, c, 0, T3);
        assert_eq!((f, c, t), (INACTIVE | PROBING, 1, Turn::Same));
        let (f, c, t) = update(f, c, 0, T3);
        assert_eq!((f, c, t), (0, 0, Turn::Up));
        // An answer while trying resets the count.
        assert_eq!(update(TRYING, 2, 0, T3), (0, 0, Turn::Same));
    }

    #[test]
    fn disabling_is_a_turn_down_and_flags_stay() {
        assert_eq!(update(32, 0, DISABLED, T1), (32 | DISABLED, 0, Turn::Down));
    }

    #[test]
    fn letters() {
        assert_eq!(from_letters("ip"), Some(INACTIVE | PROBING));
        assert_eq!(from_letters("A"), Some(0));
        assert_eq!(from_letters("tp"), Some(TRYING | PROBING));
        assert_eq!(from_letters("x"), None);
        assert_eq!(from_rpc("ip"), Some(INACTIVE | PROBING));
        assert_eq!(from_rpc("1"), Some(0));
        assert_eq!(from_rpc("2"), Some(DISABLED));
        assert_eq!(from_rpc("tp"), Some(TRYING | PROBING));
        assert_eq!(from_rpc("q"), None);
        assert_eq!(
            from_rpc("ipx"),
            Some(INACTIVE | PROBING),
            "the rest ignored"
        );
        assert_eq!(from_rpc("dp"), Some(DISABLED), "no probing with d");
        assert_eq!(from_letters("pa"), Some(0), "a clears probing too");
    }
}
