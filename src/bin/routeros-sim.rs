//! `routeros-sim`: the RouterOS API simulator as a process, for the demo.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use mikrotik_edge::sim::{Activity, SimOptions, Simulator, fingerprint_hex};

const HELP: &str = "\
routeros-sim: a RouterOS API server simulating a hotspot/PPPoE router

USAGE:
    routeros-sim [OPTIONS]

OPTIONS:
    --listen ADDR        plain API address [default: 127.0.0.1:8728]
    --tls-listen ADDR    also serve API-SSL (self-signed cert) on ADDR
    --cert-out PATH      write the API-SSL certificate (PEM) to PATH
    --user NAME          API user [default: admin]
    --password PASS      API password [default: secret]
    --legacy-login       pre-6.43 challenge/response login
    --empty-reply        RouterOS 7.18+ `!empty` for prints without rows
    --per-sentence       write each reply sentence separately (as a real router's
                         replies arrive in separate TCP segments)
    --hotspot-users N    seed N voucher users (plus a few foreign ones)
    --pppoe-secrets N    seed N PPPoE secrets (plus a few foreign ones)
    --hotspot-active N   log N of the seeded vouchers in at start
    --ppp-active N       connect N of the seeded PPPoE secrets at start
    --expiring N         N logged-in vouchers expiring 60, 90, 120 … s after start
    --activity           random logins/logouts/connects and traffic
    --control            read commands from stdin, one per line, and print
                         each one's completion time (unix ms), for benchmarks:
                           add USER PROFILE   -> `add USER <ms>`
                           login USER IP MAC  -> `login USER <ms>`
                           logout USER        -> `logout USER <ms>`
                           stats              -> `stats <reply bytes> <commands>`
    --reply-delay-ms N   answer each command N ms late (a router's work time);
                         prints `max-in-flight: K` when a client keeps more
                         commands waiting at once than before
    -h, --help           show this help

Prints the listen addresses (and the certificate's SHA-256) and serves
until killed. The simulated clock follows real time.";

struct Args {
    opts: SimOptions,
    cert_out: Option<String>,
    activity: bool,
    control: bool,
    reply_delay_ms: u64,
}

fn parse(mut it: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut opts = SimOptions {
        listen: SocketAddr::from(([127, 0, 0, 1], 8728)),
        ..SimOptions::default()
    };
    let mut cert_out = None;
    let mut activity = false;
    let mut control = false;
    let mut reply_delay_ms = 0;
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        let addr = |s: String| {
            s.parse::<SocketAddr>()
                .map_err(|e| format!("bad address {s:?}: {e}"))
        };
        let count = |s: String| {
            s.parse::<usize>()
                .map_err(|e| format!("bad number {s:?}: {e}"))
        };
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--listen" => opts.listen = addr(value(&arg)?)?,
            "--tls-listen" => {
                opts.tls_listen = addr(value(&arg)?)?;
                opts.tls = true;
            }
            "--cert-out" => cert_out = Some(value(&arg)?),
            "--user" => opts.user = value(&arg)?,
            "--password" => opts.password = value(&arg)?,
            "--legacy-login" => opts.legacy_login = true,
            "--empty-reply" => opts.empty_reply = true,
            "--per-sentence" => opts.per_sentence = true,
            "--hotspot-users" => opts.seed.hotspot_users = count(value(&arg)?)?,
            "--pppoe-secrets" => opts.seed.pppoe_secrets = count(value(&arg)?)?,
            "--hotspot-active" => opts.seed.hotspot_active = count(value(&arg)?)?,
            "--ppp-active" => opts.seed.ppp_active = count(value(&arg)?)?,
            "--expiring" => opts.seed.expiring = count(value(&arg)?)?,
            "--activity" => activity = true,
            "--control" => control = true,
            "--reply-delay-ms" => {
                reply_delay_ms = value(&arg)?
                    .parse::<u64>()
                    .map_err(|e| format!("bad number of ms: {e}"))?;
            }
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    if cert_out.is_some() && !opts.tls {
        return Err("--cert-out needs --tls-listen".to_owned());
    }
    Ok(Some(Args {
        opts,
        cert_out,
        activity,
        control,
        reply_delay_ms,
    }))
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(Some(a)) => a,
        Ok(None) => {
            println!("{HELP}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("routeros-sim: {e}");
            return ExitCode::from(2);
        }
    };
    let sim = match Simulator::start(args.opts) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("routeros-sim: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("api: {}", sim.addr());
    if let Some(addr) = sim.tls_addr() {
        println!("api-ssl: {addr}");
    }
    if let Some(digest) = sim.cert_sha256() {
        println!("cert-sha256: {}", fingerprint_hex(&digest));
    }
    if let (Some(path), Some(pem)) = (&args.cert_out, sim.cert_pem()) {
        if let Err(e) = std::fs::write(path, pem) {
            eprintln!("routeros-sim: cannot write {path}: {e}");
            return ExitCode::FAILURE;
        }
        println!("cert: {path}");
    }

    let sim = std::sync::Arc::new(sim);
    if args.control {
        let sim = std::sync::Arc::clone(&sim);
        std::thread::spawn(move || control(&sim));
    }
    if args.reply_delay_ms > 0 {
        sim.set_reply_delay(Duration::from_millis(args.reply_delay_ms));
    }
    let mut max_in_flight = 0;

    // Seeded from the clock so each demo run differs.
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64);
    let mut activity = Activity::new(seed);
    let start = Instant::now();
    let mut ticks: u64 = 0;
    loop {
        // Tick on whole seconds since start so the clock does not drift.
        ticks += 1;
        let due = start + Duration::from_secs(ticks);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        sim.advance(Duration::from_secs(1));
        if sim.max_in_flight() > max_in_flight {
            max_in_flight = sim.max_in_flight();
            println!("max-in-flight: {max_in_flight}");
        }
        if args.activity && ticks.is_multiple_of(2) {
            for event in activity.step(&sim) {
                println!("activity: {event}");
            }
        }
    }
}

/// `--control`: scripted logins and logouts from stdin, each answered with
/// the moment it took effect, so a benchmark can time the agent's event.
fn control(sim: &mikrotik_edge::sim::SimHandle) {
    use std::io::{BufRead, Write};
    let unix_ms = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis())
    };
    for line in std::io::stdin().lock().lines().map_while(Result::ok) {
        let words: Vec<&str> = line.split_whitespace().collect();
        let reply = match words.as_slice() {
            ["add", user, profile] => {
                if sim.find("/ip/hotspot/user", user).is_some() {
                    format!("error {user} exists")
                } else {
                    sim.add_hotspot_user(user, user, profile, b"");
                    format!("add {user} {}", unix_ms())
                }
            }
            ["login", user, ip, mac] => match sim.hotspot_login(user, ip, mac) {
                Ok(_) => format!("login {user} {}", unix_ms()),
                Err(e) => format!("error {e}"),
            },
            ["logout", user] => {
                let found = sim.hotspot_logout(user);
                if found {
                    format!("logout {user} {}", unix_ms())
                } else {
                    format!("error {user} has no session")
                }
            }
            // The router's API work so far (for the bench's per-hour figures).
            ["stats"] => {
                let (bytes, commands) = sim.work();
                format!("stats {bytes} {commands}")
            }
            _ => format!("error unknown command {line:?}"),
        };
        println!("{reply}");
        let _ = std::io::stdout().flush();
    }
}
