//! Module `mqueue` (Kamailio's): named queues of key/value items shared by
//! every worker, typically filled in request routes and emptied by an
//! rtimer route. `mq_add` appends (with `size`, the oldest item makes
//! room; `addmode` 1 keeps an item whose key is queued, 2 replaces its
//! value), `mq_fetch` takes the oldest into `$mqk(queue)`/`$mqv(queue)`
//! (kept per worker thread, as per process in Kamailio), `mq_size` and
//! `$mq_size(queue)` count, `mq_pv_free` forgets the fetched item.
#![forbid(unsafe_code)]

use sr_sdk::prelude::*;
use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, RwLock};

/// What `mq_add` does with a key already queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddMode {
    /// Queue it again (0).
    Append,
    /// Keep the queued item, drop the new one (1).
    Keep,
    /// Drop the queued item and queue the new one last (2).
    Replace,
}

/// One queue.
#[derive(Debug)]
pub struct Queue {
    /// At most this many items (0: no limit).
    pub size: usize,
    /// What a queued key does to `mq_add`.
    pub mode: AddMode,
    items: VecDeque<(String, String)>,
}

impl Queue {
    /// Adds an item as the queue's settings say.
    pub fn add(&mut self, key: &str, value: &str) {
        if let Some(i) = self.items.iter().position(|(k, _)| k == key) {
            match self.mode {
                AddMode::Append => {}
                AddMode::Keep => return,
                // The old item goes; the new one is queued last.
                AddMode::Replace => {
                    self.items.remove(i);
                }
            }
        }
        if self.size > 0 && self.items.len() >= self.size {
            self.items.pop_front();
        }
        self.items.push_back((key.to_string(), value.to_string()));
    }

    /// Takes the oldest item.
    pub fn fetch(&mut self) -> Option<(String, String)> {
        self.items.pop_front()
    }

    /// How many items wait.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether none waits.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// Parses one `mqueue` parameter: `name=...;size=N;addmode=M;dbmode=0`.
pub fn parse_def(s: &str) -> Result<(String, Queue), String> {
    let mut name = None;
    let mut q = Queue {
        size: 0,
        mode: AddMode::Append,
        items: VecDeque::new(),
    };
    for part in s.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| format!("mqueue: '{part}' is not name=value"))?;
        let (k, v) = (k.trim(), v.trim());
        let num = || {
            v.parse::<usize>()
                .map_err(|_| format!("mqueue: {k}={v} is not a number"))
        };
        match k {
            "name" => name = Some(v.to_string()),
            "size" => q.size = num()?,
            "addmode" => {
                q.mode = match num()? {
                    0 => AddMode::Append,
                    1 => AddMode::Keep,
                    2 => AddMode::Replace,
                    n => return Err(format!("mqueue: addmode {n} is not 0, 1 or 2")),
                }
            }
            "dbmode" if num()? == 0 => {}
            "dbmode" => {
                return Err("mqueue: dbmode (queues saved in a database) is not supported".into())
            }
            _ => return Err(format!("mqueue: unknown attribute '{k}'")),
        }
    }
    let name = name
        .filter(|n| !n.is_empty())
        .ok_or("mqueue: a queue needs a name")?;
    Ok((name, q))
}

thread_local! {
    /// The item each queue last gave this worker.
    static FETCHED: RefCell<HashMap<String, (String, String)>> = RefCell::new(HashMap::new());
}

type Queues = Arc<RwLock<HashMap<String, Mutex<Queue>>>>;

fn with_queue<R>(qs: &Queues, name: &str, f: impl FnOnce(&mut Queue) -> R) -> Option<R> {
    let g = qs.read().ok()?;
    let q = g.get(name)?;
    let mut q = q.lock().unwrap_or_else(|e| e.into_inner());
    Some(f(&mut q))
}

fn fetched(name: &str, key: bool) -> Value<'static> {
    FETCHED.with(|f| {
        f.borrow().get(name).map_or(Value::Null, |(k, v)| {
            Value::str(if key { k.clone() } else { v.clone() })
        })
    })
}

/// The module definition.
pub fn module() -> ModuleDef {
    let qs: Queues = Arc::new(RwLock::new(HashMap::new()));
    let q0 = qs.clone();
    let mut def = ModuleDef::new("mqueue").param("mqueue", ParamKind::Str, move |v| {
        let ParamValue::Str(s) = v else {
            return Err("mqueue: a queue definition is text".into());
        };
        let (name, q) = parse_def(&s)?;
        let mut g = q0.write().map_err(|_| "mqueue: lock")?;
        if g.contains_key(&name) {
            return Err(format!("mqueue: queue '{name}' defined twice"));
        }
        g.insert(name, Mutex::new(q));
        Ok(())
    });
    let spve = || Some(fixup::f(fixup::spve));
    let qa = qs.clone();
    def = def.cmd("mq_add", 3, RouteType::ANY, spve(), move |ctx, a| {
        let (q, k, v) = (
            a[0].str(ctx).into_owned(),
            a[1].str(ctx).into_owned(),
            a[2].str(ctx).into_owned(),
        );
        match with_queue(&qa, &q, |x| x.add(&k, &v)) {
            Some(()) => 1,
            None => {
                lm_err!("mq_add: no queue '{q}'");
                -1
            }
        }
    });
    let qf = qs.clone();
    def = def.cmd("mq_fetch", 1, RouteType::ANY, spve(), move |ctx, a| {
        let q = a[0].str(ctx).into_owned();
        match with_queue(&qf, &q, Queue::fetch) {
            None => -1,
            Some(None) => {
                FETCHED.with(|f| f.borrow_mut().remove(&q));
                -2
            }
            Some(Some(item)) => {
                FETCHED.with(|f| f.borrow_mut().insert(q, item));
                1
            }
        }
    });
    let qz = qs.clone();
    def = def.cmd("mq_size", 1, RouteType::ANY, spve(), move |ctx, a| {
        let q = a[0].str(ctx).into_owned();
        match with_queue(&qz, &q, |x| x.len()) {
            Some(n) if n > 0 => n.min(i32::MAX as usize) as i32,
            // An empty queue gives -1 (0 would stop the script).
            _ => -1,
        }
    });
    def = def.cmd("mq_pv_free", 1, RouteType::ANY, spve(), |ctx, a| {
        let q = a[0].str(ctx).into_owned();
        FETCHED.with(|f| f.borrow_mut().remove(&q));
        1
    });
    let qp = qs.clone();
    def = def
        .pv("mqk", |_ctx, n| {
            fetched(n.inner.as_deref().unwrap_or(""), true)
        })
        .pv("mqv", |_ctx, n| {
            fetched(n.inner.as_deref().unwrap_or(""), false)
        })
        .pv("mq_size", move |_ctx, n| {
            let name = n.inner.as_deref().unwrap_or("");
            with_queue(&qp, name, |x| Value::Int(x.len() as i64)).unwrap_or(Value::Null)
        });
    let qr = qs.clone();
    def.rpc(
        "mqueue.get_size",
        "The number of items in a queue.",
        move |params| {
            let name = sr_sdk::rpc::param_str(params, 0, "queue name")?;
            let n = with_queue(&qr, &name, |x| x.len())
                .ok_or_else(|| RpcError::new(404, "No such queue"))?;
            Ok(json!({"name": name, "size": n}))
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queues_as_kamailio_keeps_them() {
        let (n, mut q) = parse_def("name=q2;size=2").unwrap();
        assert_eq!(n, "q2");
        q.add("k1", "v1");
        q.add("k2", "v2");
        q.add("k3", "v3");
        assert_eq!(
            q.fetch(),
            Some(("k2".into(), "v2".into())),
            "the oldest made room"
        );
        let (_, mut keep) = parse_def("name=q3;size=2;addmode=1").unwrap();
        keep.add("k1", "v1");
        keep.add("k1", "v2");
        keep.add("k2", "v3");
        assert_eq!(keep.fetch(), Some(("k1".into(), "v1".into())));
        assert_eq!(keep.len(), 1);
        let (_, mut rep) = parse_def("name=q4;addmode=2").unwrap();
        rep.add("k2", "v0");
        rep.add("k1", "v1");
        rep.add("k2", "v2");
        assert_eq!(rep.fetch(), Some(("k1".into(), "v1".into())));
        assert_eq!(rep.fetch(), Some(("k2".into(), "v2".into())));
        assert!(rep.is_empty());
        for bad in [
            "size=2",
            "name=x;size=a",
            "name=x;addmode=3",
            "name=x;dbmode=1",
            "name=x;y=1",
        ] {
            assert!(parse_def(bad).is_err(), "{bad}");
        }
    }
}
