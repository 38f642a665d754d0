//! The command line, with Kamailio's habits: `-f FILE`, `-c`, `-D`/`-DD`,
//! `-E`, `-n N`, `-l ADDR`, `-A NAME[=V]`, `-L DIR`, `-P PIDFILE`, `-d`,
//! `-V`/`-v`, `-h`, `--cfg-print`; `-m`/`-M` are accepted and explained.

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use sr_core::{Options, Overrides};
use std::path::PathBuf;

/// The default configuration, used when no `-f` is given and
/// `/etc/siprouter/siprouter.cfg` does not exist.
pub const DEFAULT_CONFIG: &str = include_str!("../../../etc/siprouter.cfg");

/// Where the default config is looked for first.
pub const SYSTEM_CONFIG: &str = "/etc/siprouter/siprouter.cfg";

/// What the command line asks for.
#[derive(Debug, Default)]
pub struct Args {
    /// `-f`
    pub config: Option<PathBuf>,
    /// `-c`
    pub check: bool,
    /// `--cfg-print`
    pub cfg_print: bool,
    /// Number of `-D`.
    pub foreground: u8,
    /// `-P`
    pub pidfile: Option<PathBuf>,
    /// `-A`
    pub defines: Vec<(String, Option<String>)>,
    /// Overrides passed to the core.
    pub overrides: Overrides,
    /// `-V`/`-v`
    pub version: bool,
    /// `-h`
    pub help: bool,
    /// Notices about accepted-but-ignored options.
    pub notices: Vec<String>,
}

/// The usage text.
pub const USAGE: &str = "\
Usage: siprouter [options]
  -f FILE        configuration file (default: /etc/siprouter/siprouter.cfg,
                 else the built-in default configuration)
  -c             check the configuration and exit (0 when valid)
  --cfg-print    print the configuration after preprocessing and exit
  -D             do not fork into the background (-DD: same, Kamailio's habit)
  -E             log to standard error
  -d             raise the log level by one (repeatable)
  -n N           SIP worker threads per UDP socket (children)
  -l ADDR        listen on [proto:]addr[:port] (repeatable; replaces listen=)
  -A NAME[=VAL]  define NAME for the preprocessor (#!ifdef NAME)
  -L DIR         module search path for shared-library modules
  -P FILE        write the process id to FILE
  -m N, -M N     Kamailio's shared/private memory sizes: accepted, ignored
                 (siprouter allocates memory as it needs it)
  -V, -v         print the version and exit
  -h             this help
Subcommands:
  siprouter ctl ...   management client (JSON-RPC), see `siprouter ctl -h`
  siprouter db ...    database tables and subscribers, see `siprouter db -h`
";

fn value(args: &[String], i: &mut usize, flag: &str) -> Result<String, String> {
    *i += 1;
    args.get(*i)
        .cloned()
        .ok_or_else(|| format!("option {flag} needs a value"))
}

/// Parses the arguments (without the program name).
pub fn parse(args: &[String]) -> Result<Args, String> {
    let mut a = Args::default();
    let mut debug: i32 = 0;
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_str();
        match arg {
            "-f" => a.config = Some(PathBuf::from(value(args, &mut i, arg)?)),
            "-c" => a.check = true,
            "--cfg-print" => a.cfg_print = true,
            "-D" => a.foreground += 1,
            "-DD" => a.foreground += 2,
            "-E" => a.overrides.log_stderr = true,
            "-d" => debug += 1,
            "-dd" => debug += 2,
            "-ddd" => debug += 3,
            "-n" => {
                let v = value(args, &mut i, arg)?;
                let n: usize = v.parse().map_err(|_| format!("-n {v}: not a number"))?;
                if n == 0 {
                    return Err("-n: at least one worker is needed".into());
                }
                a.overrides.children = Some(n);
            }
            "-l" => a.overrides.listen.push(value(args, &mut i, arg)?),
            "-A" => {
                let v = value(args, &mut i, arg)?;
                a.defines.push(match v.split_once('=') {
                    Some((n, x)) => (n.to_string(), Some(x.to_string())),
                    None => (v, None),
                });
            }
            "-L" => a.overrides.mpath.push(value(args, &mut i, arg)?),
            "-P" => a.pidfile = Some(PathBuf::from(value(args, &mut i, arg)?)),
            "-m" | "-M" => {
                let v = value(args, &mut i, arg)?;
                a.notices.push(format!(
                    "note: {arg} {v} is accepted for Kamailio compatibility and ignored: siprouter has no fixed-size memory pools"
                ));
            }
            "-V" | "-v" | "--version" => a.version = true,
            "-h" | "--help" => a.help = true,
            other => return Err(format!("unknown option '{other}' (see -h)")),
        }
        i += 1;
    }
    if debug > 0 {
        a.overrides.debug = Some(debug);
    }
    Ok(a)
}

/// Builds the core options for parsed arguments.
pub fn core_options(a: &Args) -> Options {
    let mut o = crate::options(PathBuf::new());
    o.defines = a.defines.clone();
    o.overrides = a.overrides.clone();
    match &a.config {
        Some(p) => o.config = p.clone(),
        None if std::path::Path::new(SYSTEM_CONFIG).exists() => o.config = SYSTEM_CONFIG.into(),
        None => {
            o.config = PathBuf::from("<built-in siprouter.cfg>");
            o.config_text = Some(DEFAULT_CONFIG.to_string());
        }
    }
    o
}

fn daemonize() -> Result<(), String> {
    // SAFETY: called before any thread is started; the parent exits at
    // once, the child continues as the only process.
    #[allow(unsafe_code)]
    unsafe {
        match libc::fork() {
            -1 => return Err("fork failed".into()),
            0 => {}
            _ => libc::_exit(0),
        }
        if libc::setsid() < 0 {
            return Err("setsid failed".into());
        }
    }
    Ok(())
}

/// Runs the server (or the check) and returns the exit code.
pub fn run(args: &[String]) -> i32 {
    if args.first().map(String::as_str) == Some("ctl") {
        return crate::ctl::main(&args[1..]);
    }
    if args.first().map(String::as_str) == Some("db") {
        return crate::db_cmd::main(&args[1..]);
    }
    let a = match parse(args) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("siprouter: {e}");
            return 2;
        }
    };
    for n in &a.notices {
        eprintln!("{n}");
    }
    if a.help {
        print!("{USAGE}");
        return 0;
    }
    if a.version {
        println!(
            "siprouter {} (Kamailio-compatible SIP server)",
            sr_core::settings::VERSION
        );
        return 0;
    }
    let opts = core_options(&a);
    if a.cfg_print {
        return match sr_core::startup::preprocess(&opts) {
            Ok(text) => {
                print!("{text}");
                0
            }
            Err(errs) => {
                errs.iter().for_each(|e| eprintln!("{e}"));
                1
            }
        };
    }
    if a.check {
        return match sr_core::load(&opts, true) {
            Ok(_) => {
                eprintln!("config file ok, exiting...");
                0
            }
            Err(errs) => {
                errs.iter().for_each(|e| eprintln!("{e}"));
                1
            }
        };
    }
    crate::malloc_tuning::apply();
    let rt = match sr_core::load(&opts, false) {
        Ok(rt) => rt,
        Err(errs) => {
            errs.iter().for_each(|e| eprintln!("{e}"));
            return 1;
        }
    };
    let s = &rt.settings;
    crate::logging::install(s.log_stderror, &s.log_facility, s.log_name.as_deref());
    if a.foreground == 0 {
        if let Err(e) = daemonize() {
            eprintln!("siprouter: {e}");
            rt.destroy_modules();
            return 1;
        }
    }
    let mut signals = match Signals::new([SIGTERM, SIGINT, SIGHUP]) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("siprouter: cannot handle signals: {e}");
            rt.destroy_modules();
            return 1;
        }
    };
    let server = match sr_core::start(&rt) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("siprouter: {e}");
            rt.destroy_modules();
            return 1;
        }
    };
    if let Some(p) = &a.pidfile {
        if let Err(e) = std::fs::write(p, format!("{}\n", std::process::id())) {
            eprintln!("siprouter: cannot write pid file {}: {e}", p.display());
        }
    }
    for sig in signals.forever() {
        match sig {
            SIGHUP => match rt.reload_routes() {
                Ok(n) => sr_sdk::lm_notice!("SIGHUP: routes reloaded ({n} blocks)"),
                Err(errs) => errs
                    .iter()
                    .for_each(|e| sr_sdk::lm_err!("SIGHUP: reload refused: {e}")),
            },
            _ => break,
        }
    }
    sr_sdk::lm_notice!("shutting down");
    server.shutdown();
    if let Some(p) = &a.pidfile {
        let _ = std::fs::remove_file(p);
    }
    0
}
