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
        let at = Timestamp::now();
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
            w.send(event.to_json(&self.site, self.stream));
        }
        Ok(())
    }
}
