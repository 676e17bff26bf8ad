//! The alert webhook: each alert is POSTed as JSON to an operator's URL
//! (e.g. a WhatsApp gateway). Its own thread and a small bounded queue, so
//! a slow or dead webhook never holds up the agent: when the queue is full
//! the alert is still in the outbox and the log, only this copy is skipped.

use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use serde_json::Value;

use super::client::{http_agent, post_json};
use super::policy::{Reaction, classify};

/// Alerts waiting for the webhook thread.
const QUEUE: usize = 32;
/// Tries per alert, and the first pause between tries (doubling).
const ATTEMPTS: u32 = 4;
const FIRST_PAUSE: Duration = Duration::from_secs(1);

#[derive(Clone)]
pub struct Webhook {
    tx: std_mpsc::SyncSender<Value>,
}

impl Webhook {
    pub fn start(url: String, timeout: Duration) -> Result<Webhook, String> {
        let (tx, rx) = std_mpsc::sync_channel::<Value>(QUEUE);
        let agent = http_agent(None, timeout)?;
        std::thread::Builder::new()
            .name("alert-webhook".into())
            .spawn(move || {
                while let Ok(body) = rx.recv() {
                    deliver(&agent, &url, &body);
                }
            })
            .map_err(|e| format!("cannot start the webhook thread: {e}"))?;
        Ok(Webhook { tx })
    }

    /// Queues `body`; never blocks.
    pub fn send(&self, body: Value) {
        if self.tx.try_send(body).is_err() {
            log::warn!("alert webhook: queue full or stopped, one alert not posted");
        }
    }
}

fn deliver(agent: &ureq::Agent, url: &str, body: &Value) {
    let mut pause = FIRST_PAUSE;
    for attempt in 1..=ATTEMPTS {
        match post_json(agent, url, None, body) {
            Ok(_) => return,
            Err(e) => {
                let retry = classify(&e) == Reaction::Retry && attempt < ATTEMPTS;
                log::warn!(
                    "alert webhook: {e}{}",
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
