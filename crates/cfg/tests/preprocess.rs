//! Preprocessor directives, includes and `--cfg-print` rendering.

use std::path::{Path, PathBuf};

use sr_cfg::*;

fn parse_with(text: &str, opts: &ParseOptions) -> Config {
    match parse_str("pp.cfg", text, opts) {
        Ok(c) => c,
        Err(es) => panic!(
            "unexpected errors:\n{}",
            es.iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        ),
    }
}

fn parse(text: &str) -> Config {
    parse_with(text, &ParseOptions::default())
}

fn errors(text: &str) -> Vec<String> {
    match parse_str("pp.cfg", text, &ParseOptions::default()) {
        Ok(_) => panic!("expected errors"),
        Err(es) => es.iter().map(|e| e.to_string()).collect(),
    }
}

fn global_int(cfg: &Config, name: &str) -> Option<i64> {
    match cfg.global(name).map(|g| &g.value) {
        Some(GlobalValue::Int(n)) => Some(*n),
        _ => None,
    }
}

fn global_str(cfg: &Config, name: &str) -> Option<String> {
    match cfg.global(name).map(|g| &g.value) {
        Some(GlobalValue::Str(s) | GlobalValue::Word(s)) => Some(s.clone()),
        _ => None,
    }
}

/// A fresh, empty temporary directory for one test.
fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sr-cfg-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn define_substitutes_ids_not_strings() {
    let cfg = parse(
        "#!define LEVEL 3\n#!def NAME \"srv\"\ndebug=LEVEL\nserver_header=NAME\nx=\"LEVEL\"\n",
    );
    assert_eq!(global_int(&cfg, "debug"), Some(3));
    assert_eq!(global_str(&cfg, "server_header").as_deref(), Some("srv"));
    assert_eq!(global_str(&cfg, "x").as_deref(), Some("LEVEL"));
    assert_eq!(cfg.defines.get("LEVEL"), Some(&Some("3".to_string())));
}

#[test]
fn define_values_expand_recursively_and_multi_token() {
    let cfg = parse(
        "#!define A B\n#!define B 7\n#!define SELF SELF\n#!define EXPR 1 + \\\n 2\n\
         a=A\nrequest_route { if ($x == EXPR) { f(SELF); } }\n",
    );
    assert_eq!(global_int(&cfg, "a"), Some(7));
    let r = cfg.request_route().unwrap();
    match &r.body.stmts[0].kind {
        StmtKind::If { cond, then, .. } => {
            assert!(matches!(
                &cond.kind,
                ExprKind::Binary(BinaryOp::Eq, _, rhs) if matches!(rhs.kind, ExprKind::Binary(BinaryOp::Add, _, _))
            ));
            // the span of an expanded token is the span of the identifier it replaced
            assert_eq!(cond.span.line, 7);
            match &then.stmts[0].kind {
                StmtKind::Expr(Expr {
                    kind: ExprKind::Call(c),
                    ..
                }) => assert_eq!(c.args[0].kind, ExprKind::Ident("SELF".into())),
                other => panic!("{other:?}"),
            }
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn ifdef_ifndef_else_nested() {
    let text = "#!ifdef A\n\
                  #!ifdef B\n  v=1\n  #!else\n  v=2\n  #!endif\n\
                #!else\n\
                  #!ifndef B\n  v=3\n  #!else\n  v=4\n  #!endif\n\
                #!endif\n";
    let v = |defs: &[&str]| {
        let mut o = ParseOptions::default();
        for d in defs {
            o = o.define(d, None);
        }
        global_int(&parse_with(text, &o), "v")
    };
    assert_eq!(v(&["A", "B"]), Some(1));
    assert_eq!(v(&["A"]), Some(2));
    assert_eq!(v(&[]), Some(3));
    assert_eq!(v(&["B"]), Some(4));
}

#[test]
fn skipped_regions_are_not_lexed() {
    let cfg = parse("#!ifdef NOPE\n this is 'not valid \" at all {{{\n#!endif\nv=1\n");
    assert_eq!(global_int(&cfg, "v"), Some(1));
}

#[test]
fn trydef_redefine_undef() {
    let text = "#!trydef PORT 5060\n#!trydef PORT 9999\nport=PORT\n\
                #!define X 1\n#!redefine X 2\nx=X\n#!redef X 3\ny=X\n\
                #!undef X\n#!ifdef X\nz=1\n#!endif\n#!tryundef NEVER\n";
    let cfg = parse(text);
    assert_eq!(global_int(&cfg, "port"), Some(5060));
    assert_eq!(global_int(&cfg, "x"), Some(2));
    assert_eq!(global_int(&cfg, "y"), Some(3));
    assert!(cfg.global("z").is_none());
    // -A overrides a trydef
    let cfg = parse_with(text, &ParseOptions::default().define_arg("PORT=5080"));
    assert_eq!(global_int(&cfg, "port"), Some(5080));
}

#[test]
fn define_twice_is_an_error() {
    let e = errors("#!define X 1\n#!define X 2\n");
    assert_eq!(e.len(), 1);
    assert!(
        e[0].starts_with("pp.cfg:2:1: #!define: 'X' is already defined"),
        "{}",
        e[0]
    );
    assert!(e[0].contains("pp.cfg:1"), "{}", e[0]);
    // a -A define is also "already defined" for #!define
    let r = parse_str(
        "pp.cfg",
        "#!define X 1\n",
        &ParseOptions::default().define("X", None),
    );
    assert!(r.is_err());
}

#[test]
fn subst_and_substdef() {
    let cfg = parse(
        "#!subst \"/MYIP/10.1.2.3/g\"\n#!substdef \"!PORTNUM!5090!\"\n#!substdefs \"/HOST/example.com/\"\n\
         a=\"MYIP:PORTNUM MYIP\"\nb=PORTNUM\nc=HOST\nd=MYIP\n",
    );
    assert_eq!(
        global_str(&cfg, "a").as_deref(),
        Some("10.1.2.3:5090 10.1.2.3")
    );
    assert_eq!(global_int(&cfg, "b"), Some(5090));
    assert_eq!(global_str(&cfg, "c").as_deref(), Some("example.com"));
    // #!subst does not touch identifiers
    assert_eq!(global_str(&cfg, "d").as_deref(), Some("MYIP"));
    // command line substs
    let mut o = ParseOptions::default();
    o.substs.push("/A/B/".into());
    let cfg = parse_with("a=\"xAx\"\n", &o);
    assert_eq!(global_str(&cfg, "a").as_deref(), Some("xBx"));
}

#[test]
fn defenv() {
    std::env::set_var("SR_CFG_TEST_ENV_PORT", "5070");
    let cfg = parse(
        "#!defenv PORT=SR_CFG_TEST_ENV_PORT\n#!defenvs SPORT=SR_CFG_TEST_ENV_PORT\n\
         #!trydefenv MISSING=SR_CFG_TEST_ENV_NOT_SET\n#!defenv SR_CFG_TEST_ENV_PORT\n\
         a=PORT\nb=SPORT\nc=SR_CFG_TEST_ENV_PORT\n#!ifdef MISSING\nd=1\n#!endif\n",
    );
    assert_eq!(global_int(&cfg, "a"), Some(5070));
    assert_eq!(global_str(&cfg, "b").as_deref(), Some("5070"));
    assert_eq!(global_int(&cfg, "c"), Some(5070));
    assert!(cfg.global("d").is_none());
    let e = errors("#!defenv X=SR_CFG_TEST_ENV_NOT_SET\n");
    assert!(e[0].contains("environment variable 'SR_CFG_TEST_ENV_NOT_SET' is not set"));
}

#[test]
fn markers_and_bang_bang_directives() {
    for m in ["#!KAMAILIO", "#!OPENSER", "#!SER", "#!MAXCOMPAT"] {
        let cfg = parse(&format!("{m}\n!!define X 4\nv=X\n"));
        assert_eq!(global_int(&cfg, "v"), Some(4));
    }
}

#[test]
fn loadmodule_defines_mod_name_for_what_follows() {
    let cfg = parse(
        "#!ifdef MOD_tm\nbefore=1\n#!endif\nloadmodule \"tm.so\"\nloadmodule(\"/usr/lib/x/sl.so\")\n\
         #!ifdef MOD_tm\nafter=1\n#!endif\n#!ifdef MOD_sl\nsl=1\n#!endif\n#!ifndef MOD_xlog\nnoxlog=1\n#!endif\n",
    );
    assert!(cfg.global("before").is_none());
    assert_eq!(global_int(&cfg, "after"), Some(1));
    assert_eq!(global_int(&cfg, "sl"), Some(1));
    assert_eq!(global_int(&cfg, "noxlog"), Some(1));
    assert!(cfg.is_defined("MOD_tm"));
}

#[test]
fn ifexp_is_reported_as_unsupported() {
    let e = errors("#!ifexp X == 1\nv=1\n#!endif\n");
    assert_eq!(
        e,
        vec!["pp.cfg:1:1: #!ifexp is not supported by this implementation"]
    );
}

#[test]
fn include_relative_and_import_missing() {
    let dir = temp_dir("include");
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(dir.join("main.cfg"), "include_file \"sub/a.cfg\"\n#!include_file \"b.cfg\"\nimport_file \"missing.cfg\"\nmain=1\n").unwrap();
    // relative to the including file's folder
    std::fs::write(dir.join("sub/a.cfg"), "a=1\ninclude_file \"c.cfg\"\n").unwrap();
    std::fs::write(dir.join("sub/c.cfg"), "c=1\n#!define FROM_C 5\n").unwrap();
    std::fs::write(dir.join("b.cfg"), "b=FROM_C\n").unwrap();
    let cfg = parse_file(&dir.join("main.cfg"), &ParseOptions::default()).unwrap();
    let names: Vec<_> = cfg.globals().map(|g| g.name.clone()).collect();
    assert_eq!(names, vec!["a", "c", "b", "main"]);
    assert_eq!(global_int(&cfg, "b"), Some(5));
    assert_eq!(cfg.files.len(), 4);
    let c = cfg.global("c").unwrap();
    assert!(cfg.file_path(c.span.file).ends_with("sub/c.cfg"));
    assert_eq!(c.span.line, 1);

    // a missing include_file is an error pointing at the directive
    std::fs::write(dir.join("bad.cfg"), "v=1\n  include_file \"x.cfg\"\n").unwrap();
    let e = parse_file(&dir.join("bad.cfg"), &ParseOptions::default()).unwrap_err();
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].line, 2);
    assert_eq!(e[0].col, 3);
    assert_eq!(
        e[0].message,
        "include_file: cannot read 'x.cfg': No such file or directory"
    );
    // include_dirs are searched too
    let other = temp_dir("include-dirs");
    std::fs::write(other.join("x.cfg"), "x=1\n").unwrap();
    let mut o = ParseOptions::default();
    o.include_dirs.push(other.clone());
    let cfg = parse_file(&dir.join("bad.cfg"), &o).unwrap();
    assert_eq!(global_int(&cfg, "x"), Some(1));
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&other);
}

#[test]
fn include_depth_is_limited() {
    let dir = temp_dir("recursive");
    std::fs::write(dir.join("self.cfg"), "include_file \"self.cfg\"\n").unwrap();
    let e = parse_file(&dir.join("self.cfg"), &ParseOptions::default()).unwrap_err();
    assert!(e
        .iter()
        .any(|e| e.message.contains("too many nested includes")));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn unbalanced_conditionals() {
    let e = errors("v=1\n#!endif\n");
    assert_eq!(e, vec!["pp.cfg:2:1: #!endif without #!ifdef"]);
    let e = errors("#!else\n");
    assert_eq!(e, vec!["pp.cfg:1:1: #!else without #!ifdef"]);
    let e = errors("#!ifdef A\n#!ifndef B\nv=1\n#!endif\n");
    assert_eq!(e, vec!["pp.cfg:1:1: missing #!endif for '#!ifdef A'"]);
    let e = errors("#!ifdef A\n#!else\n#!else\n#!endif\n");
    assert_eq!(e, vec!["pp.cfg:3:1: duplicate #!else for '#!ifdef A'"]);
}

#[test]
fn cfg_print_renders_preprocessed_text() {
    let out = preprocess_str_to_string(
        "p.cfg",
        "#!define L 3\n# comment\ndebug=L\n#!ifdef NO\nx=1\n#!endif\n#!subst \"/a/b/\"\ns=\"a\\\"q\"  // c\nrequest_route {\n  exit;\n}\n",
        &ParseOptions::default(),
    )
    .unwrap();
    assert_eq!(out, "debug=3\ns=\"b\\\"q\"\nrequest_route {\nexit;\n}\n");
    // the output parses back to the same thing
    assert!(parse_str("again.cfg", &out, &ParseOptions::default()).is_ok());
}

#[test]
fn parse_file_reports_missing_main_file() {
    let e = parse_file(
        Path::new("/nonexistent/sr-cfg.cfg"),
        &ParseOptions::default(),
    )
    .unwrap_err();
    assert_eq!(
        e[0].to_string(),
        "/nonexistent/sr-cfg.cfg:0:0: cannot read config file: No such file or directory"
    );
}
