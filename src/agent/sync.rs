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
//!
//! Between full syncs, every `desired_poll_secs`, the cheap
//! `site_desired_version` counter is polled (the decision is pure, in
//! `version_watch.rs`); when it moved since the last fetch, a full sync runs
//! at once, so a change made centrally reaches the router within seconds.

mod version_watch;

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
use crate::commands::{self, AddUser};
use crate::config::Config;
use crate::event::{EventKind, Service};
pub use crate::intent_channel::IntentMsg;
use crate::kicks::Kicks;
use crate::monitor::MonitorState;
use crate::name::Name;
use crate::proto::Command;
use crate::reconcile::{
    self, DesiredState, Intent, Intents, ReconcileConfig, ReconcileState, RouterLists, SyncAction,
};
use crate::store::{KEY_DESIRED, KEY_INTENTS, KEY_RECONCILE, StoreError, StoreHandle};
use crate::uplink::CentralClient;
use version_watch::{Availability, PollDecision, Probe, VersionWatch};

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
    intents: Intents,
    desired: Option<DesiredState>,
    warned: HashSet<String>,
    kicks: Kicks,
    /// `None` with `desired_poll_secs = 0`: the counter is not read at all.
    versions: Option<VersionWatch>,
}

impl Syncer {
    /// Loads the remembered state and the last desired state.
    pub async fn new(
        config: &Config,
        store: StoreHandle,
        router: Router,
        client: Option<CentralClient>,
        kicks: Kicks,
    ) -> Result<Syncer, StoreError> {
        let state = match store.load_sync(KEY_RECONCILE).await? {
            Some(blob) => postcard::from_bytes(&blob).unwrap_or_else(|e| {
                log::warn!("sync: saved reconcile state unreadable ({e}); starting afresh");
                ReconcileState::default()
            }),
            None => ReconcileState::default(),
        };
        let intents = match store.load_sync(KEY_INTENTS).await? {
            Some(blob) => postcard::from_bytes(&blob).unwrap_or_else(|e| {
                log::warn!("sync: saved local intents unreadable ({e}); starting afresh");
                Intents::default()
            }),
            None => Intents::default(),
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
            intents,
            desired,
            warned: HashSet::new(),
            kicks,
            versions: config.sync.desired_poll.map(|_| VersionWatch::default()),
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
        let Some((actions, restores)) = self.plan_and_commit(monitor, &mut report).await? else {
            return Ok(report);
        };
        let outcomes = self.run_actions(actions, &mut report).await;
        let (state, events) = self.record_outcomes(outcomes, &restores, &mut report);
        report.events += events.len();
        let intents = self.intents.clone();
        self.save(state, intents, events, Timestamp::now()).await?;
        report.millis = started.elapsed().as_millis();
        Ok(report)
    }

    /// Fetches the desired state, reads the router's lists, plans, and
    /// commits the plan's state and events before any action runs. The
    /// actions and the restores they write; `None` when the router's lists
    /// could not be read (the run is skipped).
    async fn plan_and_commit(
        &mut self,
        monitor: &MonitorState,
        report: &mut SyncReport,
    ) -> Result<Option<(Vec<SyncAction>, BTreeMap<Name, Name>)>, StoreError> {
        self.fetch(report).await?;
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
                return Ok(None);
            }
        };
        let now = Timestamp::now();
        let plan = reconcile::plan(
            &self.state,
            &self.intents,
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
        self.save(plan.state, plan.intents, plan.events, now)
            .await?;
        report.actions = plan.actions.len();
        Ok(Some((plan.actions, plan.restores)))
    }

    /// Runs the actions: those of one user in order, users concurrently.
    /// Each user's actions with the result of the first that failed (or Ok).
    async fn run_actions(
        &self,
        actions: Vec<SyncAction>,
        report: &mut SyncReport,
    ) -> Vec<(Vec<SyncAction>, Result<(), ClientError>)> {
        let mut by_user: BTreeMap<Name, Vec<SyncAction>> = BTreeMap::new();
        for a in actions {
            by_user.entry(a.user().clone()).or_default().push(a);
        }
        let groups: Vec<Group<Vec<SyncAction>>> = by_user
            .into_values()
            .map(|actions| Group {
                commands: actions.iter().map(command).collect(),
                key: actions,
            })
            .collect();
        let mut outcomes = Vec::new();
        let stats = run_groups(&self.router, groups, self.max_in_flight, |k, r| {
            outcomes.push((k, r))
        })
        .await;
        report.max_in_flight = stats.max_in_flight;
        outcomes
    }

    /// What the actions' results change: kicks remembered (their sessions
    /// log out as `kicked`), restores and creations reported, failures
    /// logged and counted. The new reconcile state and its events.
    fn record_outcomes(
        &mut self,
        outcomes: Vec<(Vec<SyncAction>, Result<(), ClientError>)>,
        restores: &BTreeMap<Name, Name>,
        report: &mut SyncReport,
    ) -> (ReconcileState, Vec<EventKind>) {
        let mut state = self.state.clone();
        let mut events = Vec::new();
        for (actions, result) in outcomes {
            let first = &actions[0];
            // Sessions the agent ended log out as `kicked`, not `gone`.
            for a in &actions {
                match a {
                    SyncAction::KickPpp { active_id, .. } => {
                        self.kicks.add(Service::Pppoe, *active_id)
                    }
                    SyncAction::KickHotspot { active_id, .. } => {
                        self.kicks.add(Service::Hotspot, *active_id)
                    }
                    _ => {}
                }
            }
            let result = already_done(first, result);
            if result.is_ok()
                && let Some(profile) = restores.get(first.user())
                && let Some(e) =
                    reconcile::restored_event(&mut state, first.user(), profile, &self.cfg)
            {
                events.push(e);
            }
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
            if let SyncAction::CreateUser { .. } = first {
                if result.is_ok() {
                    report.created += 1;
                }
                let r = result.as_ref().map(|_| ()).map_err(reason);
                if let Some(e) = reconcile::creation_outcome(&mut state, first, r) {
                    events.push(e);
                }
            }
        }
        (state, events)
    }

    async fn fetch(&mut self, report: &mut SyncReport) -> Result<(), StoreError> {
        let Some(client) = &self.client else {
            return Ok(());
        };
        let args = self.site_args();
        // The counter first: a change committed while the state is fetched
        // then shows as a moved version at the next poll.
        if let Some(versions) = &mut self.versions {
            let probe = Probe::from_reply(client.rpc(VERSION_RPC, &args).await);
            match versions.before_fetch(probe) {
                Availability::Unchanged => {}
                Availability::Found => log::info!(
                    "sync: the central side has {VERSION_RPC} now: its changes reach the router within the poll interval"
                ),
                Availability::Lost => log::info!(
                    "sync: the central side has no {VERSION_RPC} (HTTP 404, an older schema or gateway): \
                     its changes arrive with the periodic full sync"
                ),
            }
        }
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
                if let Some(v) = &mut self.versions {
                    v.after_fetch(true);
                }
            }
            Err(e) => {
                if let Some(v) = &mut self.versions {
                    v.after_fetch(false);
                }
                log::warn!("sync: cannot fetch the desired state ({e}); using the last one saved");
                report.fetch_error = Some(e);
            }
        }
        Ok(())
    }

    /// The arguments of both calls.
    fn site_args(&self) -> Value {
        json!({ "site_id": self.site_id })
    }

    /// A poll of the version counter to run beside the loop (the call
    /// itself waits on the client's HTTP thread), tagged with the current
    /// generation; `None` without a central client, with polling off, or
    /// after a 404.
    fn version_poll(&self) -> Option<impl Future<Output = (u64, Probe)> + 'static> {
        let client = self.client.clone()?;
        let versions = self.versions.as_ref().filter(|v| v.polling())?;
        let generation = versions.generation();
        let args = self.site_args();
        Some(async move {
            let reply = client.rpc(VERSION_RPC, &args).await;
            (generation, Probe::from_reply(reply))
        })
    }

    /// Whether a poll's answer calls for a full sync now (and says why).
    fn on_version_poll(&mut self, generation: u64, probe: Probe) -> bool {
        let failure = match &probe {
            Probe::Failed(e) => Some(e.clone()),
            _ => None,
        };
        let Some(versions) = &mut self.versions else {
            return false;
        };
        match versions.on_poll(generation, probe) {
            PollDecision::SyncNow { from, to } => {
                log::info!(
                    "sync: desired version {to} (was {}): syncing now",
                    from.map_or_else(|| "unknown".to_owned(), |v| v.to_string())
                );
                true
            }
            PollDecision::StopPolling => {
                log::info!(
                    "sync: the central side has no {VERSION_RPC} (HTTP 404, an older schema or gateway): \
                     its changes arrive with the periodic full sync"
                );
                false
            }
            PollDecision::Wait => {
                match failure {
                    Some(e) => log::debug!("sync: desired version poll failed: {e}"),
                    None => log::debug!("sync: desired version unchanged"),
                }
                false
            }
            PollDecision::Stale => false,
        }
    }

    /// Saves `state` and `intents` with `events` when any changed.
    async fn save(
        &mut self,
        state: ReconcileState,
        intents: Intents,
        events: Vec<EventKind>,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        if state == self.state && intents == self.intents && events.is_empty() {
            return Ok(());
        }
        let encode = |what: &'static str, r: Result<Vec<u8>, postcard::Error>| {
            r.map_err(|e| StoreError::Encode {
                what,
                reason: e.to_string(),
            })
        };
        let blob = encode("reconcile state", postcard::to_allocvec(&state))?;
        let intents_blob = encode("local intents", postcard::to_allocvec(&intents))?;
        let events = events.into_iter().map(|e| (at, e)).collect();
        self.store
            .save_sync(
                vec![(KEY_RECONCILE, blob), (KEY_INTENTS, intents_blob)],
                events,
            )
            .await?;
        self.state = state;
        self.intents = intents;
        Ok(())
    }

    /// Commits a local intent with its event in one transaction.
    pub async fn record_intent(&mut self, msg: IntentMsg) {
        let at = Timestamp::now();
        let mut intents = self.intents.clone();
        intents.record(
            msg.service,
            msg.user,
            Intent {
                action: msg.action,
                at,
            },
        );
        let state = self.state.clone();
        let r = self.save(state, intents, vec![msg.event], at).await;
        let _ = msg.reply.send(r);
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
        let intents = self.intents.clone();
        self.save(state, intents, Vec::new(), Timestamp::now())
            .await
    }

    fn warn_once(&mut self, w: String) {
        if self.warned.len() < 10_000 && self.warned.insert(w.clone()) {
            log::warn!("sync: {w}");
        }
    }
}

/// The central function polled between full syncs.
const VERSION_RPC: &str = "site_desired_version";

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
/// A kick or removal whose item the router no longer has ("no such
/// item"): what it was for is already done.
fn already_done(first: &SyncAction, result: Result<(), ClientError>) -> Result<(), ClientError> {
    match result {
        Err(ClientError::Trap {
            category, message, ..
        }) if is_missing_item(category, &message)
            && matches!(
                first,
                SyncAction::KickPpp { .. }
                    | SyncAction::KickHotspot { .. }
                    | SyncAction::RemoveUser { .. }
            ) =>
        {
            Ok(())
        }
        other => other,
    }
}

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
    let print = commands::print;
    // With the passwords (shown when the API user has the `sensitive`
    // policy), kept for our own users only: adoption reports them.
    let with_password = |props: &[&'static str]| -> Vec<&'static str> {
        props.iter().copied().chain(["password"]).collect()
    };
    let (hotspot_props, secret_props) = (
        with_password(HOTSPOT_USER_PROPS),
        with_password(PPP_SECRET_PROPS),
    );
    let (hu, ps, pa, hp, pp) = tokio::join!(
        router.fold(
            print(commands::users(Service::Hotspot), &hotspot_props),
            UserRows::new(Service::Hotspot).keeping_passwords(),
            UserRows::push,
        ),
        router.fold(
            print(commands::users(Service::Pppoe), &secret_props),
            UserRows::new(Service::Pppoe).keeping_passwords(),
            UserRows::push,
        ),
        router.fold(
            print(commands::active(Service::Pppoe), PPP_ACTIVE_PROPS),
            SessionRows::new(Service::Pppoe),
            SessionRows::push,
        ),
        router.fold(
            print(commands::profiles(Service::Hotspot), HOTSPOT_PROFILE_PROPS),
            ProfileRows::default(),
            ProfileRows::push,
        ),
        router.fold(
            print(commands::profiles(Service::Pppoe), PPP_PROFILE_PROPS),
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
    let mut passwords = BTreeMap::new();
    for (service, list) in [
        (Service::Hotspot, &hu.value.passwords),
        (Service::Pppoe, &ps.value.passwords),
    ] {
        for (name, pw) in list {
            passwords.insert((service, name.clone()), pw.clone());
        }
    }
    Ok(RouterLists {
        passwords,
        hotspot_users: hu.value.rows,
        ppp_secrets: ps.value.rows,
        ppp_active: pa.value.rows,
        hotspot_profiles: hp.value.rows,
        ppp_profiles: pp.value.rows,
    })
}

/// A [`SyncAction`] as an API command (built by [`crate::commands`]).
pub fn command(action: &SyncAction) -> Command {
    match action {
        SyncAction::CreateUser {
            service,
            name,
            password,
            profile,
            comment,
            disabled,
        } => commands::add_user(&AddUser {
            service: *service,
            name: name.as_bytes(),
            password: password.0.as_ref().map(Name::as_bytes),
            profile: (!profile.is_empty()).then(|| profile.as_bytes()),
            comment: Some(comment.as_bytes()),
            disabled: *disabled,
        }),
        SyncAction::DisableSecret { id, .. } => commands::set_secret_enabled(id, false),
        SyncAction::EnableSecret { id, .. } => commands::set_secret_enabled(id, true),
        SyncAction::SetSecretProfile {
            id,
            profile,
            comment,
            ..
        } => commands::set_secret_profile(id, profile.as_bytes(), comment.as_bytes()),
        SyncAction::KickPpp { active_id, .. } => commands::kick(Service::Pppoe, active_id),
        SyncAction::KickHotspot { active_id, .. } => commands::kick(Service::Hotspot, active_id),
        SyncAction::RemoveUser { service, id, .. } => commands::remove_user(*service, id),
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
    kicks: Kicks,
    dates: crate::uplink::DateSink,
) -> Spawned {
    let client = config.uplink.central.as_ref().and_then(|central| {
        CentralClient::start(central, config.uplink.timeout, Some(dates))
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
        return Spawned {
            control: tx,
            intents: None,
            task: None,
        };
    };
    let (intent_tx, intent_rx) = mpsc::channel::<IntentMsg>(16);
    let config = config.clone();
    let task = tokio::spawn(async move {
        match Syncer::new(&config, store, router.clone(), Some(client), kicks).await {
            Ok(syncer) => {
                let inputs = Inputs {
                    view,
                    trigger: trigger_rx,
                    intents: intent_rx,
                };
                let timing = Timing {
                    interval: config.sync.interval,
                    desired_poll: config.sync.desired_poll,
                };
                sync_loop(syncer, router, inputs, timing).await
            }
            Err(e) => log::error!("sync disabled: {e}"),
        }
    });
    Spawned {
        control: tx,
        intents: Some(intent_tx),
        task: Some(task),
    }
}

/// What [`spawn`] hands back.
pub struct Spawned {
    /// For the HTTP endpoint: `SyncNow` / `PollNow`.
    pub control: mpsc::Sender<Control>,
    /// Local intents to hold (with a central URL only: without one no
    /// sync would undo a local change).
    pub intents: Option<mpsc::Sender<IntentMsg>>,
    pub task: Option<tokio::task::JoinHandle<()>>,
}

/// What wakes the sync loop besides its timer.
struct Inputs {
    view: watch::Receiver<View>,
    trigger: mpsc::Receiver<()>,
    intents: mpsc::Receiver<IntentMsg>,
}

/// The sync loop's two clocks.
struct Timing {
    /// Full sync.
    interval: Duration,
    /// Version poll; `None`: off.
    desired_poll: Option<Duration>,
}

async fn sync_loop(mut syncer: Syncer, router: Router, inputs: Inputs, timing: Timing) {
    let Inputs {
        mut view,
        mut trigger,
        mut intents,
    } = inputs;
    let Timing {
        interval,
        desired_poll,
    } = timing;
    match desired_poll {
        Some(p) => log::info!(
            "sync every {} s (desired state from the central side), its version polled every {} s",
            interval.as_secs(),
            p.as_secs()
        ),
        None => log::info!(
            "sync every {} s (desired state from the central side)",
            interval.as_secs()
        ),
    }
    // Polls run beside the loop, so a slow central side never holds up
    // local intents; one at a time, answering on this channel.
    let (probe_tx, mut probes) = mpsc::channel::<(u64, Probe)>(1);
    let mut probing = false;
    let mut next = tokio::time::Instant::now();
    let mut next_poll = desired_poll.map(|p| next + p);
    loop {
        let poll_at = next_poll
            .filter(|_| !probing && syncer.versions.as_ref().is_some_and(VersionWatch::polling));
        let due = tokio::select! {
            _ = tokio::time::sleep_until(next) => true,
            Some(()) = trigger.recv() => true,
            _ = sleep_until_some(poll_at) => {
                if let Some(poll) = syncer.version_poll() {
                    probing = true;
                    let tx = probe_tx.clone();
                    tokio::spawn(async move {
                        let _ = tx.send(poll.await).await;
                    });
                }
                next_poll = desired_poll.map(|p| tokio::time::Instant::now() + p);
                false
            }
            Some((generation, probe)) = probes.recv() => {
                probing = false;
                syncer.on_version_poll(generation, probe)
            }
            Some(msg) = intents.recv() => {
                syncer.record_intent(msg).await;
                false
            }
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
        // Just read: the next poll a whole interval from now.
        next_poll = desired_poll.map(|p| tokio::time::Instant::now() + p);
    }
}

/// Sleeps until `at`; never resolves for `None`.
async fn sleep_until_some(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
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
        Some(c) => match CentralClient::start(c, config.uplink.timeout, None) {
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
        let mut syncer = match Syncer::new(
            config,
            store.clone(),
            router.clone(),
            client,
            Kicks::default(),
        )
        .await
        {
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
