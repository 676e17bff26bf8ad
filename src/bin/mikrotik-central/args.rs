//! Command line and environment for `mikrotik-central`.

use std::net::SocketAddr;
use std::path::PathBuf;

pub const USAGE: &str = "\
usage: mikrotik-central <command> [options]

commands:
  serve      run the HTTP(S) gateway
               --listen ADDR         (MIKROTIK_CENTRAL_LISTEN, default 127.0.0.1:8090)
               --database-url URL    (MIKROTIK_CENTRAL_DATABASE_URL, required)
               --tls-cert PEM        (MIKROTIK_CENTRAL_TLS_CERT) serve HTTPS with this chain
               --tls-key PEM         (MIKROTIK_CENTRAL_TLS_KEY) and this private key
               --pool-size N         (MIKROTIK_CENTRAL_POOL_SIZE, default 16) database connections
               --pool-wait-ms MS     (MIKROTIK_CENTRAL_POOL_WAIT_MS, default 1000) then 503
               --log-level LEVEL     (MIKROTIK_CENTRAL_LOG_LEVEL, default info)
  add-site NAME  create the site or rotate its token; prints the new token once
               --database-url URL    (MIKROTIK_CENTRAL_DATABASE_URL, required)
  load-schema  load scripts/central/schema.sql (built in; idempotent)
               --database-url URL    (MIKROTIK_CENTRAL_DATABASE_URL, required)
  prune --keep-months N  drop the monthly partitions older than N months
               --database-url URL    (MIKROTIK_CENTRAL_DATABASE_URL, required)
  add-operator NAME  create the operator or rotate its token; prints the new token once
               --database-url URL    (MIKROTIK_CENTRAL_DATABASE_URL, required)
  set-site NAME  set a site's display name, time zone and hotspot login URL
               --name TEXT --timezone ZONE --hotspot-login-url URL --database-url URL
  help [COMMAND] | --help | -h ; --version | -V

`mikrotik-central <command> --help` prints that command's options.";

/// `mikrotik-central <command> --help`.
pub fn command_usage(command: &str) -> Option<&'static str> {
    Some(match command {
        "serve" => {
            "\
usage: mikrotik-central serve [options]

Run the HTTP(S) gateway in front of PostgreSQL: POST /rpc/ingest_batch,
POST /rpc/site_desired_state (site tokens), the operator API under /api/
(operator tokens, see docs/central.md), GET /healthz.

options (each also from the environment):
  --listen ADDR         MIKROTIK_CENTRAL_LISTEN, default 127.0.0.1:8090
  --database-url URL    MIKROTIK_CENTRAL_DATABASE_URL, required
                        (postgres://user:pass@host/db, or
                        postgres://user@%2Fvar%2Frun%2Fpostgresql/db for the local socket)
  --tls-cert PEM        MIKROTIK_CENTRAL_TLS_CERT: serve HTTPS with this chain
  --tls-key PEM         MIKROTIK_CENTRAL_TLS_KEY: and this private key
  --pool-size N         MIKROTIK_CENTRAL_POOL_SIZE, default 16 database connections
  --pool-wait-ms MS     MIKROTIK_CENTRAL_POOL_WAIT_MS, default 1000: how long a
                        request waits for a free connection before it gets 503
                        with Retry-After (overload sheds fast; the agent retries)
  --log-level LEVEL     MIKROTIK_CENTRAL_LOG_LEVEL, default info

At start and then daily it creates the coming months' partitions
(edge_maintain_partitions(), docs/scale.md)."
        }
        "add-site" => {
            "\
usage: mikrotik-central add-site NAME [--database-url URL]

Create the site NAME or rotate its token; prints the new token once (only
its sha256 is stored; an old token stops working at once). Give it to the
agent as central_token.

options:
  --database-url URL    MIKROTIK_CENTRAL_DATABASE_URL, required"
        }
        "load-schema" => {
            "\
usage: mikrotik-central load-schema [--database-url URL]

Load scripts/central/schema.sql (built in) into the database. Idempotent:
loading it again over itself is how the schema is upgraded.

options:
  --database-url URL    MIKROTIK_CENTRAL_DATABASE_URL, required"
        }
        "prune" => {
            "\
usage: mikrotik-central prune --keep-months N [--database-url URL]

Retention: drop the monthly partitions of agent_events, user_activity_log
and sessions that end before the start of the month N months ago (UTC), and
older rows of their default partitions (edge_drop_partitions_older_than;
docs/scale.md). Prints what it dropped. Run it from cron, e.g. monthly.

options:
  --keep-months N       months to keep (1-1200), required
  --database-url URL    MIKROTIK_CENTRAL_DATABASE_URL, required"
        }
        "add-operator" => {
            "\
usage: mikrotik-central add-operator NAME [--database-url URL]

Create the operator NAME or rotate its token (and enable it); prints the
new token once (only its sha256 is stored). The token authenticates the
operator API (Authorization: Bearer TOKEN) and pages; it cannot upload as
a site, and a site token cannot act as an operator.

options:
  --database-url URL    MIKROTIK_CENTRAL_DATABASE_URL, required"
        }
        "set-site" => {
            "\
usage: mikrotik-central set-site NAME [options]

Set an existing site's settings; options not given stay as they are, an
empty value clears the name or the URL.

options:
  --name TEXT               display name on pages and cards
  --timezone ZONE           IANA time zone (e.g. Asia/Jakarta) in which the
                            day's activations and revenue are counted; UTC
                            until set
  --hotspot-login-url URL   the hotspot's login page (e.g.
                            http://hotspot.lan/login), printed as a QR code
                            on voucher cards
  --database-url URL        MIKROTIK_CENTRAL_DATABASE_URL, required"
        }
        "help" => USAGE,
        _ => return None,
    })
}

/// Every command, as typed.
pub const COMMANDS: [&str; 7] = [
    "serve",
    "add-site",
    "load-schema",
    "prune",
    "add-operator",
    "set-site",
    "help",
];

#[derive(Debug)]
pub struct ServeOptions {
    pub listen: SocketAddr,
    pub database_url: String,
    pub tls: Option<(PathBuf, PathBuf)>,
    pub pool_size: usize,
    /// How long a request waits for a pooled connection before 503.
    pub pool_wait: std::time::Duration,
    pub log_level: log::LevelFilter,
}

#[derive(Debug)]
pub enum Command {
    Serve(ServeOptions),
    AddSite {
        site: String,
        database_url: String,
    },
    LoadSchema {
        database_url: String,
    },
    Prune {
        keep_months: i32,
        database_url: String,
    },
    AddOperator {
        name: String,
        database_url: String,
    },
    SetSite {
        site: String,
        settings: crate::db::SiteSettings,
        database_url: String,
    },
    /// The general help, or one command's.
    Help(Option<&'static str>),
    Version,
}

/// Site names: what ends up in `site_id` and in the agent's `site_id` option.
pub fn valid_site(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Parses `argv` (without the program name); `env` looks up variables.
pub fn parse(argv: &[String], env: impl Fn(&str) -> Option<String>) -> Result<Command, String> {
    let Some(cmd) = argv.first() else {
        return Err("missing command".into());
    };
    match cmd.as_str() {
        "help" | "--help" | "-h" => {
            return match argv.get(1) {
                None => Ok(Command::Help(None)),
                Some(c) => match command_usage(c) {
                    Some(_) => Ok(Command::Help(COMMANDS.iter().copied().find(|k| k == c))),
                    None => Err(format!("unknown command {c:?}")),
                },
            };
        }
        c if argv[1..].iter().any(|a| a == "--help" || a == "-h") => {
            return match COMMANDS.iter().copied().find(|k| *k == c) {
                Some(k) => Ok(Command::Help(Some(k))),
                None => Err(format!("unknown command {c:?}")),
            };
        }
        _ => {}
    }
    let mut flags: Vec<(String, String)> = Vec::new();
    let mut positional: Vec<String> = Vec::new();
    let mut it = argv[1..].iter();
    while let Some(a) = it.next() {
        if let Some(name) = a.strip_prefix("--") {
            let (name, value) = match name.split_once('=') {
                Some((n, v)) => (n.to_string(), v.to_string()),
                None => {
                    let v = it
                        .next()
                        .ok_or_else(|| format!("option --{name} needs a value"))?;
                    (name.to_string(), v.clone())
                }
            };
            if flags.iter().any(|(n, _)| *n == name) {
                return Err(format!("option --{name} given twice"));
            }
            flags.push((name, value));
        } else {
            positional.push(a.clone());
        }
    }
    let allowed: &[&str] = match cmd.as_str() {
        "serve" => &[
            "listen",
            "database-url",
            "tls-cert",
            "tls-key",
            "pool-size",
            "pool-wait-ms",
            "log-level",
        ],
        "prune" => &["database-url", "keep-months"],
        "add-site" | "load-schema" | "add-operator" => &["database-url"],
        "set-site" => &["database-url", "name", "timezone", "hotspot-login-url"],
        "--version" | "-V" => return Ok(Command::Version),
        other => return Err(format!("unknown command {other:?}")),
    };
    if let Some((n, _)) = flags.iter().find(|(n, _)| !allowed.contains(&n.as_str())) {
        return Err(format!("unknown option --{n} for {cmd}"));
    }
    let get = |flag: &str, var: &str| -> Option<String> {
        flags
            .iter()
            .find(|(n, _)| n == flag)
            .map(|(_, v)| v.clone())
            .or_else(|| env(var).filter(|v| !v.is_empty()))
    };
    let database_url = || {
        get("database-url", "MIKROTIK_CENTRAL_DATABASE_URL").ok_or_else(|| {
            "--database-url (or MIKROTIK_CENTRAL_DATABASE_URL) is required".to_string()
        })
    };
    match cmd.as_str() {
        "serve" => {
            if let Some(p) = positional.first() {
                return Err(format!("unexpected argument {p:?}"));
            }
            let listen =
                get("listen", "MIKROTIK_CENTRAL_LISTEN").unwrap_or_else(|| "127.0.0.1:8090".into());
            let listen: SocketAddr = listen
                .parse()
                .map_err(|_| format!("--listen: expected ADDRESS:PORT, got {listen:?}"))?;
            let database_url = database_url()?;
            let tls = match (
                get("tls-cert", "MIKROTIK_CENTRAL_TLS_CERT"),
                get("tls-key", "MIKROTIK_CENTRAL_TLS_KEY"),
            ) {
                (Some(c), Some(k)) => Some((PathBuf::from(c), PathBuf::from(k))),
                (None, None) => None,
                _ => return Err("--tls-cert and --tls-key go together".into()),
            };
            let pool_size = match get("pool-size", "MIKROTIK_CENTRAL_POOL_SIZE") {
                None => 16,
                Some(v) => match v.parse::<usize>() {
                    Ok(n) if (1..=1000).contains(&n) => n,
                    _ => return Err(format!("--pool-size: expected 1-1000, got {v:?}")),
                },
            };
            let pool_wait = match get("pool-wait-ms", "MIKROTIK_CENTRAL_POOL_WAIT_MS") {
                None => std::time::Duration::from_secs(1),
                Some(v) => match v.parse::<u64>() {
                    Ok(n) if (1..=600_000).contains(&n) => std::time::Duration::from_millis(n),
                    _ => return Err(format!("--pool-wait-ms: expected 1-600000, got {v:?}")),
                },
            };
            let log_level = match get("log-level", "MIKROTIK_CENTRAL_LOG_LEVEL") {
                None => log::LevelFilter::Info,
                Some(v) => v.parse().map_err(|_| {
                    format!(
                        "--log-level: expected off, error, warn, info, debug or trace, got {v:?}"
                    )
                })?,
            };
            Ok(Command::Serve(ServeOptions {
                listen,
                database_url,
                tls,
                pool_size,
                pool_wait,
                log_level,
            }))
        }
        "add-site" => {
            let [site] = positional.as_slice() else {
                return Err("add-site takes exactly one NAME".into());
            };
            if !valid_site(site) {
                return Err(format!(
                    "site name {site:?}: use 1-128 letters, digits, '-', '_' or '.'"
                ));
            }
            Ok(Command::AddSite {
                site: site.clone(),
                database_url: database_url()?,
            })
        }
        "prune" => {
            if let Some(p) = positional.first() {
                return Err(format!("unexpected argument {p:?}"));
            }
            let v = get("keep-months", "")
                .ok_or_else(|| "prune: --keep-months N is required".to_string())?;
            let keep_months = match v.parse::<i32>() {
                Ok(n) if (1..=1200).contains(&n) => n,
                _ => return Err(format!("--keep-months: expected 1-1200, got {v:?}")),
            };
            Ok(Command::Prune {
                keep_months,
                database_url: database_url()?,
            })
        }
        "add-operator" => {
            let [name] = positional.as_slice() else {
                return Err("add-operator takes exactly one NAME".into());
            };
            if !crate::operator_auth::valid_name(name) {
                return Err(format!(
                    "operator name {name:?}: use 1-128 letters, digits, '-', '_' or '.'"
                ));
            }
            Ok(Command::AddOperator {
                name: name.clone(),
                database_url: database_url()?,
            })
        }
        "set-site" => {
            let [site] = positional.as_slice() else {
                return Err("set-site takes exactly one NAME".into());
            };
            let flag = |n: &str| flags.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
            let settings = crate::db::SiteSettings {
                name: flag("name"),
                timezone: flag("timezone"),
                hotspot_login_url: flag("hotspot-login-url"),
            };
            if let Some(n) = &settings.name
                && (n.chars().count() > 200 || n.chars().any(char::is_control))
            {
                return Err("--name: at most 200 characters, no control characters".into());
            }
            if settings.timezone.as_deref() == Some("") {
                return Err("--timezone: give an IANA time zone such as Asia/Jakarta".into());
            }
            if let Some(u) = settings.hotspot_login_url.as_deref()
                && !u.is_empty()
                && !((u.starts_with("http://") || u.starts_with("https://"))
                    && u.len() <= 500
                    && !u.chars().any(|c| c.is_control() || c == ' '))
            {
                return Err(format!(
                    "--hotspot-login-url: expected an http:// or https:// URL, got {u:?}"
                ));
            }
            if settings == crate::db::SiteSettings::default() {
                return Err(
                    "set-site: give at least one of --name, --timezone, --hotspot-login-url".into(),
                );
            }
            Ok(Command::SetSite {
                site: site.clone(),
                settings,
                database_url: database_url()?,
            })
        }
        _ => {
            if let Some(p) = positional.first() {
                return Err(format!("unexpected argument {p:?}"));
            }
            Ok(Command::LoadSchema {
                database_url: database_url()?,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Command, String> {
        let argv: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        parse(&argv, |k| {
            (k == "MIKROTIK_CENTRAL_DATABASE_URL").then(|| "postgres://env/db".to_string())
        })
    }

    #[test]
    fn serve_defaults_and_flags() {
        let Command::Serve(o) = p(&["serve"]).unwrap() else {
            panic!()
        };
        assert_eq!(o.listen.to_string(), "127.0.0.1:8090");
        assert_eq!(o.database_url, "postgres://env/db");
        assert!(o.tls.is_none());
        let Command::Serve(o) = p(&["serve", "--listen=0.0.0.0:1", "--database-url", "x"]).unwrap()
        else {
            panic!()
        };
        assert_eq!(o.listen.to_string(), "0.0.0.0:1");
        assert_eq!(o.database_url, "x");
    }

    #[test]
    fn bad_arguments() {
        for bad in [
            &[][..],
            &["frobnicate"],
            &["serve", "--listen", "nope"],
            &["serve", "--tls-cert", "a"],
            &["serve", "--bogus", "1"],
            &["serve", "--listen"],
            &["add-site"],
            &["add-site", "a b"],
            &["add-site", "a", "b"],
        ] {
            assert!(p(bad).is_err(), "{bad:?}");
        }
        assert!(matches!(
            p(&["add-site", "site-a"]),
            Ok(Command::AddSite { .. })
        ));
        for bad in [
            &["prune"][..],
            &["prune", "--keep-months", "0"],
            &["prune", "--keep-months", "x"],
            &["serve", "--pool-wait-ms", "0"],
            &["add-operator"],
            &["add-operator", "a|b"],
            &["add-operator", "a", "b"],
            &["set-site", "a"],
            &["set-site", "a", "--timezone", ""],
            &["set-site", "a", "--hotspot-login-url", "ftp://x"],
            &["set-site", "a", "--bogus", "1"],
        ] {
            assert!(p(bad).is_err(), "{bad:?}");
        }
        assert!(matches!(
            p(&["prune", "--keep-months", "3"]),
            Ok(Command::Prune { keep_months: 3, .. })
        ));
        assert!(matches!(
            p(&["add-operator", "alice"]),
            Ok(Command::AddOperator { .. })
        ));
        let Ok(Command::SetSite { settings, .. }) =
            p(&["set-site", "a", "--timezone", "Asia/Jakarta", "--name", ""])
        else {
            panic!()
        };
        assert_eq!(settings.timezone.as_deref(), Some("Asia/Jakarta"));
        assert_eq!(settings.name.as_deref(), Some(""));
        assert_eq!(settings.hotspot_login_url, None);
    }
}
