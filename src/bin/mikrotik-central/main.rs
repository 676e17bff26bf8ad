//! `mikrotik-central`: the central gateway for operators who do not run
//! PostgREST. A stateless HTTP(S) server in front of PostgreSQL that exposes
//! the two schema functions PostgREST-style (`POST /rpc/ingest_batch`,
//! `POST /rpc/site_desired_state`) with per-site bearer tokens, the
//! operator API (`/api/*`, operator tokens), plus `add-site`,
//! `add-operator` and `set-site`. See README "Central side" and
//! docs/central.md.

mod api;
mod api_error;
mod api_input;
mod args;
mod audit;
mod cards;
mod db;
mod fleet;
mod html;
mod http;
mod operator_auth;
mod page_queries;
mod page_session;
mod page_views;
mod pages;
mod sanitize;
mod site_lists;
mod sparkline;
mod subscriptions;
mod tls;
mod voucher_codes;
mod vouchers;

use std::process::ExitCode;

use args::{Command, USAGE};

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let cmd = match args::parse(&argv, |k| std::env::var(k).ok()) {
        Ok(cmd) => cmd,
        Err(e) => {
            eprintln!("mikrotik-central: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match cmd {
        Command::Help(topic) => {
            println!("{}", topic.and_then(args::command_usage).unwrap_or(USAGE));
            ExitCode::SUCCESS
        }
        Command::Version => {
            println!("mikrotik-central {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Command::Serve(opts) => {
            init_logging(opts.log_level);
            run(async move { http::serve(opts).await })
        }
        Command::AddSite { site, database_url } => {
            init_logging(log::LevelFilter::Warn);
            run(async move {
                let token = db::add_site(&database_url, &site).await?;
                eprintln!(
                    "site {site}: new token on standard output, shown once \
                     (the previous one no longer works)"
                );
                println!("{token}");
                Ok(())
            })
        }
        Command::Prune {
            keep_months,
            database_url,
        } => {
            init_logging(log::LevelFilter::Warn);
            run(async move {
                for dropped in db::prune(&database_url, keep_months).await? {
                    println!("{dropped}");
                }
                Ok(())
            })
        }
        Command::AddOperator { name, database_url } => {
            init_logging(log::LevelFilter::Warn);
            run(async move {
                let token = operator_auth::add_operator(&database_url, &name).await?;
                eprintln!(
                    "operator {name}: new token on standard output, shown once \
                     (the previous one no longer works)"
                );
                println!("{token}");
                Ok(())
            })
        }
        Command::SetSite {
            site,
            settings,
            database_url,
        } => {
            init_logging(log::LevelFilter::Warn);
            run(async move {
                db::set_site(&database_url, &site, &settings).await?;
                eprintln!("site {site} updated");
                Ok(())
            })
        }
        Command::LoadSchema { database_url } => {
            init_logging(log::LevelFilter::Warn);
            run(async move {
                db::load_schema(&database_url).await?;
                eprintln!("schema loaded");
                Ok(())
            })
        }
    }
}

fn run(fut: impl std::future::Future<Output = Result<(), String>>) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mikrotik-central: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(fut) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mikrotik-central: {e}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(level: log::LevelFilter) {
    let config = simplelog::ConfigBuilder::new()
        .set_time_format_rfc3339()
        .set_target_level(log::LevelFilter::Off)
        .set_thread_level(log::LevelFilter::Off)
        .add_filter_allow_str("mikrotik_central")
        .build();
    let _ = simplelog::WriteLogger::init(level, config, std::io::stderr());
}
