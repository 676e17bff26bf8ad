//! The `mikrotik-edge` binary: parse the command line, load the config,
//! and hand over to `check`, `api`, `import-mikhmon` or the agent.

use std::io::Write;
use std::process::ExitCode;

use mikrotik_edge::cli::{self, Command};
use mikrotik_edge::client::{Connection, Item};
use mikrotik_edge::config::Config;
use mikrotik_edge::name::base64;
use mikrotik_edge::proto::{self, Attrs};

/// Exit status for bad usage or bad config (the key is named on stderr).
const EXIT_USAGE: u8 = 2;

fn main() -> ExitCode {
    let cli = match cli::parse(std::env::args_os().skip(1)) {
        Ok(cli) => cli,
        Err(e) => {
            eprintln!("mikrotik-edge: {e}\nRun `mikrotik-edge --help` for usage.");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    match cli.command {
        Command::Help => {
            print!("{}", cli::USAGE);
            return ExitCode::SUCCESS;
        }
        Command::Version => {
            println!("mikrotik-edge {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        _ => {}
    }
    let cfg = match Config::from_process_env(cli.config.as_deref()) {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("mikrotik-edge: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    mikrotik_edge::logging::init(cfg.log_level);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mikrotik-edge: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command {
        Command::Check => runtime.block_on(check(&cfg)),
        Command::Api { command, words } => runtime.block_on(api(&cfg, command, words)),
        Command::Run => match runtime.block_on(mikrotik_edge::agent::run(cfg)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                log::error!("{e}");
                eprintln!("mikrotik-edge: {e}");
                ExitCode::FAILURE
            }
        },
        Command::ImportMikhmon(opts) => {
            let mut stdout = std::io::stdout();
            match runtime.block_on(mikrotik_edge::mikhmon::import::run(
                &cfg,
                &opts,
                &mut stdout,
            )) {
                Ok(true) => ExitCode::SUCCESS,
                // The failed writes are named in the report.
                Ok(false) => ExitCode::FAILURE,
                Err(e) => {
                    eprintln!("mikrotik-edge: import-mikhmon: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Sync => runtime.block_on(mikrotik_edge::agent::sync::cli(&cfg)),
        Command::CreateBatch(opts) => {
            runtime.block_on(mikrotik_edge::batch::create::cli(&cfg, &opts))
        }
        Command::Help | Command::Version => ExitCode::SUCCESS,
    }
}

/// Connects, logs in, prints identity, board and version.
async fn check(cfg: &Config) -> ExitCode {
    let result = async {
        let conn = Connection::open(&cfg.router).await?;
        let identity = conn
            .execute(proto::Command::new("/system/identity/print"))
            .await?;
        let resource = conn
            .execute(proto::Command::new("/system/resource/print"))
            .await?;
        Ok::<_, mikrotik_edge::client::ClientError>((identity, resource))
    }
    .await;
    match result {
        Ok((identity, resource)) => {
            let field = |rows: &[Attrs], key: &str| {
                rows.first()
                    .map(|r| r.text(key))
                    .unwrap_or_else(|| "?".into())
            };
            println!("identity: {}", field(&identity.rows, "name"));
            println!("board: {}", field(&resource.rows, "board-name"));
            println!("version: {}", field(&resource.rows, "version"));
            println!("uptime: {}", field(&resource.rows, "uptime"));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("mikrotik-edge: check failed: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs one command and prints each reply item the moment it arrives:
/// rows to stdout as JSON lines, traps to stderr. Endless commands
/// (`listen`, `print follow`) run until Ctrl-C or SIGTERM, which cancel the
/// command and end the session with `/quit`.
async fn api(cfg: &Config, command: Vec<u8>, words: Vec<Vec<u8>>) -> ExitCode {
    let mut signals = match mikrotik_edge::agent::Signals::install() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("mikrotik-edge: {e}");
            return ExitCode::FAILURE;
        }
    };
    let cmd = words
        .into_iter()
        .fold(proto::Command::new(command), proto::Command::word);
    let conn = match Connection::open(&cfg.router).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("mikrotik-edge: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut stream = match conn.stream(cmd) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("mikrotik-edge: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut trapped = false;
    let status = loop {
        let item = tokio::select! {
            item = stream.next() => item,
            sig = signals.recv() => {
                eprintln!("mikrotik-edge: {sig}: cancelling");
                break ExitCode::SUCCESS;
            }
        };
        let mut out = std::io::stdout().lock();
        match item {
            Some(Ok(Item::Row(row))) => {
                let _ = writeln!(out, "{}", attrs_json(&row));
                let _ = out.flush();
            }
            Some(Ok(Item::Trap(trap))) => {
                trapped = true;
                match trap.category {
                    Some(c) => eprintln!("trap (category {c}): {}", trap.message),
                    None => eprintln!("trap: {}", trap.message),
                }
            }
            Some(Ok(Item::Done(done))) => {
                if !done.is_empty() {
                    let _ = writeln!(out, "{{\"!done\":{}}}", attrs_json(&done));
                }
                let _ = out.flush();
                break if trapped {
                    ExitCode::FAILURE
                } else {
                    ExitCode::SUCCESS
                };
            }
            Some(Err(e)) => {
                eprintln!("mikrotik-edge: {e}");
                break ExitCode::FAILURE;
            }
            None => {
                eprintln!("mikrotik-edge: session ended");
                break ExitCode::FAILURE;
            }
        }
    };
    drop(stream);
    conn.quit(std::time::Duration::from_secs(2)).await;
    status
}

/// A reply's attributes as one JSON object, in the router's order, repeated
/// keys kept (written twice). A value is a JSON string when its bytes are
/// UTF-8, else `{"base64":"…"}` with the exact bytes, so no rendering can be
/// mistaken for another. A key that is not UTF-8 (never seen in practice)
/// is written as `=b64=` and its base64: real keys never start with `=`.
fn attrs_json(attrs: &Attrs) -> String {
    let mut out = String::from("{");
    for (i, (k, v)) in attrs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let key = match std::str::from_utf8(k) {
            Ok(k) => k.to_owned(),
            Err(_) => format!("=b64={}", base64(k)),
        };
        out.push_str(&serde_json::Value::String(key).to_string());
        out.push(':');
        match std::str::from_utf8(v) {
            Ok(v) => out.push_str(&serde_json::Value::String(v.to_owned()).to_string()),
            Err(_) => {
                out.push_str("{\"base64\":\"");
                out.push_str(&base64(v));
                out.push_str("\"}");
            }
        }
    }
    out.push('}');
    out
}
