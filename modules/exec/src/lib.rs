//! Module `exec` (Kamailio's): external commands run from the routing
//! script by `/bin/sh -c`, with the request's data in `SIP_*` environment
//! variables (`setvars`): `exec_msg` gives them the request on standard
//! input, `exec_avp` keeps their output lines as AVPs, `exec_dset` makes
//! the first line the Request-URI and the others branches, `exec_cmd`
//! only runs them. Each returns 1 when the command exits 0, else -1.
#![forbid(unsafe_code)]

use sr_sdk::prelude::*;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::AtomicI64;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The module's parameters.
#[derive(Debug)]
struct Params {
    setvars: Arc<AtomicI64>,
    time_to_kill: Arc<AtomicI64>,
}

/// The environment Kamailio's exec sets: each header as `SIP_HF_<NAME>`
/// (upper case, `-` as `_`; Call-ID as `CALLID`; repeated headers
/// comma-joined), `SIP_TID`, `SIP_DID`, `SIP_SRCIP`, `SIP_RURI`,
/// `SIP_USER`, `SIP_ORUI` (Kamailio's spelling) and `SIP_OUSER`.
pub fn environment(msg: &SipMsg) -> Vec<(String, String)> {
    let m = msg.msg();
    let mut hf: Vec<(String, String)> = Vec::new();
    for h in m.headers() {
        let mut name = h.name_str.to_ascii_uppercase().replace('-', "_");
        if name == "CALL_ID" || name == "I" {
            name = "CALLID".into();
        }
        let name = format!("SIP_HF_{name}");
        let v = h.value.trim().to_string();
        match hf.iter_mut().find(|(n, _)| *n == name) {
            Some((_, old)) => {
                old.push(',');
                old.push_str(&v);
            }
            None => hf.push((name, v)),
        }
    }
    let user = |uri: &str| {
        sr_sdk::sip_msg::Uri::parse(uri)
            .ok()
            .and_then(|u| u.user.map(str::to_string))
            .unwrap_or_default()
    };
    let ruri = msg.ruri().to_string();
    let oruri = m.request_uri().map_or("", |u| u.raw).to_string();
    let tid = {
        let h = sr_sdk::tag::hash64(
            b'x',
            &[
                m.call_id().unwrap_or("").as_bytes(),
                m.top_via()
                    .ok()
                    .and_then(|v| v.branch())
                    .unwrap_or("")
                    .as_bytes(),
            ],
        );
        let mut s = String::new();
        sr_sdk::tag::push_hex64(&mut s, h);
        s
    };
    let did = m.to_tag().ok().flatten().unwrap_or("").to_string();
    let mut env = hf;
    env.extend([
        ("SIP_TID".to_string(), tid),
        ("SIP_DID".to_string(), did),
        ("SIP_SRCIP".to_string(), msg.rcv.src.ip().to_string()),
        ("SIP_RURI".to_string(), ruri.clone()),
        ("SIP_USER".to_string(), user(&ruri)),
        ("SIP_ORUI".to_string(), oruri.clone()),
        ("SIP_OUSER".to_string(), user(&oruri)),
    ]);
    env
}

/// What a command did: whether it exited 0, and its standard output.
struct Ran {
    ok: bool,
    out: String,
}

/// Runs `cmd` with `/bin/sh -c`, `input` on its standard input, the
/// request's environment when `vars`, killed after `kill_after` when set.
fn run(
    cmd: &str,
    input: Option<&[u8]>,
    env: &[(String, String)],
    kill_after: Option<Duration>,
) -> Ran {
    use std::os::unix::process::CommandExt;
    let mut c = Command::new("/bin/sh");
    // A group of its own, so that a kill reaches what the shell started.
    c.process_group(0);
    c.arg("-c")
        .arg(cmd)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (k, v) in env {
        c.env(k, v);
    }
    let mut child = match c.spawn() {
        Ok(ch) => ch,
        Err(e) => {
            lm_err!("exec: cannot run '{cmd}': {e}");
            return Ran {
                ok: false,
                out: String::new(),
            };
        }
    };
    if let (Some(data), Some(mut stdin)) = (input, child.stdin.take()) {
        // A command that does not read its input gets EPIPE: not an error.
        let _ = stdin.write_all(data);
    }
    let mut out = String::new();
    let reader = child.stdout.take().map(|mut so| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = so.read_to_string(&mut s);
            s
        })
    });
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break Some(st),
            Ok(None) => {
                if kill_after.is_some_and(|k| started.elapsed() >= k) {
                    lm_warn!("exec: '{cmd}' killed after time_to_kill");
                    let _ = Command::new("kill")
                        .args(["-KILL", "--", &format!("-{}", child.id())])
                        .stderr(Stdio::null())
                        .status();
                    let _ = child.kill();
                    break child.wait().ok();
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(_) => break None,
        }
    };
    if let Some(r) = reader {
        out = r.join().unwrap_or_default();
    }
    Ran {
        ok: status.is_some_and(|s| s.success()),
        out,
    }
}

fn rc(b: bool) -> i32 {
    if b {
        1
    } else {
        -1
    }
}

impl Params {
    fn env(&self, msg: &SipMsg) -> Vec<(String, String)> {
        if params::get_int(&self.setvars) != 0 {
            environment(msg)
        } else {
            Vec::new()
        }
    }

    fn kill_after(&self) -> Option<Duration> {
        let t = params::get_int(&self.time_to_kill);
        (t > 0).then(|| Duration::from_secs(t as u64))
    }
}

/// The AVP names of `exec_avp`'s list (`$avp(a);$avp(b)`), as the
/// script's `$avp(...)` names them (`s:` dropped, `i:` kept).
fn avp_names(list: &str) -> Vec<String> {
    list.split([';', ','])
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(|x| {
            let inner = x
                .strip_prefix("$avp(")
                .and_then(|y| y.strip_suffix(')'))
                .unwrap_or(x);
            inner.strip_prefix("s:").unwrap_or(inner).to_string()
        })
        .collect()
}

/// The module definition.
pub fn module() -> ModuleDef {
    let p = Arc::new(Params {
        setvars: params::int_cell(1),
        time_to_kill: params::int_cell(0),
    });
    let mut def = ModuleDef::new("exec")
        .param("setvars", ParamKind::Int, params::int(&p.setvars))
        .param("time_to_kill", ParamKind::Int, params::int(&p.time_to_kill));
    let spve = || Some(fixup::f(fixup::spve));
    let pm = p.clone();
    def = def.cmd("exec_msg", 1, RouteType::ANY, spve(), move |ctx, a| {
        let cmd = a[0].str(ctx).into_owned();
        let input = ctx.msg.msg().raw().to_vec();
        let env = pm.env(ctx.msg);
        rc(run(&cmd, Some(&input), &env, pm.kill_after()).ok)
    });
    for n in 1..=2 {
        let pa = p.clone();
        // The command may hold variables; the AVP list is names.
        let fx = fixup::f(|env, i, arg| {
            if i == 0 {
                fixup::spve(env, i, arg)
            } else {
                fixup::const_str(env, i, arg)
            }
        });
        def = def.cmd("exec_avp", n, RouteType::ANY, Some(fx), move |ctx, a| {
            let cmd = a[0].str(ctx).into_owned();
            let names = a.get(1).map(|x| avp_names(&x.str(ctx)));
            let env = pa.env(ctx.msg);
            let ran = run(&cmd, None, &env, pa.kill_after());
            if !ran.ok {
                return -1;
            }
            for (i, line) in ran.out.lines().enumerate() {
                let name = match &names {
                    Some(list) => match list.get(i) {
                        Some(n) => n.clone(),
                        None => break,
                    },
                    // Numbered as Kamailio's: $avp(i:1), $avp(i:2), ...
                    None => format!("i:{}", i + 1),
                };
                ctx.msg.avps.push(&name, Value::str(line.to_string()));
            }
            1
        });
    }
    let pd = p.clone();
    def = def.cmd("exec_dset", 1, RouteType::REQUEST, spve(), move |ctx, a| {
        // As Kamailio's: the Request-URI is the command's argument.
        let cmd = format!("{} {}", a[0].str(ctx), ctx.msg.ruri());
        let env = pd.env(ctx.msg);
        let ran = run(&cmd, None, &env, pd.kill_after());
        let mut lines = ran.out.lines().map(str::trim).filter(|l| !l.is_empty());
        if let Some(first) = lines.next() {
            if let Err(e) = ctx
                .core
                .pv_set(ctx.msg, "$ru", Value::str(first.to_string()))
            {
                lm_err!("exec_dset: the new Request-URI '{first}': {e}");
                return -1;
            }
        }
        for uri in lines {
            ctx.msg.branches.push(sr_sdk::Branch {
                uri: uri.to_string(),
                ..Default::default()
            });
        }
        rc(ran.ok)
    });
    let pc = p.clone();
    def.cmd("exec_cmd", 1, RouteType::ANY, spve(), move |ctx, a| {
        let cmd = a[0].str(ctx).into_owned();
        let env = pc.env(ctx.msg);
        rc(run(&cmd, None, &env, pc.kill_after()).ok)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_run_and_report() {
        let r = run("read x; echo got $x; echo two", Some(b"in\n"), &[], None);
        assert!(r.ok);
        assert_eq!(r.out, "got in\ntwo\n");
        assert!(!run("exit 3", None, &[], None).ok);
        let env = vec![("SIP_X".to_string(), "v".to_string())];
        assert_eq!(run("printf %s \"$SIP_X\"", None, &env, None).out, "v");
        let t = Instant::now();
        assert!(!run("sleep 5", None, &[], Some(Duration::from_millis(1))).ok);
        assert!(t.elapsed() < Duration::from_secs(4), "killed");
    }

    #[test]
    fn avp_lists() {
        assert_eq!(
            avp_names("$avp(x);$avp(s:y), $avp(i:3)"),
            vec!["x", "y", "i:3"]
        );
    }
}
