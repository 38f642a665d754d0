//! The `mtree` parameter: `name=N;dbtable=T;type=0|1|2;multi=0|1;cols='p,v1,v2'`
//! (attribute names in any case; a value may be quoted; a trailing `;`
//! is allowed).

/// Most columns of `cols` (Kamailio's `MT_MAX_COLS`).
pub const MAX_COLS: usize = 8;

/// One tree's definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeSpec {
    /// The name functions use.
    pub name: String,
    /// The table (default `mtree`).
    pub dbtable: String,
    /// 0, 1 or 2.
    pub ty: i64,
    /// Several trees in the table, told apart by `tname`.
    pub multi: bool,
    /// The prefix column and the value columns, when set.
    pub cols: Vec<String>,
}

fn unquote(v: &str) -> &str {
    let v = v.trim();
    for q in ['\'', '"'] {
        if let Some(x) = v.strip_prefix(q).and_then(|x| x.strip_suffix(q)) {
            return x;
        }
    }
    v
}

/// Reads one `mtree` value.
pub fn parse(v: &str) -> Result<TreeSpec, String> {
    let body = v.trim();
    let body = body.strip_suffix(';').unwrap_or(body);
    let mut name = None;
    let mut dbtable = None;
    let mut ty = 0;
    let mut multi = 0;
    let mut cols = Vec::new();
    for part in body.split(';') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let (k, val) = part.split_once('=').unwrap_or((part, ""));
        let val = unquote(val);
        let int = |what: &str| {
            crate::tree::parse_sint(val)
                .map(i64::from)
                .ok_or_else(|| format!("invalid {what} [{val}] in [{v}]"))
        };
        match k.trim().to_ascii_lowercase().as_str() {
            "name" => name = Some(val.to_string()),
            "dbtable" => dbtable = Some(val.to_string()),
            "type" => ty = int("type")?,
            "multi" => multi = int("multi")?,
            "cols" => {
                cols = val.split(',').map(|c| c.trim().to_string()).collect();
                if cols.len() > MAX_COLS {
                    return Err(format!("too many columns in [{v}] (most {MAX_COLS})"));
                }
                if cols.len() < 2 {
                    return Err(format!(
                        "there must be at least two columns (prefix, value) in [{v}]"
                    ));
                }
            }
            other => return Err(format!("unknown mtree attribute [{other}] in [{v}]")),
        }
    }
    let name = name
        .filter(|n| !n.is_empty())
        .ok_or_else(|| format!("invalid mtree name in [{v}]"))?;
    if !(0..=2).contains(&ty) {
        return Err(format!("unknown tree type <{ty}> in [{v}]"));
    }
    if !(0..=1).contains(&multi) {
        return Err(format!("unknown multi value <{multi}> in [{v}]"));
    }
    if cols.len() > 2 && (ty != 0 || multi != 0) {
        return Err(format!(
            "several value columns need type=0 and multi=0 in [{v}]"
        ));
    }
    Ok(TreeSpec {
        name,
        dbtable: dbtable.unwrap_or_else(|| "mtree".to_string()),
        ty,
        multi: multi == 1,
        cols,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_forms_read() {
        let s = parse("name=mytree1;dbtable=routes1;type=0").unwrap();
        assert_eq!(
            (s.name.as_str(), s.dbtable.as_str(), s.ty, s.multi),
            ("mytree1", "routes1", 0, false)
        );
        let s = parse("name=t2;DBTABLE=routes2;type=0;multi=1;").unwrap();
        assert!(s.multi);
        let s = parse("name=t3;dbtable=r;cols='key1,val1,val2,val3'").unwrap();
        assert_eq!(s.cols, ["key1", "val1", "val2", "val3"]);
        assert_eq!(parse("name=d").unwrap().dbtable, "mtree");
    }

    #[test]
    fn bad_values_are_named() {
        for (v, what) in [
            ("dbtable=x", "invalid mtree name"),
            ("name=a;type=3", "unknown tree type"),
            ("name=a;multi=2", "unknown multi value"),
            ("name=a;type=x", "invalid type"),
            ("name=a;cols='p'", "at least two columns"),
            ("name=a;colour=red", "unknown mtree attribute"),
        ] {
            let e = parse(v).unwrap_err();
            assert!(e.contains(what), "{v}: {e}");
        }
    }
}
