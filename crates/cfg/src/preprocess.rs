//! Streaming preprocessor: `#!define`, `#!ifdef`, `#!subst`, `include_file`, ...
//!
//! The preprocessor sits between the per-file [`Lexer`]s and the parser and
//! hands out one token at a time, so directives take effect exactly where
//! they appear. It also watches for `loadmodule "name"` and defines
//! `MOD_<name>` right after the module name token, as Kamailio does, so a
//! later `#!ifdef MOD_name` sees it.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use crate::error::CfgError;
use crate::lexer::{tokenize, Lexer};
use crate::span::{FileId, Span};
use crate::subst::Subst;
use crate::token::{Tk, Token};
use crate::ParseOptions;

/// Maximum nesting of `include_file` / `import_file` (Kamailio uses 10).
pub const MAX_INCLUDE_DEPTH: usize = 10;
const MAX_EXPANSION_DEPTH: usize = 16;
const MAX_EXPANSION_TOKENS: usize = 10_000;

#[derive(Debug, Clone)]
struct Define {
    value: Option<String>,
    span: Option<Span>,
}

#[derive(Debug)]
struct Cond {
    parent_active: bool,
    taking: bool,
    seen_else: bool,
    span: Span,
    what: String,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum DefMode {
    Define,
    Try,
    Redefine,
}

pub(crate) struct Preprocessor {
    files: Vec<PathBuf>,
    stack: Vec<Lexer>,
    defines: HashMap<String, Define>,
    substs: Vec<Subst>,
    conds: Vec<Cond>,
    pending: VecDeque<Token>,
    errors: Vec<CfgError>,
    module_state: u8,
    include_dirs: Vec<PathBuf>,
    eof: Option<Token>,
}

fn is_ident(s: &str) -> bool {
    let mut b = s.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// Split `NAME rest` at the first whitespace.
fn split_name(rest: &str) -> (&str, &str) {
    let t = rest.trim_start();
    let end = t.find(|c: char| c.is_whitespace()).unwrap_or(t.len());
    (&t[..end], t[end..].trim())
}

/// Remove a trailing `# ...` or `// ...` comment from a directive argument.
fn strip_comment(s: &str) -> &str {
    let mut cut = s.len();
    if let Some(p) = s.find('#') {
        cut = cut.min(p);
    }
    if let Some(p) = s.find("//") {
        cut = cut.min(p);
    }
    s[..cut].trim()
}

fn io_message(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(p) => s[..p].to_string(),
        None => s,
    }
}

impl Preprocessor {
    pub fn new(opts: &ParseOptions) -> Self {
        let mut pp = Preprocessor {
            files: Vec::new(),
            stack: Vec::new(),
            defines: HashMap::new(),
            substs: Vec::new(),
            conds: Vec::new(),
            pending: VecDeque::new(),
            errors: Vec::new(),
            module_state: 0,
            include_dirs: opts.include_dirs.clone(),
            eof: None,
        };
        for (name, value) in &opts.defines {
            pp.defines.insert(
                name.clone(),
                Define {
                    value: value.clone(),
                    span: None,
                },
            );
        }
        for (s, def) in opts
            .substs
            .iter()
            .map(|s| (s, false))
            .chain(opts.substdefs.iter().map(|s| (s, true)))
        {
            match Subst::parse(s) {
                Ok(sub) => {
                    if def {
                        pp.defines.insert(
                            sub.pattern.clone(),
                            Define {
                                value: Some(sub.replacement.clone()),
                                span: None,
                            },
                        );
                    }
                    pp.substs.push(sub);
                }
                Err(e) => pp.errors.push(CfgError {
                    file: PathBuf::from("<command line>"),
                    line: 1,
                    col: 1,
                    message: e,
                }),
            }
        }
        pp
    }

    /// Register a file and start reading it.
    pub fn push_source(&mut self, path: PathBuf, text: &str) {
        let id = FileId(self.files.len() as u32);
        self.files.push(path);
        self.stack.push(Lexer::new(id, Rc::from(text)));
    }

    pub fn into_parts(
        self,
    ) -> (
        Vec<PathBuf>,
        BTreeMap<String, Option<String>>,
        Vec<CfgError>,
    ) {
        let defs = self
            .defines
            .into_iter()
            .map(|(k, v)| (k, v.value))
            .collect();
        (self.files, defs, self.errors)
    }

    pub fn error_count(&self) -> usize {
        self.errors.len()
    }

    pub fn take_errors(&mut self) -> Vec<CfgError> {
        std::mem::take(&mut self.errors)
    }

    /// Build a [`CfgError`] for a span.
    pub fn make_error(&self, span: Span, message: impl Into<String>) -> CfgError {
        let file = self
            .files
            .get(span.file.0 as usize)
            .cloned()
            .unwrap_or_default();
        CfgError {
            file,
            line: span.line,
            col: span.col,
            message: message.into(),
        }
    }

    pub fn error(&mut self, span: Span, message: impl Into<String>) {
        let e = self.make_error(span, message);
        self.errors.push(e);
    }

    fn is_defined(&self, name: &str) -> bool {
        self.defines.contains_key(name)
    }

    fn active(&self) -> bool {
        self.conds
            .last()
            .is_none_or(|c| c.parent_active && c.taking)
    }

    /// Next token after preprocessing.
    pub fn next(&mut self) -> Token {
        loop {
            if let Some(t) = self.pending.pop_front() {
                return self.post(t);
            }
            if let Some(eof) = &self.eof {
                return eof.clone();
            }
            let active = self.active();
            let Some(lx) = self.stack.last_mut() else {
                let t = Token {
                    kind: Tk::Eof,
                    text: String::new(),
                    span: Span::default(),
                    space_before: true,
                    first_on_line: true,
                };
                self.eof = Some(t.clone());
                return t;
            };
            let res = if active {
                lx.next_token()
            } else {
                Ok(lx.skip_to_conditional())
            };
            let tok = match res {
                Ok(t) => t,
                Err((sp, msg)) => {
                    self.error(sp, msg);
                    return Token {
                        kind: Tk::Error,
                        text: String::new(),
                        span: sp,
                        space_before: true,
                        first_on_line: false,
                    };
                }
            };
            match &tok.kind {
                Tk::Eof => {
                    self.stack.pop();
                    if self.stack.is_empty() {
                        self.finish(&tok);
                        self.eof = Some(tok.clone());
                        return tok;
                    }
                }
                Tk::Directive { name, rest } => {
                    let (name, rest) = (name.clone(), rest.clone());
                    self.directive(&name, &rest, tok.span);
                }
                Tk::Ident if tok.text == "include_file" || tok.text == "import_file" => {
                    let required = tok.text == "include_file";
                    let next = self.stack.last_mut().map(|l| l.next_token());
                    match next {
                        Some(Ok(Token {
                            kind: Tk::Str(path),
                            ..
                        })) => self.include(&path, required, &tok.text, tok.span),
                        Some(Ok(other)) => {
                            let msg = format!(
                                "{}: expected a quoted file name, found {}",
                                tok.text,
                                other.describe()
                            );
                            self.error(other.span, msg);
                        }
                        Some(Err((sp, msg))) => self.error(sp, msg),
                        None => {}
                    }
                }
                Tk::Ident if self.has_value(&tok.text) => {
                    let mut out = Vec::new();
                    let mut chain = Vec::new();
                    let mut budget = MAX_EXPANSION_TOKENS;
                    self.expand(tok, 0, &mut out, &mut chain, &mut budget);
                    self.pending.extend(out);
                }
                _ => return self.post(tok),
            }
        }
    }

    fn has_value(&self, name: &str) -> bool {
        matches!(self.defines.get(name), Some(Define { value: Some(_), .. }))
    }

    fn expand(
        &mut self,
        tok: Token,
        depth: usize,
        out: &mut Vec<Token>,
        chain: &mut Vec<String>,
        budget: &mut usize,
    ) {
        let value = match (&tok.kind, self.defines.get(&tok.text)) {
            (Tk::Ident, Some(Define { value: Some(v), .. })) if !chain.contains(&tok.text) => {
                v.clone()
            }
            _ => {
                if *budget == 0 {
                    return;
                }
                *budget -= 1;
                if *budget == 0 {
                    self.error(tok.span, "define expansion is too large");
                }
                out.push(tok);
                return;
            }
        };
        if depth >= MAX_EXPANSION_DEPTH {
            self.error(
                tok.span,
                format!("define '{}' expands too deeply", tok.text),
            );
            return;
        }
        let toks = match tokenize(tok.span.file, &value) {
            Ok(t) => t,
            Err((_, msg)) => {
                self.error(
                    tok.span,
                    format!("in expansion of define '{}': {msg}", tok.text),
                );
                return;
            }
        };
        chain.push(tok.text.clone());
        for (i, mut t) in toks.into_iter().enumerate() {
            t.span = tok.span;
            if i == 0 {
                t.space_before = tok.space_before;
                t.first_on_line = tok.first_on_line;
            } else {
                t.first_on_line = false;
            }
            if matches!(t.kind, Tk::Directive { .. }) {
                self.error(
                    tok.span,
                    format!("define '{}' expands to a preprocessor directive", tok.text),
                );
                continue;
            }
            self.expand(t, depth + 1, out, chain, budget);
        }
        chain.pop();
    }

    /// Apply `#!subst` to strings and track `loadmodule` for `MOD_<name>` defines.
    fn post(&mut self, mut tok: Token) -> Token {
        if let Tk::Str(s) = &mut tok.kind {
            for sub in &self.substs {
                if let Some(n) = sub.apply(s) {
                    *s = n;
                }
            }
        }
        if tok.is_ident("loadmodule") || tok.is_ident("loadmodulex") {
            self.module_state = 1;
        } else if self.module_state == 1 && tok.is_op("(") {
            self.module_state = 2;
        } else if self.module_state > 0 {
            if let Tk::Str(s) = &tok.kind {
                let base = s.rsplit('/').next().unwrap_or(s);
                let base = base.strip_suffix(".so").unwrap_or(base);
                let name = format!("MOD_{base}");
                self.defines.entry(name).or_insert(Define {
                    value: None,
                    span: Some(tok.span),
                });
            }
            self.module_state = 0;
        }
        tok
    }

    fn finish(&mut self, _eof: &Token) {
        let open: Vec<(Span, String)> = self.conds.drain(..).map(|c| (c.span, c.what)).collect();
        for (span, what) in open {
            self.error(span, format!("missing #!endif for '{what}'"));
        }
    }

    /// Parse the single identifier argument of `#!ifdef` and friends.
    fn name_arg(&mut self, dname: &str, rest: &str, span: Span) -> Option<String> {
        let arg = strip_comment(rest);
        if arg.is_empty() {
            self.error(span, format!("#!{dname}: missing name"));
            return None;
        }
        if !is_ident(arg) {
            self.error(span, format!("#!{dname}: invalid name '{arg}'"));
            return None;
        }
        Some(arg.to_string())
    }

    /// Parse a quoted-string argument (adjacent strings are concatenated).
    fn string_arg(&mut self, dname: &str, rest: &str, span: Span) -> Option<String> {
        let toks = match tokenize(span.file, rest) {
            Ok(t) => t,
            Err((_, msg)) => {
                self.error(span, format!("#!{dname}: {msg}"));
                return None;
            }
        };
        let mut out = String::new();
        for t in &toks {
            match &t.kind {
                Tk::Str(s) => out.push_str(s),
                _ => {
                    self.error(
                        span,
                        format!(
                            "#!{dname}: expected a quoted string, found {}",
                            t.describe()
                        ),
                    );
                    return None;
                }
            }
        }
        if toks.is_empty() {
            self.error(span, format!("#!{dname}: expected a quoted string"));
            return None;
        }
        Some(out)
    }

    fn directive(&mut self, name: &str, rest: &str, span: Span) {
        match name {
            "ifdef" | "ifndef" => {
                let parent_active = self.active();
                let id = self.name_arg(name, rest, span);
                let def = id.as_deref().is_some_and(|i| self.is_defined(i));
                self.conds.push(Cond {
                    parent_active,
                    taking: if name == "ifdef" { def } else { !def },
                    seen_else: false,
                    span,
                    what: format!("#!{name} {}", id.unwrap_or_default()),
                });
            }
            "ifexp" => {
                let parent_active = self.active();
                if parent_active {
                    self.error(span, "#!ifexp is not supported by this implementation");
                }
                self.conds.push(Cond {
                    parent_active,
                    taking: false,
                    seen_else: false,
                    span,
                    what: "#!ifexp".to_string(),
                });
            }
            "else" | "endif" => {
                if !strip_comment(rest).is_empty() {
                    self.error(span, format!("#!{name}: unexpected text '{}'", rest.trim()));
                }
                if name == "endif" {
                    if self.conds.pop().is_none() {
                        self.error(span, "#!endif without #!ifdef");
                    }
                    return;
                }
                match self.conds.last_mut() {
                    None => self.error(span, "#!else without #!ifdef"),
                    Some(c) if c.seen_else => {
                        let what = c.what.clone();
                        self.error(span, format!("duplicate #!else for '{what}'"));
                    }
                    Some(c) => {
                        c.seen_else = true;
                        c.taking = !c.taking;
                    }
                }
            }
            "define" | "def" => self.define(name, rest, span, DefMode::Define),
            "trydef" => self.define(name, rest, span, DefMode::Try),
            "redefine" | "redef" => self.define(name, rest, span, DefMode::Redefine),
            "undef" | "tryundef" => {
                if let Some(id) = self.name_arg(name, rest, span) {
                    self.defines.remove(&id);
                }
            }
            "subst" | "substdef" | "substdefs" => {
                let Some(expr) = self.string_arg(name, rest, span) else {
                    return;
                };
                match Subst::parse(&expr) {
                    Ok(sub) => {
                        if name != "subst" {
                            let value = if name == "substdefs" {
                                format!("\"{}\"", escape_str(&sub.replacement))
                            } else {
                                sub.replacement.clone()
                            };
                            let p = sub.pattern.clone();
                            self.set_define(name, &p, Some(value), span, DefMode::Define);
                        }
                        self.substs.push(sub);
                    }
                    Err(e) => self.error(span, format!("#!{name}: {e}")),
                }
            }
            "defenv" | "defenvs" | "trydefenv" | "trydefenvs" => {
                let arg = strip_comment(rest);
                let (dname, var) = match arg.split_once('=') {
                    Some((d, v)) => (d.trim(), v.trim()),
                    None => (arg, arg),
                };
                if !is_ident(dname) || var.is_empty() {
                    self.error(
                        span,
                        format!("#!{name}: expected NAME=ENVVAR or ENVVAR, found '{arg}'"),
                    );
                    return;
                }
                let is_try = name.starts_with("try");
                match std::env::var(var) {
                    Ok(v) => {
                        let value = if name.ends_with('s') {
                            format!("\"{}\"", escape_str(&v))
                        } else {
                            v
                        };
                        let mode = if is_try {
                            DefMode::Try
                        } else {
                            DefMode::Define
                        };
                        self.set_define(name, dname, Some(value), span, mode);
                    }
                    Err(_) if is_try => {}
                    Err(_) => self.error(
                        span,
                        format!("#!{name}: environment variable '{var}' is not set"),
                    ),
                }
            }
            "defexp" | "defexps" => self.error(
                span,
                format!("#!{name} is not supported by this implementation"),
            ),
            "include_file" | "import_file" => {
                if let Some(path) = self.string_arg(name, rest, span) {
                    self.include(&path, name == "include_file", name, span);
                }
            }
            other => self.error(span, format!("unknown preprocessor directive '#!{other}'")),
        }
    }

    fn define(&mut self, dname: &str, rest: &str, span: Span, mode: DefMode) {
        let (id, value) = split_name(rest);
        if id.is_empty() {
            self.error(span, format!("#!{dname}: missing name"));
            return;
        }
        if !is_ident(id) {
            self.error(span, format!("#!{dname}: invalid name '{id}'"));
            return;
        }
        let value = if value.is_empty()
            || (value.starts_with('#') && !value.starts_with("#!"))
            || value.starts_with("//")
        {
            None
        } else {
            Some(value.to_string())
        };
        let id = id.to_string();
        self.set_define(dname, &id, value, span, mode);
    }

    fn set_define(
        &mut self,
        dname: &str,
        id: &str,
        value: Option<String>,
        span: Span,
        mode: DefMode,
    ) {
        if let Some(old) = self.defines.get(id) {
            match mode {
                DefMode::Try => return,
                DefMode::Redefine => {}
                DefMode::Define => {
                    let prev = match old.span {
                        Some(s) => {
                            let e = self.make_error(s, "");
                            format!(" (previous definition at {}:{})", e.file.display(), e.line)
                        }
                        None => " (on the command line or built in)".to_string(),
                    };
                    self.error(
                        span,
                        format!("#!{dname}: '{id}' is already defined{prev}; use #!redefine or #!trydef"),
                    );
                    return;
                }
            }
        }
        self.defines.insert(
            id.to_string(),
            Define {
                value,
                span: Some(span),
            },
        );
    }

    fn include(&mut self, path: &str, required: bool, kw: &str, span: Span) {
        if self.stack.len() > MAX_INCLUDE_DEPTH {
            self.error(
                span,
                format!(
                    "{kw}: too many nested includes (limit {MAX_INCLUDE_DEPTH}) including '{path}'"
                ),
            );
            return;
        }
        let p = Path::new(path);
        let mut candidates = Vec::new();
        if p.is_absolute() {
            candidates.push(p.to_path_buf());
        } else {
            let cur = self
                .files
                .get(span.file.0 as usize)
                .and_then(|f| f.parent())
                .map(Path::to_path_buf)
                .unwrap_or_default();
            candidates.push(cur.join(p));
            for d in &self.include_dirs {
                candidates.push(d.join(p));
            }
        }
        let found = candidates.iter().find(|c| c.exists()).cloned();
        let Some(file) = found else {
            if required {
                self.error(
                    span,
                    format!("{kw}: cannot read '{path}': No such file or directory"),
                );
            }
            return;
        };
        match std::fs::read(&file) {
            Ok(bytes) => {
                let text = String::from_utf8_lossy(&bytes).into_owned();
                self.push_source(file, &text);
            }
            Err(e) => {
                let msg = format!("{kw}: cannot read '{path}': {}", io_message(&e));
                self.error(span, msg);
            }
        }
    }
}

/// Escape a value so that it can be put between double quotes.
pub(crate) fn escape_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            _ => out.push(c),
        }
    }
    out
}
