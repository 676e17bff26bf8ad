//! `mikrotik-edge run`: the driver around the pure monitor. It does the
//! I/O; what to do is decided by pure code: the monitor's step, and the
//! driver's own bookkeeping ([`state`]: connection alerts, warnings said
//! once, the poll schedule).
//!
//! Each cycle: read what the schedule asks for ([`reads`], concurrently
//! over the one connection, folding rows into typed rows as they stream
//! in): the two active lists counted (`count-only`) against the agent's
//! copy, or read in full with the PPPoE interfaces when due, when a count
//! disagrees or a listen was not open; the two user lists only when a full
//! read is due (between those, their listens keep the agent's copy
//! current, see [`user_table`]); compute the step; commit the changed rows
//! and the events on the store thread; and only then perform the router
//! actions ([`commands`]). Committing first means a crash between the two
//! repeats a router write on the next cycle (harmless, they are
//! idempotent) and never loses or repeats an event.
//!
//! Between polls, `listen` on the two active lists reports logins and
//! logouts as they happen ([`listen`]): each change goes through the pure
//! [`monitor::apply_listen`] and is committed and acted on like a cycle.
//! The poll stays the safety net: its count finds what a listen missed (a
//! listen silently stuck), and a listen that ended is reopened at the next
//! poll, which reads its list in full; neither repeats what a listen
//! already reported.
//!
//! SIGTERM and SIGINT are listened for from start to end, also in the middle
//! of a cycle: a commit already handed to the store thread is finished,
//! the session is closed with `/quit`, and the agent exits 0.

pub mod clock;
pub mod commands;
pub mod listen;
pub mod name_cache;
mod profile_rows;
mod reads;
pub mod rows;
pub mod state;
pub mod sync;
pub mod user_table;

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use crate::client::{ClientError, ConnectionEvent, Router};
use crate::clock::Timestamp;
use crate::config::Config;
use crate::event::{EventKind, RouterState, Service};
use crate::monitor::{self, Action, MonitorConfig, MonitorState, SessionRow, Snapshot};
use crate::name::Name;
use crate::proto::Command;
pub use crate::status::{Control, View};
use crate::store::{StateDelta, StoreError, StoreHandle};
use listen::{List, Listens};
use name_cache::NameCache;
use state::{ActiveRead, AgentState, Schedule};
use user_table::UserTable;

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
    let (store, store_thread, state) = StoreHandle::open(&cfg.state_path, &cfg.site_id).await?;
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
    // The central server's `Date` header, for clock trust: every successful
    // upload and desired-state fetch sends one (see `clock::CentralDate`).
    let (central_date_tx, central_date_rx) = watch::channel(None::<clock::CentralDate>);
    let uploader = crate::uplink::spawn(
        &cfg,
        store.clone(),
        alerts.clone(),
        view_tx.clone(),
        central_date_tx.clone(),
    );
    let (router, events) = Router::start(cfg.router.clone());
    // Capacity 1: a forced poll already waiting makes another one moot.
    // `control_tx` lives until the end of `run`, so the loop's receiver
    // never sees a closed channel (which would resolve at once, forever).
    let (control_tx, control_rx) = mpsc::channel(1);
    // The endpoint's requests go through the sync task's router, which
    // hands the loop plain polls (see `sync::spawn`).
    let kicks = crate::kicks::Kicks::default();
    let sync::Spawned {
        control: http_control,
        intents,
        task: sync_task,
    } = sync::spawn(
        &cfg,
        store.clone(),
        router.clone(),
        view_tx.subscribe(),
        control_tx.clone(),
        kicks.clone(),
        central_date_tx,
    );
    let http = cfg.http.listen.map(|listen| {
        crate::http::start(
            listen,
            crate::http::Shared {
                view: view_tx.subscribe(),
                control: http_control,
                store: store.clone(),
                router: router.clone(),
                router_config: cfg.router.clone(),
                token: cfg.http.token.clone(),
                site_id: cfg.site_id.clone(),
                intents,
                kicks: kicks.clone(),
                allowed_hosts: cfg.http.allowed_hosts.clone(),
            },
        )
    });
    let usage = cfg.usage_interval();
    // The counters are read at least every usage interval (a usage event
    // needs them); 0 reads them every poll.
    let active_read = match cfg.active_read_secs {
        0 => Duration::ZERO,
        secs => Duration::from_secs(secs).min(usage),
    };
    let mut agent = Agent {
        monitor: MonitorConfig {
            hotspot_pattern: cfg.hotspot_profile_pattern.clone(),
            pppoe_pattern: cfg.pppoe_profile_pattern.clone(),
            usage_secs: cfg.usage_secs,
            expired_action: cfg.expired_action,
            mac_lock: cfg.mac_lock,
            mac_lock_pattern: cfg.mac_lock_profile_pattern.clone(),
        },
        poll: cfg.poll_interval(),
        user_read: Duration::from_secs(cfg.user_read_secs),
        users_listening: [false; 2],
        store,
        router,
        state,
        router_boot: None,
        book: AgentState::new(
            cfg.uplink.alert_after,
            Schedule {
                poll: cfg.poll_interval(),
                active_read,
            },
        ),
        view: view_tx,
        session_ready: false,
        alerts,
        clock: clock::ClockSources::new(central_date_rx),
        listen_clock: None,
        reuse: Reuse::default(),
        kicks,
    };
    let result = agent.run(events, control_rx, &mut signals).await;
    // The uploader only awaits: stopping it is immediate; an HTTP request
    // in flight is abandoned on its own thread and sent again next start.
    uploader.abort();
    let _ = uploader.await;
    if let Some(t) = sync_task {
        t.abort();
        let _ = t.await;
    }
    // The endpoint holds store and router handles: stop it first.
    if let Some(http) = http {
        http.stop().await;
    }
    drop(control_tx);
    // Close politely, then let the store thread finish what it was handed.
    agent.router.close(Duration::from_secs(2)).await;
    drop(agent);
    store_thread.join().await;
    result
}

struct Agent {
    monitor: MonitorConfig,
    poll: Duration,
    /// How often the user lists are read in full while listened on.
    user_read: Duration,
    /// Whether listen on the hotspot users / PPP secrets is open.
    users_listening: [bool; 2],
    store: StoreHandle,
    router: Router,
    state: Arc<MonitorState>,
    /// Router boot time by our clock, measured at connect.
    router_boot: Option<Timestamp>,
    /// Connection, alert, warn-once and poll-schedule bookkeeping: pure
    /// decisions, performed here.
    book: AgentState,
    view: watch::Sender<View>,
    /// The current session's connect handling is done.
    session_ready: bool,
    alerts: crate::uplink::Alerts,
    /// Inputs of the clock-trust assessment made each cycle.
    clock: clock::ClockSources,
    /// The last poll's clock judgement, its time, and when it was made.
    listen_clock: Option<(monitor::ClockNow, Timestamp, std::time::Instant)>,
    /// The user lists as last read (and listened to since), and each
    /// session list's names and emptied row vector from the last poll,
    /// reused by the next: memory allocated afresh each poll is
    /// page-faulted in again (musl returns freed memory at once).
    reuse: Reuse,
    /// Sessions the sync and the user API ended (logout reason `kicked`).
    kicks: crate::kicks::Kicks,
}

/// What one poll leaves to the next.
#[derive(Default)]
struct Reuse {
    hotspot_users: UserTable,
    hotspot_active: (NameCache, Vec<SessionRow>),
    ppp_secrets: UserTable,
    ppp_active: (NameCache, Vec<SessionRow>),
}

impl Reuse {
    /// Takes back the user lists of a snapshot the step is done with. The
    /// step already let go of the session rows (read afresh each poll,
    /// their vectors would hold most of a megabyte between polls to spare
    /// a few hundred page faults).
    fn keep_rows(&mut self, snapshot: Snapshot) {
        self.hotspot_users.put_back(snapshot.hotspot_users);
        self.ppp_secrets.put_back(snapshot.ppp_secrets);
    }

    fn users(&mut self, service: Service) -> &mut UserTable {
        match service {
            Service::Hotspot => &mut self.hotspot_users,
            Service::Pppoe => &mut self.ppp_secrets,
        }
    }
}

fn service_index(service: Service) -> usize {
    match service {
        Service::Hotspot => 0,
        Service::Pppoe => 1,
    }
}

/// The active lists as a poll has them: read in full, or the agent's copy.
struct ActiveRows {
    hotspot: Vec<SessionRow>,
    ppp: Vec<SessionRow>,
    read: ActiveRead,
}

impl Agent {
    async fn run(
        &mut self,
        mut events: mpsc::UnboundedReceiver<ConnectionEvent>,
        mut control: mpsc::Receiver<Control>,
        signals: &mut Signals,
    ) -> Result<(), AgentError> {
        let mut ticker = tokio::time::interval(self.poll);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Local, like the ticker, so waiting on it does not borrow `self`.
        let mut listens = listen::Listens::default();
        loop {
            // Whatever the agent waits for (a slow router, the store), a
            // signal wins; the work it interrupts is either finished by its
            // own thread (a commit) or repeated safely at the next start.
            let work = async {
                // Listen rows first: rows that arrived while a poll was in
                // flight are handled before the next poll is read.
                tokio::select! {
                    biased;
                    heard = listens.next() => self.on_heard(heard).await?,
                    ev = events.recv() => {
                        let Some(ev) = ev else { return Err(AgentError::RouterTaskEnded) };
                        let connected = ev == ConnectionEvent::Connected;
                        // A new connection or none: the old listens are gone
                        // with their session, rows still queued included;
                        // the lists are read afresh.
                        listens.close();
                        self.users_listening = [false; 2];
                        self.book.poll.new_session();
                        for service in [Service::Hotspot, Service::Pppoe] {
                            self.reuse.users(service).forget_read();
                        }
                        self.session_ready = false;
                        self.record_connection_event(ev).await?;
                        if connected {
                            self.on_connected().await;
                            self.session_ready = true;
                            // Listens start just before the connection's
                            // first poll, so nothing falls between the two:
                            // rows arriving meanwhile wait until the poll is
                            // committed (with the user lists it read), and
                            // what the poll already reported they repeat
                            // as no-ops.
                            let users = !self.user_read.is_zero();
                            for ended in listens.open(&self.router, users) {
                                self.on_heard(ended).await?;
                            }
                            self.note_listening(&listens);
                            if listens.is_open(List::Active(Service::Hotspot))
                                || listens.is_open(List::Active(Service::Pppoe))
                            {
                                log::debug!("listening on the active lists");
                            }
                            self.cycle(&mut listens).await?;
                            ticker.reset();
                        }
                    }
                    _ = ticker.tick() => {
                        // Only once the connect handling (identity, boot
                        // time) is done: the first poll of a session must
                        // know the router's boot time to tell a reboot.
                        if self.session_ready && self.router.is_connected() {
                            self.cycle(&mut listens).await?;
                        }
                    }
                    Some(Control::PollNow) = control.recv() => {
                        if self.router.is_connected() {
                            self.measure_rtt().await;
                            self.cycle(&mut listens).await?;
                            ticker.reset();
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

    /// Takes note of which listens are open (after opening some).
    fn note_listening(&mut self, listens: &Listens) {
        for service in [Service::Hotspot, Service::Pppoe] {
            self.users_listening[service_index(service)] = listens.is_open(List::Users(service));
            self.book
                .poll
                .set_active_listening(service, listens.is_open(List::Active(service)));
        }
    }

    /// Opens again the listens that ended since the last poll (not
    /// refused: overflowed, interrupted, ended by the router, or found
    /// silent by the count check), before the poll's reads, which then
    /// read their lists in full.
    fn reopen_listens(&mut self, listens: &mut Listens) {
        let lists = self.book.poll.take_reopen();
        if lists.is_empty() {
            return;
        }
        for list in lists {
            if let Some(ended) = listens.reopen(&self.router, list) {
                let _ = self.on_heard_quietly(ended);
            } else {
                log::info!("listen on {} reopened", list.path());
                if let List::Users(service) = list {
                    // Changes made while it was closed were not heard.
                    self.reuse.users(service).forget_read();
                }
            }
        }
        self.note_listening(listens);
    }

    async fn record_connection_event(&mut self, ev: ConnectionEvent) -> Result<(), AgentError> {
        let now = Timestamp::now();
        let (state, reason) = match ev {
            ConnectionEvent::Connected => {
                if let Some(since) = self.book.connection.connected() {
                    let since = since.map_or_else(String::new, |t| {
                        format!(" (down since {})", self.alerts.clock_time(t))
                    });
                    let message = format!("Router {} reachable again{since}", self.alerts.router());
                    self.alerts
                        .raise("mikrotik_connection_restored", message)
                        .await?;
                }
                self.view.send_modify(|v| {
                    v.router_connected = true;
                    v.last_router_error = None;
                });
                (RouterState::Connected, String::new())
            }
            ConnectionEvent::Disconnected { reason } => {
                self.book.connection.disconnected(now);
                self.view.send_modify(|v| {
                    v.router_connected = false;
                    v.reconnects += 1;
                    v.last_router_error = Some(reason.clone());
                });
                (RouterState::Disconnected, reason)
            }
            ConnectionEvent::Error { reason, .. } => {
                let failed = self.book.connection.failed(&reason, now);
                if let Some((since, failures)) = failed.alert {
                    // Short and human: it may end up on a phone. The
                    // reason is in the `router` event beside it.
                    let message = format!(
                        "Router {} unreachable since {} ({} failed reconnect{})",
                        self.alerts.router(),
                        self.alerts.clock_time(since),
                        failures,
                        if failures == 1 { "" } else { "s" }
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
                if !failed.record {
                    return Ok(());
                }
                (RouterState::Error, reason)
            }
        };
        self.store
            .append(vec![(now, EventKind::Router { state, reason })])
            .await?;
        Ok(())
    }

    /// Times one cheap command over the shared session (the same one the
    /// keepalive uses) for the router round-trip metric.
    async fn measure_rtt(&mut self) {
        let started = std::time::Instant::now();
        if self
            .router
            .execute(Command::new("/system/identity/print"))
            .await
            .is_ok()
        {
            self.record_rtt(started.elapsed());
        }
    }

    fn record_rtt(&self, rtt: Duration) {
        let us = u64::try_from(rtt.as_micros()).unwrap_or(u64::MAX);
        self.view.send_modify(|v| v.router_rtt_us = Some(us));
    }

    /// Reads who and what the router is, and when it booted.
    async fn on_connected(&mut self) {
        self.clock.read_router_next();
        let timed_identity = async {
            let started = std::time::Instant::now();
            let r = self
                .router
                .execute(Command::new("/system/identity/print"))
                .await;
            (r, started.elapsed())
        };
        let ((identity, rtt), resource) = tokio::join!(
            timed_identity,
            self.router
                .execute(Command::new("/system/resource/print").proplist(&[
                    "uptime",
                    "version",
                    "board-name"
                ])),
        );
        if identity.is_ok() {
            self.record_rtt(rtt);
        }
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
                let info = crate::status::RouterInfo {
                    identity,
                    board: field("board-name"),
                    version: field("version"),
                    boot: self.router_boot,
                };
                self.alerts.set_router(&info.identity.lossy());
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

    /// Handles what a listen heard that needs no commit (a user list's
    /// row, a skipped row, an ended listen, said once) and hands back a
    /// session list's change.
    fn on_heard_quietly(&mut self, heard: listen::Heard) -> Option<monitor::ListenChange> {
        match heard {
            listen::Heard::Change(c) => {
                match &c {
                    monitor::ListenChange::Upsert(row) => {
                        self.book.poll.heard_upsert(row.service, row.id);
                        // A login of a user the copy does not know (its row
                        // on the user list's listen not heard yet): the
                        // next poll reads the lists and finds it.
                        let users = self.reuse.users(row.service);
                        users.index_names();
                        if users.by_name(&row.user).next().is_none() {
                            self.book.poll.owe_full_read();
                        }
                    }
                    monitor::ListenChange::Removed { service, id, .. } => {
                        self.book.poll.heard_removed(*service, *id);
                    }
                }
                Some(c)
            }
            listen::Heard::User(c) => {
                // The kept list is also where the listen path finds users:
                // a voucher created after the last poll is known at once.
                let service = match &c {
                    listen::UserChange::Upsert(service, row) => {
                        // Tests wait on this line, not on a sleep.
                        log::debug!("listen: {} user {} kept", service.as_str(), row.name);
                        *service
                    }
                    listen::UserChange::Removed(service, _) => *service,
                };
                self.reuse.users(service).apply(c);
                None
            }
            listen::Heard::Skipped(warnings) => {
                for w in warnings {
                    self.warn_once(format!(
                        "{} {} (listen): cannot parse {:?}; row skipped",
                        w.table, w.field, w.value
                    ));
                }
                None
            }
            listen::Heard::Ended { list, why, retry } => {
                // Said once per menu and reason, not at every reconnect.
                if retry {
                    self.warn_once(format!(
                        "listen on {} ended ({why}): reopened at the next poll, which reads the list in full",
                        list.path()
                    ));
                } else {
                    self.warn_once(format!(
                        "listen on {} ended ({why}): polling alone reports its changes until the next connection",
                        list.path()
                    ));
                }
                self.book.poll.listen_ended(list, retry);
                if let List::Users(service) = list {
                    // Nothing keeps the copy current now: every poll reads it.
                    self.users_listening[service_index(service)] = false;
                    self.reuse.users(service).forget_read();
                }
                None
            }
        }
    }

    /// One change from a listen: applied, committed and acted on like a
    /// cycle; or the end of a listen, said once.
    async fn on_heard(&mut self, heard: listen::Heard) -> Result<(), AgentError> {
        let Some(mut change) = self.on_heard_quietly(heard) else {
            return Ok(());
        };
        if let monitor::ListenChange::Removed {
            service,
            id,
            kicked,
        } = &mut change
        {
            *kicked = self.kicks.take((*service, *id));
        }
        // The last poll's clock judgement, moved on by the time passed
        // since: a listen login gets the same time the poll would give it.
        let (now, clock) = match self.listen_clock {
            Some((clock, at, since)) => {
                let secs = since.elapsed().as_secs();
                (
                    at.plus_secs(i64::try_from(secs).unwrap_or(i64::MAX)),
                    clock.later(secs),
                )
            }
            None => (Timestamp::now(), monitor::ClockNow::UNASSESSED),
        };
        self.reuse.hotspot_users.index_names();
        self.reuse.ppp_secrets.index_names();
        let users = user_table::KeptUsers {
            hotspot: &self.reuse.hotspot_users,
            ppp: &self.reuse.ppp_secrets,
            cfg: &self.monitor,
        };
        let out = monitor::apply_listen(&self.state, &users, &change, now, &clock, &self.monitor);
        for w in out.warnings {
            self.warn_once(w);
        }
        if out.events.is_empty() && out.actions.is_empty() && out.state == *self.state {
            return Ok(());
        }
        let new_state = Arc::new(out.state);
        let delta = StateDelta::between(&self.state, &new_state);
        let events: Vec<_> = out.events.into_iter().map(|e| (now, e)).collect();
        match self.store.commit(delta, events).await {
            Ok(_) => {}
            Err(e) if e.is_disk_full() => {
                log::error!("{e}; listen change not recorded, the next poll catches up");
                // The copy's ids took the row: only a full read can tell
                // what the state lacks now.
                self.book.poll.owe_full_read();
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        }
        self.state = new_state;
        let state = self.state.clone();
        self.view.send_modify(|v| v.state = state);
        self.act(&out.actions, None).await;
        Ok(())
    }

    /// One poll cycle. Router failures skip the cycle (they are never read
    /// as everyone going offline); a full disk skips it too (nothing is
    /// acted on before it is committed); other state file failures stop
    /// the agent. Returns whether the poll was read and committed.
    async fn cycle(&mut self, listens: &mut Listens) -> Result<bool, AgentError> {
        let started = std::time::Instant::now();
        let mut snapshot = match self.read_snapshot(listens).await {
            Ok(s) => s,
            Err(e) => {
                log::warn!("poll failed, skipping this cycle: {e}");
                self.view.send_modify(|v| {
                    v.poll_failures += 1;
                    v.last_poll_error = Some(e.to_string());
                    v.last_poll_attempt = Some(Timestamp::now());
                });
                return Ok(false);
            }
        };
        let read_ms = started.elapsed().as_millis();
        self.clock.maybe_read_router(&self.router).await;
        if let Some(offset) = self.clock.utc_offset() {
            self.alerts.set_utc_offset(offset);
        }
        let step_started = std::time::Instant::now();
        let verdict = self.clock.judge(&self.state.clock, &self.alerts).await?;
        snapshot.clock = Some(verdict);
        snapshot.kicked = self.kicks.all();
        // Events and voucher times use the best time there is: the trusted
        // source's, or the later of the wall clock and the elapsed floor.
        let now = verdict.best_now;
        // The state is updated in place (see `monitor::step_in_place`): the
        // view lets go of its copy first, so the session map is the agent's
        // alone and not copied. Nothing reads the view meanwhile (the step
        // does not await); it gets the new state right after.
        let before = self.state.without_sessions();
        self.view.send_if_modified(|v| {
            v.state = Arc::default();
            // Not a change anyone is told of: the new state follows.
            false
        });
        let mut state = std::mem::take(&mut self.state);
        let out =
            monitor::step_in_place(Arc::make_mut(&mut state), &mut snapshot, now, &self.monitor);
        self.state = state;
        self.kicks.retain(|k| self.state.sessions.get(k).is_some());
        let new_state = self.state.clone();
        self.view.send_modify(|v| v.state = new_state);
        let users = crate::status::UserCounts {
            hotspot_users: snapshot.hotspot_users.len(),
            hotspot_managed: out.managed.0,
            ppp_secrets: snapshot.ppp_secrets.len(),
            pppoe_managed: out.managed.1,
            hotspot_active: self.book.poll.active_count(Service::Hotspot),
            ppp_active: self.book.poll.active_count(Service::Pppoe),
        };
        let kept = snapshot.sessions_kept;
        // The user rows are kept for the next poll (names stay shared with
        // the state and the name caches).
        self.reuse.keep_rows(snapshot);
        for w in out.warnings {
            self.warn_once(w);
        }
        let delta =
            StateDelta::with_sessions(&before, &self.state, out.sessions_put, out.sessions_del);
        let last_poll = before.last_poll;
        drop(before);
        let step_us = step_started.elapsed().as_micros();
        let committed = match self.store.commit_at(delta, now, out.events).await {
            Ok(c) => c,
            Err(e) if e.is_disk_full() => {
                log::error!("{e}; skipping this cycle, nothing acted on");
                // Back to the state as committed: the next poll reports
                // this one's changes again (it reads the lists in full).
                let mut committed = self.store.load_state().await?;
                committed.last_poll = last_poll;
                self.state = Arc::new(committed);
                let state = self.state.clone();
                self.view.send_modify(|v| v.state = state);
                self.book.poll.owe_full_read();
                return Ok(false);
            }
            Err(e) => return Err(e.into()),
        };
        self.listen_clock = Some((out.clock, now, std::time::Instant::now()));
        let elapsed = started.elapsed();
        let elapsed_ms = elapsed.as_millis() as u64;
        self.view.send_modify(|v| {
            v.users = users;
            v.last_poll = Some(now);
            v.last_poll_attempt = Some(now);
            v.last_poll_ms = Some(elapsed_ms);
            v.poll_histogram.observe(elapsed.as_secs_f64());
            v.polls += 1;
            v.last_poll_error = None;
            v.clock = Some(verdict);
        });
        self.act(&out.actions, Some(listens)).await;
        log::debug!(
            "cycle: {} hotspot users, {} hotspot active, {} secrets, {} ppp active, {} events, {} actions, {}, read {read_ms} ms, step {step_us} us, {} ms",
            users.hotspot_users,
            users.hotspot_active,
            users.ppp_secrets,
            users.ppp_active,
            committed.count,
            out.actions.len(),
            if kept {
                "active lists counted"
            } else {
                "active lists read"
            },
            started.elapsed().as_millis()
        );
        Ok(true)
    }

    /// Performs committed actions. Actions of one user are ordered
    /// (disable, kick, remove); after one fails, the rest of that user's
    /// wait for the next cycle's re-plan.
    ///
    /// User-list rows that arrive meanwhile are taken as they come (see
    /// [`Listens::try_next_user`]) when `listens` is given: each comment
    /// written comes back as one, and a first poll can write thousands.
    async fn act(&mut self, actions: &[Action], mut listens: Option<&mut Listens>) {
        let mut failed: HashSet<Name> = HashSet::new();
        let mut taken = 0usize;
        for action in actions {
            if let Some(listens) = listens.as_deref_mut() {
                while let Some(heard) = listens.try_next_user() {
                    // A user list's rows never carry a session change.
                    let _ = self.on_heard_quietly(heard);
                    taken += 1;
                }
            }
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
        if taken > 0 {
            log::debug!("{taken} user list rows taken while writing to the router");
        }
    }

    /// This poll's snapshot: the active lists (counted, or read in full
    /// when a count disagrees or a full read is due) and the user lists
    /// (read in full when due), concurrently over the one session.
    async fn read_snapshot(&mut self, listens: &mut Listens) -> Result<Snapshot, ClientError> {
        self.reopen_listens(listens);
        let now = std::time::Instant::now();
        let mut read = self.book.poll.active_read(now);
        if read == ActiveRead::Check {
            let counts = reads::active_counts(&self.router).await?;
            for (service, count) in [Service::Hotspot, Service::Pppoe].into_iter().zip(counts) {
                let kept = self.book.poll.active_count(service);
                if kept as u64 == count {
                    continue;
                }
                // The listen missed a change: it is broken, if silently.
                // Opened again before the full read, so that nothing
                // falls between the two.
                log::info!(
                    "{} holds {count} rows, the listen's copy {kept}: reading it in full, reopening its listen",
                    crate::commands::active(service)
                );
                self.book.poll.listen_ended(List::Active(service), true);
                read = ActiveRead::Full;
            }
            self.reopen_listens(listens);
        }
        // Taken for the reads and put back after: a failed read starts its
        // list's cache afresh, which costs only allocations.
        let mut reuse = std::mem::take(&mut self.reuse);
        let mut due = |service| {
            reuse.users(service).needs_read(
                self.users_listening[service_index(service)],
                self.user_read,
                now,
            )
        };
        let due = [due(Service::Hotspot), due(Service::Pppoe)];
        let router = &self.router;
        let active_reuse = match read {
            ActiveRead::Full => Some((
                std::mem::take(&mut reuse.hotspot_active),
                std::mem::take(&mut reuse.ppp_active),
            )),
            ActiveRead::Check => None,
        };
        let active = async move {
            match active_reuse {
                Some((hotspot, ppp)) => read_active_full(router, hotspot, ppp).await.map(Some),
                None => Ok(None),
            }
        };
        let (hu, ps, active) = tokio::join!(
            reads::users(
                router,
                Service::Hotspot,
                std::mem::take(&mut reuse.hotspot_users),
                due[0],
                now
            ),
            reads::users(
                router,
                Service::Pppoe,
                std::mem::take(&mut reuse.ppp_secrets),
                due[1],
                now
            ),
            active,
        );
        let (mut hu, mut ps, mut active) = (hu?, ps?, active?);
        // The row vectors come back after the step (`Reuse::keep_rows`).
        reuse.hotspot_users = std::mem::take(&mut hu.table);
        reuse.ppp_secrets = std::mem::take(&mut ps.table);
        if let Some(full) = active.as_mut() {
            reuse.hotspot_active.0 = full.hotspot.value.names.rotated();
            reuse.ppp_active.0 = full.ppp.value.names.rotated();
        }
        self.reuse = reuse;
        for (folded, list) in [(&hu.traps, "user list read"), (&ps.traps, "user list read")] {
            if let Some(t) = folded.first() {
                return Err(ClientError::Trap {
                    command: list.into(),
                    category: t.category,
                    message: t.message.clone(),
                });
            }
        }
        let active = match active {
            Some(read) => self.took_active(read, now)?,
            None => self.kept_active(),
        };
        for w in hu.warnings.iter().chain(&ps.warnings) {
            self.warn_once(format!(
                "{} {}: cannot parse {:?}; value skipped",
                w.table, w.field, w.value
            ));
        }
        let usage_early = self
            .book
            .poll
            .usage_early(active.read, Duration::from_secs(self.monitor.usage_secs));
        Ok(Snapshot {
            hotspot_users: std::mem::take(&mut self.reuse.hotspot_users.rows),
            hotspot_active: active.hotspot,
            ppp_secrets: std::mem::take(&mut self.reuse.ppp_secrets.rows),
            ppp_active: active.ppp,
            router_boot: self.router_boot,
            // Assessed by the caller, after the reads.
            clock: None,
            hotspot_users_kept: !due[service_index(Service::Hotspot)],
            sessions_kept: active.read == ActiveRead::Check,
            usage_early_secs: usage_early.as_secs(),
            // Filled by the caller with the clock.
            kicked: Default::default(),
        })
    }

    /// The active lists read in full: refused reads fail the poll, PPPoE
    /// counters filled in, the ids noted as the copy's.
    fn took_active(
        &mut self,
        read: FullActive,
        now: std::time::Instant,
    ) -> Result<ActiveRows, ClientError> {
        let FullActive {
            hotspot: ha,
            ppp: mut pa,
            counters: pi,
        } = read;
        // The counters are extra: a router that refuses the interface read
        // (a restricted API user, an odd build) still gets its sessions
        // polled, with PPPoE bytes unknown.
        if let Some(t) = pi.traps.first() {
            self.warn_once(format!(
                "/interface/print refused ({}): PPPoE byte counters unavailable",
                t.message
            ));
        }
        for folded in [&ha.traps, &pa.traps] {
            if let Some(t) = folded.first() {
                return Err(ClientError::Trap {
                    command: "list read".into(),
                    category: t.category,
                    message: t.message.clone(),
                });
            }
        }
        for w in ha
            .value
            .warnings
            .iter()
            .chain(&pa.value.warnings)
            .chain(&pi.value.warnings)
        {
            self.warn_once(format!(
                "{} {}: cannot parse {:?}; value skipped",
                w.table, w.field, w.value
            ));
        }
        if pi.traps.is_empty() {
            pi.value.fill(&mut pa.value.rows);
        }
        let ids = |rows: &[SessionRow]| rows.iter().map(|r| r.id).collect::<Vec<_>>();
        self.book
            .poll
            .read_full(now, [ids(&ha.value.rows), ids(&pa.value.rows)]);
        Ok(ActiveRows {
            hotspot: ha.value.rows,
            ppp: pa.value.rows,
            read: ActiveRead::Full,
        })
    }

    /// The active lists as the agent's copy has them (their counts agree
    /// with the router's): the open sessions of the state, with the
    /// counters last read. Sessions of users the agent does not manage
    /// are counted, not kept: the step would drop them anyway.
    fn kept_active(&self) -> ActiveRows {
        let mut hotspot = Vec::new();
        let mut ppp = Vec::new();
        for t in self.state.sessions.values() {
            let row = SessionRow {
                service: t.service,
                id: t.active_id,
                user: t.user.clone(),
                address: t.address,
                mac: t.mac,
                caller_id: t.caller_id.clone(),
                login_by: Name::empty(),
                session_id: t.session_id.clone(),
                uptime_secs: Some(t.counters.uptime_secs),
                bytes_in: t.counters.bytes_in,
                bytes_out: t.counters.bytes_out,
            };
            match t.service {
                Service::Hotspot => hotspot.push(row),
                Service::Pppoe => ppp.push(row),
            }
        }
        ActiveRows {
            hotspot,
            ppp,
            read: ActiveRead::Check,
        }
    }

    fn warn_once(&mut self, warning: String) {
        if self.book.warn_once(&warning) {
            log::warn!("{warning}");
        }
    }
}

/// The active lists and the PPPoE counters as read in full.
struct FullActive {
    hotspot: crate::client::Folded<rows::SessionRows>,
    ppp: crate::client::Folded<rows::SessionRows>,
    counters: crate::client::Folded<rows::PppoeCounters>,
}

/// Reads both active lists and the PPPoE counters in full, reusing the
/// last read's names and row vectors (handed back emptied by the step).
async fn read_active_full(
    router: &Router,
    hotspot: (NameCache, Vec<SessionRow>),
    ppp: (NameCache, Vec<SessionRow>),
) -> Result<FullActive, ClientError> {
    let (ha, pa, pi) = tokio::join!(
        reads::sessions(router, Service::Hotspot, hotspot),
        reads::sessions(router, Service::Pppoe, ppp),
        reads::pppoe_counters(router),
    );
    Ok(FullActive {
        hotspot: ha?,
        ppp: pa?,
        counters: pi?,
    })
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
