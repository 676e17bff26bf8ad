//! The uploader task (on the runtime): reads the oldest queued events from
//! the store, sends them as one `ingest_batch`, and deletes them only once
//! the reply's `stored_through` covers them. One batch in flight at a time,
//! so the outbox order is the upload order. Also enforces the outbox cap
//! and publishes its status in the [`View`].

use std::time::Duration;

use serde_json::Value;
use tokio::sync::watch;

use super::UplinkError;
use super::alerts::Alerts;
use super::batch::ingest_body;
use super::client::CentralClient;
use super::policy::{Reaction, backoff_base, classify};
use crate::client::Backoff;
use crate::clock::Timestamp;
use crate::config::UplinkConfig;
use crate::event::StreamId;
use crate::status::View;
use crate::store::{StoreError, StoreHandle};

/// How often an idle uploader looks at the outbox even without a wake-up
/// (alerts raised outside a poll do not touch the view).
const IDLE_POLL: Duration = Duration::from_secs(1);

pub struct Uploader {
    pub(super) store: StoreHandle,
    pub(super) client: Option<CentralClient>,
    pub(super) alerts: Alerts,
    pub(super) view: watch::Sender<View>,
    pub(super) site: String,
    pub(super) stream: StreamId,
    pub(super) cfg: UplinkConfig,
}

/// Mutable progress of one uploader run.
struct Progress {
    /// The central side's confirmed `stored_through` (persisted by `ack`).
    acked: u64,
    /// The highest seq sent without a readable answer: the central side may
    /// hold it, so the cap must not compact or drop up to here.
    in_doubt: u64,
    backoff: Backoff,
    /// The refusal already alerted (one alert per distinct failure).
    alerted: Option<String>,
    /// The last failure logged at warn (repeats go to debug).
    logged: Option<String>,
    /// `outbox_full` raised since the last successful upload.
    outbox_alerted: bool,
    /// Narrowing down a batch the central side refused as malformed: the
    /// batch size to try, until `acked` passes `narrow_end`.
    narrow: Option<usize>,
    narrow_end: u64,
}

impl Uploader {
    /// Runs until the task is aborted at shutdown (every await here is a
    /// safe place to stop: a store request already sent is finished by the
    /// store thread, and an unacked batch is simply sent again next time).
    pub async fn run(self) {
        let stats = match self.store.stats().await {
            Ok(s) => s,
            Err(e) => {
                log::error!("central upload stopped: {e}");
                return;
            }
        };
        // After a restart the previous process may have sent the first
        // batch without hearing back; treat it as in doubt.
        let in_doubt = match self
            .store
            .pending(stats.acked_through, self.cfg.batch_max)
            .await
        {
            Ok(first) => first.last().map_or(0, |e| e.seq),
            Err(_) => u64::MAX,
        };
        let mut p = Progress {
            acked: stats.acked_through,
            in_doubt,
            backoff: Backoff::from_entropy(
                backoff_base(self.cfg.backoff_cap),
                self.cfg.backoff_cap,
            ),
            alerted: None,
            logged: None,
            outbox_alerted: false,
            narrow: None,
            narrow_end: 0,
        };
        let mut wake = self.view.subscribe();
        loop {
            let delay = match self.step(&mut p).await {
                Ok(Some(delay)) => delay,
                Ok(None) => {
                    // Idle: wait for the agent to commit something.
                    tokio::select! {
                        _ = wake.changed() => {}
                        _ = tokio::time::sleep(IDLE_POLL) => {}
                    }
                    continue;
                }
                Err(StoreError::Closed) => return,
                Err(e) => {
                    log::error!("central upload: state file: {e}");
                    p.backoff.next_delay()
                }
            };
            tokio::time::sleep(delay).await;
        }
    }

    /// One round: the cap, then one batch. `Ok(None)` when there was
    /// nothing to send, `Ok(Some(d))` to wait `d` before the next round
    /// (zero after a success with more to send).
    async fn step(&self, p: &mut Progress) -> Result<Option<Duration>, StoreError> {
        self.enforce_cap(p).await?;
        let Some(client) = &self.client else {
            self.publish(None, None, 0).await?;
            return Ok(None);
        };
        let limit = p.narrow.unwrap_or(self.cfg.batch_max);
        let events = self.store.pending(p.acked, limit).await?;
        let (Some(first), Some(last)) = (events.first(), events.last()) else {
            self.publish(None, None, 0).await?;
            return Ok(None);
        };
        let (first, last) = (first.seq, last.seq);
        let count = events.len();
        // A refused `event_quarantined` is quarantined without another one
        // (which would be refused in turn).
        let alert_on_quarantine = !matches!(
            events.as_slice(),
            [crate::event::Event {
                kind: crate::event::EventKind::Quarantined { .. },
                ..
            }]
        );
        let body = ingest_body(&self.site, self.stream, p.acked, &events);
        drop(events);
        let in_doubt_before = p.in_doubt;
        p.in_doubt = p.in_doubt.max(last);
        let reply = match body {
            Ok(body) => client.rpc_raw("ingest_batch", body).await,
            Err(e) => Err(UplinkError::BadReply(format!(
                "cannot encode the batch: {e}"
            ))),
        }
        .and_then(|v| self.stored_through(&v));
        match reply {
            Ok(stored) => {
                let acked = if stored > p.acked {
                    let n = self.store.ack(stored).await?;
                    p.acked = stored;
                    n as u64
                } else {
                    0
                };
                if stored >= p.in_doubt {
                    p.in_doubt = 0;
                }
                if p.alerted.take().is_some() || p.logged.take().is_some() {
                    log::info!("central upload working again");
                }
                p.outbox_alerted = false;
                if p.narrow.is_some() && p.acked >= p.narrow_end {
                    p.narrow = None;
                }
                log::debug!("uploaded {first}-{last}: stored_through {stored}, {acked} removed");
                self.publish(Some(Timestamp::now()), None, acked).await?;
                if stored < last {
                    // The central side cannot link past `stored`: resending
                    // at once would only repeat that.
                    log::warn!(
                        "central stored_through {stored} is below the batch's last seq {last}; retrying later"
                    );
                    return Ok(Some(p.backoff.next_delay()));
                }
                p.backoff.reset();
                Ok(Some(Duration::ZERO))
            }
            Err(e) if e.is_malformed_batch() => {
                p.in_doubt = in_doubt_before;
                self.publish(None, Some(e.to_string()), 0).await?;
                self.narrow_down(p, &e, first, last, count, alert_on_quarantine)
                    .await
            }
            Err(e) => {
                if e.nothing_stored() {
                    p.in_doubt = in_doubt_before;
                }
                let delay = self.on_failure(p, &e).await?;
                self.publish(None, Some(e.to_string()), 0).await?;
                Ok(Some(delay))
            }
        }
    }

    /// The central side refused the batch `first..=last` (`count` events)
    /// as malformed: one bad event must not stall the queue. Halves the
    /// batch until the refused one is alone, then moves it to the
    /// quarantine (with an `event_quarantined` event); the next batch is
    /// re-linked around it by `prev`. No backoff: each try is a new batch.
    async fn narrow_down(
        &self,
        p: &mut Progress,
        e: &UplinkError,
        first: u64,
        last: u64,
        count: usize,
        alert: bool,
    ) -> Result<Option<Duration>, StoreError> {
        if count > 1 {
            let half = count.div_ceil(2).min(count - 1);
            log::warn!(
                "central side refused events {first}-{last} as malformed ({e}); \
                 narrowing down: {half} at a time"
            );
            p.narrow = Some(half);
            p.narrow_end = p.narrow_end.max(last);
            return Ok(Some(Duration::ZERO));
        }
        log::warn!("central side refused event {first} as malformed ({e}); quarantined");
        self.store
            .quarantine(vec![first], e.to_string(), alert)
            .await?;
        if !alert {
            log::error!(
                "event {first} (event_quarantined) refused by the central side: quarantined \
                 without another alert"
            );
        }
        // The rest of the refused batch may hold another one: it is
        // narrowed down again from a full batch.
        p.narrow = None;
        Ok(Some(Duration::ZERO))
    }

    fn stored_through(&self, v: &Value) -> Result<u64, UplinkError> {
        if let Some(s) = v["stream"].as_str()
            && s != self.stream.to_string()
        {
            return Err(UplinkError::BadReply(format!(
                "reply for stream {s:?}, expected {}",
                self.stream
            )));
        }
        v["stored_through"]
            .as_u64()
            .ok_or_else(|| UplinkError::BadReply("no stored_through in the reply".into()))
    }

    /// Logs, alerts once per distinct refusal, and picks the delay.
    async fn on_failure(&self, p: &mut Progress, e: &UplinkError) -> Result<Duration, StoreError> {
        let text = e.to_string();
        if p.logged.as_deref() != Some(text.as_str()) {
            log::warn!("central upload failed: {text}");
            p.logged = Some(text.clone());
        } else {
            log::debug!("central upload failed again: {text}");
        }
        match classify(e) {
            Reaction::Retry => Ok(p.backoff.next_delay()),
            Reaction::Rejected { alert } => {
                let key = format!("{alert}: {text}");
                if p.alerted.as_deref() != Some(key.as_str()) {
                    let message = match alert {
                        "token_rejected" => format!("central side refused the site token: {text}"),
                        _ => format!("central side refused the upload: {text}"),
                    };
                    self.alerts.raise(alert, message).await?;
                    p.alerted = Some(key);
                }
                // No hot loop on a refusal: straight to the cap.
                Ok(self.cfg.backoff_cap)
            }
        }
    }

    async fn enforce_cap(&self, p: &mut Progress) -> Result<(), StoreError> {
        let protect = p.acked.max(p.in_doubt);
        let Some(report) = self
            .store
            .enforce_cap(self.cfg.outbox_max_bytes, protect)
            .await?
        else {
            return Ok(());
        };
        if report.compacted == 0 && report.dropped.is_none() {
            // Over the cap but everything left may already be at the
            // central side (a cap smaller than one batch): nothing to do.
            log::debug!(
                "outbox at {} bytes, over its cap, but only events possibly sent remain",
                report.bytes_before
            );
            return Ok(());
        }
        let mut message = format!(
            "outbox over its cap of {} bytes ({} bytes): {} usage events compacted",
            self.cfg.outbox_max_bytes, report.bytes_before, report.compacted
        );
        if let Some(d) = &report.dropped {
            log::info!("event {}", d.to_log_json(&self.site, self.stream));
            if let crate::event::EventKind::Dropped {
                from_seq,
                to_seq,
                count,
            } = &d.kind
            {
                message += &format!(", {count} oldest events dropped (seq {from_seq}-{to_seq})");
            }
        }
        message += &format!(", now {} bytes", report.bytes_after);
        if p.outbox_alerted {
            log::warn!("{message}");
        } else {
            self.alerts.raise("outbox_full", message).await?;
            p.outbox_alerted = true;
        }
        Ok(())
    }

    /// Publishes the uplink status; wakes view readers only on a change.
    async fn publish(
        &self,
        uploaded_at: Option<Timestamp>,
        error: Option<String>,
        acked: u64,
    ) -> Result<(), StoreError> {
        let pending = self.store.stats().await?.pending;
        let enabled = self.client.is_some();
        self.view.send_if_modified(|v| {
            let u = &mut v.uplink;
            let before = u.clone();
            u.enabled = enabled;
            u.pending = pending;
            u.uploaded += acked;
            if uploaded_at.is_some() {
                u.last_upload_at = uploaded_at;
                u.last_error = None;
            }
            if error.is_some() {
                u.last_error = error;
            }
            *u != before
        });
        Ok(())
    }
}
