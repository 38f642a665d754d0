//! `pres_check_basic` and `pres_check_activities`: a presentity's merged
//! PIDF document searched as Kamailio searches it (its
//! `xmlNodeGetNodeByName`: a node, then its children depth first, then its
//! following siblings, names compared without prefix and case).

use crate::xml::{self, Element, Node};

/// Where a search found an element: the sibling list and the index.
type Found<'a> = (&'a [Node], usize);

/// The first element named `name` from `list[i]` on, depth first.
fn find<'a>(list: &'a [Node], i: usize, name: &str) -> Option<Found<'a>> {
    for (j, n) in list.iter().enumerate().skip(i) {
        if let Node::Element(e) = n {
            if e.local().eq_ignore_ascii_case(name) {
                return Some((list, j));
            }
            if let Some(f) = find(&e.children, 0, name) {
                return Some(f);
            }
        }
    }
    None
}

fn element(f: Found<'_>) -> &Element {
    match &f.0[f.1] {
        Node::Element(e) => e,
        _ => unreachable!("find gives elements only"),
    }
}

/// An element's text, its descendants' included (libxml2's
/// `xmlNodeGetContent`).
fn content(e: &Element, out: &mut String) {
    for n in &e.children {
        match n {
            Node::Text(t) | Node::CData(t) => out.push_str(t),
            Node::Element(c) => content(c, out),
            _ => {}
        }
    }
}

/// Kamailio's `presxml_check_basic` on a document: 1 when a tuple's
/// `basic` starts with `status` (ignoring case), -1 otherwise.
pub fn check_basic(body: &str, status: &str) -> i32 {
    let Ok(doc) = xml::parse(body) else {
        return -1;
    };
    let top = [Node::Element(doc.root)];
    let Some((list, start)) = find(&top, 0, "tuple") else {
        return -1;
    };
    let mut rc = -1;
    for (k, n) in list.iter().enumerate().skip(start) {
        let Node::Element(t) = n else { continue };
        if !t.local().eq_ignore_ascii_case("tuple") {
            continue;
        }
        let Some(b) = find(list, k, "basic") else {
            return rc;
        };
        let mut v = String::new();
        content(element(b), &mut v);
        let n = status.len();
        if v.len() >= n && v.as_bytes()[..n].eq_ignore_ascii_case(status.as_bytes()) {
            rc = 1;
        }
    }
    rc
}

/// Kamailio's `presxml_check_activities` on a document: 1 when a
/// person's `activities` holds an element named `activity`, -2 when there
/// is no person or no (or an empty) `activities`, -1 otherwise.
pub fn check_activities(body: &str, activity: &str) -> i32 {
    let Ok(doc) = xml::parse(body) else {
        return -1;
    };
    let top = [Node::Element(doc.root)];
    let Some((list, start)) = find(&top, 0, "person") else {
        return -2;
    };
    let mut rc = -1;
    for (k, n) in list.iter().enumerate().skip(start) {
        let Node::Element(p) = n else { continue };
        if !p.local().eq_ignore_ascii_case("person") {
            continue;
        }
        let Some(a) = find(list, k, "activities") else {
            if rc <= 0 {
                rc = -2;
            }
            break;
        };
        if element(a).children.is_empty() {
            if rc <= 0 {
                rc = -2;
            }
            break;
        }
        if find(a.0, a.1, activity).is_some() {
            rc = 1;
        }
    }
    rc
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r#"<?xml version="1.0"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="sip:alice@example.com">
  <tuple id="t1"><status><basic>open</basic></status></tuple>
  <tuple id="t2"><status><basic>closed</basic></status></tuple>
  <dm:person id="p1"><rpid:activities><rpid:on-the-phone/></rpid:activities></dm:person>
</presence>"#;

    #[test]
    fn basic_status_of_any_tuple() {
        assert_eq!(check_basic(DOC, "open"), 1);
        assert_eq!(check_basic(DOC, "CLOSED"), 1);
        assert_eq!(check_basic(DOC, "ope"), 1);
        assert_eq!(check_basic(DOC, "opened"), -1);
        assert_eq!(check_basic(DOC, "busy"), -1);
        assert_eq!(check_basic("<presence/>", "open"), -1);
        assert_eq!(check_basic("not xml", "open"), -1);
    }

    #[test]
    fn activities_of_a_person() {
        assert_eq!(check_activities(DOC, "on-the-phone"), 1);
        assert_eq!(check_activities(DOC, "ON-THE-PHONE"), 1);
        assert_eq!(check_activities(DOC, "away"), -1);
        let no_person =
            r#"<presence><tuple id="a"><status><basic>open</basic></status></tuple></presence>"#;
        assert_eq!(check_activities(no_person, "away"), -2);
        let empty = r#"<presence><person><activities/></person></presence>"#;
        assert_eq!(check_activities(empty, "away"), -2);
        let none = r#"<presence><person><note>x</note></person></presence>"#;
        assert_eq!(check_activities(none, "away"), -2);
    }
}
