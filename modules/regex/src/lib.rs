//! # regex: regular expressions from the script or a groups file
//!
//! Kamailio's `regex` module. `pcre_match(string, regex)` matches a
//! string against an expression given in the script;
//! `pcre_match_group(string[, group])` against one of the groups read
//! from `file` at start (and again on `regex.reload`, swapped in whole).
//! Expressions are read as PCRE reads them without UTF mode (bytes, ASCII
//! classes), with the `pcre_*` options; the engine is Rust's `regex`
//! (no look-around or back-references).
#![forbid(unsafe_code)]

pub mod groups;

use groups::Options;
use regex::bytes::Regex;
use sr_sdk::prelude::*;
use sr_sdk::RpcError;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, Mutex, RwLock};

/// The module's state.
struct RegexMod {
    file: Arc<RwLock<String>>,
    max_groups: Arc<AtomicI64>,
    group_max_size: Arc<AtomicI64>,
    caseless: Arc<AtomicI64>,
    multiline: Arc<AtomicI64>,
    dotall: Arc<AtomicI64>,
    extended: Arc<AtomicI64>,
    /// The groups, replaced whole by a reload.
    groups: RwLock<Arc<Vec<Regex>>>,
    reloading: Mutex<()>,
}

/// Expressions compiled by `pcre_match`, per worker (Kamailio compiles
/// them at every call); emptied when it holds this many.
const CACHE_SIZE: usize = 128;

thread_local! {
    static CACHE: RefCell<HashMap<String, Option<Regex>>> = RefCell::new(HashMap::new());
}

impl RegexMod {
    fn options(&self) -> Options {
        let on = |c: &AtomicI64| params::get_int(c) != 0;
        Options {
            max_groups: params::get_int(&self.max_groups).max(0) as usize,
            group_max_size: params::get_int(&self.group_max_size).max(0) as usize,
            pcre: sr_sdk::pcre::Options {
                caseless: on(&self.caseless),
                multiline: on(&self.multiline),
                dotall: on(&self.dotall),
                extended: on(&self.extended),
            },
        }
    }

    /// Reads and compiles the groups file.
    fn load(&self) -> Result<(), String> {
        let _one = self.reloading.lock().unwrap_or_else(|e| e.into_inner());
        let file = params::get_str(&self.file);
        let text =
            std::fs::read(&file).map_err(|e| format!("could not open file '{file}': {e}"))?;
        let o = self.options();
        let exprs = groups::expressions(&text, &o)?;
        lm_info!("regex: num groups = {}", exprs.len());
        let compiled = exprs
            .iter()
            .map(|e| groups::compile(e, &o))
            .collect::<Result<Vec<_>, _>>()?;
        match self.groups.write() {
            Ok(mut g) => *g = Arc::new(compiled),
            Err(e) => *e.into_inner() = Arc::new(compiled),
        }
        Ok(())
    }

    /// `pcre_match`: 1 matches, -1 does not, -4 the expression does not
    /// compile.
    fn pcre_match(&self, s: &str, re: &str) -> i32 {
        let o = self.options();
        CACHE.with(|c| {
            let mut c = c.borrow_mut();
            if !c.contains_key(re) {
                if c.len() >= CACHE_SIZE {
                    c.clear();
                }
                let compiled = groups::compile(re.as_bytes(), &o)
                    .map_err(|e| lm_err!("regex: pcre_re {e}"))
                    .ok();
                c.insert(re.to_string(), compiled);
            }
            match c.get(re) {
                Some(Some(r)) if r.is_match(s.as_bytes()) => 1,
                Some(Some(_)) => -1,
                _ => -4,
            }
        })
    }

    /// `pcre_match_group`: 1 matches, -1 does not, -2 no groups file, -4
    /// no such group.
    fn match_group(&self, s: &str, group: &str) -> i32 {
        if params::get_str(&self.file).is_empty() {
            lm_err!("regex: group matching is disabled");
            return -2;
        }
        // As Kamailio's str2int: the digits before anything else (none:
        // group 0).
        let n = group
            .bytes()
            .take_while(u8::is_ascii_digit)
            .fold(0u32, |n, d| {
                n.wrapping_mul(10).wrapping_add(u32::from(d - b'0'))
            }) as usize;
        let groups = self
            .groups
            .read()
            .map(|g| g.clone())
            .unwrap_or_else(|e| e.into_inner().clone());
        match groups.get(n) {
            Some(r) if r.is_match(s.as_bytes()) => 1,
            Some(_) => -1,
            None => {
                lm_err!(
                    "regex: invalid pcre index '{n}', there are {} pcres",
                    groups.len()
                );
                -4
            }
        }
    }
}

/// The `regex` module.
pub fn module() -> ModuleDef {
    let m = Arc::new(RegexMod {
        file: params::str_cell(""),
        max_groups: params::int_cell(20),
        group_max_size: params::int_cell(8192),
        caseless: params::int_cell(0),
        multiline: params::int_cell(0),
        dotall: params::int_cell(0),
        extended: params::int_cell(0),
        groups: RwLock::new(Arc::new(Vec::new())),
        reloading: Mutex::new(()),
    });
    let mut def = ModuleDef::new("regex").param("file", ParamKind::Str, params::string(&m.file));
    for (name, cell) in [
        ("max_groups", &m.max_groups),
        ("group_max_size", &m.group_max_size),
        ("pcre_caseless", &m.caseless),
        ("pcre_multiline", &m.multiline),
        ("pcre_dotall", &m.dotall),
        ("pcre_extended", &m.extended),
    ] {
        def = def.param(name, ParamKind::Int, params::int(cell));
    }
    let routes = RouteType::REQUEST
        | RouteType::FAILURE
        | RouteType::ONREPLY
        | RouteType::BRANCH
        | RouteType::LOCAL;
    let spve = Some(fixup::f(fixup::spve));
    let (a, b, c, init, r) = (m.clone(), m.clone(), m.clone(), m.clone(), m);
    def.on_init(move |_| {
        if params::get_str(&init.file).is_empty() {
            return Ok(());
        }
        init.load()
            .map_err(|e| format!("regex: failed to load pcres: {e}"))
    })
    .cmd("pcre_match", 2, routes, spve.clone(), move |ctx, p| {
        let s = p[0].str(ctx).into_owned();
        let re = p[1].str(ctx).into_owned();
        a.pcre_match(&s, &re)
    })
    .cmd(
        "pcre_match_group",
        1,
        routes,
        spve.clone(),
        move |ctx, p| {
            let s = p[0].str(ctx).into_owned();
            b.match_group(&s, "0")
        },
    )
    .cmd("pcre_match_group", 2, routes, spve, move |ctx, p| {
        let s = p[0].str(ctx).into_owned();
        let g = p[1].str(ctx).into_owned();
        c.match_group(&s, &g)
    })
    .rpc("regex.reload", "Reload regex file", move |_| {
        if params::get_str(&r.file).is_empty() {
            lm_notice!("regex: 'file' parameter is not set, group matching disabled");
            return Err(RpcError::new(500, "Group matching not enabled"));
        }
        r.load().map_err(|e| {
            lm_err!("regex: failed to reload pcres: {e}");
            RpcError::new(500, "Failed to reload")
        })?;
        Ok(Json::Null)
    })
}
