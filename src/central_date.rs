//! The central server's `Date` header as a clock reading: what the central
//! client ([`crate::uplink`]) hands the agent's clock trust
//! ([`crate::agent::clock`]) through a `watch` channel. A leaf both use.

use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::clock::Timestamp;
use crate::monitor::CentralClock;

/// Where the `Date` headers of successful replies go: the agent's clock
/// trust ([`crate::agent::clock::ClockSources::central`]).
pub type DateSink = watch::Sender<Option<CentralDate>>;

/// A `Date` header from a successful central reply, with when its request
/// was sent and its reply received. The central client
/// ([`crate::uplink::CentralClient`]) sends these into the agent's `watch`
/// channel (see [`crate::agent::clock::ClockSources::central`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CentralDate {
    pub date: Timestamp,
    pub sent: Instant,
    pub received: Instant,
}

impl CentralDate {
    /// The server wrote `date` somewhere between `sent` and `received`, and
    /// truncated it to whole seconds: at `received` its time lies within
    /// `[date, date + round trip + 1 s]`. This is that bound, in whole
    /// seconds rounded up.
    pub fn error_secs(&self) -> u64 {
        let rtt = self.received.saturating_duration_since(self.sent);
        let whole = rtt.as_secs() + u64::from(rtt.subsec_nanos() > 0);
        whole.saturating_add(1)
    }

    /// The central reading at `now`: the lower bound carried forward by the
    /// whole seconds elapsed (rounded down, so it stays a lower bound).
    pub fn at(&self, now: Instant) -> CentralClock {
        CentralClock {
            time: forward(self.date, now.saturating_duration_since(self.received)),
            error_secs: self.error_secs(),
        }
    }
}

/// `t` moved on by `elapsed`, in whole seconds rounded down.
pub(crate) fn forward(t: Timestamp, elapsed: Duration) -> Timestamp {
    t.plus_secs(i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn central_date_is_a_lower_bound_with_the_round_trip_as_error() {
        let sent = Instant::now();
        let c = CentralDate {
            date: Timestamp::from_unix(1_000),
            sent,
            received: sent + Duration::from_millis(1_500),
        };
        // 1.5 s round trip rounds up to 2, plus the header's truncation.
        assert_eq!(c.error_secs(), 3);
        let later = c.at(c.received + Duration::from_millis(9_999));
        assert_eq!(later.time, Timestamp::from_unix(1_009));
        assert_eq!(later.error_secs, 3);
        // An instant round trip still carries the truncation second.
        let c = CentralDate {
            received: sent,
            ..c
        };
        assert_eq!(c.error_secs(), 1);
        assert_eq!(c.at(sent).time, Timestamp::from_unix(1_000));
    }
}
