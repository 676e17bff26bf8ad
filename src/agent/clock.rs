//! The driver side of clock trust: reads the inputs that
//! [`crate::monitor::clock_trust`] judges. The kernel's NTP state
//! (`adjtimex`), the monotonic `CLOCK_BOOTTIME`, the router's
//! `/system/clock` and `/system/ntp/client`, and the central server's
//! `Date` header (fed by the central client through a `watch` channel).
//! It also turns the judgement's disagreement episodes into a log line
//! and a `clock_disagreement` alert.

use std::time::Instant;

use tokio::sync::watch;

pub use crate::central_date::CentralDate;
use crate::central_date::forward;
use crate::client::Router;
use crate::clock::{Timestamp, parse_router_date};
use crate::gmt_offset::GmtOffset;
pub use crate::kernel_clock::{kernel_synced, mono_secs};
use crate::monitor::clock_trust::{self, EpisodeChange};
use crate::monitor::{ClockInputs, ClockLedger, ClockVerdict, Judgement, RouterClock};
use crate::proto::{Attrs, Command};
use crate::store::StoreError;
use crate::uplink::Alerts;

/// Set to `1`, the kernel's NTP state is ignored (taken as unsynchronised),
/// as on a Pi without NTP. For tests of the router and central sources on a
/// host whose clock is synchronised; harmless in production (the other
/// sources still apply), and logged when set.
pub const ASSUME_KERNEL_UNSYNCED_ENV: &str = "MIKROTIK_EDGE_ASSUME_KERNEL_UNSYNCED";

/// The router's clock is read at connect and then every this many polls:
/// time drifts slowly, and each poll must stay cheap.
pub const ROUTER_CLOCK_EVERY: u32 = 10;

/// The router clock as last read, and when (monotonic).
#[derive(Debug, Clone, Copy)]
struct RouterReading {
    time: Timestamp,
    ntp_synced: Option<bool>,
    read: Instant,
}

/// What the driver keeps between cycles to build [`ClockInputs`].
pub struct ClockSources {
    router: Option<RouterReading>,
    /// The router's `gmt-offset` in seconds, as last read.
    utc_offset: Option<i64>,
    polls_until_read: u32,
    /// Latest central `Date`; `None` until a central reply brings one.
    pub central: watch::Receiver<Option<CentralDate>>,
    /// See [`ASSUME_KERNEL_UNSYNCED_ENV`].
    assume_kernel_unsynced: bool,
    /// A disagreement episode is open (alerted; see [`clock_trust::episode`]).
    disagreeing: bool,
}

impl ClockSources {
    pub fn new(central: watch::Receiver<Option<CentralDate>>) -> ClockSources {
        let assume_kernel_unsynced =
            std::env::var_os(ASSUME_KERNEL_UNSYNCED_ENV).is_some_and(|v| v == "1");
        if assume_kernel_unsynced {
            log::info!(
                "{ASSUME_KERNEL_UNSYNCED_ENV}=1: the kernel's NTP state is ignored (taken as unsynchronised)"
            );
        }
        ClockSources {
            router: None,
            utc_offset: None,
            polls_until_read: 0,
            central,
            assume_kernel_unsynced,
            disagreeing: false,
        }
    }

    /// Makes the next cycle read the router's clock (after a reconnect:
    /// it may be another router, or it rebooted).
    pub fn read_router_next(&mut self) {
        self.polls_until_read = 0;
    }

    /// Reads the router's clock every [`ROUTER_CLOCK_EVERY`] polls. A failed
    /// read keeps the previous reading: time does not stop on an error.
    pub async fn maybe_read_router(&mut self, router: &Router) {
        if self.polls_until_read > 0 {
            self.polls_until_read -= 1;
            return;
        }
        self.polls_until_read = ROUTER_CLOCK_EVERY - 1;
        let (clock, ntp) = tokio::join!(
            router.execute(Command::new("/system/clock/print").proplist(&[
                "time",
                "date",
                "gmt-offset"
            ])),
            router
                .execute(Command::new("/system/ntp/client/print").proplist(&["enabled", "status"])),
        );
        let read = Instant::now();
        if let Ok(r) = &clock
            && let Some(off) = r.rows.first().and_then(|row| row.get("gmt-offset"))
        {
            self.utc_offset = crate::gmt_offset::GmtOffset::parse(off)
                .map(|o| i64::from(o.secs()))
                .or(self.utc_offset);
        }
        let time = match clock {
            Ok(r) => r.rows.first().and_then(router_utc),
            Err(e) => {
                log::debug!("cannot read /system/clock: {e}");
                None
            }
        };
        // A router without the NTP menu (or a v6 SNTP client, which has no
        // status) leaves the question open.
        let ntp_synced = ntp.ok().and_then(|r| r.rows.first().and_then(ntp_status));
        if let Some(time) = time {
            self.router = Some(RouterReading {
                time,
                ntp_synced,
                read,
            });
        }
    }

    /// The router's offset from UTC in seconds (its `gmt-offset`), once
    /// read: the operator's time zone, for alert texts.
    pub fn utc_offset(&self) -> Option<i64> {
        self.utc_offset
    }

    /// This cycle's inputs; readings taken earlier are carried forward by
    /// the monotonic time since.
    pub fn inputs(&self) -> ClockInputs {
        let now = Instant::now();
        ClockInputs {
            wall: Timestamp::now(),
            mono_secs: mono_secs(),
            kernel_synced: if self.assume_kernel_unsynced {
                Some(false)
            } else {
                kernel_synced()
            },
            router: self.router.map(|r| RouterClock {
                time: forward(r.time, now.saturating_duration_since(r.read)),
                ntp_synced: r.ntp_synced,
            }),
            central: (*self.central.borrow()).map(|c| c.at(now)),
        }
    }

    /// This cycle's verdict. When trusted sources begin to disagree, logs
    /// it and raises a `clock_disagreement` alert, once per episode.
    pub async fn judge(
        &mut self,
        ledger: &ClockLedger,
        alerts: &Alerts,
    ) -> Result<ClockVerdict, StoreError> {
        let j = clock_trust::judge(&self.inputs(), ledger);
        let (open, change) = clock_trust::episode(self.disagreeing, &j);
        self.disagreeing = open;
        match change {
            // `raise` logs it (warn) too.
            Some(EpisodeChange::Began) => {
                match alerts
                    .raise("clock_disagreement", disagreement_message(&j))
                    .await
                {
                    Ok(()) => {}
                    // As for the cycle's own commit, a full disk skips rather
                    // than stops: the episode is not open, so the next cycle
                    // tries the alert again.
                    Err(e) if e.is_disk_full() => {
                        log::error!("cannot record the clock_disagreement alert: {e}");
                        self.disagreeing = false;
                    }
                    Err(e) => return Err(e),
                }
            }
            Some(EpisodeChange::Ended) => log::info!(
                "clock sources agree again (within {} s): {}",
                j.spread_secs.unwrap_or(0),
                readings_text(&j)
            ),
            None if j.disagrees() => log::debug!("{}", disagreement_message(&j)),
            None => {}
        }
        Ok(j.verdict)
    }
}

/// `kernel 2026-…Z, router_ntp 2026-…Z, central 2026-…Z` (trusted only).
fn readings_text(j: &Judgement) -> String {
    let r = &j.readings;
    [
        ("kernel", r.kernel),
        ("router_ntp", r.router_ntp),
        ("central", r.central),
    ]
    .iter()
    .filter_map(|(name, t)| t.map(|t| format!("{name} {t}")))
    .collect::<Vec<_>>()
    .join(", ")
}

fn disagreement_message(j: &Judgement) -> String {
    format!(
        "trusted clock sources disagree by {} s ({}): using the earliest, {} {}, so vouchers expire late rather than early",
        j.spread_secs.unwrap_or(0),
        readings_text(j),
        j.verdict.source.as_str(),
        j.verdict.best_now
    )
}

/// `/system/clock` `date` + `time` (local) minus `gmt-offset`: UTC.
pub fn router_utc(row: &Attrs) -> Option<Timestamp> {
    let mut text = row.get("date")?.to_vec();
    text.push(b' ');
    text.extend_from_slice(row.get("time")?);
    let local = parse_router_date(&text).ok()?;
    // No `gmt-offset` at all: a router whose clock is UTC. One that is
    // there but unreadable gives no time rather than a time hours off.
    let offset = row
        .get("gmt-offset")
        .map_or(Some(GmtOffset::UTC), GmtOffset::parse)?;
    Some(local.plus_secs(-i64::from(offset.secs())))
}

/// RouterOS 7 `/system/ntp/client` `status`: `synchronized` is the only
/// state whose clock NTP has set (`reached` only means a server answered).
pub fn ntp_status(row: &Attrs) -> Option<bool> {
    if row
        .get("enabled")
        .is_some_and(|e| e == b"false" || e == b"no")
    {
        return Some(false);
    }
    row.get("status").map(|s| s == b"synchronized")
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::agent::rows::test_attrs as attrs;

    #[test]
    fn router_clock_is_converted_to_utc() {
        let row = attrs(&[
            ("time", b"15:00:00"),
            ("date", b"2024-01-31"),
            ("gmt-offset", b"+03:00"),
        ]);
        assert_eq!(
            router_utc(&row).map(Timestamp::to_rfc3339).as_deref(),
            Some("2024-01-31T12:00:00Z")
        );
        let old = attrs(&[
            ("time", b"06:30:00"),
            ("date", b"jan/31/2024"),
            ("gmt-offset", b"-05:30"),
        ]);
        assert_eq!(
            router_utc(&old).map(Timestamp::to_rfc3339).as_deref(),
            Some("2024-01-31T12:00:00Z")
        );
        assert_eq!(router_utc(&attrs(&[("time", b"x"), ("date", b"y")])), None);
    }

    #[test]
    fn every_gmt_offset_form_gives_the_same_utc() {
        // 2024-01-31 12:00 UTC seen from UTC+05:45 and UTC-05:00.
        for (time, offset) in [
            (&b"17:45:00"[..], &b"+05:45"[..]),
            (b"17:45:00", b"+0545"),
            (b"17:45:00", b"20700"),
            (b"07:00:00", b"-05:00"),
            (b"07:00:00", b"-0500"),
            (b"07:00:00", b"-05"),
            (b"07:00:00", b"-18000"),
            (b"12:00:00", b"0"),
        ] {
            let row = attrs(&[
                ("time", time),
                ("date", b"2024-01-31"),
                ("gmt-offset", offset),
            ]);
            assert_eq!(
                router_utc(&row).map(Timestamp::to_rfc3339).as_deref(),
                Some("2024-01-31T12:00:00Z"),
                "{}",
                String::from_utf8_lossy(offset)
            );
        }
        // Unreadable or beyond ±14 h: no router time at all.
        for offset in [&b"+545:00"[..], b"-99999", b"manual"] {
            let row = attrs(&[
                ("time", b"12:00:00"),
                ("date", b"2024-01-31"),
                ("gmt-offset", offset),
            ]);
            assert_eq!(router_utc(&row), None);
        }
    }

    #[test]
    fn ntp_status_values() {
        assert_eq!(
            ntp_status(&attrs(&[("enabled", b"true"), ("status", b"synchronized")])),
            Some(true)
        );
        assert_eq!(
            ntp_status(&attrs(&[("enabled", b"true"), ("status", b"reached")])),
            Some(false)
        );
        assert_eq!(ntp_status(&attrs(&[("enabled", b"false")])), Some(false));
        assert_eq!(ntp_status(&attrs(&[("enabled", b"true")])), None);
    }

    #[test]
    fn local_clock_sources_answer() {
        // Whatever the host's state, these must not fail or go backwards.
        let a = mono_secs();
        let _ = kernel_synced();
        assert!(mono_secs() >= a);
    }
}
