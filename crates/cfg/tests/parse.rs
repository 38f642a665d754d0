//! Parser tests on small inline configurations.

use sr_cfg::*;

fn parse(text: &str) -> Config {
    match parse_str("test.cfg", text, &ParseOptions::default()) {
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

fn request_body(text: &str) -> Vec<Stmt> {
    let cfg = parse(text);
    cfg.request_route()
        .expect("request_route")
        .body
        .stmts
        .clone()
}

/// Parse `expr` as the condition of an if statement.
fn cond(expr: &str) -> Expr {
    let stmts = request_body(&format!("request_route {{ if ({expr}) {{ exit; }} }}"));
    match &stmts[0].kind {
        StmtKind::If { cond, .. } => cond.clone(),
        other => panic!("{other:?}"),
    }
}

/// Render an expression with explicit parentheses.
fn show(e: &Expr) -> String {
    match &e.kind {
        ExprKind::Int(n) => n.to_string(),
        ExprKind::Str(s) => format!("{s:?}"),
        ExprKind::Bool(b) => b.to_string(),
        ExprKind::Null => "$null".into(),
        ExprKind::Pv(p) => p.text.clone(),
        ExprKind::Select(s) => format!("@{s}"),
        ExprKind::Ident(s) => s.clone(),
        ExprKind::Word(s) => format!("w:{s}"),
        ExprKind::Net { addr, mask } => format!("{addr}/{mask}"),
        ExprKind::Myself => "myself".into(),
        ExprKind::CoreVar(c) => format!("{c:?}"),
        ExprKind::Call(c) => format!(
            "{}({})",
            c.name,
            c.args.iter().map(show).collect::<Vec<_>>().join(",")
        ),
        ExprKind::Unary(op, e) => format!("({op:?} {})", show(e)),
        ExprKind::Binary(op, a, b) => format!("({} {} {})", show(a), op.as_str(), show(b)),
        ExprKind::Cast(k, e) => format!("({k:?}){}", show(e)),
        ExprKind::Defined(e) => format!("(defined {})", show(e)),
        ExprKind::Strlen(e) => format!("strlen({})", show(e)),
        ExprKind::Strempty(e) => format!("strempty({})", show(e)),
    }
}

#[test]
fn globals_of_all_kinds() {
    let cfg = parse(
        "#!KAMAILIO\n\
         debug=-1\nfork=yes\ndns=off\nlog_facility=LOG_LOCAL0\n\
         log_prefix=\"{$mt} \" \"x\"\nport=0x13c4\nmask=017\nbits=101b\n\
         listen=udp:127.0.0.1:5060 advertise 1.2.3.4:5080 name \"s1\"\n\
         listen=tcp:[::1]:5060\nlisten=udp:10.0.0.1 tcp:10.0.0.1\n\
         alias=\"sip.example.com\"\nalias=a.example.com b.example.com\n\
         socket = { bind = udp:127.0.0.1:5070; name = \"s2\"; }\n\
         kemi.onsend_route_callback=\"ksr_onsend\"\n",
    );
    let g = |n: &str| cfg.global(n).unwrap().value.clone();
    assert_eq!(g("debug"), GlobalValue::Int(-1));
    assert_eq!(g("fork"), GlobalValue::Bool(true));
    assert_eq!(g("dns"), GlobalValue::Bool(false));
    assert_eq!(g("log_facility"), GlobalValue::Word("LOG_LOCAL0".into()));
    assert_eq!(g("log_prefix"), GlobalValue::Str("{$mt} x".into()));
    assert_eq!(g("port"), GlobalValue::Int(5060));
    assert_eq!(g("mask"), GlobalValue::Int(15));
    assert_eq!(g("bits"), GlobalValue::Int(5));
    let listens: Vec<_> = cfg.globals().filter(|g| g.name == "listen").collect();
    assert_eq!(listens.len(), 3);
    match &listens[0].value {
        GlobalValue::Listen(l) => {
            assert_eq!(l.addrs, vec!["udp:127.0.0.1:5060"]);
            assert_eq!(l.advertise.as_deref(), Some("1.2.3.4:5080"));
            assert_eq!(l.name.as_deref(), Some("s1"));
        }
        other => panic!("{other:?}"),
    }
    match &listens[1].value {
        GlobalValue::Listen(l) => assert_eq!(l.addrs, vec!["tcp:[::1]:5060"]),
        other => panic!("{other:?}"),
    }
    match &listens[2].value {
        GlobalValue::Listen(l) => assert_eq!(l.addrs, vec!["udp:10.0.0.1", "tcp:10.0.0.1"]),
        other => panic!("{other:?}"),
    }
    let aliases: Vec<_> = cfg.globals().filter(|g| g.name == "alias").collect();
    assert_eq!(aliases[0].value, GlobalValue::Str("sip.example.com".into()));
    assert_eq!(
        aliases[1].value,
        GlobalValue::List(vec![
            GlobalValue::Word("a.example.com".into()),
            GlobalValue::Word("b.example.com".into())
        ])
    );
    match g("socket") {
        GlobalValue::Block(entries) => {
            assert_eq!(entries[0].name, "bind");
            assert_eq!(
                entries[0].value,
                GlobalValue::Word("udp:127.0.0.1:5070".into())
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        g("kemi.onsend_route_callback"),
        GlobalValue::Str("ksr_onsend".into())
    );
    // the name span points at the name
    let d = cfg.global("debug").unwrap();
    assert_eq!((d.name_span.line, d.name_span.col), (2, 1));
    assert_eq!((d.value_span.line, d.value_span.col), (2, 7));
}

#[test]
fn modules_modparams_flags_cfgvars() {
    let cfg = parse(
        "loadpath \"/usr/lib/kamailio/modules/\"\nmpath=\"/x\"\n\
         loadmodule \"tm.so\"\nloadmodule(\"/usr/lib/kamailio/modules/sl.so\")\n\
         loadmodule(\"xlog\", \"g\");\nloadmodulex \"$def(X).so\"\n\
         modparam(\"tm\", \"fr_timer\", 30000)\nmodparam(\"tm\", \"x\", -5)\n\
         modparam(\"auth_db\", \"calculate_ha1\", yes)\n\
         modparam(\"acc\", \"log_extra\", \"a=$fU;\"\n   \"b=$rU\")\n\
         modparamx(\"htable\", \"htable\", \"a=>size=8;\");\n\
         flags FLT_ACC:1, FLT_NAT, FLB_X : 7;\n\
         pstn.gw_ip = \"1.2.3.4\" desc \"PSTN GW\"\nvm.port = 5060\n",
    );
    let mods: Vec<_> = cfg
        .loadmodules()
        .map(|m| m.module_name().to_string())
        .collect();
    assert_eq!(mods, vec!["tm", "sl", "xlog", "$def(X)"]);
    let lm: Vec<_> = cfg.loadmodules().collect();
    assert_eq!(lm[2].opts.as_deref(), Some("g"));
    assert!(lm[3].expand);
    let mp: Vec<_> = cfg.modparams().collect();
    assert_eq!(mp[0].value, ModParamValue::Int(30000));
    assert_eq!(mp[1].value, ModParamValue::Int(-5));
    assert_eq!(mp[2].value, ModParamValue::Int(1));
    assert_eq!(mp[3].value, ModParamValue::Str("a=$fU;b=$rU".into()));
    assert!(mp[4].expand);
    let mut flags = None;
    let mut vars = Vec::new();
    let mut paths = Vec::new();
    for it in &cfg.items {
        match it {
            TopItem::Flags(f) => flags = Some(f.clone()),
            TopItem::CfgVar(v) => vars.push(v.clone()),
            TopItem::LoadPath(p) => paths.push(p.path.clone()),
            _ => {}
        }
    }
    let flags = flags.unwrap();
    let f: Vec<_> = flags
        .flags
        .iter()
        .map(|f| (f.name.as_str(), f.bit))
        .collect();
    assert_eq!(
        f,
        vec![("FLT_ACC", Some(1)), ("FLT_NAT", None), ("FLB_X", Some(7))]
    );
    assert_eq!(vars[0].group, "pstn");
    assert_eq!(vars[0].name, "gw_ip");
    assert_eq!(vars[0].desc.as_deref(), Some("PSTN GW"));
    assert_eq!(vars[1].value, GlobalValue::Int(5060));
    assert_eq!(paths, vec!["/usr/lib/kamailio/modules/", "/x"]);
    // order is kept
    assert!(matches!(cfg.items[0], TopItem::LoadPath(_)));
    assert!(matches!(cfg.items[2], TopItem::LoadModule(_)));
}

#[test]
fn every_route_block_type() {
    let cfg = parse(
        "request_route { exit; }\nroute[RELAY] { t_relay(); }\nroute[2] { return; }\n\
         route[\"quoted\"] { return; }\n\
         failure_route[MANAGE_FAILURE] { exit; }\nonreply_route[MANAGE_REPLY] { exit; }\n\
         onreply_route { drop; }\nreply_route { return; }\nbranch_route[MANAGE_BRANCH] { exit; }\n\
         onsend_route { drop; }\nevent_route[core:worker-one-init] { exit; }\n\
         event_route[tm:branch-failure:rtf] { exit; }\nevent_route[htable:mod-init] { exit; }\n",
    );
    let names = |k: RouteKind| -> Vec<Option<String>> {
        cfg.routes_of(k).map(|r| r.name.clone()).collect()
    };
    assert_eq!(names(RouteKind::Request), vec![None]);
    assert_eq!(
        names(RouteKind::Sub),
        vec![
            Some("RELAY".into()),
            Some("2".into()),
            Some("quoted".into())
        ]
    );
    assert_eq!(
        names(RouteKind::Failure),
        vec![Some("MANAGE_FAILURE".into())]
    );
    assert_eq!(names(RouteKind::OnReply), vec![Some("MANAGE_REPLY".into())]);
    assert_eq!(names(RouteKind::Reply), vec![None, None]);
    assert_eq!(names(RouteKind::Branch), vec![Some("MANAGE_BRANCH".into())]);
    assert_eq!(names(RouteKind::OnSend), vec![None]);
    assert_eq!(
        names(RouteKind::Event),
        vec![
            Some("core:worker-one-init".into()),
            Some("tm:branch-failure:rtf".into()),
            Some("htable:mod-init".into())
        ]
    );
    assert!(cfg.route(RouteKind::Sub, Some("RELAY")).is_some());
    // route {} and route[0] are the request route; onreply_route[0] the core reply route
    let cfg = parse("route { exit; }\nonreply_route[0] { exit; }\n");
    assert_eq!(cfg.request_route().unwrap().keyword, "route");
    assert_eq!(cfg.routes_of(RouteKind::Reply).count(), 1);
    let cfg = parse("route[0] { exit; }");
    assert!(cfg.request_route().is_some());
}

#[test]
fn statements() {
    let body = request_body(
        r#"request_route {
            if (is_method("INVITE")) { record_route(); } else if ($rU == $null) drop; else { exit; }
            if (!has_totag()) return;
            $var(i) = 0;
            $avp(x) += "a";
            $(avp(y)[*]) = $null;
            $sht(ipban=>$si) = 1;
            while ($var(i) < 10) { $var(i) = $var(i) + 1; if ($var(i) == 5) break; }
            switch ($rU) {
                case 1:
                case -2:
                    xlog("x\n");
                    break;
                case "alice":
                    break;
                case /"^bob":
                    route(BOB);
                default:
                    exit;
            };
            { nested(); }
            route(RELAY);
            route($var(x));
            route("quoted");
            return(0);
            return -1;
            exit 2;
            drop();
            force_rport;
            ;
        }"#,
    );
    let kinds: Vec<&str> = body
        .iter()
        .map(|s| match &s.kind {
            StmtKind::If { .. } => "if",
            StmtKind::Assign { .. } => "assign",
            StmtKind::While { .. } => "while",
            StmtKind::Switch { .. } => "switch",
            StmtKind::Block(_) => "block",
            StmtKind::Expr(_) => "expr",
            StmtKind::Return(_) => "return",
            StmtKind::Exit(_) => "exit",
            StmtKind::Drop(_) => "drop",
            StmtKind::Break => "break",
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            "if", "if", "assign", "assign", "assign", "assign", "while", "switch", "block", "expr",
            "expr", "expr", "return", "return", "exit", "drop", "expr"
        ]
    );
    // else if chain
    match &body[0].kind {
        StmtKind::If {
            then, otherwise, ..
        } => {
            assert_eq!(then.stmts.len(), 1);
            let other = otherwise.as_ref().unwrap();
            assert!(matches!(other.stmts[0].kind, StmtKind::If { .. }));
        }
        _ => unreachable!(),
    }
    // assignment ops and targets
    match &body[3].kind {
        StmtKind::Assign { target, op, .. } => {
            assert_eq!(target.spec.class, "avp");
            assert_eq!(*op, AssignOp::AddAssign);
        }
        _ => unreachable!(),
    }
    match &body[4].kind {
        StmtKind::Assign { target, value, .. } => {
            assert_eq!(target.spec.index, Some(PvIndex::All));
            assert_eq!(value.kind, ExprKind::Null);
        }
        _ => unreachable!(),
    }
    // switch cases
    match &body[7].kind {
        StmtKind::Switch { cases, .. } => {
            let labels: Vec<_> = cases.iter().map(|c| c.label.clone()).collect();
            assert_eq!(
                labels,
                vec![
                    CaseLabel::Int(1),
                    CaseLabel::Int(-2),
                    CaseLabel::Str("alice".into()),
                    CaseLabel::Regex("^bob".into()),
                    CaseLabel::Default
                ]
            );
            assert!(cases[0].body.is_empty()); // fall-through
            assert_eq!(cases[1].body.len(), 2);
        }
        _ => unreachable!(),
    }
    // route targets
    let target = |i: usize| match &body[i].kind {
        StmtKind::Expr(Expr {
            kind: ExprKind::Call(c),
            ..
        }) => c.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        target(9).route_target(),
        Some(RouteTarget::Name("RELAY".into()))
    );
    assert!(matches!(
        target(10).route_target(),
        Some(RouteTarget::Dynamic(_))
    ));
    assert_eq!(
        target(11).route_target(),
        Some(RouteTarget::Name("quoted".into()))
    );
    match &body[12].kind {
        StmtKind::Return(Some(e)) => assert_eq!(e.kind, ExprKind::Int(0)),
        other => panic!("{other:?}"),
    }
    match &body[13].kind {
        StmtKind::Return(Some(e)) => assert_eq!(e.kind, ExprKind::Int(-1)),
        other => panic!("{other:?}"),
    }
    let bare = target(16);
    assert_eq!(bare.name, "force_rport");
    assert!(!bare.parens);
}

#[test]
fn precedence() {
    assert_eq!(show(&cond("$a || $b && $c")), "($a || ($b && $c))");
    assert_eq!(show(&cond("$a or $b and $c")), "($a || ($b && $c))");
    assert_eq!(show(&cond("1 + 2 * 3")), "(1 + (2 * 3))");
    assert_eq!(show(&cond("!$a == $b")), "((Not $a) == $b)");
    assert_eq!(show(&cond("1 - 2 - 3")), "((1 - 2) - 3)");
    assert_eq!(
        show(&cond("$a == 1 && $b != 2")),
        "(($a == 1) && ($b != 2))"
    );
    assert_eq!(show(&cond("$a | $b & $c ^ $d")), "($a | ($b & ($c ^ $d)))");
    assert_eq!(show(&cond("$a << $b >> $c")), "($a << ($b >> $c))");
    assert_eq!(show(&cond("$a == $b > $c")), "($a == ($b > $c))");
    assert_eq!(show(&cond("$a + $b > $c * 2")), "(($a + $b) > ($c * 2))");
    assert_eq!(show(&cond("10 mod 3 == 1")), "((10 mod 3) == 1)");
    assert_eq!(
        show(&cond("$a eq \"x\" || $b ine 2")),
        "(($a eq \"x\") || ($b ine 2))"
    );
    assert_eq!(show(&cond("-$a * 2")), "((Neg $a) * 2)");
    assert_eq!(show(&cond("~$a & 3")), "((BitNot $a) & 3)");
    assert_eq!(
        show(&cond("not defined $var(x)")),
        "(Not (defined $var(x)))"
    );
    assert_eq!(show(&cond("(int)$a + 1")), "((Int)$a + 1)");
    assert_eq!(show(&cond("(str)$a + \"x\"")), "((Str)$a + \"x\")");
    assert_eq!(show(&cond("($a || $b) && $c")), "(($a || $b) && $c)");
    assert_eq!(show(&cond("strlen($ru) > 10")), "(strlen($ru) > 10)");
    assert_eq!(show(&cond("strempty($fU)")), "strempty($fU)");
    assert_eq!(show(&cond("!t_relay()")), "(Not t_relay())");
    assert_eq!(show(&cond("$x == yes")), "($x == true)");
    assert_eq!(
        show(&cond("$rU =~ \"^\\+[0-9]+$\"")),
        "($rU =~ \"^\\\\+[0-9]+$\")"
    );
}

#[test]
fn core_keywords() {
    assert_eq!(show(&cond("uri == myself")), "(Uri == myself)");
    assert_eq!(show(&cond("src_ip != myself")), "(SrcIp != myself)");
    assert_eq!(
        show(&cond("status =~ \"[12][0-9][0-9]\"")),
        "(Status =~ \"[12][0-9][0-9]\")"
    );
    assert_eq!(
        show(&cond("method == \"INVITE\"")),
        "(Method == \"INVITE\")"
    );
    assert_eq!(show(&cond("src_ip == 10.0.0.0/8")), "(SrcIp == 10.0.0.0/8)");
    assert_eq!(show(&cond("dst_ip == 127.0.0.1")), "(DstIp == w:127.0.0.1)");
    assert_eq!(
        show(&cond("proto == UDP || af == INET6")),
        "((Proto == UDP) || (Af == INET6))"
    );
    assert_eq!(show(&cond("msg:len > 4096")), "(MsgLen > 4096)");
    assert_eq!(
        show(&cond("from_uri == myself && to_uri != myself")),
        "((FromUri == myself) && (ToUri != myself))"
    );
    assert_eq!(
        show(&cond("snd_ip == 1.2.3.4 && to_port == 5060")),
        "((SndIp == w:1.2.3.4) && (ToPort == 5060))"
    );
    // core calls with address arguments
    let body = request_body(
        "request_route { force_send_socket(udp:1.2.3.4:5060); forward(sip.example.com, 5060); }",
    );
    match &body[0].kind {
        StmtKind::Expr(e) => assert_eq!(show(e), "force_send_socket(w:udp:1.2.3.4:5060)"),
        _ => unreachable!(),
    }
    match &body[1].kind {
        StmtKind::Expr(e) => assert_eq!(show(e), "forward(w:sip.example.com,5060)"),
        _ => unreachable!(),
    }
}

#[test]
fn strings_numbers_and_selects() {
    let body = request_body(
        "request_route { f(\"a\" \"b\"\n 'c', 0x10, 010, 11b, 'it\\'s', \"tab\\tnl\\n\"); $var(x) = @ruri.user; }",
    );
    match &body[0].kind {
        StmtKind::Expr(e) => assert_eq!(show(e), "f(\"abc\",16,8,3,\"it's\",\"tab\\tnl\\n\")"),
        _ => unreachable!(),
    }
    match &body[1].kind {
        StmtKind::Assign { value, .. } => {
            assert_eq!(value.kind, ExprKind::Select("ruri.user".into()))
        }
        _ => unreachable!(),
    }
}

#[test]
fn pv_structure_in_ast() {
    let body = request_body(
        "request_route { $var(t) = $(hdr(From){tobody.tag}); $var(n) = $(avp(x)[*]); $var(s) = $(ru{s.substr,1,2}{s.len}); }",
    );
    let value = |i: usize| match &body[i].kind {
        StmtKind::Assign { value, .. } => match &value.kind {
            ExprKind::Pv(p) => p.spec.clone(),
            other => panic!("{other:?}"),
        },
        _ => unreachable!(),
    };
    let v = value(0);
    assert_eq!(v.class, "hdr");
    assert_eq!(v.inner.as_deref(), Some("From"));
    assert_eq!(
        v.transforms,
        vec![Transform {
            class: "tobody".into(),
            name: "tag".into(),
            args: vec![]
        }]
    );
    assert_eq!(value(1).index, Some(PvIndex::All));
    let s = value(2);
    assert_eq!(s.transforms.len(), 2);
    assert_eq!(s.transforms[0].args, vec!["1", "2"]);
}

#[test]
fn spans_point_at_source() {
    let cfg = parse("request_route {\n\tif ($a) {\n\t\tt_relay();\n\t}\n}\n");
    let r = cfg.request_route().unwrap();
    assert_eq!((r.span.line, r.span.col), (1, 1));
    let s = &r.body.stmts[0];
    assert_eq!((s.span.line, s.span.col), (2, 2));
    match &s.kind {
        StmtKind::If { then, .. } => {
            let c = &then.stmts[0];
            assert_eq!((c.span.line, c.span.col), (3, 3));
            match &c.kind {
                StmtKind::Expr(Expr {
                    kind: ExprKind::Call(call),
                    ..
                }) => assert_eq!(call.name_span.col, 3),
                other => panic!("{other:?}"),
            }
        }
        _ => unreachable!(),
    }
    assert_eq!(cfg.file_path(r.span.file), std::path::Path::new("test.cfg"));
}

#[test]
fn semicolon_optional_after_blocks() {
    let body = request_body(
        "request_route { if ($a) { exit; }; while ($b) { break; }; switch ($c) { default: exit; } { f(); }; }",
    );
    assert_eq!(body.len(), 4);
}
