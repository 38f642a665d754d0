//! Dialplan rules: compiled from table rows as Kamailio's `build_rule`
//! does, grouped by dialplan id and match length as its `add_rule2hash`
//! does, and tried in that order (`dp_translate_helper`).

use crate::fnmatch::fnmatch;
use crate::repl::{CompileFn, Repl};
use regex::bytes::{Regex, RegexBuilder};
use sr_sdk::fixup::Eval;
use sr_sdk::prelude::*;
use std::collections::HashMap;
use std::sync::Arc;

/// Match operators (`match_op`).
pub const OP_EQUAL: i64 = 0;
/// Perl-compatible regular expression.
pub const OP_REGEX: i64 = 1;
/// Shell wildcards (`fnmatch`).
pub const OP_FNMATCH: i64 = 2;

/// The most groups a substitution expression may have.
const MAX_GROUPS: usize = 100;
/// The longest attributes Kamailio hands out (`DP_MAX_ATTRS_LEN`).
const MAX_ATTRS: usize = 255;

/// One table row, as read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Row {
    /// `dpid`.
    pub dpid: i64,
    /// `pr`: lower first.
    pub pr: i64,
    /// `match_op`.
    pub match_op: i64,
    /// `match_exp`.
    pub match_exp: String,
    /// `match_len`: 0 for any length.
    pub match_len: i64,
    /// `subst_exp`.
    pub subst_exp: String,
    /// `repl_exp`.
    pub repl_exp: String,
    /// `attrs`.
    pub attrs: String,
}

/// A regular expression fixed at load time or built for each message
/// from pseudo-variables (`match_dynamic`).
#[derive(Debug, Clone)]
enum Pattern {
    Fixed(Regex),
    Dynamic(Arc<dyn Eval>),
}

impl Pattern {
    /// Runs `f` with the expression for this message; `None` when a
    /// dynamic one has no message or does not compile.
    fn with<R>(&self, ctx: Option<&mut Ctx<'_>>, f: impl FnOnce(&Regex) -> R) -> Option<R> {
        match self {
            Pattern::Fixed(r) => Some(f(r)),
            Pattern::Dynamic(e) => {
                let text = e.eval(ctx?).as_str().into_owned();
                match compile(&text) {
                    Ok(r) => Some(f(&r)),
                    Err(err) => {
                        lm_dbg!("dialplan: dynamic expression '{text}': {err}");
                        None
                    }
                }
            }
        }
    }
}

/// A compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// The row it came from (`match_exp` as stored: a dynamic expression
    /// ending in a single `$` gets a second one, as Kamailio stores it).
    pub row: Row,
    matcher: Option<Pattern>,
    subst: Option<Pattern>,
    repl: Option<Repl>,
}

/// Compiles a regular expression as PCRE reads it without options:
/// case-sensitive, unanchored, bytes (a character outside ASCII standing
/// for its bytes, in a class too).
pub fn compile(re: &str) -> Result<Regex, String> {
    RegexBuilder::new(&sr_sdk::pcre::escape_high_bytes(re.as_bytes()))
        .unicode(false)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| e.to_string())
}

/// The text with a trailing lone `$` doubled, so that a format keeps it.
fn keep_final_dollar(s: &str) -> String {
    if s.len() > 1 && s.ends_with('$') && !s.ends_with("$$") {
        format!("{s}$")
    } else {
        s.to_string()
    }
}

/// Whether the text holds a `$` that is not half of `$$`.
fn has_lone_dollar(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'$' {
            if b.get(i + 1) == Some(&b'$') {
                i += 2;
                continue;
            }
            if i + 1 < b.len() {
                return true;
            }
        }
        i += 1;
    }
    false
}

/// What a rule's text needs from the core at load time.
pub struct Env<'a> {
    /// Compiles text with pseudo-variables.
    pub compile: CompileFn<'a>,
    /// `match_dynamic`: expressions with pseudo-variables are built per message.
    pub dynamic: bool,
}

impl Env<'_> {
    /// A dynamic pattern when allowed and the text has pseudo-variables.
    fn dynamic(&self, text: &str) -> Option<(Pattern, String)> {
        if !self.dynamic || !has_lone_dollar(text) {
            return None;
        }
        let stored = keep_final_dollar(text);
        let e = (self.compile)(&stored).ok()?;
        Some((Pattern::Dynamic(e), stored))
    }
}

impl Rule {
    /// Compiles a row; the error says what is wrong with it.
    pub fn build(mut row: Row, env: &Env<'_>) -> Result<Rule, String> {
        if ![OP_EQUAL, OP_REGEX, OP_FNMATCH].contains(&row.match_op) {
            return Err(format!(
                "invalid value for match operator: {}",
                row.match_op
            ));
        }
        let mut dynamic = false;
        let matcher = if row.match_op == OP_REGEX {
            Some(match env.dynamic(&row.match_exp) {
                Some((p, stored)) => {
                    dynamic = true;
                    row.match_exp = stored;
                    p
                }
                None => Pattern::Fixed(compile(&row.match_exp).map_err(|e| {
                    format!("failed to compile match expression {}: {e}", row.match_exp)
                })?),
            })
        } else {
            None
        };
        let repl = if row.repl_exp.is_empty() {
            None
        } else {
            Some(Repl::parse(&row.repl_exp, env.compile).map_err(|e| {
                format!(
                    "failed to compile replacing expression {}: {e}",
                    row.repl_exp
                )
            })?)
        };
        let mut groups = 0;
        let subst = if row.subst_exp.is_empty() {
            None
        } else {
            Some(match env.dynamic(&row.subst_exp) {
                Some((p, stored)) => {
                    dynamic = true;
                    row.subst_exp = stored;
                    p
                }
                None => {
                    let re = compile(&row.subst_exp).map_err(|e| {
                        format!("failed to compile subst expression {}: {e}", row.subst_exp)
                    })?;
                    groups = re.captures_len() - 1;
                    if groups > MAX_GROUPS {
                        return Err(format!(
                            "subst expression {} has too many sub-expressions",
                            row.subst_exp
                        ));
                    }
                    Pattern::Fixed(re)
                }
            })
        };
        if let Some(r) = &repl {
            if !dynamic && r.max_group > groups {
                return Err(format!(
                    "repl_exp {} refers to {} sub-expressions, but subst_exp {} has only {groups}",
                    row.repl_exp, r.max_group, row.subst_exp
                ));
            }
        }
        Ok(Rule {
            row,
            matcher,
            subst,
            repl,
        })
    }

    /// Whether the input matches this rule's match expression.
    fn matches(&self, input: &str, ctx: Option<&mut Ctx<'_>>) -> bool {
        match self.row.match_op {
            OP_EQUAL => self.row.match_exp == input,
            OP_FNMATCH => fnmatch(self.row.match_exp.as_bytes(), input.as_bytes()),
            _ => self
                .matcher
                .as_ref()
                .and_then(|p| p.with(ctx, |re| re.is_match(input.as_bytes())))
                .unwrap_or(false),
        }
    }

    /// The output for an input that matched (Kamailio's `rule_translate`):
    /// empty without a replacement, the replacement as written without a
    /// substitution expression or escapes, else the replacement built
    /// from the substitution's groups. `None` when the substitution does
    /// not match or the output is too long.
    fn output(&self, input: &str, mut ctx: Option<&mut Ctx<'_>>) -> Option<String> {
        let Some(repl) = &self.repl else {
            return Some(String::new());
        };
        let Some(subst) = &self.subst else {
            return Some(repl.raw.clone());
        };
        let max_group = repl.max_group;
        let found = subst.with(ctx.as_deref_mut(), |re| {
            if max_group > re.captures_len() - 1 {
                return Err(format!(
                    "illegal access to group {max_group} of subst expression {}",
                    self.row.subst_exp
                ));
            }
            let caps = re.captures(input.as_bytes()).ok_or_else(|| {
                format!(
                    "the string {input} matched the match_exp {} but not the subst_exp {}",
                    self.row.match_exp, self.row.subst_exp
                )
            })?;
            Ok((0..caps.len())
                .map(|i| caps.get(i).map(|m| (m.start(), m.end())))
                .collect::<Vec<_>>())
        })?;
        let groups = match found {
            Ok(g) => g,
            Err(e) => {
                lm_err!("dialplan: {e}");
                return None;
            }
        };
        if repl.escapes == 0 {
            return Some(repl.raw.clone());
        }
        let out = repl.build(input, &groups, ctx);
        if out.is_none() {
            lm_err!("dialplan: the output for {input} is longer than 126 characters");
        }
        out
    }
}

/// Rules of one match length, in priority order.
#[derive(Debug, Clone, Default)]
pub struct Index {
    /// `match_len` (0: any).
    pub len: i64,
    /// Rules, lowest `pr` first.
    pub rules: Vec<Rule>,
}

/// The loaded rules by dialplan id.
#[derive(Debug, Clone, Default)]
pub struct Table {
    ids: HashMap<i64, Vec<Index>>,
}

/// A translation: the output (empty when the rule has no replacement)
/// and the rule's attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Translation {
    /// The replacement built.
    pub output: String,
    /// The rule's `attrs`.
    pub attrs: String,
}

/// Why a translation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Miss {
    /// No rule for this dialplan id (`-2` from the functions).
    NoId,
    /// No rule matched, or the matching rule could not build its output.
    NoMatch,
}

impl Table {
    /// Adds a rule after those added before it (rows come in `pr` order):
    /// indexes of a fixed length in increasing length, the any-length
    /// index last.
    pub fn add(&mut self, rule: Rule) {
        let idx = self.ids.entry(rule.row.dpid).or_default();
        let len = rule.row.match_len;
        let mut at = idx.len();
        for (i, ix) in idx.iter_mut().enumerate() {
            if ix.len == len {
                ix.rules.push(rule);
                return;
            }
            if len != 0 && (ix.len == 0 || ix.len > len) {
                at = i;
                break;
            }
        }
        idx.insert(
            at,
            Index {
                len,
                rules: vec![rule],
            },
        );
    }

    /// The indexes of a dialplan id, in search order.
    pub fn indexes(&self, dpid: i64) -> Option<&[Index]> {
        self.ids.get(&dpid).map(Vec::as_slice)
    }

    /// Whether the id has rules.
    pub fn has(&self, dpid: i64) -> bool {
        self.ids.contains_key(&dpid)
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.ids
            .values()
            .flat_map(|v| v.iter())
            .map(|i| i.rules.len())
            .sum()
    }

    /// Whether no rule is loaded.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Finds the rule for `input` in dialplan `dpid`: the index of the
    /// input's length (else the any-length one) first, then, when none
    /// of its rules matched, the any-length index. With `want_output`
    /// the matching rule's output is built too.
    pub fn translate(
        &self,
        dpid: i64,
        input: &str,
        want_output: bool,
        mut ctx: Option<&mut Ctx<'_>>,
    ) -> Result<Translation, Miss> {
        let idx = self.ids.get(&dpid).ok_or(Miss::NoId)?;
        if input.is_empty() {
            lm_warn!("dialplan: invalid or empty input string to be matched");
            return Err(Miss::NoMatch);
        }
        let len = input.len() as i64;
        let Some(first) = idx.iter().position(|ix| ix.len == 0 || ix.len == len) else {
            return Err(Miss::NoMatch);
        };
        let mut order = vec![first];
        if idx[first].len != 0 {
            if let Some(any) = idx[first + 1..].iter().position(|ix| ix.len == 0) {
                order.push(first + 1 + any);
            }
        }
        let rule = order
            .into_iter()
            .flat_map(|i| idx[i].rules.iter())
            .find(|r| r.matches(input, ctx.as_deref_mut()))
            .ok_or(Miss::NoMatch)?;
        if rule.row.attrs.len() >= MAX_ATTRS {
            lm_err!("dialplan: out of memory for attributes");
            return Err(Miss::NoMatch);
        }
        let output = if want_output {
            rule.output(input, ctx).ok_or(Miss::NoMatch)?
        } else {
            String::new()
        };
        Ok(Translation {
            output,
            attrs: rule.row.attrs.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_pv(s: &str) -> Result<Arc<dyn Eval>, String> {
        Err(format!("no pseudo-variables: {s}"))
    }

    fn env() -> Env<'static> {
        Env {
            compile: &no_pv,
            dynamic: false,
        }
    }

    fn row(pr: i64, op: i64, m: &str, len: i64, s: &str, r: &str, a: &str) -> Row {
        Row {
            dpid: 1,
            pr,
            match_op: op,
            match_exp: m.into(),
            match_len: len,
            subst_exp: s.into(),
            repl_exp: r.into(),
            attrs: a.into(),
        }
    }

    fn table(rows: Vec<Row>) -> Table {
        let mut t = Table::default();
        for r in rows {
            t.add(Rule::build(r, &env()).unwrap());
        }
        t
    }

    fn out(t: &Table, input: &str) -> Result<(String, String), Miss> {
        t.translate(1, input, true, None)
            .map(|tr| (tr.output, tr.attrs))
    }

    #[test]
    fn regex_substitution_builds_from_groups() {
        let t = table(vec![row(
            1, OP_REGEX, "^0[1-9]", 0, "^0(.*)$", "+49\\1", "nat",
        )]);
        assert_eq!(out(&t, "0301234"), Ok(("+49301234".into(), "nat".into())));
        assert_eq!(out(&t, "00301234"), Err(Miss::NoMatch));
        assert_eq!(t.translate(2, "0301234", true, None), Err(Miss::NoId));
        assert_eq!(out(&t, ""), Err(Miss::NoMatch));
    }

    #[test]
    fn classes_outside_ascii_match_bytes_as_pcre() {
        // (A class of letters outside ASCII: the set of their bytes.)
        let t = table(vec![row(1, OP_REGEX, "^[äöü]+ber$", 0, "", "found", "")]);
        assert_eq!(out(&t, "über"), Ok(("found".into(), String::new())));
        assert_eq!(out(&t, "uber"), Err(Miss::NoMatch));
    }

    #[test]
    fn replacement_without_escapes_or_subst_is_copied() {
        let t = table(vec![
            row(1, OP_EQUAL, "911", 0, "", "sip:sos@psap", "e"),
            row(2, OP_FNMATCH, "8*", 0, "", "", "star"),
            row(3, OP_REGEX, "^7", 0, "^7(.)", "fixed", ""),
        ]);
        assert_eq!(out(&t, "911"), Ok(("sip:sos@psap".into(), "e".into())));
        assert_eq!(out(&t, "9111"), Err(Miss::NoMatch));
        assert_eq!(out(&t, "8123"), Ok((String::new(), "star".into())));
        assert_eq!(out(&t, "71"), Ok(("fixed".into(), String::new())));
    }

    #[test]
    fn length_index_goes_before_priority() {
        // The rule for length 4 is tried before the any-length rule of a
        // lower priority; other lengths fall back to the any-length one.
        let t = table(vec![
            row(1, OP_REGEX, ".", 0, "", "any", ""),
            row(5, OP_REGEX, ".", 4, "", "four", ""),
            row(6, OP_REGEX, ".", 2, "", "two", ""),
        ]);
        assert_eq!(out(&t, "1234").unwrap().0, "four");
        assert_eq!(out(&t, "12").unwrap().0, "two");
        assert_eq!(out(&t, "123").unwrap().0, "any");
        let idx = t.indexes(1).unwrap();
        assert_eq!(idx.iter().map(|i| i.len).collect::<Vec<_>>(), vec![2, 4, 0]);
        // No match in the length's index: the any-length index is next.
        let t = table(vec![
            row(1, OP_EQUAL, "x", 0, "", "any", ""),
            row(2, OP_EQUAL, "y", 1, "", "one", ""),
        ]);
        assert_eq!(out(&t, "x").unwrap().0, "any");
        assert_eq!(out(&t, "y").unwrap().0, "one");
    }

    #[test]
    fn bad_rows_are_refused() {
        let e = env();
        assert!(Rule::build(row(1, 3, "x", 0, "", "", ""), &e).is_err());
        assert!(Rule::build(row(1, OP_REGEX, "(", 0, "", "", ""), &e).is_err());
        assert!(Rule::build(row(1, OP_REGEX, "x", 0, "(x)", "\\2", ""), &e).is_err());
        assert!(Rule::build(row(1, OP_REGEX, "x", 0, "", "\\1", ""), &e).is_err());
        assert!(Rule::build(row(1, OP_EQUAL, "x", 0, "(", "", ""), &e).is_err());
    }

    #[test]
    fn subst_that_does_not_match_fails_the_translation() {
        let t = table(vec![row(1, OP_REGEX, "^1", 0, "^2(.*)", "\\1", "")]);
        assert_eq!(out(&t, "123"), Err(Miss::NoMatch));
    }

    #[test]
    fn final_dollar_is_kept_for_dynamic_expressions() {
        assert_eq!(keep_final_dollar("^1$"), "^1$$");
        assert_eq!(keep_final_dollar("^1$$"), "^1$$");
        assert!(has_lone_dollar("^$var(x)"));
        assert!(!has_lone_dollar("^12$"));
        assert!(!has_lone_dollar("^1$$2"));
    }
}
