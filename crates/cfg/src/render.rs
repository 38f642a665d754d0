//! Rendering of the preprocessed token stream as text (`--cfg-print`).

use crate::preprocess::{escape_str, Preprocessor};
use crate::token::Tk;

/// Pull every token from `pp` and print it, one source line per output line.
pub(crate) fn render(pp: &mut Preprocessor) -> String {
    let mut out = String::new();
    let mut prev: Option<(u32, u32)> = None;
    loop {
        let t = pp.next();
        if t.kind == Tk::Eof {
            break;
        }
        let here = (t.span.file.0, t.span.line);
        match prev {
            Some(p) if p == here && t.space_before => out.push(' '),
            Some(p) if p == here => {}
            Some(_) => out.push('\n'),
            None => {}
        }
        prev = Some(here);
        match &t.kind {
            Tk::Str(s) => {
                out.push('"');
                out.push_str(&escape_str(s));
                out.push('"');
            }
            _ => out.push_str(&t.text),
        }
    }
    if !out.is_empty() {
        out.push('\n');
    }
    out
}
