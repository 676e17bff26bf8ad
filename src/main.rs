//! The `mikrotik-edge` binary: parse the command line, load the config,
//! and hand over to `check`, `api` or the agent.

use std::io::Write;
use std::process::ExitCode;

use mikrotik_edge::cli::{self, Command};
use mikrotik_edge::client::Connection;
use mikrotik_edge::config::Config;
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

/// Runs one command; rows go to stdout as JSON lines, traps to stderr.
async fn api(cfg: &Config, command: Vec<u8>, words: Vec<Vec<u8>>) -> ExitCode {
    let cmd = words
        .into_iter()
        .fold(proto::Command::new(command), proto::Command::word);
    let response = match Connection::open(&cfg.router).await {
        Ok(conn) => conn.execute_raw(cmd).await,
        Err(e) => Err(e),
    };
    let response = match response {
        Ok(r) => r,
        Err(e) => {
            eprintln!("mikrotik-edge: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut out = std::io::stdout().lock();
    for row in &response.rows {
        let _ = writeln!(out, "{}", attrs_json(row));
    }
    if !response.done.is_empty() {
        let _ = writeln!(out, "{{\"!done\":{}}}", attrs_json(&response.done));
    }
    let _ = out.flush();
    if response.traps.is_empty() {
        return ExitCode::SUCCESS;
    }
    for trap in &response.traps {
        match trap.category {
            Some(c) => eprintln!("trap (category {c}): {}", trap.message),
            None => eprintln!("trap: {}", trap.message),
        }
    }
    ExitCode::FAILURE
}

/// A JSON object of a reply's attributes. Bytes that are not UTF-8 are
/// written as `\xNN` text so nothing is silently dropped.
fn attrs_json(attrs: &Attrs) -> String {
    let map: serde_json::Map<String, serde_json::Value> = attrs
        .iter()
        .map(|(k, v)| (escape_bytes(k), serde_json::Value::String(escape_bytes(v))))
        .collect();
    serde_json::Value::Object(map).to_string()
}

fn escape_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02X}"));
        }
    }
    out
}
