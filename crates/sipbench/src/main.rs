//! `sipbench`: the command line of the load generator.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cfg = match sipbench::config::parse_args(&args) {
        Ok(Some(c)) => c,
        Ok(None) => {
            print!("{}", sipbench::config::USAGE);
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("sipbench: {e}");
            eprint!("{}", sipbench::config::USAGE);
            return ExitCode::from(2);
        }
    };
    match sipbench::run(&cfg) {
        Ok(r) => {
            if cfg.json {
                println!("{}", r.json());
            } else {
                print!("{}", r.text());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("sipbench: {e}");
            ExitCode::FAILURE
        }
    }
}
