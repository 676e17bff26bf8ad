//! The router handle the agent uses: a connection kept up in the background.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::{
    Backoff, ClientError, Connection, Folded, ReplyStream, Response, RouterConfig, router_addr,
};
use crate::proto::{Attrs, Command};

/// What happened to the connection, for the event log and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionEvent {
    /// Logged in.
    Connected,
    /// An established session ended.
    Disconnected { reason: String },
    /// An attempt to connect or log in failed; `kind` is
    /// [`ClientError::kind`] (refused, timeout, bad-credentials, ...).
    Error { kind: &'static str, reason: String },
}

struct Shared {
    current: Mutex<Option<Connection>>,
    last_error: Mutex<Option<String>>,
    connected: watch::Sender<bool>,
    shutdown: watch::Sender<bool>,
}

/// Shared by every task; clone freely.
#[derive(Clone)]
pub struct Router {
    shared: Arc<Shared>,
}

impl Router {
    /// Starts the background connection task on the current tokio runtime.
    pub fn start(cfg: RouterConfig) -> (Router, mpsc::UnboundedReceiver<ConnectionEvent>) {
        let (events, events_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            current: Mutex::new(None),
            last_error: Mutex::new(None),
            connected: watch::channel(false).0,
            shutdown: watch::channel(false).0,
        });
        let router = Router { shared };
        let supervisor = router.clone();
        tokio::spawn(async move { supervisor.supervise(cfg, events).await });
        (router, events_rx)
    }

    /// Runs a command on the current session; a `!trap` is an error. While
    /// disconnected this fails at once with [`ClientError::NotConnected`].
    pub async fn execute(&self, cmd: Command) -> Result<Response, ClientError> {
        self.connection()?.execute(cmd).await
    }

    /// See [`Connection::fold`].
    pub async fn fold<T, F>(&self, cmd: Command, init: T, f: F) -> Result<Folded<T>, ClientError>
    where
        T: Send + 'static,
        F: FnMut(&mut T, &Attrs) + Send + 'static,
    {
        self.connection()?.fold(cmd, init, f).await
    }

    /// See [`Connection::stream`].
    pub fn stream(&self, cmd: Command) -> Result<ReplyStream, ClientError> {
        self.connection()?.stream(cmd)
    }

    /// See [`Connection::stream_bounded`].
    pub fn stream_bounded(
        &self,
        cmd: Command,
        max_unread: usize,
    ) -> Result<ReplyStream, ClientError> {
        self.connection()?.stream_bounded(cmd, max_unread)
    }

    /// Stops reconnecting and ends the session politely: `/quit`, then
    /// waits (at most `limit`) for the router to close it.
    pub async fn close(&self, limit: Duration) {
        let _ = self.shared.shutdown.send_replace(true);
        let conn = lock(&self.shared.current).take();
        let _ = self.shared.connected.send_replace(false);
        if let Some(conn) = conn {
            conn.quit(limit).await;
        }
    }

    /// Like [`execute`](Self::execute) but returns traps in the response.
    pub async fn execute_raw(&self, cmd: Command) -> Result<Response, ClientError> {
        self.connection()?.execute_raw(cmd).await
    }

    pub fn is_connected(&self) -> bool {
        *self.shared.connected.borrow()
    }

    /// Waits until logged in, or `limit` passes. Returns whether connected.
    pub async fn wait_connected(&self, limit: Duration) -> bool {
        let mut rx = self.shared.connected.subscribe();
        tokio::time::timeout(limit, rx.wait_for(|c| *c))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// The reason the last session or attempt failed.
    pub fn last_error(&self) -> Option<String> {
        lock(&self.shared.last_error).clone()
    }

    /// Stops reconnecting and closes the session.
    pub fn shutdown(&self) {
        let _ = self.shared.shutdown.send_replace(true);
        lock(&self.shared.current).take();
        let _ = self.shared.connected.send_replace(false);
    }

    fn connection(&self) -> Result<Connection, ClientError> {
        match lock(&self.shared.current).as_ref() {
            Some(conn) if !conn.is_closed() => Ok(conn.clone()),
            _ => Err(ClientError::NotConnected {
                last_error: self.last_error(),
            }),
        }
    }

    async fn supervise(self, cfg: RouterConfig, events: mpsc::UnboundedSender<ConnectionEvent>) {
        let mut backoff = Backoff::from_entropy(cfg.backoff_base, cfg.backoff_cap);
        let mut shutdown = self.shared.shutdown.subscribe();
        loop {
            if *shutdown.borrow() {
                return;
            }
            match Connection::open(&cfg).await {
                Ok(conn) => {
                    log::info!("connected to router {} as {}", router_addr(&cfg), cfg.user);
                    *lock(&self.shared.current) = Some(conn.clone());
                    let _ = self.shared.connected.send_replace(true);
                    let _ = events.send(ConnectionEvent::Connected);
                    let since = Instant::now();
                    let reason = tokio::select! {
                        r = conn.closed() => r,
                        _ = shutdown.wait_for(|s| *s) => return,
                    };
                    lock(&self.shared.current).take();
                    let _ = self.shared.connected.send_replace(false);
                    log::warn!("router connection lost: {reason}");
                    *lock(&self.shared.last_error) = Some(reason.to_string());
                    let _ = events.send(ConnectionEvent::Disconnected {
                        reason: reason.to_string(),
                    });
                    // A session that lived a while earns a fresh backoff; one
                    // that dies right after login (max-sessions, a flapping
                    // link) keeps backing off instead of hammering the router.
                    if since.elapsed() >= cfg.backoff_cap {
                        backoff.reset();
                    }
                }
                Err(err) => {
                    log::warn!("router connection failed: {err}");
                    *lock(&self.shared.last_error) = Some(err.to_string());
                    let _ = events.send(ConnectionEvent::Error {
                        kind: err.kind(),
                        reason: err.to_string(),
                    });
                }
            }
            let delay = backoff.next_delay();
            log::debug!("reconnecting in {} ms", delay.as_millis());
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = shutdown.wait_for(|s| *s) => return,
            }
        }
    }
}

/// Poisoning only means another task panicked mid-update of a plain value;
/// the value is still usable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
