//! A prefix tree as Kamailio's mtree keeps it: one node per prefix
//! character, from a fixed alphabet (`char_list`), each node a row of
//! slots (one per character) holding the values of the prefix that ends
//! there (newest first) and the next row. The figures `mtree.summary`
//! shows (`nrnodes`, `nritems`, `memsize`) count as Kamailio counts them.

/// Longest prefix (Kamailio's `MT_MAX_DEPTH`).
pub const MAX_DEPTH: usize = 64;
/// Most (dstid, weight) pairs collected by one match of a type 1 tree.
pub const MAX_DST: usize = 64;
/// Bytes of one slot in Kamailio (three pointers), for `memsize`.
const SLOT_BYTES: usize = 24;

/// The prefix alphabet: a character's slot number.
#[derive(Debug, Clone)]
pub struct Chars {
    table: [Option<u8>; 256],
    list: Vec<u8>,
}

impl Chars {
    /// From `char_list` (a repeated character keeps its last place).
    pub fn new(list: &str) -> Result<Chars, String> {
        let list: Vec<u8> = list.bytes().collect();
        if list.is_empty() || list.len() > 255 {
            return Err("char_list must have 1 to 255 characters".into());
        }
        let mut table = [None; 256];
        for (i, c) in list.iter().enumerate() {
            table[usize::from(*c)] = Some(i as u8);
        }
        Ok(Chars { table, list })
    }

    fn slot(&self, c: u8) -> Option<usize> {
        self.table[usize::from(c)].map(usize::from)
    }

    /// The number of slots per node.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether the alphabet is empty (never, once made).
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

/// A stored value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TValue {
    /// Types 0 and 1: the text.
    Str(String),
    /// Type 2: an integer.
    Int(i32),
}

#[derive(Debug, Clone, Default)]
struct Slot {
    /// Newest first.
    values: Vec<TValue>,
    /// Type 1: the (dstid, weight) pairs of the newest value.
    dw: Vec<(u32, u32)>,
    child: Option<usize>,
}

/// What adding a row did.
#[derive(Debug, PartialEq, Eq)]
pub enum Added {
    /// Stored.
    Yes,
    /// A duplicate prefix, skipped (`mt_ignore_duplicates`).
    Ignored,
}

/// One tree.
#[derive(Debug, Clone)]
pub struct Tree {
    /// Its name.
    pub name: String,
    /// The table it is loaded from.
    pub dbtable: String,
    /// Columns when set (`cols`): the prefix first, then the values.
    pub cols: Vec<String>,
    /// 0 strings, 1 dstid=weight lists, 2 integers.
    pub ty: i64,
    /// Whether its table holds several trees (by `tname`).
    pub multi: bool,
    nodes: Vec<Vec<Slot>>,
    /// Node rows allocated.
    pub nrnodes: u64,
    /// String values stored.
    pub nritems: u64,
    /// Kamailio's memory figure: rows of slots plus string bytes.
    pub memsize: u64,
    /// Loads so far.
    pub reload_count: u64,
    /// Time of the last load (unix seconds).
    pub reload_time: u64,
}

/// Kamailio's `str2int`: the leading decimal digits (0 when none).
pub fn leading_uint(s: &str) -> u32 {
    let mut n: u32 = 0;
    for c in s.bytes() {
        if !c.is_ascii_digit() {
            break;
        }
        n = n.wrapping_mul(10).wrapping_add(u32::from(c - b'0'));
    }
    n
}

/// A type 1 value's pairs: `dstid=weight` items separated by `;`, in
/// their order.
fn parse_dw(v: &str) -> Vec<(u32, u32)> {
    let v = v.strip_suffix(';').unwrap_or(v);
    v.split(';')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (n, b) = p.split_once('=').unwrap_or((p, ""));
            (leading_uint(n.trim()), leading_uint(b.trim()))
        })
        .collect()
}

impl Tree {
    /// An empty tree.
    pub fn new(name: &str, dbtable: &str, cols: Vec<String>, ty: i64, multi: bool) -> Tree {
        Tree {
            name: name.to_string(),
            dbtable: dbtable.to_string(),
            cols,
            ty,
            multi,
            nodes: Vec::new(),
            nrnodes: 0,
            nritems: 0,
            memsize: 0,
            reload_count: 0,
            reload_time: 0,
        }
    }

    /// The same definition, without its data.
    pub fn emptied(&self) -> Tree {
        let mut t = Tree::new(
            &self.name,
            &self.dbtable,
            self.cols.clone(),
            self.ty,
            self.multi,
        );
        t.reload_count = self.reload_count;
        t
    }

    fn new_row(&mut self, chars: &Chars) -> usize {
        self.nodes.push(vec![Slot::default(); chars.len()]);
        self.nrnodes += 1;
        self.memsize += (chars.len() * SLOT_BYTES) as u64;
        self.nodes.len() - 1
    }

    /// Adds `value` under `prefix`.
    pub fn add(
        &mut self,
        chars: &Chars,
        prefix: &str,
        value: &str,
        ignore_dup: bool,
        allow_dup: bool,
    ) -> Result<Added, String> {
        let p = prefix.as_bytes();
        if p.len() >= MAX_DEPTH {
            return Err(format!("max prefix len exceeded [{prefix}]"));
        }
        if p.is_empty() {
            return Err("empty prefix".into());
        }
        let tv = if self.ty == 2 {
            TValue::Int(parse_sint(value).ok_or_else(|| format!("bad integer string <{value}>"))?)
        } else {
            TValue::Str(value.to_string())
        };
        if self.nodes.is_empty() {
            self.new_row(chars);
        }
        let mut row = 0;
        for (l, c) in p.iter().enumerate() {
            let s = chars
                .slot(*c)
                .ok_or_else(|| format!("invalid char at {l} in [{prefix}]"))?;
            if l + 1 == p.len() {
                let slot = &self.nodes[row][s];
                if !slot.values.is_empty() {
                    if ignore_dup {
                        return Ok(Added::Ignored);
                    } else if !allow_dup {
                        return Err(format!("prefix already allocated [{prefix}/{value}]"));
                    }
                }
                if let TValue::Str(v) = &tv {
                    self.memsize += v.len() as u64 + 1;
                    self.nritems += 1;
                }
                let ty = self.ty;
                let slot = &mut self.nodes[row][s];
                if ty == 1 {
                    slot.dw = parse_dw(value);
                }
                slot.values.insert(0, tv);
                return Ok(Added::Yes);
            }
            row = match self.nodes[row][s].child {
                Some(c) => c,
                None => {
                    let c = self.new_row(chars);
                    self.nodes[row][s].child = Some(c);
                    c
                }
            };
        }
        Err("empty prefix".into())
    }

    /// Walks `m` from the head: calls `f(consumed, slot)` for each slot
    /// on the way; `None` at a character outside the alphabet, else the
    /// number of characters walked.
    fn walk(
        &self,
        chars: &Chars,
        m: &str,
        mut f: impl FnMut(usize, &Slot) -> bool,
    ) -> Option<usize> {
        let mut row = if self.nodes.is_empty() { None } else { Some(0) };
        let mut l = 0;
        let b = m.as_bytes();
        while let Some(r) = row {
            if l >= b.len() || l >= MAX_DEPTH {
                break;
            }
            let s = chars.slot(b[l])?;
            let slot = &self.nodes[r][s];
            if !f(l, slot) {
                return Some(l + 1);
            }
            row = slot.child;
            l += 1;
        }
        Some(l)
    }

    /// The value of the longest prefix of `m` (the newest of its values)
    /// and how many characters were walked (Kamailio's `PREFIX` length in
    /// `mtree.match`, which may pass the matched prefix).
    pub fn longest(&self, chars: &Chars, m: &str) -> Option<(TValue, usize)> {
        let mut found = None;
        let walked = self.walk(chars, m, |_, s| {
            if let Some(v) = s.values.first() {
                found = Some(v.clone());
            }
            true
        })?;
        found.map(|v| (v, walked))
    }

    /// Every value of every prefix of `m`, shortest prefix first, each
    /// slot's newest first, with its prefix length; and whether the walk
    /// ended well (false at a character outside the alphabet: Kamailio
    /// keeps what it found before it, and fails the match).
    pub fn all(&self, chars: &Chars, m: &str) -> (Vec<(usize, TValue)>, bool) {
        let mut out = Vec::new();
        let ok = self
            .walk(chars, m, |l, s| {
                out.extend(s.values.iter().map(|v| (l + 1, v.clone())));
                true
            })
            .is_some();
        (out, ok)
    }

    /// A type 1 match: (dstid, weight) pairs of the prefixes of `m`, a
    /// dstid seen on a longer prefix kept only there, sorted by weight
    /// (highest first, stable), and the longest matched prefix's length;
    /// `None` when nothing matched or at a character outside the alphabet.
    pub fn dw(&self, chars: &Chars, m: &str) -> Option<(Vec<(u32, u32)>, usize)> {
        let mut list: Vec<(u32, u32)> = Vec::new();
        let mut len = 0;
        self.walk(chars, m, |l, s| {
            if !s.values.is_empty() {
                for d in &s.dw {
                    list.push(*d);
                    if list.len() == MAX_DST {
                        break;
                    }
                }
                len = l + 1;
            }
            list.len() < MAX_DST
        })?;
        if list.is_empty() {
            return None;
        }
        for i in (1..list.len()).rev() {
            if list[i].0 != 0 {
                for j in 0..i {
                    if list[j].0 == list[i].0 {
                        list[j].0 = 0;
                    }
                }
            }
        }
        // Stable: equal weights keep their order (Kamailio's bubble sort).
        list.sort_by_key(|d| std::cmp::Reverse(d.1));
        Some((list.into_iter().filter(|d| d.0 != 0).collect(), len))
    }

    /// Every prefix with values, depth first in alphabet order, with its
    /// values newest first (`mtree.list`).
    pub fn entries(&self, chars: &Chars) -> Vec<(String, Vec<TValue>)> {
        let mut out = Vec::new();
        if !self.nodes.is_empty() {
            let mut code = Vec::new();
            self.collect(chars, 0, &mut code, &mut out);
        }
        out
    }

    fn collect(
        &self,
        chars: &Chars,
        row: usize,
        code: &mut Vec<u8>,
        out: &mut Vec<(String, Vec<TValue>)>,
    ) {
        if code.len() >= MAX_DEPTH {
            return;
        }
        for (i, slot) in self.nodes[row].iter().enumerate() {
            code.push(chars.list[i]);
            if !slot.values.is_empty() {
                out.push((
                    String::from_utf8_lossy(code).into_owned(),
                    slot.values.clone(),
                ));
            }
            if let Some(c) = slot.child {
                self.collect(chars, c, code, out);
            }
            code.pop();
        }
    }
}

/// Kamailio's `str2sint`: an optional sign and decimal digits, nothing
/// else.
pub fn parse_sint(s: &str) -> Option<i32> {
    let (neg, d) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if d.is_empty() || !d.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let mut n: i64 = 0;
    for c in d.bytes() {
        n = (n * 10 + i64::from(c - b'0')).min(1 << 40);
    }
    let n = if neg { -n } else { n };
    i32::try_from(n).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(ty: i64, rows: &[(&str, &str)]) -> (Tree, Chars) {
        let chars = Chars::new("0123456789").unwrap();
        let mut t = Tree::new("t", "mtree", vec![], ty, false);
        for (p, v) in rows {
            t.add(&chars, p, v, false, true).unwrap();
        }
        (t, chars)
    }

    #[test]
    fn the_longest_prefix_wins() {
        let (t, c) = tree(0, &[("1", "a"), ("123", "b"), ("1234", "c")]);
        assert_eq!(t.longest(&c, "1239"), Some((TValue::Str("b".into()), 4)));
        assert_eq!(t.longest(&c, "12"), Some((TValue::Str("a".into()), 2)));
        assert_eq!(t.longest(&c, "9"), None);
        // A character outside the alphabet is no match at all.
        assert_eq!(t.longest(&c, "12x"), None);
        assert_eq!(
            t.all(&c, "12345"),
            (
                vec![
                    (1, TValue::Str("a".into())),
                    (3, TValue::Str("b".into())),
                    (4, TValue::Str("c".into()))
                ],
                true
            )
        );
        assert!(!t.all(&c, "12x").1);
        assert_eq!(t.nrnodes, 4);
        assert_eq!(t.memsize, 4 * 10 * 24 + 6);
    }

    #[test]
    fn duplicates_follow_the_settings() {
        let c = Chars::new("0123456789").unwrap();
        let mut t = Tree::new("t", "mtree", vec![], 0, false);
        t.add(&c, "1", "a", false, false).unwrap();
        assert!(t.add(&c, "1", "b", false, false).is_err());
        assert_eq!(t.add(&c, "1", "b", true, false).unwrap(), Added::Ignored);
        t.add(&c, "1", "c", false, true).unwrap();
        assert_eq!(t.longest(&c, "1").unwrap().0, TValue::Str("c".into()));
        assert!(t.add(&c, "1a", "x", false, false).is_err());
        assert!(t.add(&c, &"1".repeat(64), "x", false, false).is_err());
    }

    #[test]
    fn type_1_keeps_the_longest_dstid_and_sorts_by_weight() {
        let (t, c) = tree(1, &[("1", "1=10;2=20"), ("12", "1=5;3=30;4=30")]);
        let (list, len) = t.dw(&c, "123").unwrap();
        assert_eq!(len, 2);
        assert_eq!(list, vec![(3, 30), (4, 30), (2, 20), (1, 5)]);
        assert_eq!(leading_uint("12ab"), 12);
        assert_eq!(parse_dw("4:7"), vec![(4, 0)]);
        assert_eq!(parse_dw("1=2;3=4;"), vec![(1, 2), (3, 4)]);
    }

    #[test]
    fn integers_are_strict() {
        assert_eq!(parse_sint("-12"), Some(-12));
        assert_eq!(parse_sint("12a"), None);
        assert_eq!(parse_sint(""), None);
        let c = Chars::new("0123456789").unwrap();
        let mut t = Tree::new("t", "mtree", vec![], 2, false);
        assert!(t.add(&c, "1", "x", false, false).is_err());
        t.add(&c, "1", "7", false, false).unwrap();
        assert_eq!(t.nritems, 0);
    }
}
