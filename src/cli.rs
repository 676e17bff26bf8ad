//! The command line, parsed by hand: seven commands and a few options do not
//! justify an argument-parsing dependency in an agent with a size budget
//! (under 3,000,000 bytes on aarch64); each command has its own `--help`.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;

use crate::batch::create::CreateOptions;
use crate::mikhmon::import::ImportOptions;
pub use crate::uplink::QuarantineAction;

/// The `--help` text.
pub const USAGE: &str = "\
mikrotik-edge: site agent for one MikroTik router

Usage: mikrotik-edge [--config PATH] <command>

Commands:
  check                      connect, log in, print identity, board and version
  api <command> [WORD]...    run one API command; print each !re as a JSON line
                             WORD is =key=value, ?query or .proplist=a,b
  run                        run the agent
  import-mikhmon [--apply] [--disable-schedulers] [--export FILE.csv] [--verbose]
  import-mikhmon --undo FILE.csv [--apply]
                             migrate Mikhmon's vouchers to VOUCHER_SYSTEM
                             comments (dry run unless --apply), or undo it
  sync                       fetch the desired state from the central side and
                             reconcile the router once (the agent must not be
                             running: use POST /api/mikrotik/sync/force then)
  create-batch FILE.csv [--failures OUT.csv] [--max-in-flight N]
                             create vouchers / PPPoE secrets from a CSV file
  quarantine list            print the events the central side refused as
                             malformed (one JSON line each)
  quarantine resend          queue them again as new events (once the central
                             side is fixed); both with the agent stopped
  help [COMMAND]             print this help, or a command's

`mikrotik-edge <command> --help` prints that command's options.

Options:
  --config PATH              TOML config file; MIKROTIK_EDGE_* environment
                             variables override it
  -h, --help                 print this help
  -V, --version              print the version

Options may come before or after check and run, but only before api:
everything after `api` is the command and its words, taken verbatim.
The options of import-mikhmon come after it.

Example:
  mikrotik-edge --config /etc/mikrotik-edge/config.toml \\
      api /ip/hotspot/user/print ?disabled=false .proplist=name,profile
";

/// `mikrotik-edge <command> --help`: each command's own text.
pub fn command_usage(command: &str) -> Option<&'static str> {
    Some(match command {
        "check" => {
            "\
Usage: mikrotik-edge [--config PATH] check

Connect to the router, log in, print identity, board, version and uptime.
Exit 0, or 1 with one line: connection refused, timeout: ..., bad
credentials: ..., certificate rejected: ..., TLS handshake failed: ...
"
        }
        "api" => {
            "\
Usage: mikrotik-edge [--config PATH] api <command> [WORD]...

Run one RouterOS API command and print each !re row as a JSON line;
!done attributes as {\"!done\":{...}}; a !trap goes to stderr (exit 1).
WORD is =key=value, ?query (also ?# operators) or .proplist=a,b, passed
verbatim. listen and print follow run until Ctrl-C.

Example:
  mikrotik-edge api /ip/hotspot/user/print ?profile=voucher-1h .proplist=name,comment
"
        }
        "run" => {
            "\
Usage: mikrotik-edge [--config PATH] run

Run the agent until SIGTERM or SIGINT: monitor, voucher lifecycle,
events, upload, full sync and the local HTTP endpoint.
"
        }
        "import-mikhmon" => {
            "\
Usage: mikrotik-edge [--config PATH] import-mikhmon [OPTIONS]

Rewrite Mikhmon's hotspot users into VOUCHER_SYSTEM comments. A dry run
(report only, nothing written) unless --apply.

Options:
  --apply                    write the changes (and the export file first)
  --disable-schedulers       with --apply: disable Mikhmon's monitor schedulers
  --export FILE.csv          where the undo file goes (default: next to the
                             state file, mikhmon-import-<UTC time>.csv)
  --undo FILE.csv            restore the comments saved in FILE.csv
                             (dry run unless --apply)
  --verbose                  list every user in the report, not a few per kind
"
        }
        "sync" => {
            "\
Usage: mikrotik-edge [--config PATH] sync

Fetch the desired state from the central side once and reconcile the
router with it. The agent must not be running (use
POST /api/mikrotik/sync/force on a running agent).
"
        }
        "create-batch" => {
            "\
Usage: mikrotik-edge [--config PATH] create-batch FILE.csv [OPTIONS]

Create vouchers / PPPoE secrets from a CSV file (validated first: nothing
is sent if a line is wrong). Rerunning it skips names that exist.

Options:
  --failures OUT.csv         write the lines that failed to OUT.csv
  --max-in-flight N          most router commands at once (1-256; default
                             sync_max_in_flight, 16)
"
        }
        "quarantine" => {
            "\
Usage: mikrotik-edge [--config PATH] quarantine list|resend

  list                       print the events the central side refused as
                             malformed, one JSON line each (seq, reason,
                             quarantined_at, event)
  resend                     queue them again as new events (once the
                             central side is fixed)
Both need the agent stopped.
"
        }
        "help" => USAGE,
        _ => return None,
    })
}

/// What to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Check,
    /// One raw API command; bytes because RouterOS values need not be UTF-8.
    Api {
        command: Vec<u8>,
        words: Vec<Vec<u8>>,
    },
    Run,
    /// `import-mikhmon` and its options.
    ImportMikhmon(ImportOptions),
    /// One fetch of the desired state and one reconciliation.
    Sync,
    /// `create-batch FILE.csv` and its options.
    CreateBatch(CreateOptions),
    /// `quarantine list|resend`.
    Quarantine(QuarantineAction),
    /// The general help, or one command's (`<command> --help`, `help <command>`).
    Help(Option<&'static str>),
    Version,
}

/// A parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cli {
    pub config: Option<PathBuf>,
    pub command: Command,
}

/// Why the command line was rejected; `Display` is one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CliError {
    UnknownCommand(String),
    UnknownOption(String),
    ConfigNeedsPath,
    ConfigTwice,
    MissingCommand,
    UnexpectedArgument {
        command: &'static str,
        arg: String,
    },
    ApiNeedsCommand,
    ApiBadCommand(String),
    ApiBadWord(String),
    ApiTagWord,
    /// An import-mikhmon option that needs a file.
    NeedsPath(&'static str),
    /// An option given twice.
    Twice(&'static str),
    /// Options that do not go together.
    Conflict(&'static str, &'static str),
    /// `quarantine` without `list` or `resend`.
    QuarantineNeedsAction,
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::UnknownCommand(c) => write!(f, "unknown command {c:?}"),
            CliError::QuarantineNeedsAction => f.write_str("quarantine needs list or resend"),
            CliError::UnknownOption(o) => write!(f, "unknown option {o:?}"),
            CliError::ConfigNeedsPath => f.write_str("--config needs a path"),
            CliError::ConfigTwice => f.write_str("--config given more than once"),
            CliError::MissingCommand => {
                f.write_str("missing command: check, api, run or import-mikhmon (see --help)")
            }
            CliError::UnexpectedArgument { command, arg } => {
                write!(f, "unexpected argument {arg:?} after {command}")
            }
            CliError::ApiNeedsCommand => {
                f.write_str("api needs a command, e.g. /system/resource/print")
            }
            CliError::ApiBadCommand(c) => {
                write!(f, "api command must start with \"/\", got {c:?}")?;
                if c.starts_with('-') {
                    f.write_str(" (options go before api)")?;
                }
                Ok(())
            }
            CliError::ApiBadWord(w) => {
                write!(
                    f,
                    "api word must start with \"=\", \"?\" or \".\", got {w:?}"
                )?;
                if w.starts_with('-') {
                    f.write_str(" (options go before api)")?;
                }
                Ok(())
            }
            CliError::ApiTagWord => {
                f.write_str("api word .tag is reserved: commands are tagged automatically")
            }
            CliError::NeedsPath(o) => write!(f, "{o} needs a file path"),
            CliError::Twice(o) => write!(f, "{o} given more than once"),
            CliError::Conflict(a, b) => write!(f, "{a} and {b} do not go together"),
        }
    }
}

impl std::error::Error for CliError {}

/// Every command, as typed.
pub const COMMANDS: [&str; 8] = [
    "check",
    "api",
    "run",
    "import-mikhmon",
    "sync",
    "create-batch",
    "quarantine",
    "help",
];

/// Parses the arguments after `argv[0]`.
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Cli, CliError> {
    let mut args = args.into_iter();
    let mut config: Option<PathBuf> = None;
    // Check, Run or Help once seen; api returns as soon as it is seen.
    let mut command: Option<(Command, &'static str)> = None;

    while let Some(arg) = args.next() {
        let bytes = arg.as_bytes();
        if bytes == b"--config" {
            set_config(&mut config, args.next())?;
        } else if let Some(path) = bytes.strip_prefix(b"--config=") {
            set_config(&mut config, Some(OsStr::from_bytes(path).to_owned()))?;
        } else if bytes == b"-h" || bytes == b"--help" {
            return Ok(Cli {
                config,
                command: Command::Help(command.map(|(_, name)| name)),
            });
        } else if bytes == b"-V" || bytes == b"--version" {
            return Ok(Cli {
                config,
                command: Command::Version,
            });
        } else if let Some((Command::ImportMikhmon(opts), _)) = command.as_mut()
            && bytes.starts_with(b"--")
        {
            import_option(opts, bytes, &mut args)?;
        } else if bytes.len() > 1 && bytes.starts_with(b"-") {
            return Err(CliError::UnknownOption(lossy(bytes)));
        } else if let Some((_, name)) = command {
            return Err(CliError::UnexpectedArgument {
                command: name,
                arg: lossy(bytes),
            });
        } else {
            command = Some(match bytes {
                b"check" => (Command::Check, "check"),
                b"run" => (Command::Run, "run"),
                b"sync" => (Command::Sync, "sync"),
                b"create-batch" => {
                    return Ok(Cli {
                        config,
                        command: parse_create_batch(args)?,
                    });
                }
                b"help" => {
                    let topic = match args.next() {
                        None => None,
                        Some(a) => Some(
                            COMMANDS
                                .iter()
                                .copied()
                                .find(|c| c.as_bytes() == a.as_bytes())
                                .ok_or_else(|| CliError::UnknownCommand(lossy(a.as_bytes())))?,
                        ),
                    };
                    (Command::Help(topic), "help")
                }
                b"quarantine" => match args.next().as_deref().map(OsStr::as_bytes) {
                    Some(b"-h" | b"--help") => (Command::Help(Some("quarantine")), "quarantine"),
                    Some(b"list") => (Command::Quarantine(QuarantineAction::List), "quarantine"),
                    Some(b"resend") => {
                        (Command::Quarantine(QuarantineAction::Resend), "quarantine")
                    }
                    _ => return Err(CliError::QuarantineNeedsAction),
                },
                b"import-mikhmon" => (
                    Command::ImportMikhmon(ImportOptions::default()),
                    "import-mikhmon",
                ),
                b"api" => {
                    return Ok(Cli {
                        config,
                        command: parse_api(args)?,
                    });
                }
                _ => return Err(CliError::UnknownCommand(lossy(bytes))),
            });
        }
    }

    match command {
        Some((Command::ImportMikhmon(opts), _)) if opts.undo.is_some() => {
            if opts.export.is_some() {
                return Err(CliError::Conflict("--undo", "--export"));
            }
            if opts.disable_schedulers {
                return Err(CliError::Conflict("--undo", "--disable-schedulers"));
            }
            Ok(Cli {
                config,
                command: Command::ImportMikhmon(opts),
            })
        }
        Some((command, _)) => Ok(Cli { config, command }),
        None => Err(CliError::MissingCommand),
    }
}

/// One option of `import-mikhmon` (`--export FILE` or `--export=FILE`).
fn import_option(
    opts: &mut ImportOptions,
    arg: &[u8],
    args: &mut impl Iterator<Item = OsString>,
) -> Result<(), CliError> {
    let (key, inline) = match arg.iter().position(|&b| b == b'=') {
        Some(i) => (&arg[..i], Some(&arg[i + 1..])),
        None => (arg, None),
    };
    let flag = |set: &mut bool, name: &'static str| {
        if inline.is_some() {
            return Err(CliError::UnknownOption(lossy(arg)));
        }
        if *set {
            return Err(CliError::Twice(name));
        }
        *set = true;
        Ok(())
    };
    let path = |slot: &mut Option<PathBuf>,
                name: &'static str,
                args: &mut dyn Iterator<Item = OsString>| {
        if slot.is_some() {
            return Err(CliError::Twice(name));
        }
        let value = match inline {
            Some(v) => OsStr::from_bytes(v).to_owned(),
            None => args.next().ok_or(CliError::NeedsPath(name))?,
        };
        if value.is_empty() {
            return Err(CliError::NeedsPath(name));
        }
        *slot = Some(PathBuf::from(value));
        Ok(())
    };
    match key {
        b"--apply" => flag(&mut opts.apply, "--apply"),
        b"--disable-schedulers" => flag(&mut opts.disable_schedulers, "--disable-schedulers"),
        b"--verbose" => flag(&mut opts.verbose, "--verbose"),
        b"--export" => path(&mut opts.export, "--export", args),
        b"--undo" => path(&mut opts.undo, "--undo", args),
        _ => Err(CliError::UnknownOption(lossy(arg))),
    }
}

fn set_config(config: &mut Option<PathBuf>, path: Option<OsString>) -> Result<(), CliError> {
    if config.is_some() {
        return Err(CliError::ConfigTwice);
    }
    match path {
        Some(p) if !p.is_empty() => {
            *config = Some(PathBuf::from(p));
            Ok(())
        }
        _ => Err(CliError::ConfigNeedsPath),
    }
}

/// `create-batch FILE [--failures PATH] [--max-in-flight N]` (options
/// after the file; `--config` must come before `create-batch`).
fn parse_create_batch(args: impl Iterator<Item = OsString>) -> Result<Command, CliError> {
    let mut opts = CreateOptions::default();
    let mut file: Option<PathBuf> = None;
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        let bytes = arg.as_bytes();
        let (key, inline) = match bytes.iter().position(|&b| b == b'=') {
            Some(i) if bytes.starts_with(b"--") => (
                &bytes[..i],
                Some(OsStr::from_bytes(&bytes[i + 1..]).to_owned()),
            ),
            _ => (bytes, None),
        };
        match key {
            b"-h" | b"--help" => return Ok(Command::Help(Some("create-batch"))),
            b"--failures" => {
                if opts.failures.is_some() {
                    return Err(CliError::Twice("--failures"));
                }
                let v = inline.or_else(|| args.next()).filter(|v| !v.is_empty());
                opts.failures = Some(PathBuf::from(v.ok_or(CliError::NeedsPath("--failures"))?));
            }
            b"--max-in-flight" => {
                if opts.max_in_flight.is_some() {
                    return Err(CliError::Twice("--max-in-flight"));
                }
                let v = inline.or_else(|| args.next()).unwrap_or_default();
                let n = v
                    .to_str()
                    .and_then(|s| s.parse::<usize>().ok())
                    .filter(|n| (1..=256).contains(n))
                    .ok_or_else(|| CliError::UnexpectedArgument {
                        command: "create-batch --max-in-flight (1-256)",
                        arg: lossy(v.as_bytes()),
                    })?;
                opts.max_in_flight = Some(n);
            }
            _ if bytes.starts_with(b"-") && bytes.len() > 1 => {
                return Err(CliError::UnknownOption(lossy(bytes)));
            }
            _ if file.is_none() && !bytes.is_empty() => file = Some(PathBuf::from(arg)),
            _ => {
                return Err(CliError::UnexpectedArgument {
                    command: "create-batch",
                    arg: lossy(bytes),
                });
            }
        }
    }
    opts.file = file.ok_or(CliError::NeedsPath("create-batch"))?;
    Ok(Command::CreateBatch(opts))
}

/// Everything after `api`, verbatim: the command path, then its words.
fn parse_api(mut args: impl Iterator<Item = OsString>) -> Result<Command, CliError> {
    let command = args.next().ok_or(CliError::ApiNeedsCommand)?.into_vec();
    if command == b"-h" || command == b"--help" {
        return Ok(Command::Help(Some("api")));
    }
    if !command.starts_with(b"/") {
        return Err(CliError::ApiBadCommand(lossy(&command)));
    }
    let words = args
        .map(|word| {
            let word = word.into_vec();
            // An empty word would end the sentence early on the wire, and a
            // bare name is almost always a forgotten leading `=`.
            if !matches!(word.first(), Some(b'=' | b'?' | b'.')) {
                return Err(CliError::ApiBadWord(lossy(&word)));
            }
            // The client multiplexes replies by `.tag`; a user tag would
            // steal them.
            if word == b".tag" || word.starts_with(b".tag=") {
                return Err(CliError::ApiTagWord);
            }
            Ok(word)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Command::Api { command, words })
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    fn ok(list: &[&str]) -> Cli {
        parse(args(list)).unwrap_or_else(|e| panic!("{list:?}: {e}"))
    }

    fn err(list: &[&str]) -> CliError {
        match parse(args(list)) {
            Ok(cli) => panic!("{list:?} parsed as {cli:?}"),
            Err(e) => e,
        }
    }

    fn cli(config: Option<&str>, command: Command) -> Cli {
        Cli {
            config: config.map(PathBuf::from),
            command,
        }
    }

    #[test]
    fn simple_commands() {
        assert_eq!(ok(&["check"]), cli(None, Command::Check));
        assert_eq!(ok(&["run"]), cli(None, Command::Run));
        assert_eq!(ok(&["help"]), cli(None, Command::Help(None)));
        assert_eq!(ok(&["-h"]), cli(None, Command::Help(None)));
        assert_eq!(ok(&["--help"]), cli(None, Command::Help(None)));
        assert_eq!(ok(&["-V"]), cli(None, Command::Version));
        assert_eq!(ok(&["--version"]), cli(None, Command::Version));
        assert_eq!(
            ok(&["run", "--help"]),
            cli(None, Command::Help(Some("run")))
        );
        assert_eq!(
            ok(&["quarantine", "list"]),
            cli(None, Command::Quarantine(QuarantineAction::List))
        );
        assert_eq!(
            ok(&["--config", "c", "quarantine", "resend"]),
            cli(Some("c"), Command::Quarantine(QuarantineAction::Resend))
        );
        assert_eq!(err(&["quarantine"]), CliError::QuarantineNeedsAction);
        assert_eq!(err(&["quarantine", "x"]), CliError::QuarantineNeedsAction);
        assert!(matches!(
            err(&["quarantine", "list", "x"]),
            CliError::UnexpectedArgument { .. }
        ));
    }

    #[test]
    fn config_forms_and_positions() {
        let want = cli(Some("/etc/e.toml"), Command::Run);
        assert_eq!(ok(&["--config", "/etc/e.toml", "run"]), want);
        assert_eq!(ok(&["--config=/etc/e.toml", "run"]), want);
        assert_eq!(ok(&["run", "--config", "/etc/e.toml"]), want);
        assert_eq!(ok(&["run", "--config=/etc/e.toml"]), want);
        assert_eq!(
            ok(&["check", "--config", "a b.toml"]),
            cli(Some("a b.toml"), Command::Check)
        );
        // `=` after the first is part of the path.
        assert_eq!(
            ok(&["--config=x=y", "check"]),
            cli(Some("x=y"), Command::Check)
        );
    }

    #[test]
    fn config_errors() {
        assert_eq!(err(&["run", "--config"]), CliError::ConfigNeedsPath);
        assert_eq!(err(&["--config=", "run"]), CliError::ConfigNeedsPath);
        assert_eq!(err(&["--config", "", "run"]), CliError::ConfigNeedsPath);
        assert_eq!(
            err(&["--config", "a", "run", "--config=b"]),
            CliError::ConfigTwice
        );
        assert_eq!(err(&["--config"]).to_string(), "--config needs a path");
    }

    #[test]
    fn api_words_are_verbatim() {
        let c = ok(&[
            "--config",
            "e.toml",
            "api",
            "/ip/hotspot/user/print",
            "?disabled=false",
            "=name=--config",
            ".proplist=name,profile",
        ]);
        assert_eq!(c.config, Some(PathBuf::from("e.toml")));
        assert_eq!(
            c.command,
            Command::Api {
                command: b"/ip/hotspot/user/print".to_vec(),
                words: vec![
                    b"?disabled=false".to_vec(),
                    b"=name=--config".to_vec(),
                    b".proplist=name,profile".to_vec(),
                ],
            }
        );
        assert_eq!(
            ok(&["api", "/system/resource/print"]).command,
            Command::Api {
                command: b"/system/resource/print".to_vec(),
                words: vec![],
            }
        );
        // Flags after the command path are words, so they fail as words.
        assert!(matches!(
            err(&["api", "/print", "--help"]),
            CliError::ApiBadWord(_)
        ));
    }

    #[test]
    fn api_non_utf8_words() {
        let list = vec![
            OsString::from("api"),
            OsString::from_vec(b"/ip/hotspot/user/add".to_vec()),
            OsString::from_vec(b"=name=caf\xe9".to_vec()),
            OsString::from_vec(b"=comment=\xff\x00\x80".to_vec()),
        ];
        assert_eq!(
            parse(list).unwrap().command,
            Command::Api {
                command: b"/ip/hotspot/user/add".to_vec(),
                words: vec![b"=name=caf\xe9".to_vec(), b"=comment=\xff\x00\x80".to_vec()],
            }
        );
        let e = parse(vec![
            OsString::from("api"),
            OsString::from("/print"),
            OsString::from_vec(b"name=\xff".to_vec()),
        ])
        .unwrap_err();
        assert!(matches!(e, CliError::ApiBadWord(_)), "{e}");
    }

    #[test]
    fn config_path_may_be_non_utf8() {
        let list = vec![
            OsString::from_vec(b"--config=/tmp/\xff.toml".to_vec()),
            OsString::from("run"),
        ];
        let c = parse(list).unwrap();
        assert_eq!(
            c.config.unwrap().into_os_string().into_vec(),
            b"/tmp/\xff.toml".to_vec()
        );
    }

    #[test]
    fn api_errors() {
        assert_eq!(err(&["api"]), CliError::ApiNeedsCommand);
        assert_eq!(
            err(&["api"]).to_string(),
            "api needs a command, e.g. /system/resource/print"
        );
        assert!(matches!(
            err(&["api", "system/resource/print"]),
            CliError::ApiBadCommand(_)
        ));
        assert!(
            err(&["api", "--config", "x", "/print"])
                .to_string()
                .contains("options go before api")
        );
        assert!(matches!(
            err(&["api", "/print", ""]),
            CliError::ApiBadWord(_)
        ));
        assert!(matches!(
            err(&["api", "/print", "name=x"]),
            CliError::ApiBadWord(_)
        ));
        assert_eq!(err(&["api", "/print", ".tag=7"]), CliError::ApiTagWord);
        assert_eq!(err(&["api", "/print", ".tag"]), CliError::ApiTagWord);
        // `.tagged` is not `.tag`.
        assert!(parse(args(&["api", "/print", ".tagged=1"])).is_ok());
    }

    #[test]
    fn other_errors() {
        assert_eq!(err(&[]), CliError::MissingCommand);
        assert_eq!(err(&["--config", "x"]), CliError::MissingCommand);
        assert_eq!(err(&["foo"]).to_string(), "unknown command \"foo\"");
        assert_eq!(err(&["-"]).to_string(), "unknown command \"-\"");
        assert_eq!(
            err(&["--verbose", "run"]).to_string(),
            "unknown option \"--verbose\""
        );
        assert_eq!(
            err(&["check", "run"]).to_string(),
            "unexpected argument \"run\" after check"
        );
        assert_eq!(ok(&["help", "api"]), cli(None, Command::Help(Some("api"))));
        assert!(matches!(
            err(&["help", "nope"]),
            CliError::UnknownCommand(_)
        ));
    }

    #[test]
    fn every_error_displays_on_one_line() {
        for list in [
            &["foo"][..],
            &["--x"],
            &["--config"],
            &["--config=a", "--config=b"],
            &[],
            &["run", "x"],
            &["api"],
            &["api", "x\ny"],
            &["api", "/p", "w\nx"],
            &["api", "/p", ".tag=1"],
        ] {
            let text = err(list).to_string();
            assert!(!text.is_empty() && !text.contains('\n'), "{text:?}");
        }
    }

    #[test]
    fn import_mikhmon_options() {
        let import = |o: ImportOptions| Command::ImportMikhmon(o);
        assert_eq!(
            ok(&["import-mikhmon"]).command,
            import(ImportOptions::default())
        );
        assert_eq!(
            ok(&[
                "import-mikhmon",
                "--apply",
                "--config",
                "e.toml",
                "--disable-schedulers",
                "--export=/tmp/a b.csv",
                "--verbose",
            ]),
            cli(
                Some("e.toml"),
                import(ImportOptions {
                    apply: true,
                    disable_schedulers: true,
                    export: Some(PathBuf::from("/tmp/a b.csv")),
                    undo: None,
                    verbose: true,
                })
            )
        );
        assert_eq!(
            ok(&["import-mikhmon", "--undo", "x.csv", "--apply"]).command,
            import(ImportOptions {
                apply: true,
                undo: Some(PathBuf::from("x.csv")),
                ..ImportOptions::default()
            })
        );
        assert_eq!(
            err(&["import-mikhmon", "--apply", "--apply"]),
            CliError::Twice("--apply")
        );
        assert_eq!(
            err(&["import-mikhmon", "--export"]),
            CliError::NeedsPath("--export")
        );
        assert_eq!(
            err(&["import-mikhmon", "--undo="]),
            CliError::NeedsPath("--undo")
        );
        assert_eq!(
            err(&["import-mikhmon", "--undo", "a", "--export", "b"]),
            CliError::Conflict("--undo", "--export")
        );
        assert_eq!(
            err(&["import-mikhmon", "--undo", "a", "--disable-schedulers"]),
            CliError::Conflict("--undo", "--disable-schedulers")
        );
        assert!(matches!(
            err(&["import-mikhmon", "--apply=yes"]),
            CliError::UnknownOption(_)
        ));
        assert!(matches!(
            err(&["import-mikhmon", "--force"]),
            CliError::UnknownOption(_)
        ));
        // Its options belong to it alone.
        assert!(matches!(
            err(&["--apply", "import-mikhmon"]),
            CliError::UnknownOption(_)
        ));
        assert!(matches!(
            err(&["run", "--apply"]),
            CliError::UnknownOption(_)
        ));
        assert!(matches!(
            err(&["import-mikhmon", "x"]),
            CliError::UnexpectedArgument { .. }
        ));
    }

    #[test]
    fn usage_mentions_every_command() {
        for word in [
            "check",
            "api",
            "run",
            "import-mikhmon",
            "quarantine list",
            "quarantine resend",
            "help",
            "--config",
            "--version",
            "-h",
        ] {
            assert!(USAGE.contains(word), "{word}");
        }
    }
}
