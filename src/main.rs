//! The `mikrotik-edge` binary: parse the command line, load the config,
//! and hand over to `check`, `api`, `import-mikhmon` or the agent.

use std::io::Write;
use std::process::ExitCode;

use mikrotik_edge::agent::Signals;
use mikrotik_edge::api_json;
use mikrotik_edge::cli::{self, Command};
use mikrotik_edge::client::{ClientError, Connection, Item, ReplyStream};
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
        Command::Help(topic) => {
            print!(
                "{}",
                topic.and_then(cli::command_usage).unwrap_or(cli::USAGE)
            );
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
        Command::Quarantine(action) => {
            mikrotik_edge::uplink::quarantine_cli(&cfg, action, &mut std::io::stdout())
        }
        Command::Help(_) | Command::Version => ExitCode::SUCCESS,
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
    let mut signals = match Signals::install() {
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
    let status = print_replies(&mut stream, &mut signals).await;
    drop(stream);
    conn.quit(std::time::Duration::from_secs(2)).await;
    status
}

/// Rows are collected in a buffer and written when it is large or when
/// the router has sent nothing for FLUSH_AFTER: a 10,000-row print is a
/// few dozen writes (rows trickle in sentence by sentence, so "nothing
/// ready right now" happens every few rows), while a `listen` still shows
/// each change at once to a human eye.
const FLUSH_AFTER: std::time::Duration = std::time::Duration::from_millis(20);
const FLUSH_AT: usize = 64 * 1024;

/// Prints reply items until the command ends, fails, or a signal cancels it.
async fn print_replies(stream: &mut ReplyStream, signals: &mut Signals) -> ExitCode {
    let mut out = ApiOutput {
        buf: Vec::with_capacity(FLUSH_AT),
        out: std::io::stdout(),
        trapped: false,
    };
    loop {
        let item = match stream.try_next() {
            Some(item) => Some(item),
            None => match wait_next(stream, signals, &mut out).await {
                Waited::Item(item) => item,
                Waited::Flushed => continue,
                Waited::Stop(status) => return status,
            },
        };
        if let Some(status) = out.item(item, stream) {
            return status;
        }
    }
}

/// What waiting for the next reply item gave.
enum Waited {
    Item(Option<Result<Item, ClientError>>),
    /// Nothing for FLUSH_AFTER: the buffered rows were written.
    Flushed,
    Stop(ExitCode),
}

/// Waits for the next item; with rows buffered, at most FLUSH_AFTER, then
/// writes them (the caller waits again with nothing pending).
async fn wait_next(stream: &mut ReplyStream, signals: &mut Signals, out: &mut ApiOutput) -> Waited {
    let pending = !out.buf.is_empty();
    let next = async {
        if pending {
            tokio::time::timeout(FLUSH_AFTER, stream.next()).await.ok()
        } else {
            Some(stream.next().await)
        }
    };
    tokio::select! {
        got = next => match got {
            Some(item) => Waited::Item(item),
            // stdout closed (e.g. piped into `head`): stop quietly.
            None if out.write_out().is_err() => Waited::Stop(ExitCode::SUCCESS),
            None => Waited::Flushed,
        },
        sig = signals.recv() => {
            eprintln!("mikrotik-edge: {sig}: cancelling");
            let _ = out.write_out();
            Waited::Stop(ExitCode::SUCCESS)
        }
    }
}

/// `api`'s output: rows buffered for stdout, traps straight to stderr.
struct ApiOutput {
    buf: Vec<u8>,
    out: std::io::Stdout,
    trapped: bool,
}

impl ApiOutput {
    /// Writes and flushes the buffered rows.
    fn write_out(&mut self) -> std::io::Result<()> {
        self.out.write_all(&self.buf)?;
        self.out.flush()?;
        self.buf.clear();
        Ok(())
    }

    /// Prints one reply item; the exit status once the command is over.
    fn item(
        &mut self,
        item: Option<Result<Item, ClientError>>,
        stream: &ReplyStream,
    ) -> Option<ExitCode> {
        match item {
            Some(Ok(Item::Row(row))) => {
                api_json::write_attrs(&mut self.buf, &row);
                self.buf.push(b'\n');
                stream.recycle(row);
                if self.buf.len() >= FLUSH_AT {
                    if self.out.write_all(&self.buf).is_err() {
                        return Some(ExitCode::SUCCESS);
                    }
                    self.buf.clear();
                }
                None
            }
            Some(Ok(Item::Trap(trap))) => {
                self.trapped = true;
                match trap.category {
                    Some(c) => eprintln!("trap (category {c}): {}", trap.message),
                    None => eprintln!("trap: {}", trap.message),
                }
                None
            }
            Some(Ok(Item::Done(done))) => {
                if !done.is_empty() {
                    self.buf.extend_from_slice(b"{\"!done\":");
                    api_json::write_attrs(&mut self.buf, &done);
                    self.buf.extend_from_slice(b"}\n");
                }
                let _ = self.write_out();
                Some(if self.trapped {
                    ExitCode::FAILURE
                } else {
                    ExitCode::SUCCESS
                })
            }
            Some(Err(e)) => {
                let _ = self.write_out();
                eprintln!("mikrotik-edge: {e}");
                Some(ExitCode::FAILURE)
            }
            None => {
                let _ = self.write_out();
                eprintln!("mikrotik-edge: session ended");
                Some(ExitCode::FAILURE)
            }
        }
    }
}
