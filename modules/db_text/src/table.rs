//! One db_text table: its file format (Kamailio's), rows in memory, and
//! values converted between the file's types and the database API's.
//!
//! The first line defines the columns, `name(type[,null|,auto])` separated
//! by spaces, the types `int`, `double`, `str`, `string`, `blob` and
//! `time`; each further line is a row, fields separated by the delimiter
//! (`:`), an empty field NULL; in text `\n`, `\r`, `\t`, `\\`, `\:` and
//! `\0` stand for those characters.

use sr_sdk::db::DbValue;
use std::cmp::Ordering;
use std::collections::VecDeque;

/// A column's type, as its file names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `int`
    Int,
    /// `double` (written with two decimals)
    Double,
    /// `str`
    Str,
    /// `string`
    String,
    /// `blob`
    Blob,
    /// `time` (unix seconds)
    Time,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Int => "int",
            Kind::Double => "double",
            Kind::Str => "str",
            Kind::String => "string",
            Kind::Blob => "blob",
            Kind::Time => "time",
        }
    }

    fn is_text(self) -> bool {
        matches!(self, Kind::Str | Kind::String | Kind::Blob)
    }
}

/// A column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// Its name.
    pub name: String,
    /// Its type.
    pub kind: Kind,
    /// `,null`: NULL allowed.
    pub null: bool,
    /// `,auto`: an `int` filled with the next number when not given.
    pub auto: bool,
}

/// A stored value.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    /// `int`, `time`
    Int(i64),
    /// `double`
    Double(f64),
    /// `str`, `string`, `blob`
    Text(String),
}

/// A field: a value or NULL.
pub type Field = Option<Val>;

/// A table in memory.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table {
    /// Its columns.
    pub cols: Vec<Column>,
    /// Its rows, in Kamailio's list order: the file's order, rows added
    /// since in front (newest first).
    pub rows: VecDeque<Vec<Field>>,
    /// The last number an `auto` column got.
    pub auto_val: i64,
    /// Changed since read or written.
    pub modified: bool,
}

impl Table {
    /// The index of a column (names compare without case, as Kamailio's).
    pub fn col(&self, name: &str) -> Option<usize> {
        self.cols
            .iter()
            .position(|c| c.name.eq_ignore_ascii_case(name))
    }

    fn auto_col(&self) -> Option<usize> {
        self.cols.iter().position(|c| c.auto)
    }

    /// Reads a table file; `emptystring` reads an empty text field as ""
    /// instead of NULL.
    pub fn parse(text: &str, delim: char, emptystring: bool) -> Result<Table, String> {
        let mut lines = text.split('\n');
        let head = lines.next().unwrap_or("");
        let cols = parse_header(head)?;
        let mut t = Table {
            cols,
            ..Table::default()
        };
        let auto = t.auto_col();
        for (n, line) in lines.enumerate() {
            if line.is_empty() {
                continue;
            }
            let row = parse_row(&t.cols, line, delim, emptystring)
                .map_err(|e| format!("row {}: {e}", n + 1))?;
            if let Some(a) = auto {
                if let Some(Val::Int(v)) = row[a] {
                    t.auto_val = t.auto_val.max(v);
                }
            }
            t.check_row(&row)?;
            t.rows.push_back(row);
        }
        Ok(t)
    }

    /// NULL only where allowed.
    fn check_row(&self, row: &[Field]) -> Result<(), String> {
        for (c, f) in self.cols.iter().zip(row) {
            if f.is_none() && !c.null {
                return Err(format!("null value not allowed - column {}", c.name));
            }
        }
        Ok(())
    }

    /// The file's text.
    pub fn print(&self, delim: char) -> String {
        let mut out = String::new();
        for (i, c) in self.cols.iter().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            out.push_str(&c.name);
            out.push('(');
            out.push_str(c.kind.name());
            if c.null {
                out.push_str(",null");
            } else if c.auto {
                out.push_str(",auto");
            }
            out.push(')');
        }
        out.push('\n');
        for row in &self.rows {
            for (i, f) in row.iter().enumerate() {
                if i > 0 {
                    out.push(delim);
                }
                match f {
                    None => {}
                    Some(Val::Int(v)) => out.push_str(&v.to_string()),
                    Some(Val::Double(d)) => out.push_str(&format!("{d:.2}")),
                    Some(Val::Text(s)) => escape(s, delim, &mut out),
                }
            }
            out.push('\n');
        }
        out
    }

    /// A new row from column values: unknown columns and values of the
    /// wrong type are errors, the `auto` column gets the next number when
    /// not given, other columns missing are NULL (an error where NULL is
    /// not allowed).
    pub fn new_row(&mut self, values: &[(&str, DbValue)]) -> Result<Vec<Field>, String> {
        let mut row: Vec<Field> = vec![None; self.cols.len()];
        for (name, v) in values {
            let i = self
                .col(name)
                .ok_or_else(|| format!("column <{name}> not found"))?;
            row[i] = to_field(self.cols[i].kind, v)?;
        }
        if let Some(a) = self.auto_col() {
            if row[a].is_none() {
                self.auto_val = self
                    .auto_val
                    .checked_add(1)
                    .ok_or("no next number for the auto column")?;
                row[a] = Some(Val::Int(self.auto_val));
            } else if let Some(Val::Int(v)) = row[a] {
                self.auto_val = self.auto_val.max(v);
            }
        }
        self.check_row(&row)?;
        Ok(row)
    }
}

fn parse_header(head: &str) -> Result<Vec<Column>, String> {
    let mut cols: Vec<Column> = Vec::new();
    for def in head.split(' ').filter(|d| !d.is_empty()) {
        let (name, rest) = def
            .split_once('(')
            .ok_or_else(|| format!("bad column definition '{def}'"))?;
        let inner = rest
            .strip_suffix(')')
            .ok_or_else(|| format!("bad column definition '{def}'"))?;
        let (ty, attr) = match inner.split_once(',') {
            Some((t, a)) => (t.trim(), Some(a.trim())),
            None => (inner.trim(), None),
        };
        let kind = match ty.bytes().next().map(|c| c.to_ascii_lowercase()) {
            // `str`, or `string` (an `i` in the type's name).
            Some(b's') if ty.bytes().any(|c| c.eq_ignore_ascii_case(&b'i')) => Kind::String,
            Some(b's') => Kind::Str,
            Some(b'i') => Kind::Int,
            Some(b'd') => Kind::Double,
            Some(b'b') => Kind::Blob,
            Some(b't') => Kind::Time,
            _ => return Err(format!("wrong column type in '{def}'")),
        };
        let mut col = Column {
            name: name.to_string(),
            kind,
            null: false,
            auto: false,
        };
        match attr
            .and_then(|a| a.bytes().next())
            .map(|c| c.to_ascii_lowercase())
        {
            None => {}
            Some(b'n') => col.null = true,
            Some(b'a') if kind == Kind::Int && !cols.iter().any(|c| c.auto) => col.auto = true,
            Some(_) => return Err(format!("bad column attribute in '{def}'")),
        }
        cols.push(col);
    }
    if cols.is_empty() {
        return Err("no column definitions".into());
    }
    Ok(cols)
}

fn parse_row(
    cols: &[Column],
    line: &str,
    delim: char,
    emptystring: bool,
) -> Result<Vec<Field>, String> {
    let fields = split_fields(line, delim)?;
    if fields.len() != cols.len() {
        return Err(format!(
            "{} fields for {} columns",
            fields.len(),
            cols.len()
        ));
    }
    cols.iter()
        .zip(fields)
        .map(|(c, f)| match c.kind {
            _ if f.is_empty() && c.kind.is_text() => {
                Ok(emptystring.then(|| Val::Text(String::new())))
            }
            _ if f.is_empty() => Ok(None),
            Kind::Int | Kind::Time => parse_int(&f).map(|v| Some(Val::Int(v))),
            Kind::Double => parse_double(&f).map(|v| Some(Val::Double(v))),
            _ => Ok(Some(Val::Text(f))),
        })
        .collect()
}

/// A row's fields, unescaped.
fn split_fields(line: &str, delim: char) -> Result<Vec<String>, String> {
    let mut out = vec![String::new()];
    let mut it = line.chars();
    while let Some(c) = it.next() {
        let cur = out.last_mut().ok_or("no field")?;
        if c == '\\' {
            match it.next() {
                Some('n') => cur.push('\n'),
                Some('r') => cur.push('\r'),
                Some('t') => cur.push('\t'),
                Some('\\') => cur.push('\\'),
                Some('0') => cur.push('\0'),
                Some(d) if d == delim => cur.push(d),
                other => return Err(format!("bad escape \\{}", other.unwrap_or(' '))),
            }
        } else if c == delim {
            out.push(String::new());
        } else {
            cur.push(c);
        }
    }
    Ok(out)
}

fn parse_int(f: &str) -> Result<i64, String> {
    let (neg, d) = match f.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, f),
    };
    if d.is_empty() || !d.bytes().all(|c| c.is_ascii_digit()) {
        return Err(format!("'{f}' is not an integer"));
    }
    // Held at the 64-bit limits, not wrapped.
    let v = d.bytes().fold(0i64, |a, c| {
        a.saturating_mul(10).saturating_add(i64::from(c - b'0'))
    });
    Ok(if neg { v.saturating_neg() } else { v })
}

fn parse_double(f: &str) -> Result<f64, String> {
    let d = f.strip_prefix('-').unwrap_or(f);
    let (int, frac) = d.split_once('.').unwrap_or((d, ""));
    if int.is_empty()
        || !int.bytes().all(|c| c.is_ascii_digit())
        || !frac.bytes().all(|c| c.is_ascii_digit())
    {
        return Err(format!("'{f}' is not a number"));
    }
    f.parse().map_err(|_| format!("'{f}' is not a number"))
}

fn escape(s: &str, delim: char, out: &mut String) {
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\\' => out.push_str("\\\\"),
            '\0' => out.push_str("\\0"),
            c if c == delim => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
}

/// A value of the database API stored in a column of `kind`.
pub fn to_field(kind: Kind, v: &DbValue) -> Result<Field, String> {
    if v.is_null() {
        return Ok(None);
    }
    let bad = || format!("incompatible value {v:?} for a {} column", kind.name());
    Ok(Some(match kind {
        Kind::Int | Kind::Time => Val::Int(v.as_time().ok_or_else(bad)?),
        // (NaN and the infinities could not be read back.)
        Kind::Double => Val::Double(v.as_f64().filter(|d| d.is_finite()).ok_or_else(bad)?),
        Kind::Str | Kind::String | Kind::Blob => Val::Text(v.as_string().ok_or_else(bad)?),
    }))
}

/// A stored field as a value of the database API.
pub fn to_db(kind: Kind, f: &Field) -> DbValue {
    match (kind, f) {
        (_, None) => DbValue::Null,
        (Kind::Time, Some(Val::Int(v))) => DbValue::DateTime(*v),
        (_, Some(Val::Int(v))) => match i32::try_from(*v) {
            Ok(i) => DbValue::Int(i),
            Err(_) => DbValue::BigInt(*v),
        },
        (_, Some(Val::Double(d))) => DbValue::Double(*d),
        (Kind::Blob, Some(Val::Text(s))) => DbValue::Blob(s.clone().into_bytes()),
        (_, Some(Val::Text(s))) => DbValue::Str(s.clone()),
    }
}

/// Kamailio's comparison of a field with a value: NULL equals NULL and is
/// below anything else; text compares without case; numbers by value.
pub fn compare(f: &Field, v: &DbValue) -> Ordering {
    match (f, v.is_null()) {
        (None, true) => return Ordering::Equal,
        (None, false) => return Ordering::Less,
        (Some(_), true) => return Ordering::Greater,
        _ => {}
    }
    match f {
        Some(Val::Int(a)) => match v.as_time() {
            Some(b) => a.cmp(&b),
            None => Ordering::Less,
        },
        Some(Val::Double(a)) => match v.as_f64() {
            Some(b) => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
            None => Ordering::Less,
        },
        Some(Val::Text(a)) => {
            let b = v.as_string().unwrap_or_default();
            cmp_nocase(a, &b)
        }
        None => Ordering::Less,
    }
}

/// Two fields in an `ORDER BY` (NULL first).
pub fn compare_fields(a: &Field, b: &Field) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, _) => Ordering::Less,
        (_, None) => Ordering::Greater,
        (Some(Val::Int(x)), Some(Val::Int(y))) => x.cmp(y),
        (Some(Val::Double(x)), Some(Val::Double(y))) => x.partial_cmp(y).unwrap_or(Ordering::Equal),
        (Some(Val::Text(x)), Some(Val::Text(y))) => cmp_nocase(x, y),
        _ => Ordering::Equal,
    }
}

fn cmp_nocase(a: &str, b: &str) -> Ordering {
    a.bytes()
        .map(|c| c.to_ascii_lowercase())
        .cmp(b.bytes().map(|c| c.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOC: &str = "id(int,auto) name(str) flag(double) desc(str,null) \n1:nick:0.34:a\\tgood\\: friend\n2:cole:-3.75:colleague\n\n3:bob:2.50:\n";

    #[test]
    fn reads_and_writes_kamailio_files() {
        let t = Table::parse(LOC, ':', false).unwrap();
        assert_eq!(t.cols.len(), 4);
        assert!(t.cols[0].auto && t.cols[3].null);
        assert_eq!(t.rows.len(), 3);
        assert_eq!(t.rows[0][3], Some(Val::Text("a\tgood: friend".into())));
        assert_eq!(t.rows[2][3], None);
        assert_eq!(t.auto_val, 3);
        assert_eq!(
            t.print(':'),
            "id(int,auto) name(str) flag(double) desc(str,null)\n1:nick:0.34:a\\tgood\\: friend\n2:cole:-3.75:colleague\n3:bob:2.50:\n"
        );
        let again = Table::parse(&t.print(':'), ':', false).unwrap();
        assert_eq!(again.rows, t.rows);
    }

    #[test]
    fn refuses_bad_files_and_rows() {
        assert!(Table::parse("", ':', false).is_err());
        assert!(Table::parse("a(int)\nx\n", ':', false).is_err());
        assert!(Table::parse("a(int) b(str)\n1\n", ':', false).is_err());
        assert!(
            Table::parse("a(int) b(str)\n:x\n", ':', false).is_err(),
            "NULL in a column without null"
        );
        assert!(Table::parse("a(zzz)\n", ':', false).is_err());
        assert!(Table::parse("a(str)\nx\\qy\n", ':', false).is_err());
    }

    #[test]
    fn new_rows_get_auto_numbers_and_checked_types() {
        let mut t = Table::parse(LOC, ':', false).unwrap();
        let r = t
            .new_row(&[("name", DbValue::str("zed")), ("flag", DbValue::Int(2))])
            .unwrap();
        assert_eq!(r[0], Some(Val::Int(4)));
        assert_eq!(r[2], Some(Val::Double(2.0)));
        assert!(
            t.new_row(&[("name", DbValue::str("x"))]).is_err(),
            "flag NULL"
        );
        assert!(t.new_row(&[("nope", DbValue::Int(1))]).is_err());
        assert!(t
            .new_row(&[("name", DbValue::str("x")), ("flag", DbValue::str("abc"))])
            .is_err());
    }

    #[test]
    fn compares_as_kamailio() {
        let f = Some(Val::Text("Alice".into()));
        assert_eq!(compare(&f, &DbValue::str("alice")), Ordering::Equal);
        assert_eq!(compare(&None, &DbValue::Null), Ordering::Equal);
        assert_eq!(compare(&None, &DbValue::Int(1)), Ordering::Less);
        assert_eq!(
            compare(&Some(Val::Int(5)), &DbValue::DateTime(7)),
            Ordering::Less
        );
    }
}
