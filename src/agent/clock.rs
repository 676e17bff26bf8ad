//! The driver side of clock trust: reads the inputs that
//! [`crate::monitor::clock_trust`] judges. The kernel's NTP state
//! (`adjtimex`), the monotonic `CLOCK_BOOTTIME`, the router's
//! `/system/clock` and `/system/ntp/client`, and the central server's
//! `Date` header (fed by the uplink through a `watch` channel).

use std::time::Instant;

use tokio::sync::watch;

use crate::client::Router;
use crate::clock::{Timestamp, parse_router_date};
use crate::monitor::{ClockInputs, RouterClock};
use crate::proto::{Attrs, Command};

/// The router's clock is read at connect and then every this many polls:
/// time drifts slowly, and each poll must stay cheap.
pub const ROUTER_CLOCK_EVERY: u32 = 10;

/// A `Date` header from the central server and when it arrived. The uplink
/// sends these into the agent's `watch` channel (see [`ClockSources::central`]).
#[derive(Debug, Clone, Copy)]
pub struct CentralDate {
    pub date: Timestamp,
    pub received: Instant,
}

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
    /// Latest central `Date`; `None` until the uplink reports one.
    pub central: watch::Receiver<Option<CentralDate>>,
}

impl ClockSources {
    pub fn new(central: watch::Receiver<Option<CentralDate>>) -> ClockSources {
        ClockSources {
            router: None,
            utc_offset: None,
            polls_until_read: 0,
            central,
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
            self.utc_offset = parse_offset(off).or(self.utc_offset);
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
        let forward = |t: Timestamp, at: Instant| {
            t.plus_secs(i64::try_from(now.saturating_duration_since(at).as_secs()).unwrap_or(0))
        };
        ClockInputs {
            wall: Timestamp::now(),
            mono_secs: mono_secs(),
            kernel_synced: kernel_synced(),
            router: self.router.map(|r| RouterClock {
                time: forward(r.time, r.read),
                ntp_synced: r.ntp_synced,
            }),
            central_date: (*self.central.borrow()).map(|c| forward(c.date, c.received)),
        }
    }
}

/// `/system/clock` `date` + `time` (local) minus `gmt-offset`: UTC.
pub fn router_utc(row: &Attrs) -> Option<Timestamp> {
    let mut text = row.get("date")?.to_vec();
    text.push(b' ');
    text.extend_from_slice(row.get("time")?);
    let local = parse_router_date(&text).ok()?;
    let offset = row.get("gmt-offset").map_or(Some(0), parse_offset)?;
    Some(local.plus_secs(-offset))
}

/// `+03:00` / `-05:30` as seconds.
fn parse_offset(raw: &[u8]) -> Option<i64> {
    let (sign, rest) = match raw.split_first()? {
        (b'+', rest) => (1, rest),
        (b'-', rest) => (-1, rest),
        _ => (1, raw),
    };
    let text = std::str::from_utf8(rest).ok()?;
    let (h, m) = text.split_once(':').unwrap_or((text, "0"));
    let secs = h.parse::<i64>().ok()? * 3_600 + m.parse::<i64>().ok()? * 60;
    Some(sign * secs)
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

/// Monotonic seconds including suspend (`CLOCK_BOOTTIME`): since the host
/// booted, so it keeps counting across agent restarts. Elsewhere, seconds
/// since the agent started (the ledger then counts each restart as a
/// monotonic reset, which keeps it a lower bound).
pub fn mono_secs() -> u64 {
    #[cfg(target_os = "linux")]
    {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec for the call.
        if unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) } == 0 {
            return u64::try_from(ts.tv_sec).unwrap_or(0);
        }
    }
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_secs()
}

/// The kernel's view of its clock (`adjtimex` in read-only mode): `true`
/// when an NTP daemon (chrony, systemd-timesyncd, ntpd) has synchronised
/// it, `false` when `STA_UNSYNC` is set. A syscall without I/O, cheap
/// enough for the runtime thread.
pub fn kernel_synced() -> Option<bool> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: an all-zero timex is valid; modes 0 only reads.
        let mut tx: libc::timex = unsafe { std::mem::zeroed() };
        // SAFETY: `tx` is a valid, writable timex for the call.
        let state = unsafe { libc::adjtimex(&mut tx) };
        if state < 0 {
            return None;
        }
        Some(state != libc::TIME_ERROR && tx.status & libc::STA_UNSYNC == 0)
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
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
