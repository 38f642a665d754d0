//! What a run does, and the command line that says it.

use crate::net::Proto;
use std::net::SocketAddr;
use std::time::Duration;

/// The call flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// INVITE, 100, 180, 200, ACK, pause, BYE, 200, with our own UAS.
    Call,
    /// One REGISTER per distinct user, optionally with digest auth.
    Register,
    /// OPTIONS to the server, expecting a final reply.
    Options,
}

impl Scenario {
    /// The name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Call => "call",
            Scenario::Register => "register",
            Scenario::Options => "options",
        }
    }
}

/// Everything a run needs.
#[derive(Debug, Clone)]
pub struct Config {
    /// The call flow.
    pub scenario: Scenario,
    /// The server under test.
    pub server: SocketAddr,
    /// Where our UAS listens (call scenario).
    pub uas: SocketAddr,
    /// Where the UAC binds (port 0: any).
    pub local: SocketAddr,
    /// UDP or TCP.
    pub proto: Proto,
    /// Calls (or requests) started per second.
    pub rate: f64,
    /// Cap on calls in progress.
    pub limit: usize,
    /// How long new calls are started.
    pub duration: Duration,
    /// Stop after this many calls (`u64::MAX`: no limit).
    pub max_calls: u64,
    /// Hold time between ACK and BYE.
    pub pause: Duration,
    /// Distinct users cycled through (0: a new user for every REGISTER).
    pub users: u64,
    /// The first user number (`user<N>`).
    pub user_offset: u64,
    /// Answer 401/407 challenges.
    pub auth: bool,
    /// The password; `%d` is replaced by the user number.
    pub password: String,
    /// The final code expected (register and options).
    pub expect: u16,
    /// Transaction timeout (64*T1 by default).
    pub timeout: Duration,
    /// How long to wait for calls in progress after the sending period.
    pub drain: Duration,
    /// User part of the Request-URI of INVITE and OPTIONS.
    pub service: String,
    /// Print JSON instead of text.
    pub json: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            scenario: Scenario::Call,
            server: SocketAddr::from(([127, 0, 0, 1], 5060)),
            uas: SocketAddr::from(([127, 0, 0, 1], 5090)),
            local: SocketAddr::from(([127, 0, 0, 1], 0)),
            proto: Proto::Udp,
            rate: 100.0,
            limit: 20_000,
            duration: Duration::from_secs(10),
            max_calls: u64::MAX,
            pause: Duration::ZERO,
            users: 0,
            user_offset: 1,
            auth: false,
            password: "pass%d".into(),
            expect: 200,
            timeout: crate::timers::TIMEOUT,
            drain: Duration::from_secs(5),
            service: "service".into(),
            json: false,
        }
    }
}

/// The usage text.
pub const USAGE: &str = "\
Usage: sipbench call|register|options [options]
  -s, --server ADDR     server under test (default 127.0.0.1:5060)
      --uas ADDR        our UAS for the call scenario (default 127.0.0.1:5090)
      --local ADDR      UAC bind address (default 127.0.0.1:0)
  -t, --transport P     udp or tcp (default udp)
  -r, --rate N          calls or requests started per second (default 100)
  -l, --limit N         cap on calls in progress (default 20000)
  -d, --duration S      seconds of sending (default 10; fractions allowed)
  -m, --max N           stop after N calls or requests
      --pause MS        hold time between ACK and BYE (default 0)
      --users N         cycle through N distinct users (default: a new one each time)
      --user-offset N   first user number (default 1): users are user<N>
      --auth            answer 401/407 digest challenges
      --password P      password, %d = user number (default pass%d)
      --expect CODE     final code expected for register/options (default 200)
      --timeout MS      transaction timeout (default 32000 = 64*T1)
      --drain S         wait for calls in progress after sending (default 5)
      --service NAME    user part of INVITE/OPTIONS Request-URI (default service)
      --json            print the report as JSON
  -h, --help            this help
Only 127.0.0.1 (loopback) addresses are accepted.
";

fn addr(v: &str) -> Result<SocketAddr, String> {
    let a: SocketAddr = v
        .parse()
        .map_err(|_| format!("{v}: not an IP:port address"))?;
    if !a.ip().is_loopback() {
        return Err(format!("{v}: only loopback addresses are allowed"));
    }
    Ok(a)
}

fn num<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T, String> {
    v.parse().map_err(|_| format!("{flag} {v}: not a number"))
}

/// Parses the arguments (without the program name). `Ok(None)` asks for
/// the usage text.
pub fn parse_args(args: &[String]) -> Result<Option<Config>, String> {
    let mut c = Config::default();
    let mut scenario = None;
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        let mut val = || -> Result<String, String> {
            i += 1;
            args.get(i)
                .cloned()
                .ok_or_else(|| format!("{a} needs a value"))
        };
        match a {
            "-h" | "--help" => return Ok(None),
            "call" => scenario = Some(Scenario::Call),
            "register" => scenario = Some(Scenario::Register),
            "options" => scenario = Some(Scenario::Options),
            "-s" | "--server" => c.server = addr(&val()?)?,
            "--uas" => c.uas = addr(&val()?)?,
            "--local" => c.local = addr(&val()?)?,
            "-t" | "--transport" => {
                c.proto = match val()?.to_ascii_lowercase().as_str() {
                    "udp" => Proto::Udp,
                    "tcp" => Proto::Tcp,
                    o => return Err(format!("transport {o}: udp or tcp")),
                }
            }
            "-r" | "--rate" => c.rate = num(a, &val()?)?,
            "-l" | "--limit" => c.limit = num(a, &val()?)?,
            "-d" | "--duration" => {
                c.duration = Duration::from_secs_f64(num::<f64>(a, &val()?)?.max(0.0))
            }
            "-m" | "--max" => c.max_calls = num(a, &val()?)?,
            "--pause" => c.pause = Duration::from_millis(num(a, &val()?)?),
            "--users" => c.users = num(a, &val()?)?,
            "--user-offset" => c.user_offset = num(a, &val()?)?,
            "--auth" => c.auth = true,
            "--password" => c.password = val()?,
            "--expect" => c.expect = num(a, &val()?)?,
            "--timeout" => c.timeout = Duration::from_millis(num(a, &val()?)?),
            "--drain" => c.drain = Duration::from_secs_f64(num::<f64>(a, &val()?)?.max(0.0)),
            "--service" => c.service = val()?,
            "--json" => c.json = true,
            o => return Err(format!("unknown argument '{o}' (see --help)")),
        }
        i += 1;
    }
    c.scenario = scenario.ok_or("say which scenario: call, register or options")?;
    if c.rate.is_nan() || c.rate <= 0.0 {
        return Err("--rate must be positive".into());
    }
    if c.limit == 0 {
        return Err("--limit must be at least 1".into());
    }
    Ok(Some(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Option<Config>, String> {
        parse_args(&s.split_whitespace().map(String::from).collect::<Vec<_>>())
    }

    #[test]
    fn parses_and_refuses_non_loopback() {
        let c = p("register -r 2500 --users 100 --auth -d 1.5 --json")
            .unwrap()
            .unwrap();
        assert_eq!(c.scenario, Scenario::Register);
        assert_eq!(c.rate, 2500.0);
        assert_eq!(c.users, 100);
        assert!(c.auth && c.json);
        assert_eq!(c.duration, Duration::from_millis(1500));
        assert!(p("call -s 192.0.2.1:5060").is_err());
        assert!(p("-r 10").is_err());
        assert!(p("call -r 0").is_err());
        assert!(p("--help").unwrap().is_none());
    }
}
