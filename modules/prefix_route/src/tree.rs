//! The prefix tree: one level per digit (other characters are skipped,
//! in prefixes and in users alike), a route at the node where a prefix
//! ends.

use sr_sdk::RouteId;

/// A route a prefix leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The block to run.
    pub id: RouteId,
    /// Its name, as the dump shows it (Kamailio keeps 15 characters).
    pub name: String,
}

/// One node of the tree.
#[derive(Debug, Default)]
pub struct Node {
    kids: [Option<Box<Node>>; 10],
    target: Option<Target>,
}

fn digits(s: &str) -> impl Iterator<Item = usize> + '_ {
    s.bytes()
        .filter(u8::is_ascii_digit)
        .map(|c| usize::from(c - b'0'))
}

impl Node {
    /// Sets the route of `prefix`; the route it replaced, if any.
    pub fn add(&mut self, prefix: &str, target: Target) -> Option<Target> {
        let mut n = self;
        for d in digits(prefix) {
            n = n.kids[d].get_or_insert_with(Box::default);
        }
        n.target.replace(target)
    }

    /// The route of the longest prefix of `user` that is shorter than
    /// it: as Kamailio's lookup, a node's route counts only when a digit
    /// follows it, so a user exactly equal to a prefix does not match it.
    pub fn get(&self, user: &str) -> Option<&Target> {
        let mut n = self;
        let mut best = None;
        for d in digits(user) {
            if n.target.is_some() {
                best = n.target.as_ref();
            }
            match &n.kids[d] {
                Some(k) => n = k,
                None => break,
            }
        }
        best
    }

    /// Kamailio's dump text: for each child, a new line, `level` spaces,
    /// the digit and a space, then its route (` \t--> route[NAME] `).
    pub fn print(&self, out: &mut String, level: usize) {
        if let Some(t) = &self.target {
            out.push_str(&format!(" \t--> route[{}] ", t.name));
        }
        for (i, k) in self.kids.iter().enumerate() {
            if let Some(k) = k {
                out.push('\n');
                out.push_str(&" ".repeat(level));
                out.push_str(&format!("{i} "));
                k.print(out, level + 1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(n: &str) -> Target {
        Target {
            id: RouteId(0),
            name: n.into(),
        }
    }

    #[test]
    fn longest_prefix_shorter_than_the_user() {
        let mut root = Node::default();
        root.add("46", t("SE"));
        root.add("47", t("NO"));
        root.add("4-7-9", t("NOMOB"));
        let get = |u: &str| root.get(u).map(|x| x.name.clone());
        assert_eq!(get("4612").as_deref(), Some("SE"));
        assert_eq!(get("46").as_deref(), None);
        assert_eq!(get("+47 12").as_deref(), Some("NO"));
        assert_eq!(get("4791").as_deref(), Some("NOMOB"));
        assert_eq!(get("479").as_deref(), Some("NO"));
        assert_eq!(get("5").as_deref(), None);
        assert_eq!(get("abc").as_deref(), None);
        assert_eq!(root.add("46", t("X")).map(|x| x.name), Some("SE".into()));
    }

    #[test]
    fn prints_as_kamailio() {
        let mut root = Node::default();
        root.add("46", t("SE"));
        root.add("479", t("NOMOB"));
        let mut s = String::new();
        root.print(&mut s, 0);
        assert_eq!(
            s,
            "\n4 \n 6  \t--> route[SE] \n 7 \n  9  \t--> route[NOMOB] "
        );
    }
}
