//! The order in which Kamailio walks its destination sets: they are kept
//! in an AVL tree keyed by set id, built in the order the ids are first
//! seen in the list, and walked in post-order (left, right, node). It
//! decides which set `ds_is_from_list` reports for an address in several
//! sets, and the order `dispatcher.list` shows them in.

struct Node {
    id: i32,
    height: i32,
    left: Option<Box<Node>>,
    right: Option<Box<Node>>,
}

fn height(n: &Option<Box<Node>>) -> i32 {
    n.as_ref().map_or(0, |n| n.height)
}

fn fix(n: &mut Node) {
    n.height = 1 + height(&n.left).max(height(&n.right));
}

fn rotate_right(mut n: Box<Node>) -> Box<Node> {
    let Some(mut l) = n.left.take() else { return n };
    n.left = l.right.take();
    fix(&mut n);
    l.right = Some(n);
    fix(&mut l);
    l
}

fn rotate_left(mut n: Box<Node>) -> Box<Node> {
    let Some(mut r) = n.right.take() else {
        return n;
    };
    n.right = r.left.take();
    fix(&mut n);
    r.left = Some(n);
    fix(&mut r);
    r
}

fn balance(mut n: Box<Node>) -> Box<Node> {
    fix(&mut n);
    let bf = height(&n.left) - height(&n.right);
    if bf > 1 {
        if let Some(l) = n.left.take() {
            n.left = Some(if height(&l.left) < height(&l.right) {
                rotate_left(l)
            } else {
                l
            });
        }
        return rotate_right(n);
    }
    if bf < -1 {
        if let Some(r) = n.right.take() {
            n.right = Some(if height(&r.right) < height(&r.left) {
                rotate_right(r)
            } else {
                r
            });
        }
        return rotate_left(n);
    }
    n
}

fn insert(n: Option<Box<Node>>, id: i32) -> Box<Node> {
    let Some(mut n) = n else {
        return Box::new(Node {
            id,
            height: 1,
            left: None,
            right: None,
        });
    };
    if id < n.id {
        n.left = Some(insert(n.left.take(), id));
    } else if id > n.id {
        n.right = Some(insert(n.right.take(), id));
    } else {
        return n;
    }
    balance(n)
}

fn post_order(n: &Option<Box<Node>>, out: &mut Vec<i32>) {
    if let Some(n) = n {
        post_order(&n.left, out);
        post_order(&n.right, out);
        out.push(n.id);
    }
}

/// The ids, first seen in the order `seen`, in Kamailio's walk order.
pub fn avl_post_order(seen: &[i32]) -> Vec<i32> {
    let mut root = None;
    for &id in seen {
        root = Some(insert(root, id));
    }
    let mut out = Vec::with_capacity(seen.len());
    post_order(&root, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_as_kamailio() {
        // Kamailio 5.6.3's dispatcher.list for a list with sets 1 then 2
        // shows set 2 first.
        assert_eq!(avl_post_order(&[1, 2]), vec![2, 1]);
        assert_eq!(avl_post_order(&[1, 2, 3]), vec![1, 3, 2]);
        assert_eq!(avl_post_order(&[1, 2, 3, 4]), vec![1, 4, 3, 2]);
        assert_eq!(
            avl_post_order(&[3, 1, 2]),
            vec![1, 3, 2],
            "a double rotation"
        );
        assert_eq!(avl_post_order(&[5, 5, 5]), vec![5]);
        let many: Vec<i32> = (0..1000).collect();
        let mut got = avl_post_order(&many);
        got.sort_unstable();
        assert_eq!(got, many);
    }
}
