//! Fuzz-style robustness test: thousands of mutated configurations must
//! never make the preprocessor, the parser or the PV parser panic or hang.

use std::path::Path;

use sr_cfg::*;

/// Small deterministic PRNG (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

const SEEDS: &[&str] = &[
    "#!KAMAILIO\n#!define X 1\n#!ifdef X\ndebug=X\n#!else\ndebug=2\n#!endif\n\
     listen=udp:127.0.0.1:5060 advertise 1.2.3.4:5060 name \"s\"\n\
     loadmodule \"tm.so\"\nmodparam(\"tm\", \"fr_timer\", 100)\n\
     #!ifdef MOD_tm\nflags A:1, B;\n#!endif\npstn.gw = \"x\" desc \"d\"\n",
    "request_route {\n\tif (!mf_process_maxfwd_header(\"10\") && $rU =~ \"^\\+1\") {\n\
     \t\tsl_send_reply(\"483\", \"Too Many Hops\");\n\t\texit;\n\t} else if (uri==myself) { drop; }\n\
     \t$var(x) = (int)$(hdr(From){tobody.tag}{s.len}) + 1 * 2 - -3;\n\
     \twhile ($var(x) < 10 || defined $avp(y)) { $var(x) += 1; break; }\n\
     \tswitch ($rm) { case \"INVITE\": route(RELAY); break; case /\"^B\": case -1: default: return(0); }\n\
     \troute($var(r));\n}\n",
    "route[RELAY] { if (src_ip == 10.0.0.0/8 and proto == UDP) { forward(udp:1.2.3.4:5060); } }\n\
     failure_route[F] { if (t_is_canceled()) exit; }\nonreply_route[R] { if (status =~ \"2[0-9][0-9]\") return; }\n\
     branch_route[B] { $sht(ipban=>$si) = 1; }\nevent_route[tm:local-request] { xlog(\"L_INFO\", \"$$ $ru\\n\"); }\n\
     reply_route { drop; }\nonsend_route { if (snd_ip == 1.2.3.4 && msg:len > 100) drop; }\n",
    "#!subst \"/A/B/g\"\n#!substdef \"/ID/v/\"\n#!trydef T 1\n#!redefine T 2\n#!undef T\n\
     /* comment /* nested */ */ // line\nimport_file \"nope.cfg\"\n\
     x = 0x1f + 017 + 101b\ns = 'a' \"b\" 'c'\n",
];

const INTERESTING: &[u8] = b"{}()[];:,\"'$#!/*\\\n\t =+-<>&|^~.@0123456789abcxyz_";

fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    let rounds = 1 + rng.below(8);
    for _ in 0..rounds {
        match rng.below(7) {
            0 if !v.is_empty() => {
                // delete a range
                let a = rng.below(v.len());
                let len = 1 + rng.below(16.min(v.len() - a));
                v.drain(a..a + len);
            }
            1 => {
                // insert an interesting byte
                let at = rng.below(v.len() + 1);
                v.insert(at, INTERESTING[rng.below(INTERESTING.len())]);
            }
            2 if !v.is_empty() => {
                // overwrite with a random byte (possibly invalid UTF-8)
                let at = rng.below(v.len());
                v[at] = rng.next() as u8;
            }
            3 if !v.is_empty() => {
                // duplicate a chunk somewhere else
                let a = rng.below(v.len());
                let len = 1 + rng.below(32.min(v.len() - a));
                let chunk: Vec<u8> = v[a..a + len].to_vec();
                let at = rng.below(v.len() + 1);
                v.splice(at..at, chunk);
            }
            4 if !v.is_empty() => {
                // truncate
                let at = rng.below(v.len());
                v.truncate(at);
            }
            5 => {
                // insert a directive or construct
                const SNIPPETS: &[&str] = &[
                    "#!ifdef X\n",
                    "#!endif\n",
                    "#!else\n",
                    "#!define X 1\n",
                    "#!define X X X\n",
                    "$(",
                    "$(avp(x)[",
                    "{s.",
                    "\"",
                    "/*",
                    "include_file \"x\"\n",
                    "case ",
                    "(int)",
                    "route[",
                    "if (",
                    "else",
                    "switch(",
                    "!!define",
                    "#!ifexp 1\n",
                    "$sht(a=>$(b[$(c)]))",
                    "0x",
                    "1.2.3.4/",
                    "msg:",
                    "((((((((",
                    "}}}}",
                ];
                let s = SNIPPETS[rng.below(SNIPPETS.len())].as_bytes();
                let at = rng.below(v.len() + 1);
                v.splice(at..at, s.iter().copied());
            }
            _ => {
                // swap two bytes
                if v.len() > 1 {
                    let a = rng.below(v.len());
                    let b = rng.below(v.len());
                    v.swap(a, b);
                }
            }
        }
    }
    v
}

fn exercise(bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    let opts = ParseOptions::default().define("X", Some("2"));
    let r = std::panic::catch_unwind(|| {
        let _ = parse_str("fuzz.cfg", &text, &opts);
        let _ = preprocess_str_to_string("fuzz.cfg", &text, &opts);
        // every "$..." fragment through the PV and format parsers
        let _ = parse_format(&text);
        for (i, _) in text.match_indices('$').take(20) {
            let end = (i + 40).min(text.len());
            if let Some(s) = text.get(i..end) {
                let _ = parse_pv(s);
            }
        }
    });
    if r.is_err() {
        panic!("panic on input:\n{text:?}");
    }
}

#[test]
fn mutated_configs_never_panic() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for i in 0..5000 {
        let seed = SEEDS[i % SEEDS.len()].as_bytes();
        let m = mutate(&mut rng, seed);
        exercise(&m);
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(0xDEAD_BEEF_1234_5678);
    for _ in 0..1000 {
        let len = rng.below(200);
        let v: Vec<u8> = (0..len)
            .map(|_| {
                if rng.below(2) == 0 {
                    INTERESTING[rng.below(INTERESTING.len())]
                } else {
                    rng.next() as u8
                }
            })
            .collect();
        exercise(&v);
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let deep_expr = format!(
        "request_route {{ $x = {}1{}; }}",
        "(".repeat(5000),
        ")".repeat(5000)
    );
    assert!(parse_str("d.cfg", &deep_expr, &ParseOptions::default()).is_err());
    let deep_not = format!("request_route {{ if ({}$x) exit; }}", "!".repeat(5000));
    assert!(parse_str("d.cfg", &deep_not, &ParseOptions::default()).is_err());
    let deep_blocks = format!(
        "request_route {{ {} exit; {} }}",
        "{".repeat(5000),
        "}".repeat(5000)
    );
    assert!(parse_str("d.cfg", &deep_blocks, &ParseOptions::default()).is_err());
    let deep_if = format!("request_route {{ {} exit; }}", "if ($x) ".repeat(5000));
    assert!(parse_str("d.cfg", &deep_if, &ParseOptions::default()).is_err());
    let bomb =
        "#!define A B B B B B B B B\n#!define B C C C C C C C C\n#!define C D D D D D D D D\n\
                #!define D E E E E E E E E\n#!define E F F F F F F F F\nx = A\n";
    assert!(parse_str("d.cfg", bomb, &ParseOptions::default()).is_err());
}

#[test]
fn mutated_stock_config_never_panics() {
    let path = "/etc/kamailio/kamailio.cfg";
    let Ok(text) = std::fs::read(Path::new(path)) else {
        println!("SKIP: {path} is not installed");
        return;
    };
    let mut rng = Rng(0x0123_4567_89AB_CDEF);
    for _ in 0..300 {
        let m = mutate(&mut rng, &text);
        exercise(&m);
    }
}

#[test]
fn nesting_just_below_the_limit_works_on_a_small_stack() {
    // run on a 1 MiB stack to leave head room for the default 2 MiB test threads
    let h = std::thread::Builder::new()
        .stack_size(1 << 20)
        .spawn(|| {
            let n = 30;
            let e = format!(
                "request_route {{ $x = {}1{}; }}",
                "(".repeat(n),
                ")".repeat(n)
            );
            assert!(parse_str("d.cfg", &e, &ParseOptions::default()).is_ok());
            let b = format!(
                "request_route {{ {} exit; {} }}",
                "{".repeat(n),
                "}".repeat(n)
            );
            assert!(parse_str("d.cfg", &b, &ParseOptions::default()).is_ok());
            let i = format!("request_route {{ {} exit; }}", "if ($x) ".repeat(n));
            assert!(parse_str("d.cfg", &i, &ParseOptions::default()).is_ok());
            let u = format!("request_route {{ if ({}$x) exit; }}", "!-".repeat(n));
            assert!(parse_str("d.cfg", &u, &ParseOptions::default()).is_ok());
        })
        .unwrap();
    h.join().unwrap();
}
