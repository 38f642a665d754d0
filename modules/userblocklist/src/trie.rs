//! The prefix trie userblocklist matches numbers in, as Kamailio's d-tree
//! does: 10 branches (digits only, `match_mode` 10) or 128 (any ASCII
//! character, `match_mode` 128); each node may mark its prefix as
//! blocked or allowed, a later mark replacing an earlier one.

/// Longest number matched (Kamailio's `MAXNUMBERLEN`).
pub const MAX_NUMBER_LEN: usize = 31;

/// A node: its children by branch and its mark (`Some(true)`: allowed).
#[derive(Debug, Clone, Default)]
struct Node {
    children: Vec<(u8, u32)>,
    mark: Option<bool>,
}

/// A trie.
#[derive(Debug, Clone)]
pub struct Trie {
    nodes: Vec<Node>,
    branches: u8,
}

impl Trie {
    /// An empty trie of `branches` (10 or 128).
    pub fn new(branches: u8) -> Trie {
        Trie {
            nodes: vec![Node::default()],
            branches,
        }
    }

    /// The branch of a character, when it has one.
    fn branch(&self, c: u8) -> Option<u8> {
        if self.branches == 10 {
            c.is_ascii_digit().then(|| c - b'0')
        } else {
            (c < self.branches).then_some(c)
        }
    }

    fn child(&self, node: usize, b: u8) -> Option<usize> {
        self.nodes[node]
            .children
            .iter()
            .find(|(x, _)| *x == b)
            .map(|(_, n)| *n as usize)
    }

    /// Marks `prefix` (false when a character has no branch: what was
    /// walked stays, unmarked).
    pub fn insert(&mut self, prefix: &str, allow: bool) -> bool {
        let mut node = 0;
        for c in prefix.bytes() {
            let Some(b) = self.branch(c) else {
                return false;
            };
            node = match self.child(node, b) {
                Some(n) => n,
                None => {
                    self.nodes.push(Node::default());
                    let n = self.nodes.len() - 1;
                    self.nodes[node].children.push((b, n as u32));
                    n
                }
            };
        }
        self.nodes[node].mark = Some(allow);
        true
    }

    /// The mark of the longest marked prefix of `number` (the empty
    /// prefix included); the walk stops at a character without a branch.
    pub fn longest(&self, number: &str) -> Option<bool> {
        let mut node = Some(0usize);
        let mut found = None;
        for c in number.bytes() {
            let Some(n) = node else { break };
            if let Some(m) = self.nodes[n].mark {
                found = Some(m);
            }
            let Some(b) = self.branch(c) else {
                return found;
            };
            node = self.child(n, b);
        }
        if let Some(m) = node.and_then(|n| self.nodes[n].mark) {
            found = Some(m);
        }
        found
    }

    /// Every marked prefix, depth first in branch order.
    pub fn dump(&self) -> Vec<(String, bool)> {
        let mut out = Vec::new();
        let mut prefix = Vec::new();
        self.walk(0, &mut prefix, &mut out);
        out
    }

    fn walk(&self, node: usize, prefix: &mut Vec<u8>, out: &mut Vec<(String, bool)>) {
        if let Some(m) = self.nodes[node].mark {
            out.push((String::from_utf8_lossy(prefix).into_owned(), m));
        }
        if prefix.len() > MAX_NUMBER_LEN {
            return;
        }
        let mut kids = self.nodes[node].children.clone();
        kids.sort_unstable();
        for (b, n) in kids {
            prefix.push(if self.branches == 10 { b + b'0' } else { b });
            self.walk(n as usize, prefix, out);
            prefix.pop();
        }
    }
}

/// A number as Kamailio matches it: with 10 branches, leading characters
/// that are not digits skipped (`+49...` matches as `49...`).
pub fn match_key(number: &str, branches: u8) -> &str {
    if branches == 10 {
        number.trim_start_matches(|c: char| !c.is_ascii_digit())
    } else {
        number
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_marked_prefix_decides() {
        let mut t = Trie::new(10);
        t.insert("49", false);
        t.insert("4930", true);
        t.insert("4930", false);
        t.insert("1", true);
        assert_eq!(t.longest("4912"), Some(false));
        assert_eq!(t.longest("49301"), Some(false));
        assert_eq!(t.longest("5"), None);
        // A character without a branch ends the walk, keeping what matched.
        assert_eq!(t.longest("49a30"), Some(false));
        assert!(!t.insert("4+9", true));
        assert_eq!(t.longest("4"), None);
        t.insert("", true);
        assert_eq!(t.longest("5"), Some(true));
        assert_eq!(
            t.dump(),
            vec![
                ("".into(), true),
                ("1".into(), true),
                ("49".into(), false),
                ("4930".into(), false)
            ]
        );
        assert_eq!(match_key("+49 30", 10), "49 30");
        assert_eq!(match_key("+49", 128), "+49");
    }

    #[test]
    fn ascii_mode_takes_any_ascii_character() {
        let mut t = Trie::new(128);
        assert!(t.insert("+49", false));
        assert_eq!(t.longest("+491"), Some(false));
        assert!(!t.insert("é", false));
    }
}
