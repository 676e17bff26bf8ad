//! `mikrotik-edge run`: the thin driver around the pure monitor.
//!
//! Each cycle: read the four lists concurrently over the one connection,
//! compute the step, commit state and events in one redb transaction, and
//! only then perform the router actions. Committing first means a crash
//! between the two repeats a router write on the next cycle (harmless,
//! they are idempotent) and never loses or repeats an event.

use std::collections::HashSet;
use std::fmt;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::client::{ClientError, ConnectionEvent, Router};
use crate::clock::Timestamp;
use crate::config::Config;
use crate::event::{Event, EventKind, RouterState, Service};
use crate::monitor::{
    self, HOTSPOT_ACTIVE_PROPS, HOTSPOT_USER_PROPS, MonitorConfig, MonitorState, PPP_ACTIVE_PROPS,
    PPP_SECRET_PROPS, SessionRow, Snapshot, UserRow,
};
use crate::proto::{Attrs, Command};
use crate::store::{Store, StoreError};

#[derive(Debug)]
pub enum AgentError {
    Store(StoreError),
    Runtime(String),
}

impl fmt::Display for AgentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AgentError::Store(e) => write!(f, "{e}"),
            AgentError::Runtime(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for AgentError {}

impl From<StoreError> for AgentError {
    fn from(e: StoreError) -> Self {
        AgentError::Store(e)
    }
}

/// Runs until SIGTERM or SIGINT.
pub async fn run(cfg: Config) -> Result<(), AgentError> {
    let store = Store::open(&cfg.state_path)?;
    let state = store.load_state()?;
    log::info!(
        "state {}: {} open sessions, {} queued events",
        cfg.state_path.display(),
        state.sessions.len(),
        store.queued_events()?
    );
    let (router, events) = Router::start(cfg.router.clone());
    let mut agent = Agent {
        monitor: MonitorConfig {
            hotspot_pattern: cfg.hotspot_profile_pattern.clone(),
            pppoe_pattern: cfg.pppoe_profile_pattern.clone(),
            usage_secs: cfg.usage_secs,
            expired_action: cfg.expired_action,
        },
        site_id: cfg.site_id.clone(),
        poll: cfg.poll_interval(),
        store,
        router,
        state,
        router_boot: None,
        warned: HashSet::new(),
        last_router_error: None,
    };
    let result = agent.run(events).await;
    agent.router.shutdown();
    result
}

struct Agent {
    monitor: MonitorConfig,
    site_id: String,
    poll: Duration,
    store: Store,
    router: Router,
    state: MonitorState,
    /// Router boot time by our clock, measured at connect.
    router_boot: Option<Timestamp>,
    /// Warnings already logged (each distinct one is logged once).
    warned: HashSet<String>,
    /// The last connection error recorded as an event, so an outage that
    /// lasts a day does not queue an identical event every retry.
    last_router_error: Option<String>,
}

impl Agent {
    async fn run(
        &mut self,
        mut events: mpsc::UnboundedReceiver<ConnectionEvent>,
    ) -> Result<(), AgentError> {
        let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(|e| AgentError::Runtime(format!("cannot install SIGTERM handler: {e}")))?;
        let mut ticker = tokio::time::interval(self.poll);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                ev = events.recv() => {
                    let Some(ev) = ev else { return Err(AgentError::Runtime("router task ended".into())) };
                    let connected = ev == ConnectionEvent::Connected;
                    self.record_connection_event(ev)?;
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
                _ = sigterm.recv() => {
                    log::info!("SIGTERM: stopping");
                    return Ok(());
                }
                _ = tokio::signal::ctrl_c() => {
                    log::info!("interrupted: stopping");
                    return Ok(());
                }
            }
        }
    }

    fn record_connection_event(&mut self, ev: ConnectionEvent) -> Result<(), AgentError> {
        let (state, reason) = match ev {
            ConnectionEvent::Connected => {
                self.last_router_error = None;
                (RouterState::Connected, String::new())
            }
            ConnectionEvent::Disconnected { reason } => (RouterState::Disconnected, reason),
            ConnectionEvent::Error { reason, .. } => {
                if self.last_router_error.as_deref() == Some(reason.as_str()) {
                    return Ok(());
                }
                self.last_router_error = Some(reason.clone());
                (RouterState::Error, reason)
            }
        };
        let committed = self.store.append_events(vec![(
            Timestamp::now(),
            EventKind::Router { state, reason },
        )])?;
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
            .and_then(|r| r.rows.first().map(|a| a.text("name")))
            .unwrap_or_default();
        match resource {
            Ok(r) => {
                let Some(row) = r.rows.first() else { return };
                let uptime = row
                    .get("uptime")
                    .and_then(|u| crate::duration::parse_duration(u).ok());
                self.router_boot =
                    uptime.map(|u| Timestamp::now().plus_secs(-(u.as_secs() as i64)));
                log::info!(
                    "router {identity:?}: {} RouterOS {}, up {}",
                    row.text("board-name"),
                    row.text("version"),
                    row.text("uptime")
                );
            }
            Err(e) => log::warn!("cannot read /system/resource: {e}"),
        }
    }

    /// One poll cycle. Router failures skip the cycle (they are never read
    /// as everyone going offline); a state file failure stops the agent.
    async fn cycle(&mut self) -> Result<(), AgentError> {
        let started = std::time::Instant::now();
        let snapshot = match self.read_snapshot().await {
            Ok(s) => s,
            Err(e) => {
                log::warn!("poll failed, skipping this cycle: {e}");
                return Ok(());
            }
        };
        let now = Timestamp::now();
        let out = monitor::step(&self.state, &snapshot, now, &self.monitor);
        for w in out.warnings {
            self.warn_once(w);
        }
        let committed = self.store.commit(
            &out.state,
            out.events.into_iter().map(|e| (now, e)).collect(),
        )?;
        self.state = out.state;
        self.log_events(&committed);
        // Actions of one user are ordered (disable, kick, remove); after one
        // fails, the rest of that user's wait for the next cycle's re-plan.
        let mut failed: HashSet<&str> = HashSet::new();
        for action in &out.actions {
            if failed.contains(action.user()) {
                continue;
            }
            match self.router.execute(action.command()).await {
                Ok(_) => log::info!(
                    "router: {} for {:?} done",
                    action_name(action),
                    action.user()
                ),
                // Already gone (kicked session ended, user removed by hand):
                // the next cycle sees the result either way.
                Err(ClientError::Trap { message, .. }) if message.contains("no such item") => {
                    log::debug!(
                        "router: {} for {:?}: already gone",
                        action_name(action),
                        action.user()
                    )
                }
                Err(e) => {
                    log::warn!(
                        "router: {} for {:?} failed, retrying next cycle: {e}",
                        action_name(action),
                        action.user()
                    );
                    failed.insert(action.user());
                }
            }
        }
        log::debug!(
            "cycle: {} hotspot users, {} hotspot active, {} secrets, {} ppp active, {} events, {} actions, {} ms",
            snapshot.hotspot_users.len(),
            snapshot.hotspot_active.len(),
            snapshot.ppp_secrets.len(),
            snapshot.ppp_active.len(),
            committed.len(),
            out.actions.len(),
            started.elapsed().as_millis()
        );
        Ok(())
    }

    /// The four list reads, concurrently over the one session.
    async fn read_snapshot(&mut self) -> Result<Snapshot, ClientError> {
        let print = |path: &str, props: &[&str]| Command::new(path).proplist(props);
        let (hu, ha, ps, pa) = tokio::join!(
            self.router
                .execute(print("/ip/hotspot/user/print", HOTSPOT_USER_PROPS)),
            self.router
                .execute(print("/ip/hotspot/active/print", HOTSPOT_ACTIVE_PROPS)),
            self.router
                .execute(print("/ppp/secret/print", PPP_SECRET_PROPS)),
            self.router
                .execute(print("/ppp/active/print", PPP_ACTIVE_PROPS)),
        );
        let (hu, ha, ps, pa) = (hu?, ha?, ps?, pa?);
        let mut warnings = Vec::new();
        let mut sessions = |service, rows: &[Attrs]| -> Vec<SessionRow> {
            rows.iter()
                .map(|a| SessionRow::from_attrs(service, a, &mut warnings))
                .collect()
        };
        let snapshot = Snapshot {
            hotspot_active: sessions(Service::Hotspot, &ha.rows),
            ppp_active: sessions(Service::Pppoe, &pa.rows),
            hotspot_users: hu.rows.iter().map(UserRow::from_attrs).collect(),
            ppp_secrets: ps.rows.iter().map(UserRow::from_attrs).collect(),
            router_boot: self.router_boot,
        };
        for w in warnings {
            self.warn_once(format!(
                "{} {}: cannot parse {:?}; value skipped",
                w.table, w.field, w.value
            ));
        }
        Ok(snapshot)
    }

    fn warn_once(&mut self, warning: String) {
        if self.warned.len() < 10_000 && self.warned.insert(warning.clone()) {
            log::warn!("{warning}");
        }
    }

    fn log_events(&self, events: &[Event]) {
        for e in events {
            log::info!("event {}", e.to_json(&self.site_id));
        }
    }
}

fn action_name(a: &monitor::Action) -> &'static str {
    match a {
        monitor::Action::SetComment { .. } => "write activation comment",
        monitor::Action::DisableUser { .. } => "disable expired voucher",
        monitor::Action::RemoveUser { .. } => "remove expired voucher",
        monitor::Action::Kick { .. } => "kick session",
    }
}
