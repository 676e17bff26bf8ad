//! Upload of the outbox to the central side (`POST {url}/rpc/ingest_batch`,
//! see README "Central side"), alerts, and the outbox cap.
//!
//! - client.rs: the blocking ureq client on its own thread; generic `rpc`;
//!   feeds successful replies' `Date` to the clock trust.
//! - batch.rs: the `ingest_batch` arguments, with the `prev` chain.
//! - policy.rs: which failures are retried, which raise alerts.
//! - uploader.rs: the async task: cap, batch, send, ack, status, and the
//!   narrowing down of a batch refused as malformed to its quarantine.
//! - quarantine.rs: `mikrotik-edge quarantine list|resend`.
//! - alerts.rs / webhook.rs: alert events and their webhook copies (the
//!   operator's body template is [`crate::template`]).
//! - error.rs: [`UplinkError`].

mod alerts;
mod batch;
mod client;
mod error;
mod policy;
mod quarantine;
mod uploader;
mod webhook;

use tokio::sync::watch;

pub use alerts::Alerts;
pub use batch::{ingest_args, ingest_body};
pub use client::{CentralClient, DateSink};
pub use error::UplinkError;
pub use policy::{Reaction, classify};
pub use quarantine::{QuarantineAction, quarantine_cli};
pub use webhook::Webhook;

use crate::config::Config;
use crate::status::View;
use crate::store::StoreHandle;

/// The alert sink for `cfg`: events, plus the webhook when one is set.
pub fn alerts(cfg: &Config, store: &StoreHandle) -> Alerts {
    let webhook = cfg.uplink.alert_webhook.as_ref().and_then(|hook| {
        log::info!(
            "alert webhook: {} ({} body, {} extra header(s))",
            crate::redact::redact_url(&hook.url),
            hook.format,
            hook.headers.len()
        );
        match Webhook::start(hook.clone(), cfg.uplink.timeout) {
            Ok(w) => Some(w),
            Err(e) => {
                log::error!("alert webhook disabled: {e}");
                None
            }
        }
    });
    Alerts::new(
        store.clone(),
        webhook,
        cfg.site_id.clone(),
        cfg.router.host.clone(),
    )
}

/// Spawns the uploader on the current runtime. Without `central_url` it
/// only keeps the outbox under its cap (and says so once). Successful
/// uploads' `Date` headers go to `dates`.
pub fn spawn(
    cfg: &Config,
    store: StoreHandle,
    alerts: Alerts,
    view: watch::Sender<View>,
    dates: DateSink,
) -> tokio::task::JoinHandle<()> {
    let client = match &cfg.uplink.central {
        Some(central) => {
            log::info!(
                "central upload to {} (batches of up to {}, outbox cap {} bytes)",
                crate::redact::redact_url(&central.url),
                cfg.uplink.batch_max,
                cfg.uplink.outbox_max_bytes
            );
            match CentralClient::start(central, cfg.uplink.timeout, Some(dates)) {
                Ok(c) => Some(c),
                Err(e) => {
                    log::error!("central upload disabled: {e}");
                    None
                }
            }
        }
        None => {
            log::info!("central upload off (no central_url): events stay queued in the state file");
            None
        }
    };
    let stream = store.stream();
    let uploader = uploader::Uploader {
        store,
        client,
        alerts,
        view,
        site: cfg.site_id.clone(),
        stream,
        cfg: cfg.uplink.clone(),
    };
    tokio::spawn(uploader.run())
}
