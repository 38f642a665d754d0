//! A rule's replacement expression (`repl_exp`) as Kamailio's `parse_repl`
//! reads it: `\0`–`\9` (groups of the substitution expression), `\u` (the
//! Request-URI), `\\`, `\n`, `\r`, `\t`, `\$` and any other `\c` (the
//! character), and pseudo-variables; everything else is copied.

use sr_sdk::fixup::Eval;
use sr_sdk::prelude::*;
use std::sync::Arc;

/// The longest output Kamailio builds (`MAX_PHONE_NB_DIGITS`).
pub const MAX_OUTPUT: usize = 127;

/// Compiles text with pseudo-variables (the core's `compile_format`).
pub type CompileFn<'a> = &'a dyn Fn(&str) -> Result<Arc<dyn Eval>, String>;

/// One part of a replacement.
#[derive(Debug, Clone)]
pub enum Piece {
    /// Copied as it is.
    Text(String),
    /// An escaped character (`\\`, `\n`, `\$`, ...).
    Char(char),
    /// `\N`: group N of the substitution expression's match.
    Group(usize),
    /// `\u`: the Request-URI as it is now.
    Uri,
    /// Text with pseudo-variables, evaluated for each message.
    Pv(Arc<dyn Eval>),
}

/// A parsed replacement.
#[derive(Debug, Clone)]
pub struct Repl {
    /// The expression as written.
    pub raw: String,
    /// Its parts, in order.
    pub pieces: Vec<Piece>,
    /// Escapes and pseudo-variables in it: with none the expression is
    /// copied as written.
    pub escapes: usize,
    /// The highest group it refers to.
    pub max_group: usize,
}

impl Repl {
    /// Parses `raw`; `compile` compiles text holding pseudo-variables.
    pub fn parse(raw: &str, compile: CompileFn<'_>) -> Result<Repl, String> {
        let mut pieces = Vec::new();
        let mut text = String::new();
        let (mut escapes, mut max_group) = (0, 0);
        let flush = |text: &mut String, pieces: &mut Vec<Piece>, escapes: &mut usize| {
            if text.is_empty() {
                return Ok(());
            }
            let t = std::mem::take(text);
            if t.contains('$') {
                *escapes += 1;
                let e = compile(&t).map_err(|e| format!("bad specifier in '{raw}': {e}"))?;
                pieces.push(Piece::Pv(e));
            } else {
                pieces.push(Piece::Text(t));
            }
            Ok::<(), String>(())
        };
        let mut it = raw.chars();
        while let Some(c) = it.next() {
            if c != '\\' {
                text.push(c);
                continue;
            }
            let Some(e) = it.next() else {
                // A trailing backslash stays in the copied text.
                text.push('\\');
                break;
            };
            flush(&mut text, &mut pieces, &mut escapes)?;
            escapes += 1;
            pieces.push(match e {
                '0'..='9' => {
                    let n = e as usize - '0' as usize;
                    max_group = max_group.max(n);
                    Piece::Group(n)
                }
                'u' => Piece::Uri,
                'n' => Piece::Char('\n'),
                'r' => Piece::Char('\r'),
                't' => Piece::Char('\t'),
                other => Piece::Char(other),
            });
        }
        flush(&mut text, &mut pieces, &mut escapes)?;
        Ok(Repl {
            raw: raw.to_string(),
            pieces,
            escapes,
            max_group,
        })
    }

    /// Builds the output from the substitution's match of `input` (group
    /// ranges, `None` for a group that took no part). Without a message
    /// (`dialplan.translate`) `\u` and pseudo-variables give nothing.
    /// `None` when the output would pass [`MAX_OUTPUT`].
    pub fn build(
        &self,
        input: &str,
        groups: &[Option<(usize, usize)>],
        mut ctx: Option<&mut Ctx<'_>>,
    ) -> Option<String> {
        let mut out = String::new();
        let last = self.pieces.len().saturating_sub(1);
        for (i, p) in self.pieces.iter().enumerate() {
            let add: std::borrow::Cow<'_, str> = match p {
                Piece::Text(t) => t.as_str().into(),
                Piece::Char(c) => c.to_string().into(),
                Piece::Group(n) => groups
                    .get(*n)
                    .copied()
                    .flatten()
                    .and_then(|(s, e)| input.get(s..e))
                    .unwrap_or("")
                    .into(),
                Piece::Uri => match ctx.as_deref_mut() {
                    Some(c) => c.msg.ruri().to_string().into(),
                    None => "".into(),
                },
                Piece::Pv(e) => match ctx.as_deref_mut() {
                    Some(c) => e.eval(c).as_str().into_owned().into(),
                    None => "".into(),
                },
            };
            // Kamailio checks every part but text after the last escape.
            let checked = !(i == last && matches!(p, Piece::Text(_)));
            if checked && out.len() + add.len() >= MAX_OUTPUT {
                return None;
            }
            out.push_str(&add);
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_pv(s: &str) -> Result<Arc<dyn Eval>, String> {
        Err(format!("no pseudo-variables here: {s}"))
    }

    #[test]
    fn escapes_and_groups() {
        let r = Repl::parse("+49\\1x\\\\\\n\\q", &no_pv).unwrap();
        assert_eq!(r.escapes, 4);
        assert_eq!(r.max_group, 1);
        let out = r.build("0301234", &[Some((0, 7)), Some((1, 7))], None);
        assert_eq!(out.as_deref(), Some("+49301234x\\\nq"));
    }

    #[test]
    fn plain_text_has_no_escapes() {
        let r = Repl::parse("sip:voicemail@vm", &no_pv).unwrap();
        assert_eq!(r.escapes, 0);
        assert!(r.pieces.iter().all(|p| matches!(p, Piece::Text(_))));
    }

    #[test]
    fn unset_group_is_empty_and_overflow_fails() {
        let r = Repl::parse("a\\2b", &no_pv).unwrap();
        assert_eq!(
            r.build("xy", &[Some((0, 2)), None, None], None).as_deref(),
            Some("ab")
        );
        let long = "9".repeat(130);
        let r = Repl::parse("\\0", &no_pv).unwrap();
        assert_eq!(r.build(&long, &[Some((0, 130))], None), None);
        let ok = "9".repeat(126);
        assert_eq!(r.build(&ok, &[Some((0, 126))], None), Some(ok.clone()));
    }

    #[test]
    fn bad_pseudo_variable_is_an_error() {
        assert!(Repl::parse("x$foo(", &no_pv).is_err());
        assert!(Repl::parse("\\$ok", &no_pv).is_ok());
    }
}
