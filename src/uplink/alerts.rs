//! Raising an alert: an `alert` event in the outbox (so the central side
//! gets it with everything else), a log line, and a copy to the webhook.

use crate::clock::Timestamp;
use crate::event::{EventKind, StreamId};
use crate::store::{StoreError, StoreHandle};

use super::webhook::Webhook;

#[derive(Clone)]
pub struct Alerts {
    store: StoreHandle,
    webhook: Option<Webhook>,
    site: String,
    stream: StreamId,
}

impl Alerts {
    pub fn new(store: StoreHandle, webhook: Option<Webhook>, site: String) -> Alerts {
        let stream = store.stream();
        Alerts {
            store,
            webhook,
            site,
            stream,
        }
    }

    /// Commits the alert event, logs it, and queues it for the webhook.
    /// `message` must not hold secrets: it goes everywhere.
    pub async fn raise(&self, name: &str, message: String) -> Result<(), StoreError> {
        log::warn!("alert {name}: {message}");
        let events = self
            .store
            .append(vec![(
                Timestamp::now(),
                EventKind::Alert {
                    name: name.to_owned(),
                    message,
                },
            )])
            .await?;
        for e in &events {
            let json = e.to_json(&self.site, self.stream);
            log::info!("event {json}");
            if let Some(w) = &self.webhook {
                w.send(json);
            }
        }
        Ok(())
    }
}
