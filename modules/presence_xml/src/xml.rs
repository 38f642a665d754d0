//! A small XML tree: parsed from a publication's body, copied between
//! documents and written out as libxml2 writes it (Kamailio's
//! presence_xml builds its NOTIFY bodies with libxml2, and watchers see
//! that text): the declaration rewritten, double-quoted attributes,
//! `<x/>` for empty elements, entities escaped, characters outside ASCII
//! as `&#xE9;` when the document names no encoding, and libxml2's
//! indentation (two spaces a level) for elements holding no text.

use std::fmt::Write;

/// A node of the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// An element.
    Element(Element),
    /// Character data (entities decoded).
    Text(String),
    /// A CDATA section.
    CData(String),
    /// A comment.
    Comment(String),
    /// A processing instruction: target and data.
    Pi(String, String),
}

/// An element.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Element {
    /// The name as written (`prefix:local` or `local`).
    pub name: String,
    /// Namespace declarations on it: prefix (`None` for `xmlns`) and URI.
    pub ns_decls: Vec<(Option<String>, String)>,
    /// Attributes as written (names with their prefixes), values decoded.
    pub attrs: Vec<(String, String)>,
    /// Children.
    pub children: Vec<Node>,
}

/// A document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// `version` of the declaration (`1.0` when there is none).
    pub version: String,
    /// `encoding` of the declaration, when named.
    pub encoding: Option<String>,
    /// `standalone` of the declaration, when named.
    pub standalone: Option<String>,
    /// Comments and processing instructions before the root.
    pub prolog: Vec<Node>,
    /// The root element.
    pub root: Element,
    /// Comments and processing instructions after it.
    pub epilog: Vec<Node>,
}

/// In-scope namespace declarations, innermost last.
pub type Scope = Vec<(Option<String>, String)>;

impl Element {
    /// The name without its prefix.
    pub fn local(&self) -> &str {
        self.name.rsplit(':').next().unwrap_or(&self.name)
    }

    /// The prefix, when the name has one.
    pub fn prefix(&self) -> Option<&str> {
        self.name.split_once(':').map(|(p, _)| p)
    }

    /// An attribute's value.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The child elements.
    pub fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            _ => None,
        })
    }

    /// The scope inside this element, given the scope around it.
    pub fn scope_inside(&self, outer: &Scope) -> Scope {
        let mut s = outer.clone();
        s.extend(self.ns_decls.iter().cloned());
        s
    }
}

/// The URI a prefix (`None`: the default namespace) names in `scope`.
pub fn lookup<'a>(scope: &'a Scope, prefix: Option<&str>) -> Option<&'a str> {
    scope
        .iter()
        .rev()
        .find(|(p, _)| p.as_deref() == prefix)
        .map(|(_, u)| u.as_str())
        .filter(|u| !u.is_empty())
}

/// `el` copied for another document, as libxml2's `xmlCopyNode` copies:
/// a namespace its elements or attributes use that the copy itself does
/// not declare is declared on the copy's top element (looked up in
/// `scope`, the declarations around `el` in its own document).
pub fn copy_detached(el: &Element, scope: &Scope) -> Element {
    let mut top = el.clone();
    let mut added: Vec<(Option<String>, String)> = Vec::new();
    reconcile(&top, scope, &Vec::new(), &mut added);
    top.ns_decls.extend(added);
    top
}

fn reconcile(el: &Element, src: &Scope, copy: &Scope, added: &mut Scope) {
    let mut inside = copy.clone();
    inside.extend(el.ns_decls.iter().cloned());
    let src_inside = el.scope_inside(src);
    let need = |prefix: Option<&str>, inside: &Scope, added: &mut Scope| {
        if prefix == Some("xml") {
            return;
        }
        let known = inside
            .iter()
            .chain(added.iter())
            .any(|(p, _)| p.as_deref() == prefix);
        if known {
            return;
        }
        if let Some(uri) = lookup(&src_inside, prefix) {
            added.push((prefix.map(str::to_string), uri.to_string()));
        }
    };
    need(el.prefix(), &inside, added);
    for (name, _) in &el.attrs {
        if let Some((p, _)) = name.split_once(':') {
            need(Some(p), &inside, added);
        }
    }
    for c in el.elements() {
        reconcile(c, &src_inside, &inside, added);
    }
}

/// Why a text is not a well-formed document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XmlError(pub String);

impl std::fmt::Display for XmlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Parses a document (the XML 1.0 well-formedness rules a PIDF body
/// meets; a DOCTYPE with an internal subset is refused).
pub fn parse(text: &str) -> Result<Document, XmlError> {
    let norm = text
        .trim_start_matches('\u{feff}')
        .replace("\r\n", "\n")
        .replace('\r', "\n");
    let mut p = Parser {
        s: norm.as_bytes(),
        t: &norm,
        i: 0,
        depth: 0,
    };
    p.document()
}

/// How deep elements may nest (deeper documents are refused rather than
/// risking the stack).
pub const MAX_DEPTH: usize = 128;

struct Parser<'a> {
    s: &'a [u8],
    t: &'a str,
    i: usize,
    depth: usize,
}

fn err<T>(m: impl Into<String>) -> Result<T, XmlError> {
    Err(XmlError(m.into()))
}

fn is_name_start(c: char) -> bool {
    c.is_alphabetic() || c == '_' || c == ':' || (c as u32) >= 0x80
}

fn is_name_char(c: char) -> bool {
    is_name_start(c) || c.is_ascii_digit() || c == '-' || c == '.'
}

impl Parser<'_> {
    fn rest(&self) -> &str {
        &self.t[self.i..]
    }

    fn starts(&self, p: &str) -> bool {
        self.rest().starts_with(p)
    }

    fn skip_ws(&mut self) -> bool {
        let start = self.i;
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\n') {
            self.i += 1;
        }
        self.i > start
    }

    fn expect(&mut self, p: &str) -> Result<(), XmlError> {
        if self.starts(p) {
            self.i += p.len();
            Ok(())
        } else {
            err(format!("expected '{p}' at byte {}", self.i))
        }
    }

    fn until(&mut self, end: &str) -> Result<String, XmlError> {
        match self.rest().find(end) {
            Some(n) => {
                let out = self.rest()[..n].to_string();
                self.i += n + end.len();
                Ok(out)
            }
            None => err(format!("'{end}' missing")),
        }
    }

    fn name(&mut self) -> Result<String, XmlError> {
        let r = self.rest();
        let mut chars = r.char_indices();
        match chars.next() {
            Some((_, c)) if is_name_start(c) => {}
            _ => return err(format!("a name expected at byte {}", self.i)),
        }
        let end = chars
            .find(|(_, c)| !is_name_char(*c))
            .map_or(r.len(), |(n, _)| n);
        let out = r[..end].to_string();
        self.i += end;
        Ok(out)
    }

    fn document(&mut self) -> Result<Document, XmlError> {
        let mut doc = Document {
            version: "1.0".into(),
            encoding: None,
            standalone: None,
            prolog: Vec::new(),
            root: Element::default(),
            epilog: Vec::new(),
        };
        if self.starts("<?xml") && self.s.get(5).is_some_and(|c| c.is_ascii_whitespace()) {
            self.i += 5;
            let decl = self.until("?>")?;
            for (k, v) in pseudo_attrs(&decl)? {
                match k.as_str() {
                    "version" => doc.version = v,
                    "encoding" => doc.encoding = Some(v),
                    "standalone" => doc.standalone = Some(v),
                    _ => return err(format!("unknown '{k}' in the XML declaration")),
                }
            }
        }
        loop {
            self.skip_ws();
            if self.starts("<!--") {
                doc.prolog.push(self.comment()?);
            } else if self.starts("<?") {
                doc.prolog.push(self.pi()?);
            } else if self.starts("<!DOCTYPE") {
                let d = self.until(">")?;
                if d.contains('[') {
                    return err("a DOCTYPE with an internal subset is not accepted");
                }
            } else {
                break;
            }
        }
        if !self.starts("<") {
            return err("no root element");
        }
        doc.root = self.element()?;
        loop {
            self.skip_ws();
            if self.i >= self.s.len() {
                break;
            }
            if self.starts("<!--") {
                doc.epilog.push(self.comment()?);
            } else if self.starts("<?") {
                doc.epilog.push(self.pi()?);
            } else {
                return err(format!("content after the root element at byte {}", self.i));
            }
        }
        Ok(doc)
    }

    fn comment(&mut self) -> Result<Node, XmlError> {
        self.i += 4;
        let c = self.until("-->")?;
        if c.contains("--") || c.ends_with('-') {
            return err("'--' inside a comment");
        }
        Ok(Node::Comment(c))
    }

    fn pi(&mut self) -> Result<Node, XmlError> {
        self.i += 2;
        let target = self.name()?;
        if target.eq_ignore_ascii_case("xml") {
            return err("an XML declaration out of place");
        }
        self.skip_ws();
        let data = self.until("?>")?;
        Ok(Node::Pi(target, data))
    }

    fn element(&mut self) -> Result<Element, XmlError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return err(format!("elements nested deeper than {MAX_DEPTH}"));
        }
        let r = self.element_inner();
        self.depth -= 1;
        r
    }

    fn element_inner(&mut self) -> Result<Element, XmlError> {
        self.expect("<")?;
        let mut el = Element {
            name: self.name()?,
            ..Element::default()
        };
        loop {
            let ws = self.skip_ws();
            if self.starts("/>") {
                self.i += 2;
                return Ok(el);
            }
            if self.starts(">") {
                self.i += 1;
                break;
            }
            if !ws {
                return err(format!(
                    "space expected before an attribute at byte {}",
                    self.i
                ));
            }
            let n = self.name()?;
            self.skip_ws();
            self.expect("=")?;
            self.skip_ws();
            let v = self.attr_value()?;
            let known = el.attrs.iter().any(|(a, _)| *a == n)
                || el.ns_decls.iter().any(|(p, _)| match p {
                    None => n == "xmlns",
                    Some(p) => n.strip_prefix("xmlns:") == Some(p.as_str()),
                });
            if known {
                return err(format!("attribute '{n}' given twice"));
            }
            if n == "xmlns" {
                el.ns_decls.push((None, v));
            } else if let Some(p) = n.strip_prefix("xmlns:") {
                el.ns_decls.push((Some(p.to_string()), v));
            } else {
                el.attrs.push((n, v));
            }
        }
        let mut text = String::new();
        loop {
            if self.i >= self.s.len() {
                return err(format!("element '{}' not closed", el.name));
            }
            if self.starts("</") {
                flush(&mut text, &mut el.children);
                self.i += 2;
                let n = self.name()?;
                if n != el.name {
                    return err(format!("'</{n}>' closes '<{}>'", el.name));
                }
                self.skip_ws();
                self.expect(">")?;
                return Ok(el);
            }
            if self.starts("<!--") {
                flush(&mut text, &mut el.children);
                el.children.push(self.comment()?);
            } else if self.starts("<![CDATA[") {
                flush(&mut text, &mut el.children);
                self.i += 9;
                el.children.push(Node::CData(self.until("]]>")?));
            } else if self.starts("<?") {
                flush(&mut text, &mut el.children);
                el.children.push(self.pi()?);
            } else if self.starts("<") {
                flush(&mut text, &mut el.children);
                el.children.push(Node::Element(self.element()?));
            } else if self.starts("&") {
                text.push(self.reference()?);
            } else {
                let r = self.rest();
                let end = r.find(['<', '&']).unwrap_or(r.len());
                let chunk = &r[..end];
                if chunk.contains("]]>") {
                    return err("']]>' in character data");
                }
                text.push_str(chunk);
                self.i += end;
            }
        }
    }

    fn attr_value(&mut self) -> Result<String, XmlError> {
        let q = match self.s.get(self.i) {
            Some(b'"') => '"',
            Some(b'\'') => '\'',
            _ => return err(format!("a quoted value expected at byte {}", self.i)),
        };
        self.i += 1;
        let mut out = String::new();
        loop {
            let Some(c) = self.rest().chars().next() else {
                return err("an attribute value not closed");
            };
            if c == q {
                self.i += 1;
                return Ok(out);
            }
            match c {
                '<' => return err("'<' in an attribute value"),
                '&' => out.push(self.reference()?),
                '\t' | '\n' => {
                    out.push(' ');
                    self.i += 1;
                }
                c => {
                    out.push(c);
                    self.i += c.len_utf8();
                }
            }
        }
    }

    fn reference(&mut self) -> Result<char, XmlError> {
        self.i += 1;
        let r = self.rest();
        let Some(end) = r.find(';') else {
            return err("an entity reference without ';'");
        };
        let name = &r[..end];
        let c = match name {
            "lt" => '<',
            "gt" => '>',
            "amp" => '&',
            "quot" => '"',
            "apos" => '\'',
            _ => {
                let n = if let Some(h) = name.strip_prefix("#x") {
                    u32::from_str_radix(h, 16).ok()
                } else if let Some(d) = name.strip_prefix('#') {
                    d.parse().ok()
                } else {
                    return err(format!("entity '&{name};' is not defined"));
                };
                match n.and_then(char::from_u32) {
                    Some(c) if c != '\0' => c,
                    _ => return err(format!("'&{name};' is not a character")),
                }
            }
        };
        self.i += end + 1;
        Ok(c)
    }
}

fn decl_name(prefix: Option<&str>) -> String {
    match prefix {
        None => "xmlns".into(),
        Some(p) => format!("xmlns:{p}"),
    }
}

fn flush(text: &mut String, children: &mut Vec<Node>) {
    if !text.is_empty() {
        children.push(Node::Text(std::mem::take(text)));
    }
}

fn pseudo_attrs(decl: &str) -> Result<Vec<(String, String)>, XmlError> {
    let mut out = Vec::new();
    let mut rest = decl.trim();
    while !rest.is_empty() {
        let Some((k, v)) = rest.split_once('=') else {
            return err("a bad XML declaration");
        };
        let v = v.trim_start();
        let q = v.chars().next().filter(|c| *c == '"' || *c == '\'');
        let Some(q) = q else {
            return err("a bad XML declaration");
        };
        let Some(end) = v[1..].find(q) else {
            return err("a bad XML declaration");
        };
        out.push((k.trim().to_string(), v[1..1 + end].to_string()));
        rest = v[end + 2..].trim_start();
    }
    Ok(out)
}

impl Document {
    /// The text libxml2 writes for it (`xmlDocDumpFormatMemory` with
    /// format 1).
    pub fn to_text(&self) -> String {
        let ascii = self.encoding.is_none();
        let mut out = format!("<?xml version=\"{}\"", self.version);
        if let Some(e) = &self.encoding {
            let _ = write!(out, " encoding=\"{e}\"");
        }
        if let Some(s) = &self.standalone {
            let _ = write!(out, " standalone=\"{s}\"");
        }
        out.push_str("?>\n");
        for n in &self.prolog {
            write_node(&mut out, n, 0, true, ascii);
            out.push('\n');
        }
        write_element(&mut out, &self.root, 0, true, ascii);
        out.push('\n');
        for n in &self.epilog {
            write_node(&mut out, n, 0, true, ascii);
            out.push('\n');
        }
        out
    }
}

fn write_node(out: &mut String, n: &Node, level: usize, format: bool, ascii: bool) {
    match n {
        Node::Element(e) => write_element(out, e, level, format, ascii),
        Node::Text(t) => escape(out, t, false, ascii),
        Node::CData(t) => {
            let _ = write!(out, "<![CDATA[{t}]]>");
        }
        Node::Comment(c) => {
            let _ = write!(out, "<!--{c}-->");
        }
        Node::Pi(t, d) if d.is_empty() => {
            let _ = write!(out, "<?{t}?>");
        }
        Node::Pi(t, d) => {
            let _ = write!(out, "<?{t} {d}?>");
        }
    }
}

fn write_element(out: &mut String, e: &Element, level: usize, format: bool, ascii: bool) {
    out.push('<');
    out.push_str(&e.name);
    for (p, uri) in &e.ns_decls {
        let _ = write!(out, " {}=\"", decl_name(p.as_deref()));
        escape(out, uri, true, ascii);
        out.push('"');
    }
    for (n, v) in &e.attrs {
        let _ = write!(out, " {n}=\"");
        escape(out, v, true, ascii);
        out.push('"');
    }
    if e.children.is_empty() {
        out.push_str("/>");
        return;
    }
    out.push('>');
    // libxml2 indents only elements none of whose children is text.
    let format = format
        && !e
            .children
            .iter()
            .any(|c| matches!(c, Node::Text(_) | Node::CData(_)));
    if format {
        out.push('\n');
    }
    for c in &e.children {
        if format {
            push_indent(out, level + 1);
        }
        write_node(out, c, level + 1, format, ascii);
        if format {
            out.push('\n');
        }
    }
    if format {
        push_indent(out, level);
    }
    let _ = write!(out, "</{}>", e.name);
}

fn push_indent(out: &mut String, level: usize) {
    for _ in 0..level {
        out.push_str("  ");
    }
}

fn escape(out: &mut String, s: &str, attr: bool, ascii: bool) {
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\r' => out.push_str("&#13;"),
            '"' if attr => out.push_str("&quot;"),
            '\n' if attr => out.push_str("&#10;"),
            '\t' if attr => out.push_str("&#9;"),
            c if ascii && !c.is_ascii() => {
                let _ = write!(out, "&#x{:X};", c as u32);
            }
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_as_libxml_writes() {
        let d = parse("<?xml version='1.0'?><p xmlns='u' a=\"x&quot;y'z\"><t id='1'><s><b>open</b></s><n/></t></p>").unwrap();
        assert_eq!(
            d.to_text(),
            "<?xml version=\"1.0\"?>\n<p xmlns=\"u\" a=\"x&quot;y'z\">\n  <t id=\"1\">\n    <s>\n      <b>open</b>\n    </s>\n    <n/>\n  </t>\n</p>\n"
        );
    }

    #[test]
    fn text_children_turn_indentation_off() {
        let src = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<p>\n<t id=\"a\"><s>caf\u{e9} &amp; &lt;</s></t>\n</p>\n";
        let d = parse(src).unwrap();
        assert_eq!(d.to_text(), src);
        let d = parse("<p>\r\n<t>caf\u{e9}</t></p>").unwrap();
        assert_eq!(
            d.to_text(),
            "<?xml version=\"1.0\"?>\n<p>\n<t>caf&#xE9;</t></p>\n"
        );
    }

    #[test]
    fn copies_declare_what_they_use() {
        let d = parse("<p xmlns='u' xmlns:dm='d'><dm:person><dm:note>x</dm:note></dm:person><t id='1'><s/></t></p>").unwrap();
        let scope = d.root.scope_inside(&Vec::new());
        let els: Vec<&Element> = d.root.elements().collect();
        let person = copy_detached(els[0], &scope);
        assert_eq!(
            person.ns_decls,
            vec![(Some("dm".to_string()), "d".to_string())]
        );
        let tuple = copy_detached(els[1], &scope);
        assert_eq!(tuple.ns_decls, vec![(None, "u".to_string())]);
        let mut out = String::new();
        write_element(&mut out, &tuple, 0, false, true);
        assert_eq!(out, "<t xmlns=\"u\" id=\"1\"><s/></t>");
    }

    #[test]
    fn malformed_documents_are_refused() {
        for bad in [
            "garbage",
            "<p>",
            "<p></q>",
            "<p a='1' a='2'/>",
            "<p>&nbsp;</p>",
            "<p/><q/>",
            "<p a=1/>",
            "<p><!-- a -- b --></p>",
            "<!DOCTYPE p [<!ENTITY x 'y'>]><p/>",
            "",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert!(parse("<!DOCTYPE p><!-- c --><p><![CDATA[<x>]]><?pi d?></p><!-- e -->").is_ok());
        let deep = "<a>".repeat(100_000);
        assert!(parse(&deep).is_err());
        let ok = format!("{}{}", "<a>".repeat(MAX_DEPTH), "</a>".repeat(MAX_DEPTH));
        assert!(parse(&ok).is_ok());
    }

    /// Bytes from a small deterministic generator, cut and spliced from
    /// real documents: nothing panics, and what parses is written out as
    /// a document that parses again to the same tree.
    #[test]
    fn arbitrary_input_never_panics() {
        let seeds = [
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" xmlns:dm=\"d\" entity=\"sip:a@b\"><tuple id=\"t\"><status><basic>open</basic></status><dm:note>caf\u{e9} &amp; &#x41;</dm:note></tuple><!-- c --><![CDATA[x]]></presence>",
            "<p a='1' b=\"2\"><q/>text&lt;<r>\r\n</r></p>",
        ];
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for round in 0..20_000 {
            let seed = seeds[round % seeds.len()].as_bytes();
            let mut b = seed.to_vec();
            for _ in 0..(next() % 6) {
                let i = (next() as usize) % (b.len() + 1);
                match next() % 4 {
                    0 if i < b.len() => {
                        b.remove(i);
                    }
                    1 => b.insert(i, (next() % 256) as u8),
                    2 => {
                        let set = b"<>&;'\"=/!?-[]:";
                        b.insert(i, set[(next() as usize) % set.len()]);
                    }
                    _ => b.truncate(i),
                }
            }
            let text = String::from_utf8_lossy(&b);
            if let Ok(d) = parse(&text) {
                let again = parse(&d.to_text()).expect("written text parses");
                assert_eq!(again.root, d.root, "{text}");
            }
        }
    }
}
