//! The full-sync driver around the pure [`crate::reconcile`] plan.
//!
//! Every `sync_secs`, at start, and on demand: fetch the desired state
//! (`POST {central}/rpc/site_desired_state`, on the uplink client's own
//! thread) and keep it in the state file, so a WAN outage only means the
//! last one is applied; read the lists (concurrently over the one
//! connection); plan; commit the remembered state with the events; then run
//! the actions with a bounded number of commands in flight. The router's
//! own lists are read again at the next run, so an action that failed or
//! was lost is simply planned again.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};

use super::profile_rows::{HOTSPOT_PROFILE_PROPS, PPP_PROFILE_PROPS, ProfileRows};
use super::rows::{HOTSPOT_USER_PROPS, PPP_ACTIVE_PROPS, PPP_SECRET_PROPS, SessionRows, UserRows};
use super::{Control, View};
use crate::batch::runner::{Group, run_groups};
use crate::client::{ClientError, Router};
use crate::clock::Timestamp;
use crate::config::Config;
use crate::event::{EventKind, Service};
use crate::monitor::MonitorState;
use crate::name::{Id, Name};
use crate::proto::Command;
use crate::reconcile::{
    self, DesiredState, ReconcileConfig, ReconcileState, RouterLists, SyncAction,
};
use crate::store::{KEY_DESIRED, KEY_RECONCILE, StoreError, StoreHandle};
use crate::uplink::CentralClient;

/// What one run did, for the log line and the `sync` command.
#[derive(Debug, Clone, Default)]
pub struct SyncReport {
    /// `fetched`, `cached` (central unreachable: the saved state), or `none`.
    pub source: &'static str,
    pub version: String,
    pub fetch_error: Option<String>,
    /// The run was skipped: the lists could not be read.
    pub router_error: Option<String>,
    pub actions: usize,
    pub failed: usize,
    pub created: usize,
    pub events: usize,
    pub max_in_flight: usize,
    pub millis: u128,
}

/// Fetches, plans and applies. Owned by the sync task (or the `sync`
/// command); the state it remembers is saved through the store thread.
pub struct Syncer {
    store: StoreHandle,
    router: Router,
    client: Option<CentralClient>,
    site_id: String,
    cfg: ReconcileConfig,
    max_in_flight: usize,
    state: ReconcileState,
    desired: Option<DesiredState>,
    warned: HashSet<String>,
}

impl Syncer {
    /// Loads the remembered state and the last desired state.
    pub async fn new(
        config: &Config,
        store: StoreHandle,
        router: Router,
        client: Option<CentralClient>,
    ) -> Result<Syncer, StoreError> {
        let state = match store.load_sync(KEY_RECONCILE).await? {
            Some(blob) => postcard::from_bytes(&blob).unwrap_or_else(|e| {
                log::warn!("sync: saved reconcile state unreadable ({e}); starting afresh");
                ReconcileState::default()
            }),
            None => ReconcileState::default(),
        };
        let desired = match store.load_sync(KEY_DESIRED).await? {
            Some(blob) => serde_json::from_slice::<Value>(&blob)
                .ok()
                .and_then(|v| DesiredState::from_json(&v).ok()),
            None => None,
        };
        Ok(Syncer {
            store,
            router,
            client,
            site_id: config.site_id.clone(),
            cfg: reconcile_config(config),
            max_in_flight: config.sync.max_in_flight,
            state,
            desired,
            warned: HashSet::new(),
        })
    }

    /// One fetch + reconcile. Router failures skip the run (nothing is
    /// planned from a partial read); state file failures are returned.
    pub async fn run_once(&mut self, monitor: &MonitorState) -> Result<SyncReport, StoreError> {
        let started = Instant::now();
        let mut report = SyncReport {
            source: "none",
            ..SyncReport::default()
        };
        self.fetch(&mut report).await?;
        if let Some(d) = &self.desired {
            report.version = d.version.clone();
            if report.source == "none" {
                report.source = "cached";
            }
        }
        let lists = match read_lists(&self.router).await {
            Ok(l) => l,
            Err(e) => {
                log::warn!("sync: cannot read the router's lists, skipping this run: {e}");
                report.router_error = Some(e.to_string());
                return Ok(report);
            }
        };
        let now = Timestamp::now();
        let plan = reconcile::plan(
            &self.state,
            &lists,
            self.desired.as_ref(),
            monitor,
            now,
            &self.cfg,
        );
        drop(lists);
        for w in plan.warnings {
            self.warn_once(w);
        }
        report.events += plan.events.len();
        self.save(plan.state, plan.events, now).await?;
        report.actions = plan.actions.len();

        // Actions of one user run in order; users run concurrently.
        let mut by_user: BTreeMap<Name, Vec<SyncAction>> = BTreeMap::new();
        for a in plan.actions {
            by_user.entry(a.user().clone()).or_default().push(a);
        }
        let groups: Vec<Group<Vec<SyncAction>>> = by_user
            .into_values()
            .map(|actions| Group {
                commands: actions.iter().map(command).collect(),
                key: actions,
            })
            .collect();
        let mut outcomes: Vec<(Vec<SyncAction>, Result<(), ClientError>)> = Vec::new();
        let stats = run_groups(&self.router, groups, self.max_in_flight, |k, r| {
            outcomes.push((k, r))
        })
        .await;
        report.max_in_flight = stats.max_in_flight;
        let mut state = self.state.clone();
        let mut events = Vec::new();
        for (actions, result) in outcomes {
            let first = &actions[0];
            let result = match result {
                Err(ClientError::Trap {
                    category, message, ..
                }) if is_missing_item(category, &message)
                    && matches!(first, SyncAction::KickPpp { .. }) =>
                {
                    Ok(())
                }
                other => other,
            };
            match &result {
                Ok(()) => log::info!("sync: {} for {} done", first.describe(), first.user()),
                Err(e) => {
                    report.failed += 1;
                    log::warn!(
                        "sync: {} for {} failed, retrying next run: {}",
                        first.describe(),
                        first.user(),
                        reason(e)
                    );
                }
            }
            if let SyncAction::CreateUser {
                service,
                name,
                profile,
                ..
            } = first
            {
                if result.is_ok() {
                    report.created += 1;
                }
                let r = result.as_ref().map(|_| ()).map_err(reason);
                if let Some(e) = reconcile::creation_outcome(&mut state, *service, name, profile, r)
                {
                    events.push(e);
                }
            }
        }
        report.events += events.len();
        self.save(state, events, Timestamp::now()).await?;
        report.millis = started.elapsed().as_millis();
        Ok(report)
    }

    async fn fetch(&mut self, report: &mut SyncReport) -> Result<(), StoreError> {
        let Some(client) = &self.client else {
            return Ok(());
        };
        let args = json!({ "site_id": self.site_id });
        let fetched = client
            .rpc("site_desired_state", &args)
            .await
            .map_err(|e| e.to_string())
            .and_then(|v| {
                DesiredState::from_json(&v)
                    .map(|d| (d, v))
                    .map_err(|e| e.to_string())
            });
        match fetched {
            Ok((desired, raw)) => {
                report.source = "fetched";
                let changed = self
                    .desired
                    .as_ref()
                    .is_none_or(|d| d.version != desired.version || desired.version.is_empty());
                if changed {
                    let blob = serde_json::to_vec(&raw).unwrap_or_default();
                    self.store
                        .save_sync(vec![(KEY_DESIRED, blob)], Vec::new())
                        .await?;
                    log::info!(
                        "sync: desired state {} ({} vouchers, {} subscriptions)",
                        desired.version,
                        desired.vouchers.len(),
                        desired.subscriptions.len()
                    );
                }
                self.desired = Some(desired);
            }
            Err(e) => {
                log::warn!("sync: cannot fetch the desired state ({e}); using the last one saved");
                report.fetch_error = Some(e);
            }
        }
        Ok(())
    }

    /// Saves `state` with `events` when either changed.
    async fn save(
        &mut self,
        state: ReconcileState,
        events: Vec<EventKind>,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        if state == self.state && events.is_empty() {
            return Ok(());
        }
        let blob = postcard::to_allocvec(&state).map_err(|e| StoreError::Encode {
            what: "reconcile state",
            reason: e.to_string(),
        })?;
        let events = events.into_iter().map(|e| (at, e)).collect();
        self.store
            .save_sync(vec![(KEY_RECONCILE, blob)], events)
            .await?;
        self.state = state;
        Ok(())
    }

    /// Remembers vouchers the monitor expired, as soon as it does (a
    /// removed voucher's progress is gone by the next poll), so a stale
    /// desired state never brings one back.
    pub async fn note_expired(&mut self, monitor: &MonitorState) -> Result<(), StoreError> {
        let new: Vec<Name> = monitor
            .vouchers
            .iter()
            .filter(|(n, p)| p.expired_for.is_some() && !self.state.expired.contains(*n))
            .map(|(n, _)| n.clone())
            .collect();
        if new.is_empty() {
            return Ok(());
        }
        let mut state = self.state.clone();
        state.expired.extend(new);
        self.save(state, Vec::new(), Timestamp::now()).await
    }

    fn warn_once(&mut self, w: String) {
        if self.warned.len() < 10_000 && self.warned.insert(w.clone()) {
            log::warn!("sync: {w}");
        }
    }
}

/// The reconcile settings from the config.
pub fn reconcile_config(config: &Config) -> ReconcileConfig {
    ReconcileConfig {
        hotspot_pattern: config.hotspot_profile_pattern.clone(),
        pppoe_pattern: config.pppoe_profile_pattern.clone(),
        suspend_mode: config.sync.suspend_mode,
        isolir_profile: Name::new(config.sync.isolir_profile.as_deref().unwrap_or_default()),
    }
}

/// The trap's message (never the command's words: they may hold a password).
fn reason(e: &ClientError) -> String {
    match e {
        ClientError::Trap { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

fn is_missing_item(category: Option<u8>, message: &str) -> bool {
    match category {
        Some(c) => c == 0,
        None => message == "no such item",
    }
}

/// The five lists, concurrently over the one session.
pub async fn read_lists(router: &Router) -> Result<RouterLists, ClientError> {
    let print = |path: &str, props: &[&str]| Command::new(path).proplist(props);
    let (hu, ps, pa, hp, pp) = tokio::join!(
        router.fold(
            print("/ip/hotspot/user/print", HOTSPOT_USER_PROPS),
            UserRows::new(Service::Hotspot),
            UserRows::push,
        ),
        router.fold(
            print("/ppp/secret/print", PPP_SECRET_PROPS),
            UserRows::new(Service::Pppoe),
            UserRows::push,
        ),
        router.fold(
            print("/ppp/active/print", PPP_ACTIVE_PROPS),
            SessionRows::new(Service::Pppoe),
            SessionRows::push,
        ),
        router.fold(
            print("/ip/hotspot/user/profile/print", HOTSPOT_PROFILE_PROPS),
            ProfileRows::default(),
            ProfileRows::push,
        ),
        router.fold(
            print("/ppp/profile/print", PPP_PROFILE_PROPS),
            ProfileRows::default(),
            ProfileRows::push,
        ),
    );
    let (hu, ps, pa, hp, pp) = (hu?, ps?, pa?, hp?, pp?);
    for traps in [&hu.traps, &ps.traps, &pa.traps, &hp.traps, &pp.traps] {
        if let Some(t) = traps.first() {
            return Err(ClientError::Trap {
                command: "list read".into(),
                category: t.category,
                message: t.message.clone(),
            });
        }
    }
    Ok(RouterLists {
        hotspot_users: hu.value.rows,
        ppp_secrets: ps.value.rows,
        ppp_active: pa.value.rows,
        hotspot_profiles: hp.value.rows,
        ppp_profiles: pp.value.rows,
    })
}

/// A [`SyncAction`] as an API command.
pub fn command(action: &SyncAction) -> Command {
    let id = |id: &Id| id.to_string();
    match action {
        SyncAction::CreateUser {
            service,
            name,
            password,
            profile,
            comment,
            disabled,
        } => {
            let mut cmd = Command::new(match service {
                Service::Hotspot => "/ip/hotspot/user/add",
                Service::Pppoe => "/ppp/secret/add",
            })
            .attr("name", name.as_bytes());
            if let Some(p) = &password.0 {
                cmd = cmd.attr("password", p.as_bytes());
            }
            if !profile.is_empty() {
                cmd = cmd.attr("profile", profile.as_bytes());
            }
            if *service == Service::Pppoe {
                cmd = cmd.attr("service", "pppoe");
                if *disabled {
                    cmd = cmd.attr("disabled", "yes");
                }
            }
            cmd.attr("comment", comment.as_bytes())
        }
        SyncAction::DisableSecret { id: i, .. } => {
            Command::new("/ppp/secret/disable").attr(".id", id(i))
        }
        SyncAction::EnableSecret { id: i, .. } => {
            Command::new("/ppp/secret/enable").attr(".id", id(i))
        }
        SyncAction::SetSecretProfile {
            id: i,
            profile,
            comment,
            ..
        } => Command::new("/ppp/secret/set")
            .attr(".id", id(i))
            .attr("profile", profile.as_bytes())
            .attr("comment", comment.as_bytes()),
        SyncAction::KickPpp { active_id, .. } => {
            Command::new("/ppp/active/remove").attr(".id", id(active_id))
        }
    }
}

/// Starts the sync task when a central URL is configured. Returns the
/// sender the HTTP endpoint uses: `SyncNow` triggers a sync (when there is
/// a sync task) and a poll, `PollNow` only a poll; the agent loop itself
/// only ever receives `PollNow`.
pub fn spawn(
    config: &Config,
    store: StoreHandle,
    router: Router,
    view: watch::Receiver<View>,
    poll: mpsc::Sender<Control>,
) -> (mpsc::Sender<Control>, Option<tokio::task::JoinHandle<()>>) {
    let client = config.uplink.central.as_ref().and_then(|central| {
        CentralClient::start(central, config.uplink.timeout)
            .map_err(|e| log::error!("sync disabled: {e}"))
            .ok()
    });
    let (tx, mut rx) = mpsc::channel::<Control>(1);
    let (trigger_tx, trigger_rx) = mpsc::channel::<()>(1);
    let syncing = client.is_some();
    tokio::spawn(async move {
        while let Some(c) = rx.recv().await {
            if c == Control::SyncNow && syncing {
                let _ = trigger_tx.try_send(());
            }
            let _ = poll.try_send(Control::PollNow);
        }
    });
    let Some(client) = client else {
        return (tx, None);
    };
    let config = config.clone();
    let task = tokio::spawn(async move {
        match Syncer::new(&config, store, router.clone(), Some(client)).await {
            Ok(syncer) => sync_loop(syncer, router, view, trigger_rx, config.sync.interval).await,
            Err(e) => log::error!("sync disabled: {e}"),
        }
    });
    (tx, Some(task))
}

async fn sync_loop(
    mut syncer: Syncer,
    router: Router,
    mut view: watch::Receiver<View>,
    mut trigger: mpsc::Receiver<()>,
    interval: Duration,
) {
    log::info!(
        "sync every {} s (desired state from the central side)",
        interval.as_secs()
    );
    let mut next = tokio::time::Instant::now();
    loop {
        let due = tokio::select! {
            _ = tokio::time::sleep_until(next) => true,
            Some(()) = trigger.recv() => true,
            changed = view.changed() => {
                if changed.is_err() {
                    return;
                }
                let monitor: Arc<MonitorState> = view.borrow_and_update().state.clone();
                if let Err(e) = syncer.note_expired(&monitor).await {
                    log::error!("sync: {e}");
                }
                false
            }
        };
        if !due {
            continue;
        }
        if !router.is_connected() {
            // At start or during an outage: try again soon, not in 5 minutes.
            next = tokio::time::Instant::now() + Duration::from_secs(2).min(interval);
            continue;
        }
        let monitor = view.borrow().state.clone();
        match syncer.run_once(&monitor).await {
            Ok(r) => log::info!(
                "sync: {} desired state {}, {} actions ({} created, {} failed), {} events, max {} in flight, {} ms",
                r.source,
                if r.version.is_empty() {
                    "-"
                } else {
                    &r.version
                },
                r.actions,
                r.created,
                r.failed,
                r.events,
                r.max_in_flight,
                r.millis
            ),
            Err(e) => log::error!("sync: {e}"),
        }
        next = tokio::time::Instant::now() + interval;
    }
}

/// `mikrotik-edge sync`: one fetch and one reconciliation, then exit.
/// Uses the state file (so it refuses to run beside a running agent, which
/// has it locked; ask the agent with `POST /api/mikrotik/sync/force`).
pub async fn cli(config: &Config) -> std::process::ExitCode {
    use std::process::ExitCode;
    let fail = |m: String| {
        eprintln!("mikrotik-edge: sync: {m}");
        ExitCode::FAILURE
    };
    let (store, store_thread, monitor) =
        match StoreHandle::open(&config.state_path, &config.site_id).await {
            Ok(s) => s,
            Err(e) => {
                return fail(format!(
                    "{e} (if the agent is running, use POST /api/mikrotik/sync/force instead)"
                ));
            }
        };
    let client = match &config.uplink.central {
        Some(c) => match CentralClient::start(c, config.uplink.timeout) {
            Ok(c) => Some(c),
            Err(e) => return fail(e.to_string()),
        },
        None => {
            eprintln!("mikrotik-edge: sync: no central_url; applying the last saved desired state");
            None
        }
    };
    let (router, _events) = Router::start(config.router.clone());
    let code = async {
        if !router
            .wait_connected(config.router.connect_timeout + Duration::from_secs(5))
            .await
        {
            return fail(format!(
                "cannot connect to the router: {}",
                router.last_error().unwrap_or_else(|| "timeout".into())
            ));
        }
        let mut syncer = match Syncer::new(config, store.clone(), router.clone(), client).await {
            Ok(s) => s,
            Err(e) => return fail(e.to_string()),
        };
        match syncer.run_once(&monitor).await {
            Err(e) => fail(e.to_string()),
            Ok(r) => {
                println!(
                    "{}",
                    json!({
                        "desired_state": r.source,
                        "version": r.version,
                        "fetch_error": r.fetch_error,
                        "router_error": r.router_error,
                        "actions": r.actions,
                        "created": r.created,
                        "failed": r.failed,
                        "events": r.events,
                        "max_in_flight": r.max_in_flight,
                        "ms": r.millis as u64,
                    })
                );
                if r.router_error.is_some() || r.failed > 0 || r.source == "none" {
                    ExitCode::FAILURE
                } else {
                    ExitCode::SUCCESS
                }
            }
        }
    }
    .await;
    router.close(Duration::from_secs(2)).await;
    drop(store);
    store_thread.join().await;
    code
}
