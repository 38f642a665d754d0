//! Front end of Kamailio's configuration language (`kamailio.cfg`).
//!
//! * a streaming preprocessor: `#!define`/`#!def`, `#!trydef`, `#!redefine`,
//!   `#!undef`/`#!tryundef`, `#!ifdef`/`#!ifndef`/`#!else`/`#!endif` (nested),
//!   `#!subst`, `#!substdef(s)`, `#!defenv(s)`/`#!trydefenv(s)`,
//!   `include_file`/`#!include_file`/`import_file`, the `#!KAMAILIO`-style
//!   markers, and `!!` as an alternative to `#!`;
//! * a lexer for comments, strings, numbers, pseudo-variables and operators;
//! * a parser producing the [`Config`] AST with a [`Span`] on every node;
//! * [`pv`]: pseudo-variable ([`parse_pv`]) and format-string ([`parse_format`]) syntax;
//! * [`preprocess_to_string`] for `--cfg-print`.
//!
//! Errors are [`CfgError`]s rendered as `file:line:col: message`; the parser
//! recovers at statement and block boundaries, so all mistakes of a file are
//! reported at once.
//!
//! Preprocessing and parsing happen in one streaming pass: directives take
//! effect exactly where they appear, and `loadmodule "x.so"` defines `MOD_x`
//! for the rest of the input, as in Kamailio.
//!
//! Semantics worth knowing:
//! * defines replace identifier tokens only (never text inside strings or
//!   pseudo-variables); a define's value is tokenized where it is used, and
//!   expanded tokens carry the span of the identifier they replaced;
//! * `#!define` of a name that is already defined is an error (as in
//!   Kamailio); `#!trydef` keeps the existing value, so `-A` wins;
//! * `#!subst` applies to string literals only;
//! * `#!defenv` of an unset variable is an error, `#!trydefenv` skips it;
//! * relative include paths are resolved against the including file's folder,
//!   then [`ParseOptions::include_dirs`]; nesting is limited to
//!   [`MAX_INCLUDE_DEPTH`].
//!
//! Not supported: `#!ifexp`, `#!defexp` and `#!defexps` (reported as errors).

#![forbid(unsafe_code)]

pub mod ast;
mod error;
mod lexer;
mod parser;
mod preprocess;
pub mod pv;
mod render;
mod span;
mod subst;
mod token;

use std::path::{Path, PathBuf};

pub use ast::*;
pub use error::CfgError;
pub use preprocess::MAX_INCLUDE_DEPTH;
pub use pv::{parse_format, parse_pv, FormatPart, PvError, PvIndex, PvRef, PvSpec, Transform};
pub use span::{FileId, Span};

use parser::Parser;
use preprocess::Preprocessor;

/// Options for parsing and preprocessing.
#[derive(Debug, Clone, Default)]
pub struct ParseOptions {
    /// Initial defines, in order: the built-in ones supplied by the caller
    /// (`KAMAILIO_5`, `OS_linux`, ...) and those from `-A NAME[=VALUE]`.
    /// `#!trydef` does not override them; `#!define` of one of them is an error.
    pub defines: Vec<(String, Option<String>)>,
    /// Extra directories searched for relative `include_file`/`import_file`
    /// paths, after the directory of the including file.
    pub include_dirs: Vec<PathBuf>,
    /// `--subst` expressions (`/regex/replacement/flags`), applied to string literals.
    pub substs: Vec<String>,
    /// `--substdef` expressions: like `substs`, and also define the pattern as an ID.
    pub substdefs: Vec<String>,
}

impl ParseOptions {
    /// Add a define, like `-A NAME[=VALUE]`.
    pub fn define(mut self, name: &str, value: Option<&str>) -> Self {
        self.defines
            .push((name.to_string(), value.map(str::to_string)));
        self
    }

    /// Add defines from `-A` arguments of the form `NAME` or `NAME=VALUE`.
    pub fn define_arg(self, arg: &str) -> Self {
        match arg.split_once('=') {
            Some((n, v)) => self.define(n, Some(v)),
            None => self.define(arg, None),
        }
    }
}

fn read_file(path: &Path) -> Result<String, Vec<CfgError>> {
    std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .map_err(|e| {
            let msg = e.to_string();
            let msg = match msg.find(" (os error") {
                Some(p) => msg[..p].to_string(),
                None => msg,
            };
            vec![CfgError {
                file: path.to_path_buf(),
                line: 0,
                col: 0,
                message: format!("cannot read config file: {msg}"),
            }]
        })
}

/// Parse a configuration file (includes are resolved relative to its folder).
pub fn parse_file(path: &Path, opts: &ParseOptions) -> Result<Config, Vec<CfgError>> {
    let text = read_file(path)?;
    parse_source(path.to_path_buf(), &text, opts)
}

/// Parse configuration text; `name` is used as the file name in spans and errors
/// (and its folder as the base for relative includes).
pub fn parse_str(name: &str, text: &str, opts: &ParseOptions) -> Result<Config, Vec<CfgError>> {
    parse_source(PathBuf::from(name), text, opts)
}

fn parse_source(path: PathBuf, text: &str, opts: &ParseOptions) -> Result<Config, Vec<CfgError>> {
    let mut pp = Preprocessor::new(opts);
    pp.push_source(path, text);
    let mut parser = Parser::new(pp);
    let items = parser.parse_config();
    let (files, defines, errors) = parser.pp.into_parts();
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Config {
        files,
        items,
        defines,
    })
}

/// Preprocess a file and render the result as text (for `--cfg-print`).
pub fn preprocess_to_string(path: &Path, opts: &ParseOptions) -> Result<String, Vec<CfgError>> {
    let text = read_file(path)?;
    preprocess_str_to_string(&path.to_string_lossy(), &text, opts)
}

/// Preprocess configuration text and render the result (see [`preprocess_to_string`]).
///
/// Directives are executed, defines replaced and `#!subst` applied; comments are
/// dropped and each source line's tokens are printed on one line.
pub fn preprocess_str_to_string(
    name: &str,
    text: &str,
    opts: &ParseOptions,
) -> Result<String, Vec<CfgError>> {
    let mut pp = Preprocessor::new(opts);
    pp.push_source(PathBuf::from(name), text);
    let out = render::render(&mut pp);
    let errors = pp.take_errors();
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}
