//! Logging to stderr, where systemd's journal and `docker logs` pick it up.

use log::LevelFilter;
use simplelog::{ConfigBuilder, WriteLogger};

/// Installs the global logger: `<UTC RFC 3339 time> <LEVEL> [target] msg`
/// on stderr, without colours so captured logs stay plain text.
///
/// A second call is a no-op: `log` allows one global logger per process,
/// and tests or tools may well call this more than once.
pub fn init(level: LevelFilter) {
    let config = ConfigBuilder::new()
        // LevelFilter::Error here means "on every record".
        .set_time_level(LevelFilter::Error)
        .set_time_format_rfc3339()
        .set_target_level(LevelFilter::Error)
        .set_thread_level(LevelFilter::Off)
        .set_location_level(LevelFilter::Off)
        // ureq logs each request line with its full URL (a webhook's
        // secret path or token query) and headers at debug level: its
        // records never reach the log; callers log requests redacted.
        .add_filter_ignore_str("ureq")
        .build();
    // One write per line: lines from several threads never interleave.
    let _ = WriteLogger::init(level, config, std::io::LineWriter::new(std::io::stderr()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_twice_does_not_panic() {
        init(LevelFilter::Info);
        init(LevelFilter::Debug);
        log::info!("logging test line");
        // The logger writes to the real stderr, past the test harness's
        // capture: off again, so other unit tests' logs stay off the console.
        log::set_max_level(LevelFilter::Off);
    }
}
