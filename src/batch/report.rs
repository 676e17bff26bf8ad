//! `create-batch` tells the central side at once what it created (status
//! `created`, with the password), when central upload is configured: the
//! users are sold cards or customers' logins, and central must be able to
//! recreate them before the next full sync would adopt them.
//!
//! `create-batch` runs beside the agent, which holds the state file, so it
//! cannot queue into the agent's outbox. It uploads through the same
//! contract on a stream of its own (a fresh random stream id per run,
//! sequence 1..n with its own `prev` chain): exactly once, since central
//! de-duplicates by `(site, stream, seq)` and a retry resends the same
//! numbers.

use std::time::Duration;

use crate::clock::Timestamp;
use crate::config::Config;
use crate::event::{Event, EventKind, StreamId};
use crate::uplink::{CentralClient, Reaction, classify, ingest_body};

/// Tries per batch, and the first pause between them (doubling).
const ATTEMPTS: u32 = 5;
const FIRST_PAUSE: Duration = Duration::from_secs(1);

/// Uploads `events`; returns how many central acknowledged.
pub async fn report(cfg: &Config, events: Vec<EventKind>) -> Result<usize, String> {
    let Some(central) = &cfg.uplink.central else {
        return Ok(0);
    };
    if events.is_empty() {
        return Ok(0);
    }
    let client =
        CentralClient::start(central, cfg.uplink.timeout, None).map_err(|e| e.to_string())?;
    let stream = new_stream()?;
    let at = Timestamp::now();
    let events: Vec<Event> = events
        .into_iter()
        .enumerate()
        .map(|(i, kind)| Event {
            seq: i as u64 + 1,
            at,
            kind,
        })
        .collect();
    let mut acked = 0;
    for chunk in events.chunks(cfg.uplink.batch_max.max(1)) {
        let prev = chunk.first().map_or(0, |e| e.seq - 1);
        let body = ingest_body(&cfg.site_id, stream, prev, chunk).map_err(|e| e.to_string())?;
        let mut pause = FIRST_PAUSE;
        let mut attempt = 1;
        loop {
            match client.rpc_raw("ingest_batch", body.clone()).await {
                Ok(reply) => {
                    acked = reply["stored_through"].as_u64().unwrap_or(0) as usize;
                    break;
                }
                Err(e) if classify(&e) == Reaction::Retry && attempt < ATTEMPTS => {
                    log::warn!("create-batch: report to central failed ({e}); retrying");
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                    attempt += 1;
                }
                Err(e) => return Err(format!("{e} ({acked} of {} reported)", events.len())),
            }
        }
    }
    Ok(acked)
}

fn new_stream() -> Result<StreamId, String> {
    use ring::rand::SecureRandom;
    let mut id = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut id)
        .map_err(|_| "the system random number generator failed".to_owned())?;
    Ok(StreamId(id))
}
