//! Prefix trees per source domain: each prefix (made of `char_list`
//! characters, shorter than 32) names a domain, and a user part finds
//! the domain of its longest prefix.

use std::cmp::Ordering;

/// Longest prefix plus one.
pub const MAX_DEPTH: usize = 32;

/// A trie node: per character of `char_list`, a domain and a child.
#[derive(Debug, Clone, Default)]
struct Node {
    slots: Vec<(Option<String>, Option<Box<Node>>)>,
}

impl Node {
    fn new(n: usize) -> Node {
        Node {
            slots: vec![(None, None); n],
        }
    }
}

/// The prefixes of one source domain.
#[derive(Debug, Clone)]
pub struct Tree {
    /// The source domain (`*` for any).
    pub sdomain: String,
    head: Node,
}

/// Every source domain's tree, sorted as Kamailio keeps them (bytes,
/// then length).
#[derive(Debug, Clone, Default)]
pub struct Trees {
    /// The characters prefixes are made of.
    pub chars: Vec<u8>,
    /// The trees.
    pub trees: Vec<Tree>,
}

/// Kamailio's `str_strcmp`: bytes of the common length, then length.
fn str_cmp(a: &str, b: &str) -> Ordering {
    let n = a.len().min(b.len());
    a.as_bytes()[..n]
        .cmp(&b.as_bytes()[..n])
        .then(a.len().cmp(&b.len()))
}

impl Trees {
    /// No trees yet, prefixes of `chars`.
    pub fn new(chars: &str) -> Trees {
        Trees {
            chars: chars.as_bytes().to_vec(),
            trees: Vec::new(),
        }
    }

    fn pos(&self, c: u8) -> Option<usize> {
        self.chars.iter().position(|&x| x == c)
    }

    /// The tree of `sdomain`.
    pub fn tree(&self, sdomain: &str) -> Option<&Tree> {
        self.trees
            .iter()
            .find(|t| str_cmp(&t.sdomain, sdomain) == Ordering::Equal)
    }

    /// Whether `sdomain` (any case) already has `prefix` or `domain`
    /// (Kamailio's `check_domain`).
    pub fn has_prefix_or_domain(&self, sdomain: &str, prefix: &str, domain: &str) -> bool {
        let Some(t) = self
            .trees
            .iter()
            .find(|t| t.sdomain.eq_ignore_ascii_case(sdomain))
        else {
            return false;
        };
        self.entries(t)
            .iter()
            .any(|(p, d)| p == prefix || d == domain)
    }

    /// Adds `prefix` → `domain` for `sdomain`.
    pub fn add(&mut self, sdomain: &str, prefix: &str, domain: &str) -> Result<(), String> {
        if prefix.len() >= MAX_DEPTH {
            return Err("max prefix len exceeded".into());
        }
        let idx: Vec<usize> = prefix
            .bytes()
            .enumerate()
            .map(|(l, c)| {
                self.pos(c)
                    .ok_or_else(|| format!("invalid char {l} in prefix [{} (0x{c:x})]", c as char))
            })
            .collect::<Result<_, _>>()?;
        let n = self.chars.len();
        let at = match self
            .trees
            .binary_search_by(|t| str_cmp(&t.sdomain, sdomain))
        {
            Ok(i) => i,
            Err(i) => {
                self.trees.insert(
                    i,
                    Tree {
                        sdomain: sdomain.to_string(),
                        head: Node::new(n),
                    },
                );
                i
            }
        };
        let mut node = &mut self.trees[at].head;
        let (last, path) = idx.split_last().ok_or("empty prefix")?;
        for &i in path {
            node = node.slots[i]
                .1
                .get_or_insert_with(|| Box::new(Node::new(n)));
        }
        let slot = &mut node.slots[*last].0;
        if slot.is_some() {
            return Err(format!("prefix already allocated [{prefix}/[{domain}]"));
        }
        *slot = Some(domain.to_string());
        Ok(())
    }

    /// The domain of the longest prefix of `code` in `t` and that
    /// prefix's length; `None` also when `code` has a character outside
    /// `char_list` before a match was complete (as Kamailio).
    pub fn lookup(&self, t: &Tree, code: &str) -> Option<(String, usize)> {
        let mut node = Some(&t.head);
        let mut found = None;
        for (l, c) in code.bytes().enumerate().take(MAX_DEPTH) {
            let Some(n) = node else { break };
            let i = self.pos(c)?;
            if let Some(d) = &n.slots[i].0 {
                found = Some((d.clone(), l + 1));
            }
            node = n.slots[i].1.as_deref();
        }
        found
    }

    /// Every (prefix, domain) of `t`, depth first in `char_list` order.
    pub fn entries(&self, t: &Tree) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut code = Vec::new();
        self.walk(&t.head, &mut code, &mut out);
        out
    }

    fn walk(&self, n: &Node, code: &mut Vec<u8>, out: &mut Vec<(String, String)>) {
        if code.len() >= MAX_DEPTH {
            return;
        }
        for (i, (d, child)) in n.slots.iter().enumerate() {
            code.push(self.chars[i]);
            if let Some(d) = d {
                out.push((String::from_utf8_lossy(code).into_owned(), d.clone()));
            }
            if let Some(c) = child {
                self.walk(c, code, out);
            }
            code.pop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_prefix_per_source_domain() {
        let mut t = Trees::new("0123456789");
        t.add("*", "1", "one.example").unwrap();
        t.add("*", "123", "x123.example").unwrap();
        t.add("a.example", "9", "nine.example").unwrap();
        assert!(t.add("*", "1", "again").is_err());
        assert!(t.add("*", "1a", "bad").is_err());
        let any = t.tree("*").unwrap();
        assert_eq!(t.lookup(any, "12345"), Some(("x123.example".into(), 3)));
        assert_eq!(t.lookup(any, "129"), Some(("one.example".into(), 1)));
        assert_eq!(t.lookup(any, "5"), None);
        assert_eq!(t.lookup(any, "1x3"), None, "a character outside the list");
        assert_eq!(
            t.entries(any),
            vec![
                ("1".into(), "one.example".into()),
                ("123".into(), "x123.example".into())
            ]
        );
        assert!(t.has_prefix_or_domain("A.EXAMPLE", "7", "nine.example"));
        assert!(!t.has_prefix_or_domain("a.example", "7", "seven.example"));
        assert_eq!(
            t.trees
                .iter()
                .map(|x| x.sdomain.as_str())
                .collect::<Vec<_>>(),
            vec!["*", "a.example"]
        );
    }
}
