//! Raising an alert: an `alert` event in the outbox (so the central side
//! gets it with everything else), a log line, and a copy to the webhook.
//!
//! Alert texts are for people on a phone: times are given in the router's
//! time zone (its `gmt-offset`, once the agent has read it), or in UTC
//! saying so.

use std::sync::{Arc, Mutex};

use crate::clock::Timestamp;
use crate::event::{EventKind, StreamId};
use crate::store::{StoreError, StoreHandle};

use super::webhook::Webhook;
use crate::template::AlertFields;

#[derive(Clone)]
pub struct Alerts {
    store: StoreHandle,
    webhook: Option<Webhook>,
    site: String,
    stream: StreamId,
    context: Arc<Mutex<Context>>,
}

/// What the agent learns about the router after start.
struct Context {
    /// The router's identity once known; its configured address before.
    router: String,
    /// Seconds east of UTC (`/system/clock` `gmt-offset`), once read.
    utc_offset: Option<i64>,
}

impl Alerts {
    pub fn new(
        store: StoreHandle,
        webhook: Option<Webhook>,
        site: String,
        router: String,
    ) -> Alerts {
        let stream = store.stream();
        Alerts {
            store,
            webhook,
            site,
            stream,
            context: Arc::new(Mutex::new(Context {
                router,
                utc_offset: None,
            })),
        }
    }

    /// The router's name in alert texts (its identity, once read).
    pub fn set_router(&self, name: &str) {
        // An identity is free text on the router: no line breaks or other
        // control characters into a phone message.
        let name: String = name.chars().filter(|c| !c.is_control()).collect();
        if !name.trim().is_empty() {
            lock(&self.context).router = name.trim().to_owned();
        }
    }

    pub fn router(&self) -> String {
        lock(&self.context).router.clone()
    }

    /// The operator's time zone, from the router's `gmt-offset`.
    pub fn set_utc_offset(&self, secs: i64) {
        lock(&self.context).utc_offset = Some(secs);
    }

    /// `14:02` in the router's time zone, or `14:02 UTC` while unknown.
    pub fn clock_time(&self, t: Timestamp) -> String {
        let offset = lock(&self.context).utc_offset;
        let local = t.plus_secs(offset.unwrap_or(0)).to_rfc3339();
        let hm = local.get(11..16).unwrap_or("??:??");
        match offset {
            Some(_) => hm.to_owned(),
            None => format!("{hm} UTC"),
        }
    }

    /// `2026-11-24 14:02 +07:00`, or `2026-11-24 14:02 UTC` while the
    /// router's offset is unknown.
    pub fn full_time(&self, t: Timestamp) -> String {
        let offset = lock(&self.context).utc_offset;
        let local = t.plus_secs(offset.unwrap_or(0)).to_rfc3339();
        let day_hm = format!(
            "{} {}",
            local.get(..10).unwrap_or("????-??-??"),
            local.get(11..16).unwrap_or("??:??")
        );
        match offset {
            Some(off) => {
                let sign = if off < 0 { '-' } else { '+' };
                let a = off.unsigned_abs();
                format!("{day_hm} {sign}{:02}:{:02}", a / 3600, a % 3600 / 60)
            }
            None => format!("{day_hm} UTC"),
        }
    }

    /// Commits the alert event, logs it, and queues it for the webhook.
    /// `message` must not hold secrets: it goes everywhere.
    pub async fn raise(&self, name: &str, message: String) -> Result<(), StoreError> {
        log::warn!("alert {name}: {message}");
        let at = Timestamp::now();
        let fields = AlertFields {
            message: message.clone(),
            site: self.site.clone(),
            router: self.router(),
            time: self.full_time(at),
            alert: name.to_owned(),
        };
        let kind = EventKind::Alert {
            name: name.to_owned(),
            message,
        };
        // The store thread logs the committed event; the webhook gets the
        // same JSON, rebuilt here from the number it was given.
        let committed = self.store.append(vec![(at, kind.clone())]).await?;
        if let Some(w) = &self.webhook {
            let event = crate::event::Event {
                seq: committed.first_seq,
                at,
                kind,
            };
            w.send(event.to_json(&self.site, self.stream), fields);
        }
        Ok(())
    }
}

/// Poisoning only means another thread panicked mid-update of a plain value.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
