//! PIDF bodies as Kamailio's presence_xml makes them for NOTIFY: the
//! publications of a presentity merged into one document, and the
//! "offline" document that stands for a publication just removed.

use crate::xml::{self, copy_detached, Document, Element, Node};

/// The PIDF namespace.
pub const PIDF_NS: &str = "urn:ietf:params:xml:ns:pidf";

fn is_tuple(e: &Element) -> bool {
    e.local().eq_ignore_ascii_case("tuple")
}

/// Whether a body is a well-formed XML document (a PUBLISH whose body is
/// not gets 415).
pub fn well_formed(body: &str) -> bool {
    xml::parse(body).is_ok()
}

/// The publications' bodies merged, newest first, as presence_xml's
/// `agg_nbody`: the newest document is the base; each older one whose
/// first `<tuple>`'s id is not yet in the result (names and ids compared
/// without case, as libxml2's `xmlStrcasecmp`) gives all of its root's
/// children (text too), each element declaring the namespaces it uses.
/// Bodies that do not parse are left out; `None` when none is left.
pub fn aggregate(bodies: &[&str]) -> Option<String> {
    let mut docs = bodies.iter().filter_map(|b| xml::parse(b).ok());
    let mut base: Document = docs.next()?;
    let mut ids: Vec<String> = base
        .root
        .elements()
        .filter(|e| is_tuple(e))
        .filter_map(|e| e.attr("id").map(str::to_string))
        .collect();
    for d in docs {
        let first = d.root.elements().find(|e| is_tuple(e));
        if let Some(id) = first.and_then(|t| t.attr("id")) {
            if ids.iter().any(|x| x.eq_ignore_ascii_case(id)) {
                continue;
            }
        }
        let scope = d.root.scope_inside(&Vec::new());
        for c in &d.root.children {
            match c {
                Node::Element(e) => {
                    if is_tuple(e) {
                        if let Some(id) = e.attr("id") {
                            ids.push(id.to_string());
                        }
                    }
                    base.root
                        .children
                        .push(Node::Element(copy_detached(e, &scope)));
                }
                other => base.root.children.push(other.clone()),
            }
        }
    }
    Some(base.to_text())
}

/// The document that stands for a removed publication (presence_xml's
/// offline body): a root with the publication's root attributes, holding
/// a copy of its first tuple without children but with its first status,
/// whose first `<basic>` says `closed`. `None` when the body does not
/// parse or has no tuple, status or basic.
pub fn offline(body: &str) -> Option<String> {
    let d = xml::parse(body).ok()?;
    let scope = d.root.scope_inside(&Vec::new());
    let tuple = d.root.elements().find(|e| is_tuple(e))?;
    let status = tuple
        .elements()
        .find(|e| e.local().eq_ignore_ascii_case("status"))?;
    let mut status = copy_detached(status, &tuple.scope_inside(&scope));
    if !close_first_basic(&mut status) {
        return None;
    }
    let shallow = Element {
        children: Vec::new(),
        ..tuple.clone()
    };
    let mut new_tuple = copy_detached(&shallow, &scope);
    new_tuple.children.push(Node::Element(status));
    let root = Element {
        children: vec![Node::Element(new_tuple)],
        ..d.root.clone()
    };
    let doc = Document {
        version: "1.0".into(),
        encoding: None,
        standalone: None,
        prolog: Vec::new(),
        root,
        epilog: Vec::new(),
    };
    Some(doc.to_text())
}

fn close_first_basic(e: &mut Element) -> bool {
    for c in e.children.iter_mut() {
        if let Node::Element(c) = c {
            if c.local().eq_ignore_ascii_case("basic") {
                c.children = vec![Node::Text("closed".into())];
                return true;
            }
            if close_first_basic(c) {
                return true;
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(ids: &[&str]) -> String {
        let mut s = String::from(
            "<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" entity=\"sip:g@ex.test\">",
        );
        for i in ids {
            s.push_str(&format!(
                "<tuple id=\"{i}\"><status><basic>open</basic></status></tuple>"
            ));
        }
        s.push_str("</presence>");
        s
    }

    #[test]
    fn newest_is_the_base_and_older_ones_follow_unless_their_first_tuple_is_known() {
        let newest = doc(&["g1", "g2"]);
        let middle = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" entity=\"sip:g@ex.test\"><note>caf\u{e9} &amp; &lt;x&gt; \"q\"</note><tuple id=\"g5\"><status><basic>open</basic></status></tuple></presence>";
        let oldest = doc(&["g2", "g7"]);
        let got = aggregate(&[&newest, middle, &oldest]).unwrap();
        let tuple = |id: &str, ns: &str| {
            format!("  <tuple{ns} id=\"{id}\">\n    <status>\n      <basic>open</basic>\n    </status>\n  </tuple>\n")
        };
        let ns = " xmlns=\"urn:ietf:params:xml:ns:pidf\"";
        let want = format!(
            "<?xml version=\"1.0\"?>\n<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" entity=\"sip:g@ex.test\">\n{}{}  <note{ns}>caf&#xE9; &amp; &lt;x&gt; \"q\"</note>\n{}</presence>\n",
            tuple("g1", ""),
            tuple("g2", ""),
            tuple("g5", ns)
        );
        assert_eq!(got, want);
    }

    #[test]
    fn text_between_elements_comes_along() {
        let a = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" entity=\"sip:a@x\">\n<tuple id=\"t2\"><status><basic>open</basic></status></tuple>\n</presence>\n";
        let b = a.replace("t2", "t1").replace("open", "closed");
        let got = aggregate(&[a, &b, "not xml"]).unwrap();
        assert_eq!(
            got,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" entity=\"sip:a@x\">\n<tuple id=\"t2\"><status><basic>open</basic></status></tuple>\n\n<tuple xmlns=\"urn:ietf:params:xml:ns:pidf\" id=\"t1\"><status><basic>closed</basic></status></tuple>\n</presence>\n"
        );
        assert_eq!(aggregate(&["junk"]), None);
        assert_eq!(aggregate(&[]), None);
    }

    #[test]
    fn offline_is_the_first_tuple_closed() {
        let body = "<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='sip:f@ex.test'><tuple id='c2' a='x&quot;y'><status><basic>open</basic></status><note>n</note></tuple><tuple id='c3'/></presence>";
        assert_eq!(
            offline(body).unwrap(),
            "<?xml version=\"1.0\"?>\n<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" entity=\"sip:f@ex.test\">\n  <tuple xmlns=\"urn:ietf:params:xml:ns:pidf\" id=\"c2\" a=\"x&quot;y\">\n    <status xmlns=\"urn:ietf:params:xml:ns:pidf\">\n      <basic>closed</basic>\n    </status>\n  </tuple>\n</presence>\n"
        );
        assert_eq!(offline("<presence/>"), None);
        assert_eq!(
            offline("<presence><tuple id='a'><note/></tuple></presence>"),
            None
        );
        assert_eq!(offline("<x"), None);
    }
}
