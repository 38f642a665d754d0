//! `log_extra` / `db_extra`: `name=$pv;name2=$pv2` pairs, each value read
//! through the core's pseudo-variables on the accounted request.

use sr_sdk::prelude::*;

/// One extra field: the attribute or column name and the PV it shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extra {
    /// Attribute (log) or column (database) name.
    pub name: String,
    /// The pseudo-variable, e.g. `$fU`.
    pub pv: String,
}

/// Parses `name=$pv;...` (blanks around items ignored, empty items
/// skipped). Refuses an item without `=`, an empty name or a value that
/// is not a pseudo-variable.
pub fn parse(spec: &str) -> Result<Vec<Extra>, String> {
    let mut out = Vec::new();
    for item in spec.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        let Some((name, pv)) = item.split_once('=') else {
            return Err(format!("extra '{item}' is not name=$pv"));
        };
        let (name, pv) = (name.trim(), pv.trim());
        if name.is_empty() {
            return Err(format!("extra '{item}' has no name"));
        }
        if !pv.starts_with('$') || pv.len() < 2 {
            return Err(format!("extra '{item}': '{pv}' is not a pseudo-variable"));
        }
        out.push(Extra {
            name: name.to_string(),
            pv: pv.to_string(),
        });
    }
    Ok(out)
}

/// The values of the extras on `msg`: `None` where the PV has no value.
pub fn values(core: &dyn Core, msg: &mut SipMsg, extras: &[Extra]) -> Vec<Option<String>> {
    extras
        .iter()
        .map(|e| match core.pv_get(msg, &e.pv) {
            None | Some(Value::Null) => None,
            Some(v) => Some(v.as_str().into_owned()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pairs() {
        let x = parse(" src_user=$fU; src_ip = $si ;;dst=$avp(d)").unwrap();
        assert_eq!(x.len(), 3);
        assert_eq!(x[1].name, "src_ip");
        assert_eq!(x[1].pv, "$si");
        assert_eq!(x[2].pv, "$avp(d)");
        assert!(parse("").unwrap().is_empty());
        assert!(parse("x").is_err());
        assert!(parse("=$fU").is_err());
        assert!(parse("a=fU").is_err());
    }
}
