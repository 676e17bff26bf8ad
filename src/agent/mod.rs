//! `mikrotik-edge run`: the driver around the pure monitor. It does the
//! I/O; what to do is decided by pure code: the monitor's step, and the
//! driver's own bookkeeping ([`state`]: connection alerts, warnings said
//! once, the poll schedule).
//!
//! Each cycle: read what the schedule asks for (`reads.rs`, concurrently
//! over the one connection, folding rows into typed rows as they stream
//! in): the two active lists counted (`count-only`) against the agent's
//! copy, their counters alone read with the PPPoE interfaces at the usage
//! interval (`counter_rows.rs`), or read in full when a count or the
//! counters' ids disagree or a listen was not open; the two user lists
//! only when a full read is due (between those, their listens keep the agent's copy
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
mod connect;
mod counter_rows;
mod heard;
pub mod listen;
mod poll;
mod profile_rows;
mod reads;
pub mod rows;
pub mod state;
pub mod sync;
pub mod user_table;
mod writer;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use crate::client::{ConnectionEvent, Router};
use crate::clock::Timestamp;
use crate::config::Config;
use crate::event::Service;
use crate::monitor::{self, MonitorConfig, MonitorState, SessionRow, Snapshot};
use crate::name_cache::NameCache;
pub use crate::status::{Control, View};
use crate::store::{StoreError, StoreHandle};
use listen::List;
use state::{AgentState, Schedule};
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
    let reuse = Reuse::seeded(&state);
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
        reuse,
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
    /// The user lists' change marks as the last step saw them (`None`
    /// after a step whose result was not kept).
    stepped: Option<[u64; 2]>,
}

impl Reuse {
    /// The first reads' name caches hold the loaded state's names, so that
    /// the rows they read share them: after a restart each user's name is
    /// then one allocation, as when the state was made by this process.
    fn seeded(state: &MonitorState) -> Reuse {
        let of = |service| {
            state
                .sessions
                .values()
                .filter(move |t| t.service == service)
        };
        let names = |service| of(service).flat_map(|t| [&t.user, &t.caller_id, &t.session_id]);
        let mut reuse = Reuse::default();
        reuse.hotspot_users.seed_names(NameCache::of(
            state.usage.keys().chain(state.vouchers.keys()),
        ));
        reuse
            .ppp_secrets
            .seed_names(NameCache::of(of(Service::Pppoe).map(|t| &t.user)));
        reuse.hotspot_active.0 = NameCache::of(names(Service::Hotspot));
        reuse.ppp_active.0 = NameCache::of(names(Service::Pppoe));
        reuse
    }

    /// Takes back the user lists of a snapshot the step is done with. The
    /// step already let go of the session rows (read afresh each poll,
    /// their vectors would hold most of a megabyte between polls to spare
    /// a few hundred page faults).
    fn keep_rows(&mut self, snapshot: Snapshot) {
        self.hotspot_users.put_back(snapshot.hotspot_users);
        self.ppp_secrets.put_back(snapshot.ppp_secrets);
        self.stepped = Some(self.marks());
    }

    /// The user lists' change marks.
    fn marks(&self) -> [u64; 2] {
        [self.hotspot_users.changes(), self.ppp_secrets.changes()]
    }

    /// Whether both user lists are exactly as the last step saw them.
    fn users_same(&self) -> bool {
        self.stepped == Some(self.marks())
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

    fn warn_once(&mut self, warning: String) {
        if self.book.warn_once(&warning) {
            log::warn!("{warning}");
        }
    }
}
