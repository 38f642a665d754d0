//! Error messages: location, wording, and recovery.

use sr_cfg::*;

fn errors(text: &str) -> Vec<String> {
    match parse_str("e.cfg", text, &ParseOptions::default()) {
        Ok(_) => panic!("expected errors for:\n{text}"),
        Err(es) => es.iter().map(|e| e.to_string()).collect(),
    }
}

fn one_error(text: &str) -> String {
    let e = errors(text);
    assert_eq!(e.len(), 1, "expected one error, got {e:#?}");
    e.into_iter().next().unwrap_or_default()
}

#[test]
fn display_format() {
    let e = CfgError {
        file: "/etc/k.cfg".into(),
        line: 3,
        col: 7,
        message: "boom".into(),
    };
    assert_eq!(e.to_string(), "/etc/k.cfg:3:7: boom");
}

#[test]
fn missing_semicolon() {
    assert_eq!(
        one_error("request_route {\n  t_relay()\n}\n"),
        "e.cfg:3:1: unexpected token '}', expected ';'"
    );
    assert_eq!(
        one_error("request_route {\n  f() g();\n}\n"),
        "e.cfg:2:7: unexpected token 'g', expected ';'"
    );
}

#[test]
fn unknown_route_block_type() {
    assert_eq!(
        one_error("requst_route {\n exit;\n}\n"),
        "e.cfg:1:1: unknown route block type 'requst_route' (did you mean 'request_route'?)"
    );
    // errors inside the unknown block are still reported
    let e = errors("foo_route[X] {\n exit\n}\n");
    assert_eq!(e.len(), 2);
    assert!(e[0].starts_with("e.cfg:1:1: unknown route block type 'foo_route'"));
    assert_eq!(e[1], "e.cfg:3:1: unexpected token '}', expected ';'");
}

#[test]
fn unterminated_string_and_comment() {
    assert_eq!(
        one_error("a=1\nb=\"abc\n"),
        "e.cfg:2:3: unterminated string"
    );
    assert_eq!(
        one_error("a=1\n  /* abc\n"),
        "e.cfg:2:3: unterminated comment '/*'"
    );
}

#[test]
fn bad_tokens_and_pvs() {
    assert_eq!(
        one_error("request_route {\n  $var(x) = 1 ` 2;\n}\n"),
        "e.cfg:2:15: unexpected character '`'"
    );
    assert_eq!(
        one_error("request_route {\n  $ = 1;\n}\n"),
        "e.cfg:2:3: invalid pseudo-variable: expected a name after '$'"
    );
    assert_eq!(
        one_error("request_route {\n  $(ru{s.len) = 1;\n}\n"),
        "e.cfg:2:3: invalid pseudo-variable '$(ru{s.len)': unterminated transformation: missing '}'"
    );
    assert_eq!(one_error("a=09\n"), "e.cfg:1:3: invalid number '09'");
}

#[test]
fn statement_errors() {
    assert_eq!(
        one_error("request_route {\n  else { exit; }\n}\n"),
        "e.cfg:2:3: 'else' without a matching 'if'"
    );
    assert_eq!(
        one_error("request_route {\n  if $a { exit; }\n}\n"),
        "e.cfg:2:6: unexpected token '$a', expected '(' after 'if'"
    );
    assert_eq!(
        one_error("request_route {\n  $var(a) 5;\n}\n"),
        "e.cfg:2:11: unexpected token '5', expected '=' or '+=' after '$var(a)'"
    );
    assert_eq!(
        one_error("request_route {\n  switch ($a) { case x: exit; }\n}\n"),
        "e.cfg:2:22: unexpected token 'x', expected a number, a string or /\"regex\" after 'case'"
    );
    assert_eq!(
        one_error("request_route {\n  f(1,,2);\n}\n"),
        "e.cfg:2:7: unexpected token ',', expected an expression"
    );
    assert_eq!(
        one_error("request_route {\n  1 + 2;\n}\n"),
        "e.cfg:2:3: expected a statement (function call, assignment, if, switch, while, return, exit, drop or break)"
    );
}

#[test]
fn top_level_errors() {
    assert_eq!(
        one_error("debug 3\n"),
        "e.cfg:1:1: unexpected token 'debug' at top level, expected a global parameter assignment ('name = value'), loadmodule, modparam or a route block"
    );
    assert_eq!(
        one_error("modparam(\"tm\", \"fr_timer\", FOO)\n"),
        "e.cfg:1:28: unexpected token 'FOO', expected a string or a number as value of modparam(\"tm\", \"fr_timer\")"
    );
    assert_eq!(
        one_error("loadmodul \"tm.so\"\n"),
        "e.cfg:1:1: unexpected token 'loadmodul' at top level, expected a global parameter assignment ('name = value'), loadmodule, modparam or a route block (did you mean 'loadmodule'?)"
    );
    assert_eq!(
        errors("debug=\nfork=yes\nchildren=\n"),
        vec!["e.cfg:1:6: missing value after 'debug='", "e.cfg:4:1: unexpected end of file, expected a value (number, string, yes/no or address)"]
    );
    assert_eq!(
        one_error("loadmodule tm\n"),
        "e.cfg:1:12: unexpected token 'tm', expected a quoted module name"
    );
    assert_eq!(
        one_error("event_route {\n}\n"),
        "e.cfg:1:1: event_route requires a name, e.g. event_route[group:event]"
    );
    assert_eq!(
        one_error("}\n"),
        "e.cfg:1:1: unexpected token '}', expected a global parameter assignment, loadmodule, modparam or a route block"
    );
}

#[test]
fn unexpected_eof() {
    assert_eq!(
        one_error("request_route {\n  exit;\n"),
        "e.cfg:3:1: unexpected end of file, expected '}' to close the block opened at line 1"
    );
}

#[test]
fn several_mistakes_are_all_reported() {
    let text = "debug=3\n\
                loadmodule \"tm.so\"\n\
                request_route {\n\
                \tt_relay()\n\
                \tif ($a == ) { exit; }\n\
                \t$var(x) = \"ok\";\n\
                \tsl_send_reply(\"404\" \"x\";\n\
                }\n\
                requst_route { exit; }\n\
                route[OK] { return; }\n\
                failure_route[F] {\n\
                \tdrop\n\
                }\n";
    let e = errors(text);
    assert_eq!(
        e,
        vec![
            "e.cfg:5:2: unexpected token 'if', expected ';'",
            "e.cfg:5:12: unexpected token ')', expected an expression",
            "e.cfg:7:25: unexpected token ';', expected ',' or ')' in the arguments of 'sl_send_reply'",
            "e.cfg:9:1: unknown route block type 'requst_route' (did you mean 'request_route'?)",
            "e.cfg:13:1: unexpected token '}', expected ';'",
        ]
    );
}

#[test]
fn errors_in_included_files_name_that_file() {
    let dir = std::env::temp_dir().join(format!("sr-cfg-errors-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("main.cfg"),
        "include_file \"inc.cfg\"\nrequest_route { exit; }\n",
    )
    .unwrap();
    std::fs::write(dir.join("inc.cfg"), "\n\nroute[X] {\n  f(\n}\n").unwrap();
    let e = parse_file(&dir.join("main.cfg"), &ParseOptions::default()).unwrap_err();
    assert_eq!(e.len(), 1);
    assert!(e[0].file.ends_with("inc.cfg"));
    assert_eq!((e[0].line, e[0].col), (5, 1));
    let _ = std::fs::remove_dir_all(&dir);
}
