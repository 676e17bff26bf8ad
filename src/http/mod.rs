//! The local HTTP endpoint: status page, user API, health and metrics.
//!
//! It runs on the agent's current_thread runtime beside the monitor, so
//! nothing here may block or hog it:
//!
//! - reads answer from the published [`View`] (a reference-count clone),
//!   never from the router or redb; outbox figures come from the store
//!   thread at most once a second (`StatsCache`);
//! - requests that change the router go over the shared session, a few at
//!   a time ([`MAX_WRITES`]);
//! - every connection has a header read timeout, every body a size limit
//!   and a read timeout, and at most [`MAX_CONNECTIONS`] are served at
//!   once. When all slots are taken, a new connection evicts the one that
//!   has been idle (or stuck sending its headers) longest, so a few
//!   hundred half-open connections cannot lock out a real client; if no
//!   slot frees up within [`QUEUE_WAIT`], it is answered `503` with
//!   `Retry-After` (never closed without a word);
//! - a request's `Host` must be a name this endpoint is known by
//!   (DNS-rebinding protection, `host`).
//!
//! Modules: `routes` (routing, auth, read endpoints), `body` (request
//! bodies, draining), `host` (allowed `Host` names), `overflow` (the 503
//! for connections past the limit), `users` (router writes), `json`
//! (response bodies and errors), `metrics` (Prometheus text),
//! `status.html` (the page).

mod body;
mod host;
mod json;
mod metrics;
mod overflow;
mod routes;
mod tracker;
mod users;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinHandle;

use crate::client::Router;
use crate::config::{RouterConfig, Secret};
use crate::status::{Control, View};
use crate::store::{OutboxStats, StoreError, StoreHandle};
use tracker::{Slot, Tracked, Tracker};

/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 64;
/// How long a connection past [`MAX_CONNECTIONS`] may wait for a slot
/// before it is answered 503.
pub const QUEUE_WAIT: Duration = Duration::from_millis(500);
/// Time a client has to send a request's headers (also the idle limit
/// between keep-alive requests).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// Time a client has to send a request body.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest request body accepted (413 above).
pub const MAX_BODY: usize = 64 * 1024;
/// Router writes (user API) in flight at once; the monitor shares the
/// session and must not queue behind a burst of them.
pub const MAX_WRITES: usize = 4;
/// hyper's read buffer cap (its minimum is 8 KiB); bounds the memory a
/// connection can make the agent hold for headers.
const MAX_HEADER_BUF: usize = 16 * 1024;
/// Delay between attempts to bind the listen address.
const BIND_RETRY: Duration = Duration::from_secs(30);

/// What the endpoint needs from the agent.
pub struct Shared {
    pub view: watch::Receiver<View>,
    pub control: mpsc::Sender<Control>,
    pub store: StoreHandle,
    pub router: Router,
    /// For the short-lived second session of `/api/mikrotik/test-connection`.
    pub router_config: RouterConfig,
    pub token: Option<Secret>,
    pub site_id: String,
    /// Where local intents go to be held against the sync (with a
    /// central URL; without one the event is recorded directly).
    pub intents: Option<tokio::sync::mpsc::Sender<crate::intent_channel::IntentMsg>>,
    pub kicks: crate::kicks::Kicks,
    /// `http_allowed_hosts`: extra names a request's `Host` may carry.
    pub allowed_hosts: Vec<String>,
}

/// Shared by all connections.
pub(crate) struct Ctx {
    shared: Shared,
    /// The configured listen address (for the `Host` check).
    listen: SocketAddr,
    hosts: host::HostPolicy,
    stats: StatsCache,
    writes: Semaphore,
    /// Serializes `test-connection` and remembers its last result, so a
    /// flood of probes becomes at most one router login per second.
    probe: tokio::sync::Mutex<Option<(Instant, serde_json::Value)>>,
}

/// Outbox statistics, refreshed from the store thread at most once per
/// [`StatsCache::TTL`] however many requests ask: the store thread also
/// serves the monitor's commits.
struct StatsCache {
    cached: tokio::sync::Mutex<Option<(Instant, OutboxStats)>>,
}

impl StatsCache {
    const TTL: Duration = Duration::from_secs(1);

    async fn get(&self, store: &StoreHandle) -> Result<OutboxStats, StoreError> {
        let mut cached = self.cached.lock().await;
        if let Some((at, stats)) = cached.as_ref()
            && at.elapsed() < Self::TTL
        {
            return Ok(stats.clone());
        }
        let stats = store.stats().await?;
        *cached = Some((Instant::now(), stats.clone()));
        Ok(stats)
    }
}

/// The running endpoint; [`stop`](Self::stop) it before joining the store
/// thread (connections hold store handles).
pub struct HttpServer {
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl HttpServer {
    /// Closes the listener and every connection, and waits (briefly) for
    /// their tasks to end.
    pub async fn stop(mut self) {
        let _ = self.shutdown.send(true);
        if tokio::time::timeout(Duration::from_secs(3), &mut self.task)
            .await
            .is_err()
        {
            // Never let a stuck task keep a store handle alive: the agent
            // joins the store thread next, which waits for every handle.
            self.task.abort();
        }
    }
}

/// Starts serving on `listen` in the background. A busy or unavailable
/// address is logged and retried: monitoring does not depend on it.
pub fn start(listen: SocketAddr, shared: Shared) -> HttpServer {
    let ctx = Arc::new(Ctx {
        hosts: host::HostPolicy::new(&shared.allowed_hosts),
        listen,
        shared,
        stats: StatsCache {
            cached: tokio::sync::Mutex::new(None),
        },
        writes: Semaphore::new(MAX_WRITES),
        probe: tokio::sync::Mutex::new(None),
    });
    let (shutdown, rx) = watch::channel(false);
    let task = tokio::spawn(serve(listen, ctx, rx));
    HttpServer { shutdown, task }
}

async fn serve(listen: SocketAddr, ctx: Arc<Ctx>, mut shutdown: watch::Receiver<bool>) {
    let listener = loop {
        match TcpListener::bind(listen).await {
            Ok(l) => break l,
            Err(e) => {
                log::error!(
                    "http: cannot listen on {listen}: {e}; retrying every {} s (monitoring continues)",
                    BIND_RETRY.as_secs()
                );
                tokio::select! {
                    _ = tokio::time::sleep(BIND_RETRY) => {}
                    _ = stopped(&mut shutdown) => return,
                }
            }
        }
    };
    match listener.local_addr() {
        Ok(addr) => log::info!("http: listening on http://{addr}"),
        Err(_) => log::info!("http: listening on http://{listen}"),
    }
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let waiting = Arc::new(Semaphore::new(overflow::MAX_WAITING));
    let tracker = Arc::new(Tracker::default());
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    log::warn!("http: accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = stopped(&mut shutdown) => break,
        };
        let permit = match slots.clone().try_acquire_owned() {
            Ok(p) => Some(p),
            Err(_) => {
                // Full: make room by closing the connection that has been
                // idle or stuck in its headers longest. The newcomer waits
                // for a slot on its own task (the accept loop never waits),
                // and is answered 503 if none frees up in time.
                tracker.evict_oldest();
                None
            }
        };
        let wait_permit = match permit {
            Some(_) => None,
            // When even the waiting room is full, stop accepting until a
            // place frees up (each is held for a second or two at most):
            // further clients wait in the kernel's listen backlog instead
            // of being closed without an answer.
            None => tokio::select! {
                w = waiting.clone().acquire_owned() => w.ok(),
                _ = stopped(&mut shutdown) => break,
            },
        };
        let (ctx, tracker, mut shutdown, slots) = (
            ctx.clone(),
            tracker.clone(),
            shutdown.clone(),
            slots.clone(),
        );
        tokio::spawn(async move {
            let permit = match permit {
                Some(p) => p,
                None => {
                    let got = tokio::select! {
                        p = wait_for_slot(&slots, &tracker) => p,
                        _ = stopped(&mut shutdown) => None,
                    };
                    match got {
                        Some(p) => p,
                        None => {
                            // Not holding the context (and its store
                            // handle) while answering: shutdown waits
                            // for those.
                            drop(ctx);
                            log::debug!("http: {peer}: too many connections, 503");
                            overflow::refuse(stream).await;
                            drop(wait_permit);
                            return;
                        }
                    }
                }
            };
            drop(wait_permit);
            connection(stream, peer, ctx, tracker, shutdown).await;
            drop(permit);
        });
    }
    drop(listener);
    // Every connection task holds a slot; all slots back means all ended.
    let _ = tokio::time::timeout(
        Duration::from_secs(2),
        slots.acquire_many(MAX_CONNECTIONS as u32),
    )
    .await;
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    ctx: Arc<Ctx>,
    tracker: Arc<Tracker>,
    mut shutdown: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    // The address the client reached: on a 0.0.0.0 or [::] listener, the
    // interface address (an allowed Host).
    let local = stream.local_addr().unwrap_or(ctx.listen);
    let slot = Arc::new(Slot::new());
    tracker.idle(&slot);
    let svc = {
        let (slot, tracker) = (slot.clone(), tracker.clone());
        service_fn(move |req| {
            let (ctx, slot, tracker) = (ctx.clone(), slot.clone(), tracker.clone());
            async move {
                tracker.busy(&slot);
                let resp = routes::handle(req, &ctx, peer, local).await;
                tracker.idle(&slot);
                Ok::<_, Infallible>(resp)
            }
        })
    };
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_buf_size(MAX_HEADER_BUF)
        .serve_connection(TokioIo::new(Tracked::new(stream, slot.clone())), svc);
    tokio::select! {
        biased;
        _ = stopped(&mut shutdown) => {}
        _ = slot.evict.notified() => log::debug!("http: {peer}: idle connection closed to make room"),
        r = conn => {
            if let Err(e) = r {
                log::debug!("http: {peer}: {e}");
            }
        }
    }
    tracker.busy(&slot);
}

/// Waits up to [`QUEUE_WAIT`] for a free slot. Meanwhile connections
/// become evictable (a fresh one is spared for a moment: its request may
/// still be on the way), so room is made again every few milliseconds.
async fn wait_for_slot(
    slots: &Arc<Semaphore>,
    tracker: &Tracker,
) -> Option<tokio::sync::OwnedSemaphorePermit> {
    // One acquire kept across the loop: its place in the semaphore's
    // first-come queue is kept too.
    let acquire = slots.clone().acquire_owned();
    let deadline = tokio::time::sleep(QUEUE_WAIT);
    tokio::pin!(acquire, deadline);
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    loop {
        tokio::select! {
            p = &mut acquire => return p.ok(),
            _ = &mut deadline => return None,
            _ = tick.tick() => tracker.evict_oldest(),
        }
    }
}

/// Resolves once shutdown is requested (or the sender is gone).
async fn stopped(rx: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is not `Send`; drop it here.
    let _ = rx.wait_for(|s| *s).await.is_ok();
}
