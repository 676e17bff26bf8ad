//! The alert webhook: each alert is POSTed to an operator's URL (e.g. a
//! WhatsApp gateway), as the alert event's JSON or as the operator's
//! template (JSON or form) with extra headers such as a token. Its own
//! thread and a small bounded queue, so a slow or dead webhook never holds
//! up the agent: when the queue is full the alert is still in the outbox
//! and the log, only this copy is skipped.
//!
//! Any 2xx is a delivery, whatever its body (gateways answer `OK`, HTML or
//! nothing). The URL is logged only redacted (its path or query may be the
//! secret), header values never; ureq's own request logging is filtered
//! out in [`crate::logging`] for the same reason.

use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use serde_json::Value;

use super::client::{http_agent, send};
use super::policy::{Reaction, classify};
use crate::config::{Secret, WebhookConfig};
use crate::redact::redact_url;
use crate::template::AlertFields;

/// Alerts waiting for the webhook thread.
const QUEUE: usize = 32;
/// Tries per alert, and the first pause between tries (doubling).
const ATTEMPTS: u32 = 4;
const FIRST_PAUSE: Duration = Duration::from_secs(1);

/// One alert for the webhook: the event (the default body) and the
/// template's values.
struct Job {
    event: Value,
    fields: AlertFields,
}

#[derive(Clone)]
pub struct Webhook {
    tx: std_mpsc::SyncSender<Job>,
}

impl Webhook {
    pub fn start(cfg: WebhookConfig, timeout: Duration) -> Result<Webhook, String> {
        let (tx, rx) = std_mpsc::sync_channel::<Job>(QUEUE);
        let agent = http_agent(None, timeout)?;
        std::thread::Builder::new()
            .name("alert-webhook".into())
            .spawn(move || {
                while let Ok(job) = rx.recv() {
                    deliver(&agent, &cfg, &job);
                }
            })
            .map_err(|e| format!("cannot start the webhook thread: {e}"))?;
        Ok(Webhook { tx })
    }

    /// Queues one alert; never blocks.
    pub fn send(&self, event: Value, fields: AlertFields) {
        if self.tx.try_send(Job { event, fields }).is_err() {
            log::warn!("alert webhook: queue full or stopped, one alert not posted");
        }
    }
}

/// The `Content-Type` and body for `job`.
fn body(cfg: &WebhookConfig, job: &Job) -> (&'static str, Vec<u8>) {
    match &cfg.body {
        Some(t) => (
            t.format().content_type(),
            t.render(&job.fields).into_bytes(),
        ),
        None => ("application/json", job.event.to_string().into_bytes()),
    }
}

fn deliver(agent: &ureq::Agent, cfg: &WebhookConfig, job: &Job) {
    let shown = redact_url(&cfg.url);
    let (content_type, bytes) = body(cfg, job);
    let headers: Vec<(&str, &Secret)> = cfg.headers.iter().map(|(n, v)| (n.as_str(), v)).collect();
    let alert = &job.fields.alert;
    let mut pause = FIRST_PAUSE;
    for attempt in 1..=ATTEMPTS {
        log::debug!(
            "alert webhook: POST {shown} ({content_type}, {} bytes, try {attempt})",
            bytes.len()
        );
        match send(agent, &cfg.url, content_type, &headers, &bytes) {
            Ok((code, _)) => {
                log::info!("alert webhook: {alert} delivered to {shown} (HTTP {code})");
                return;
            }
            Err(e) => {
                let retry = classify(&e) == Reaction::Retry && attempt < ATTEMPTS;
                log::warn!(
                    "alert webhook: {alert} to {shown}: {e}{}",
                    if retry { "; retrying" } else { "; giving up" }
                );
                if !retry {
                    return;
                }
                std::thread::sleep(pause);
                pause *= 2;
            }
        }
    }
}
