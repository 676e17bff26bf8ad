//! `mikrotik-edge run`: the driver around the pure monitor.
//!
//! Each cycle: read the four lists concurrently over the one connection,
//! folding rows into typed rows as they stream in ([`rows`]); compute the
//! step; commit the changed rows and the events on the store thread; and
//! only then perform the router actions ([`commands`]). Committing first
//! means a crash between the two repeats a router write on the next cycle
//! (harmless, they are idempotent) and never loses or repeats an event.
//!
//! SIGTERM and SIGINT are listened for from start to end, also in the middle
//! of a cycle: a commit already handed to the store thread is finished,
//! the session is closed with `/quit`, and the agent exits 0.

pub mod commands;
pub mod rows;
pub mod view;

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use crate::client::{ClientError, ConnectionEvent, Router};
use crate::clock::Timestamp;
use crate::config::Config;
use crate::event::{Event, EventKind, RouterState, Service, StreamId};
use crate::monitor::{self, MonitorConfig, MonitorState, Snapshot};
use crate::name::Name;
use crate::proto::Command;
use crate::store::{StateDelta, StoreError, StoreHandle};
use rows::{
    HOTSPOT_ACTIVE_PROPS, HOTSPOT_USER_PROPS, PPP_ACTIVE_PROPS, PPP_SECRET_PROPS, SessionRows,
    UserRows,
};
pub use view::View;

#[derive(Debug)]
pub enum AgentError {
    Store(StoreError),
    Signals(std::io::Error),
    RouterTaskEnded,
}

impl fmt::Display for AgentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AgentError::Store(e) => write!(f, "{e}"),
            AgentError::Signals(e) => write!(f, "cannot install signal handlers: {e}"),
            AgentError::RouterTaskEnded => write!(f, "router connection task ended"),
        }
    }
}

impl std::error::Error for AgentError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AgentError::Store(e) => Some(e),
            AgentError::Signals(e) => Some(e),
            AgentError::RouterTaskEnded => None,
        }
    }
}

impl From<StoreError> for AgentError {
    fn from(e: StoreError) -> Self {
        AgentError::Store(e)
    }
}

/// Waits for SIGTERM or SIGINT. Installed once, before anything else, so a
/// signal arriving at any moment (mid-cycle included) is never lost.
pub struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    pub fn install() -> Result<Signals, AgentError> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            term: signal(SignalKind::terminate()).map_err(AgentError::Signals)?,
            int: signal(SignalKind::interrupt()).map_err(AgentError::Signals)?,
        })
    }

    /// Resolves with the signal's name.
    pub async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}

/// Runs until SIGTERM or SIGINT.
pub async fn run(cfg: Config) -> Result<(), AgentError> {
    let mut signals = Signals::install()?;
    let (store, store_thread, state) = StoreHandle::open(&cfg.state_path).await?;
    let stats = store.stats().await?;
    log::info!(
        "state {}: stream {}, {} open sessions, {} queued events",
        cfg.state_path.display(),
        store.stream(),
        state.sessions.len(),
        stats.pending
    );
    let state = Arc::new(state);
    let (view_tx, _view_rx) = watch::channel(View::new(
        cfg.site_id.clone(),
        store.stream(),
        state.clone(),
    ));
    let alerts = crate::uplink::alerts(&cfg, &store);
    let uploader = crate::uplink::spawn(&cfg, store.clone(), alerts.clone(), view_tx.clone());
    let (router, events) = Router::start(cfg.router.clone());
    let mut agent = Agent {
        monitor: MonitorConfig {
            hotspot_pattern: cfg.hotspot_profile_pattern.clone(),
            pppoe_pattern: cfg.pppoe_profile_pattern.clone(),
            usage_secs: cfg.usage_secs,
            expired_action: cfg.expired_action,
        },
        site_id: cfg.site_id.clone(),
        stream: store.stream(),
        poll: cfg.poll_interval(),
        store,
        router,
        state,
        router_boot: None,
        warned: HashSet::new(),
        last_router_error: None,
        view: view_tx,
        alerts,
        alert_after: cfg.uplink.alert_after,
        failed_reconnects: 0,
        connection_alerted: false,
    };
    let result = agent.run(events, &mut signals).await;
    // The uploader only awaits: stopping it is immediate; an HTTP request
    // in flight is abandoned on its own thread and sent again next start.
    uploader.abort();
    let _ = uploader.await;
    // Close politely, then let the store thread finish what it was handed.
    agent.router.close(Duration::from_secs(2)).await;
    drop(agent);
    store_thread.join().await;
    result
}

struct Agent {
    monitor: MonitorConfig,
    site_id: String,
    stream: StreamId,
    poll: Duration,
    store: StoreHandle,
    router: Router,
    state: Arc<MonitorState>,
    /// Router boot time by our clock, measured at connect.
    router_boot: Option<Timestamp>,
    /// Warnings already logged (each distinct one is logged once).
    warned: HashSet<String>,
    /// The last connection error recorded as an event, so an outage that
    /// lasts a day does not queue an identical event every retry.
    last_router_error: Option<String>,
    view: watch::Sender<View>,
    alerts: crate::uplink::Alerts,
    /// Failed reconnects in a row before `mikrotik_connection_failed`.
    alert_after: u32,
    failed_reconnects: u32,
    connection_alerted: bool,
}

impl Agent {
    async fn run(
        &mut self,
        mut events: mpsc::UnboundedReceiver<ConnectionEvent>,
        signals: &mut Signals,
    ) -> Result<(), AgentError> {
        let mut ticker = tokio::time::interval(self.poll);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            // Whatever the agent waits for (a slow router, the store), a
            // signal wins; the work it interrupts is either finished by its
            // own thread (a commit) or repeated safely at the next start.
            let work = async {
                tokio::select! {
                    ev = events.recv() => {
                        let Some(ev) = ev else { return Err(AgentError::RouterTaskEnded) };
                        let connected = ev == ConnectionEvent::Connected;
                        self.record_connection_event(ev).await?;
                        if connected {
                            self.on_connected().await;
                            self.cycle().await?;
                            ticker.reset();
                        }
                    }
                    _ = ticker.tick() => {
                        if self.router.is_connected() {
                            self.cycle().await?;
                        }
                    }
                }
                Ok(())
            };
            tokio::select! {
                r = work => r?,
                sig = signals.recv() => {
                    log::info!("{sig}: stopping");
                    return Ok(());
                }
            }
        }
    }

    async fn record_connection_event(&mut self, ev: ConnectionEvent) -> Result<(), AgentError> {
        let (state, reason) = match ev {
            ConnectionEvent::Connected => {
                self.failed_reconnects = 0;
                if std::mem::take(&mut self.connection_alerted) {
                    self.alerts
                        .raise(
                            "mikrotik_connection_restored",
                            format!("router {} reachable again", self.router_label()),
                        )
                        .await?;
                }
                self.last_router_error = None;
                self.view.send_modify(|v| {
                    v.router_connected = true;
                    v.last_router_error = None;
                });
                (RouterState::Connected, String::new())
            }
            ConnectionEvent::Disconnected { reason } => {
                self.view.send_modify(|v| {
                    v.router_connected = false;
                    v.reconnects += 1;
                    v.last_router_error = Some(reason.clone());
                });
                (RouterState::Disconnected, reason)
            }
            ConnectionEvent::Error { reason, .. } => {
                self.failed_reconnects = self.failed_reconnects.saturating_add(1);
                if self.failed_reconnects >= self.alert_after && !self.connection_alerted {
                    self.connection_alerted = true;
                    let message = format!(
                        "{} failed connection attempts to router {}: {reason}",
                        self.failed_reconnects,
                        self.router_label()
                    );
                    self.alerts
                        .raise("mikrotik_connection_failed", message)
                        .await?;
                }
                self.view.send_modify(|v| {
                    v.router_connected = false;
                    v.reconnects += 1;
                    v.last_router_error = Some(reason.clone());
                });
                if self.last_router_error.as_deref() == Some(reason.as_str()) {
                    return Ok(());
                }
                self.last_router_error = Some(reason.clone());
                (RouterState::Error, reason)
            }
        };
        let committed = self
            .store
            .append(vec![(
                Timestamp::now(),
                EventKind::Router { state, reason },
            )])
            .await?;
        self.log_events(&committed);
        Ok(())
    }

    /// Reads who and what the router is, and when it booted.
    async fn on_connected(&mut self) {
        let (identity, resource) = tokio::join!(
            self.router.execute(Command::new("/system/identity/print")),
            self.router
                .execute(Command::new("/system/resource/print").proplist(&[
                    "uptime",
                    "version",
                    "board-name"
                ])),
        );
        let identity = identity
            .ok()
            .and_then(|r| {
                r.rows
                    .first()
                    .map(|a| Name::new(a.get("name").unwrap_or_default()))
            })
            .unwrap_or_default();
        match resource {
            Ok(r) => {
                let Some(row) = r.rows.first() else { return };
                let field = |k| Name::new(row.get(k).unwrap_or_default());
                let uptime = row
                    .get("uptime")
                    .and_then(|u| crate::duration::parse_duration(u).ok());
                self.router_boot =
                    uptime.map(|u| Timestamp::now().plus_secs(-(u.as_secs() as i64)));
                let info = view::RouterInfo {
                    identity,
                    board: field("board-name"),
                    version: field("version"),
                    boot: self.router_boot,
                };
                log::info!(
                    "router {}: {} RouterOS {}, up {}",
                    info.identity,
                    info.board,
                    info.version,
                    field("uptime")
                );
                self.view.send_modify(|v| v.router = Some(info));
            }
            Err(e) => log::warn!("cannot read /system/resource: {e}"),
        }
    }

    /// One poll cycle. Router failures skip the cycle (they are never read
    /// as everyone going offline); a full disk skips it too (nothing is
    /// acted on before it is committed); other state file failures stop
    /// the agent.
    async fn cycle(&mut self) -> Result<(), AgentError> {
        let started = std::time::Instant::now();
        let snapshot = match self.read_snapshot().await {
            Ok(s) => s,
            Err(e) => {
                log::warn!("poll failed, skipping this cycle: {e}");
                self.view.send_modify(|v| {
                    v.poll_failures += 1;
                    v.last_poll_error = Some(e.to_string());
                });
                return Ok(());
            }
        };
        let now = Timestamp::now();
        let out = monitor::step(&self.state, &snapshot, now, &self.monitor);
        for w in out.warnings {
            self.warn_once(w);
        }
        let delta = StateDelta::between(&self.state, &out.state);
        let events: Vec<_> = out.events.into_iter().map(|e| (now, e)).collect();
        let committed = match self.store.commit(delta, events).await {
            Ok(c) => c,
            Err(e) if e.is_disk_full() => {
                log::error!("{e}; skipping this cycle, nothing acted on");
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        self.state = Arc::new(out.state);
        self.log_events(&committed);
        let users = view::UserCounts {
            hotspot_users: snapshot.hotspot_users.len(),
            hotspot_managed: out.managed.0,
            ppp_secrets: snapshot.ppp_secrets.len(),
            pppoe_managed: out.managed.1,
            hotspot_active: snapshot.hotspot_active.len(),
            ppp_active: snapshot.ppp_active.len(),
        };
        drop(snapshot);
        let elapsed_ms = started.elapsed().as_millis() as u64;
        let state = self.state.clone();
        let n_events = committed.len() as u64;
        self.view.send_modify(|v| {
            v.state = state;
            v.users = users;
            v.last_poll = Some(now);
            v.last_poll_ms = Some(elapsed_ms);
            v.polls += 1;
            v.last_poll_error = None;
            v.events_committed += n_events;
        });
        // Actions of one user are ordered (disable, kick, remove); after one
        // fails, the rest of that user's wait for the next cycle's re-plan.
        let mut failed: HashSet<Name> = HashSet::new();
        for action in &out.actions {
            if failed.contains(action.user()) {
                continue;
            }
            match self.router.execute(commands::command(action)).await {
                Ok(_) => log::info!("router: {} for {} done", action.describe(), action.user()),
                // Already gone (kicked session ended, user removed by hand):
                // the next cycle sees the result either way.
                Err(ClientError::Trap {
                    category, message, ..
                }) if is_missing_item(category, &message) => log::debug!(
                    "router: {} for {}: already gone",
                    action.describe(),
                    action.user()
                ),
                Err(e) => {
                    log::warn!(
                        "router: {} for {} failed, retrying next cycle: {e}",
                        action.describe(),
                        action.user()
                    );
                    failed.insert(action.user().clone());
                }
            }
        }
        log::debug!(
            "cycle: {} hotspot users, {} hotspot active, {} secrets, {} ppp active, {} events, {} actions, {} ms",
            users.hotspot_users,
            users.hotspot_active,
            users.ppp_secrets,
            users.ppp_active,
            committed.len(),
            out.actions.len(),
            started.elapsed().as_millis()
        );
        Ok(())
    }

    /// The four list reads, concurrently over the one session, each folded
    /// into typed rows as its sentences arrive.
    async fn read_snapshot(&mut self) -> Result<Snapshot, ClientError> {
        let print = |path: &str, props: &[&str]| Command::new(path).proplist(props);
        let users = |service| {
            self.router.fold(
                print(
                    match service {
                        Service::Hotspot => "/ip/hotspot/user/print",
                        Service::Pppoe => "/ppp/secret/print",
                    },
                    match service {
                        Service::Hotspot => HOTSPOT_USER_PROPS,
                        Service::Pppoe => PPP_SECRET_PROPS,
                    },
                ),
                UserRows::new(service),
                UserRows::push,
            )
        };
        let sessions = |service| {
            self.router.fold(
                print(
                    match service {
                        Service::Hotspot => "/ip/hotspot/active/print",
                        Service::Pppoe => "/ppp/active/print",
                    },
                    match service {
                        Service::Hotspot => HOTSPOT_ACTIVE_PROPS,
                        Service::Pppoe => PPP_ACTIVE_PROPS,
                    },
                ),
                SessionRows::new(service),
                SessionRows::push,
            )
        };
        let (hu, ha, ps, pa) = tokio::join!(
            users(Service::Hotspot),
            sessions(Service::Hotspot),
            users(Service::Pppoe),
            sessions(Service::Pppoe),
        );
        let (hu, ha, ps, pa) = (hu?, ha?, ps?, pa?);
        for folded in [&hu.traps, &ha.traps, &ps.traps, &pa.traps] {
            if let Some(t) = folded.first() {
                return Err(ClientError::Trap {
                    command: "list read".into(),
                    category: t.category,
                    message: t.message.clone(),
                });
            }
        }
        let warnings: Vec<_> = [
            &hu.value.warnings,
            &ha.value.warnings,
            &ps.value.warnings,
            &pa.value.warnings,
        ]
        .into_iter()
        .flatten()
        .map(|w| {
            format!(
                "{} {}: cannot parse {:?}; value skipped",
                w.table, w.field, w.value
            )
        })
        .collect();
        for w in warnings {
            self.warn_once(w);
        }
        Ok(Snapshot {
            hotspot_users: hu.value.rows,
            hotspot_active: ha.value.rows,
            ppp_secrets: ps.value.rows,
            ppp_active: pa.value.rows,
            router_boot: self.router_boot,
        })
    }

    /// The router's identity when known, for alert texts.
    fn router_label(&self) -> String {
        self.view.borrow().router.as_ref().map_or_else(
            || "(not yet identified)".to_owned(),
            |r| r.identity.to_string(),
        )
    }

    fn warn_once(&mut self, warning: String) {
        if self.warned.len() < 10_000 && self.warned.insert(warning.clone()) {
            log::warn!("{warning}");
        }
    }

    fn log_events(&self, events: &[Event]) {
        for e in events {
            log::info!("event {}", e.to_json(&self.site_id, self.stream));
        }
    }
}

/// RouterOS answers an action on an item that no longer exists with a trap
/// of category 0 ("missing item or command"); older versions send no
/// category, and only then is the message looked at.
fn is_missing_item(category: Option<u8>, message: &str) -> bool {
    match category {
        Some(c) => c == 0,
        None => message == "no such item",
    }
}
