//! The `htable` parameter's table definitions and the `table=>key` names
//! of `$sht(...)` and the functions, with pseudo-variables in the key.

use crate::table::Val;
use sr_sdk::prelude::*;
use std::time::Duration;

/// A table as `modparam("htable", "htable", "...")` defines it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Def {
    /// Name.
    pub name: String,
    /// `autoexpire` in seconds (0: never).
    pub autoexpire: u64,
    /// `initval`.
    pub initval: Option<Val>,
    /// `updateexpire` (1).
    pub updateexpire: bool,
    /// `size` (the number of slots is 2^size in Kamailio; reported only).
    pub size: u32,
    /// `dbtable`: the database table it is loaded from.
    pub dbtable: Option<String>,
    /// `dbmode` 1: written back to `dbtable` at shutdown.
    pub dbmode: i64,
    /// `cols`: the columns loaded (the first is the key, the others are
    /// joined by commas into a text value).
    pub cols: Vec<String>,
    /// `dmqreplicate`: changes are sent to the other DMQ nodes.
    pub dmqreplicate: bool,
}

/// Parses `name=>size=8;autoexpire=300;initval=0;dbtable=htable;...`.
/// `colnull`, `coldelim` and `no_clone` are accepted.
pub fn parse_def(s: &str) -> Result<Def, String> {
    let (name, opts) = s
        .split_once("=>")
        .ok_or_else(|| format!("htable definition '{s}': expected name=>attributes"))?;
    let name = name.trim();
    if name.is_empty() {
        return Err(format!("htable definition '{s}': empty name"));
    }
    let mut d = Def {
        name: name.to_string(),
        autoexpire: 0,
        initval: None,
        updateexpire: true,
        size: 4,
        dbtable: None,
        dbmode: 0,
        cols: Vec::new(),
        dmqreplicate: false,
    };
    for attr in opts.split(';').map(str::trim).filter(|a| !a.is_empty()) {
        let (k, v) = attr.split_once('=').unwrap_or((attr, ""));
        let (k, v) = (k.trim(), v.trim());
        let num = || {
            v.parse::<i64>()
                .map_err(|_| format!("htable {name}: {k}={v} is not a number"))
        };
        match k {
            "autoexpire" => d.autoexpire = u64::try_from(num()?).unwrap_or(0),
            "initval" => d.initval = Some(Val::Int(num()?)),
            "updateexpire" => d.updateexpire = num()? != 0,
            "dbtable" => d.dbtable = Some(v.to_string()).filter(|t| !t.is_empty()),
            "dbmode" => d.dbmode = num()?,
            "size" => d.size = u32::try_from(num()?).unwrap_or(4),
            "cols" => {
                let list = v.trim_matches(['\'', '"']);
                d.cols = list.split(',').map(|c| c.trim().to_string()).collect();
                if d.cols.len() < 2 || d.cols.len() > 8 || d.cols.iter().any(String::is_empty) {
                    return Err(format!("htable {name}: cols needs 2 to 8 column names"));
                }
            }
            "dmqreplicate" => d.dmqreplicate = num()? != 0,
            "colnull" | "coldelim" | "no_clone" => {}
            other => return Err(format!("htable {name}: unknown attribute '{other}'")),
        }
    }
    Ok(d)
}

/// Splits `table=>key` (a pseudo-variable's or a function's name).
pub fn split_name(s: &str) -> Result<(&str, &str), String> {
    s.split_once("=>")
        .map(|(t, k)| (t.trim(), k))
        .ok_or_else(|| format!("'{s}': expected table=>key"))
}

/// The text of `s` with each pseudo-variable in it (`$si`, `$var(x)`,
/// `$hdr(To)[0]`, ...) replaced by its value (empty when it has none).
pub fn expand(ctx: &mut Ctx<'_>, s: &str) -> String {
    if !s.contains('$') {
        return s.to_string();
    }
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len() + 16);
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'$' || i + 1 >= b.len() {
            // Up to the next `$` (a byte search: `$` is never inside a
            // multi-byte character, so the cut is a character boundary).
            let next = b[i + 1..]
                .iter()
                .position(|&c| c == b'$')
                .map_or(b.len(), |k| i + 1 + k);
            out.push_str(&s[i..next]);
            i = next;
            continue;
        }
        let end = pv_end(b, i);
        let name = &s[i..end];
        if end == i + 1 {
            out.push('$');
        } else if let Some(v) = ctx.core.pv_get(ctx.msg, name) {
            out.push_str(&v.as_str());
        }
        i = end;
    }
    out
}

/// Where the pseudo-variable starting at `b[start]` (`$`) ends: its class
/// name, a `(...)` with nesting, an `[...]` index.
fn pv_end(b: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
        i += 1;
    }
    for (open, close) in [(b'(', b')'), (b'[', b']')] {
        if i < b.len() && b[i] == open {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == open {
                    depth += 1;
                } else if b[i] == close {
                    depth -= 1;
                    if depth == 0 {
                        i += 1;
                        break;
                    }
                }
                i += 1;
            }
        }
    }
    i
}

/// `autoexpire` as a duration (`None`: never).
pub fn lifetime(secs: u64) -> Option<Duration> {
    (secs > 0).then(|| Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definitions_as_the_stock_config_writes_them() {
        let d = parse_def("ipban=>size=8;autoexpire=300;").unwrap();
        assert_eq!(d.name, "ipban");
        assert_eq!(d.autoexpire, 300);
        let d = parse_def("a=>initval=0;updateexpire=0").unwrap();
        assert_eq!(d.initval, Some(Val::Int(0)));
        assert!(!d.updateexpire);
        assert!(parse_def("noarrow").is_err());
        assert!(parse_def("x=>autoexpire=soon").is_err());
        let d = parse_def("x=>dbtable=htable;dbmode=1;cols='k,a,b'").unwrap();
        assert_eq!(d.dbtable.as_deref(), Some("htable"));
        assert_eq!((d.dbmode, d.cols.len()), (1, 3));
        assert!(parse_def("x=>cols='k'").is_err());
        assert!(parse_def("x=>colour=blue").is_err());
        assert!(
            parse_def("x=>initval=abc").is_err(),
            "initval is an integer"
        );
    }

    #[test]
    fn pseudo_variable_extents() {
        let s = b"$si-$var(a)x$hdr(To)[1]y$";
        assert_eq!(pv_end(s, 0), 3);
        assert_eq!(pv_end(s, 4), 11);
        assert_eq!(pv_end(s, 12), 23);
        assert_eq!(split_name("ipban=>$si").unwrap(), ("ipban", "$si"));
        assert!(split_name("ipban").is_err());
    }
}
