//! Parse a config file and print errors or a summary: `cfgcheck FILE [-A NAME[=V]]... [--print]`.

use std::path::Path;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut opts = sr_cfg::ParseOptions::default();
    let mut file = None;
    let mut print = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "-A" {
            if let Some(d) = it.next() {
                opts = opts.define_arg(d);
            }
        } else if a == "--print" {
            print = true;
        } else {
            file = Some(a.clone());
        }
    }
    let Some(file) = file else {
        eprintln!("usage: cfgcheck FILE [-A NAME[=V]]... [--print]");
        std::process::exit(2);
    };
    if print {
        match sr_cfg::preprocess_to_string(Path::new(&file), &opts) {
            Ok(s) => print!("{s}"),
            Err(es) => es.iter().for_each(|e| eprintln!("{e}")),
        }
        return;
    }
    match sr_cfg::parse_file(Path::new(&file), &opts) {
        Ok(cfg) => {
            println!(
                "ok: {} items, {} modules, {} routes",
                cfg.items.len(),
                cfg.loadmodules().count(),
                cfg.routes().count()
            );
        }
        Err(es) => {
            for e in &es {
                eprintln!("{e}");
            }
            std::process::exit(1);
        }
    }
}
