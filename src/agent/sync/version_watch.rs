//! When to sync between the periodic full syncs: the pure decision over
//! the central side's `site_desired_version` counter (a bigint bumped in
//! the same transaction as every change to the site's desired state).
//!
//! Every full sync reads the counter *before* the desired state, so a
//! change committed during the fetch shows as a moved version at the next
//! poll instead of being missed. A poll that sees another version than the
//! one the last good fetch started from asks for a sync now. A central side
//! without the function (404: an older schema or gateway) turns polling off
//! until a full sync finds it again; the periodic sync carries on alone.

use std::fmt;

use serde_json::Value;

use crate::uplink::UplinkError;

/// The counter's value: only ever compared for equality (a database
/// restored from a backup may go back; that is a change too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DesiredVersion(pub i64);

impl fmt::Display for DesiredVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// What one call of `site_desired_version` told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    Version(DesiredVersion),
    /// 404: the central side does not have the function.
    Missing,
    /// Anything else (unreachable, 5xx, an unreadable reply): try again later.
    Failed(String),
}

impl Probe {
    /// Reads a reply: a bare JSON number (PostgREST and the gateway send a
    /// bigint so), or its digits as a string.
    pub fn from_reply(reply: Result<Value, UplinkError>) -> Probe {
        match reply {
            Ok(Value::Number(n)) => match n.as_i64() {
                Some(v) => Probe::Version(DesiredVersion(v)),
                None => Probe::Failed(format!("unexpected reply: version {n}")),
            },
            Ok(Value::String(s)) => match s.parse::<i64>() {
                Ok(v) => Probe::Version(DesiredVersion(v)),
                Err(_) => Probe::Failed("unexpected reply: version not a number".into()),
            },
            Ok(other) => Probe::Failed(format!(
                "unexpected reply: {} instead of a version number",
                kind(&other)
            )),
            Err(UplinkError::Status { code: 404, .. }) => Probe::Missing,
            Err(e) => Probe::Failed(e.to_string()),
        }
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// What a poll's answer means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PollDecision {
    /// The desired state changed since the last good fetch (or no good
    /// fetch is known): run a full sync at once.
    SyncNow {
        from: Option<DesiredVersion>,
        to: DesiredVersion,
    },
    /// Unchanged, or the poll failed: poll again later.
    Wait,
    /// The answer predates the last full sync's own reading: ignored.
    Stale,
    /// The central side just turned out not to have the function: stop
    /// polling (say so once) until a full sync finds it again.
    StopPolling,
}

/// What a full sync's own reading changed, for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Availability {
    Unchanged,
    /// The function answered after a 404.
    Found,
    /// The first 404 (after it answered, or at the first try).
    Lost,
}

/// The remembered readings. Owned by the sync task.
#[derive(Debug, Clone, Default)]
pub struct VersionWatch {
    /// Read by the full sync running now, before its fetch.
    pending: Option<DesiredVersion>,
    /// The version the last successful fetch started from; `None` when
    /// unknown (not read, or that fetch failed).
    synced: Option<DesiredVersion>,
    /// The central side answered 404 last time.
    missing: bool,
    /// Full syncs started: a poll sent before the latest one is stale.
    generation: u64,
}

impl VersionWatch {
    /// Whether polling makes sense (not after a 404).
    pub fn polling(&self) -> bool {
        !self.missing
    }

    /// The generation a poll sent now carries.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// A full sync starts, with the counter read just before its fetch.
    pub fn before_fetch(&mut self, probe: Probe) -> Availability {
        self.generation += 1;
        let was_missing = self.missing;
        let (pending, missing) = match probe {
            Probe::Version(v) => (Some(v), false),
            Probe::Missing => (None, true),
            // Unknown whether it exists: keep what was known.
            Probe::Failed(_) => (None, self.missing),
        };
        self.pending = pending;
        self.missing = missing;
        match (was_missing, missing) {
            (true, false) => Availability::Found,
            (false, true) => Availability::Lost,
            _ => Availability::Unchanged,
        }
    }

    /// The full sync's fetch of the desired state ended: what it read is
    /// now what the router is being brought to (or, when it failed, the
    /// version in force is unknown and the next good poll syncs).
    pub fn after_fetch(&mut self, fetched: bool) {
        let pending = self.pending.take();
        self.synced = if fetched { pending } else { None };
    }

    /// A poll sent at `generation` answered.
    pub fn on_poll(&mut self, generation: u64, probe: Probe) -> PollDecision {
        if generation != self.generation {
            return PollDecision::Stale;
        }
        match probe {
            Probe::Version(v) if self.synced == Some(v) => PollDecision::Wait,
            Probe::Version(v) => PollDecision::SyncNow {
                from: self.synced,
                to: v,
            },
            Probe::Missing => {
                self.missing = true;
                PollDecision::StopPolling
            }
            Probe::Failed(_) => PollDecision::Wait,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn v(n: i64) -> Probe {
        Probe::Version(DesiredVersion(n))
    }

    /// A full sync that read `probe` first and whose fetch `ok`.
    fn sync(w: &mut VersionWatch, probe: Probe, ok: bool) -> Availability {
        let a = w.before_fetch(probe);
        w.after_fetch(ok);
        a
    }

    #[test]
    fn a_moved_version_syncs_now_and_an_unchanged_one_waits() {
        let mut w = VersionWatch::default();
        sync(&mut w, v(4), true);
        let g = w.generation();
        assert_eq!(w.on_poll(g, v(4)), PollDecision::Wait);
        assert_eq!(
            w.on_poll(g, v(5)),
            PollDecision::SyncNow {
                from: Some(DesiredVersion(4)),
                to: DesiredVersion(5)
            }
        );
        // Until the sync runs, every poll still says so.
        assert!(matches!(w.on_poll(g, v(5)), PollDecision::SyncNow { .. }));
        sync(&mut w, v(5), true);
        assert_eq!(w.on_poll(w.generation(), v(5)), PollDecision::Wait);
        // Backwards is a change too (a restored database).
        assert!(matches!(
            w.on_poll(w.generation(), v(1)),
            PollDecision::SyncNow { .. }
        ));
    }

    #[test]
    fn the_version_read_before_the_fetch_is_the_one_remembered() {
        // Read 7, then a change (8) lands while the state is fetched: the
        // state may or may not hold it, so the next poll syncs again.
        let mut w = VersionWatch::default();
        sync(&mut w, v(7), true);
        assert!(matches!(
            w.on_poll(w.generation(), v(8)),
            PollDecision::SyncNow { .. }
        ));
    }

    #[test]
    fn a_failed_fetch_or_reading_leaves_the_version_unknown() {
        let mut w = VersionWatch::default();
        sync(&mut w, v(3), false);
        assert_eq!(
            w.on_poll(w.generation(), v(3)),
            PollDecision::SyncNow {
                from: None,
                to: DesiredVersion(3)
            }
        );
        sync(&mut w, Probe::Failed("timeout".into()), true);
        assert!(w.polling());
        assert!(matches!(
            w.on_poll(w.generation(), v(3)),
            PollDecision::SyncNow { from: None, .. }
        ));
        // A failed poll changes nothing.
        sync(&mut w, v(3), true);
        assert_eq!(
            w.on_poll(w.generation(), Probe::Failed("HTTP 503".into())),
            PollDecision::Wait
        );
        assert_eq!(w.on_poll(w.generation(), v(3)), PollDecision::Wait);
    }

    #[test]
    fn a_poll_sent_before_a_full_sync_is_stale() {
        let mut w = VersionWatch::default();
        sync(&mut w, v(1), true);
        let g = w.generation();
        sync(&mut w, v(2), true);
        assert_eq!(w.on_poll(g, v(1)), PollDecision::Stale);
        assert_eq!(w.on_poll(w.generation(), v(2)), PollDecision::Wait);
    }

    #[test]
    fn without_the_function_polling_stops_until_a_full_sync_finds_it() {
        let mut w = VersionWatch::default();
        assert_eq!(sync(&mut w, Probe::Missing, true), Availability::Lost);
        assert!(!w.polling());
        // Still missing: nothing new to say.
        assert_eq!(sync(&mut w, Probe::Missing, true), Availability::Unchanged);
        // A failed reading says nothing about it either.
        assert_eq!(
            sync(&mut w, Probe::Failed("timeout".into()), true),
            Availability::Unchanged
        );
        assert!(!w.polling());
        // The central side was upgraded.
        assert_eq!(sync(&mut w, v(9), true), Availability::Found);
        assert!(w.polling());
        assert_eq!(w.on_poll(w.generation(), v(9)), PollDecision::Wait);
        // Downgraded again, seen by a poll.
        assert_eq!(
            w.on_poll(w.generation(), Probe::Missing),
            PollDecision::StopPolling
        );
        assert!(!w.polling());
        assert_eq!(sync(&mut w, Probe::Missing, true), Availability::Unchanged);
    }

    #[test]
    fn replies_are_read_as_versions_or_failures() {
        assert_eq!(Probe::from_reply(Ok(json!(12))), v(12));
        assert_eq!(Probe::from_reply(Ok(json!("12"))), v(12));
        for bad in [json!(null), json!(1.5), json!("x"), json!({"version": 1})] {
            assert!(
                matches!(Probe::from_reply(Ok(bad.clone())), Probe::Failed(_)),
                "{bad}"
            );
        }
        let status = |code| UplinkError::Status {
            code,
            message: String::new(),
        };
        assert_eq!(Probe::from_reply(Err(status(404))), Probe::Missing);
        assert!(matches!(
            Probe::from_reply(Err(status(403))),
            Probe::Failed(_)
        ));
        assert!(matches!(
            Probe::from_reply(Err(UplinkError::Timeout)),
            Probe::Failed(_)
        ));
    }
}
