//! One poll cycle: read what the schedule asks for (see [`super::state`]
//! and [`super::reads`]), step the monitor, commit, then act.

use std::sync::Arc;
use std::time::Duration;

use super::counter_rows::CounterRows;
use super::listen::{List, Listens};
use super::reads;
use super::rows;
use super::state::ActiveRead;
use super::{Agent, AgentError, service_index};
use crate::client::{ClientError, Router};
use crate::clock::Timestamp;
use crate::event::Service;
use crate::monitor::{self, SessionRow, Snapshot};
use crate::name_cache::NameCache;
use crate::store::StateDelta;

impl Agent {
    /// One poll cycle. Router failures skip the cycle (they are never read
    /// as everyone going offline); a full disk skips it too (nothing is
    /// acted on before it is committed); other state file failures stop
    /// the agent. Returns whether the poll was read and committed.
    pub(super) async fn cycle(&mut self, listens: &mut Listens) -> Result<bool, AgentError> {
        let started = std::time::Instant::now();
        let (mut snapshot, read) = match self.read_snapshot(listens).await {
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
                self.reuse.stepped = None;
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
            match read {
                ActiveRead::Check => "active lists counted",
                ActiveRead::Counters => "active lists' counters read",
                ActiveRead::Full => "active lists read",
            },
            started.elapsed().as_millis()
        );
        Ok(true)
    }

    /// This poll's snapshot: the active lists (counted, or read in full
    /// when a count disagrees or a full read is due) and the user lists
    /// (read in full when due), concurrently over the one session.
    async fn read_snapshot(
        &mut self,
        listens: &mut Listens,
    ) -> Result<(Snapshot, ActiveRead), ClientError> {
        self.reopen_listens(listens);
        let now = std::time::Instant::now();
        let mut read = self.book.poll.active_read(now);
        // A listen found broken may have let sessions come and go unseen:
        // the hotspot users' cumulative counters, read with the repair,
        // account for them now rather than at the next scheduled read.
        let mut repair = false;
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
                repair = true;
            }
            self.reopen_listens(listens);
        }
        // Taken for the reads and put back after: a failed read starts its
        // list's cache afresh, which costs only allocations.
        let mut reuse = std::mem::take(&mut self.reuse);
        // The user lists' scheduled read is a safety net while the active
        // lists' listens are healthy (every session is heard); without
        // them, sessions can come and go between polls, and the hotspot
        // users' counters are read at least every usage interval.
        let every = if self.book.poll.listening() {
            self.user_read
        } else {
            self.user_read
                .min(Duration::from_secs(self.monitor.usage_secs))
        };
        let mut due = |service| {
            reuse.users(service).needs_read(
                self.users_listening[service_index(service)],
                every,
                now,
            )
        };
        let due = [due(Service::Hotspot) || repair, due(Service::Pppoe)];
        let router = &self.router;
        let active_reuse = match read {
            ActiveRead::Full => Some((
                std::mem::take(&mut reuse.hotspot_active),
                std::mem::take(&mut reuse.ppp_active),
            )),
            ActiveRead::Counters | ActiveRead::Check => None,
        };
        let active = async move {
            match (active_reuse, read) {
                (Some((hotspot, ppp)), _) => read_active_full(router, hotspot, ppp)
                    .await
                    .map(ActiveReply::Full),
                (None, ActiveRead::Counters) => read_active_counters(router)
                    .await
                    .map(ActiveReply::Counters),
                (None, _) => Ok(ActiveReply::Kept),
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
        if let ActiveReply::Full(full) = &mut active {
            full.keep_names(&mut reuse);
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
            ActiveReply::Full(read) => self.took_active(read, now)?,
            ActiveReply::Counters(counters) => match self.took_counters(counters, now)? {
                Some(rows) => rows,
                None => {
                    // The ids disagree with the copy: a listen missed a
                    // change. Reopened (by `took_counters`) before the
                    // full read, so that nothing falls between the two.
                    self.reopen_listens(listens);
                    let hotspot = std::mem::take(&mut self.reuse.hotspot_active);
                    let ppp = std::mem::take(&mut self.reuse.ppp_active);
                    let mut full = read_active_full(&self.router, hotspot, ppp).await?;
                    full.keep_names(&mut self.reuse);
                    // Sessions may have come and gone unseen: the next
                    // poll reads the hotspot users' counters.
                    self.reuse.users(Service::Hotspot).forget_read();
                    self.took_active(full, now)?
                }
            },
            ActiveReply::Kept => self.kept_active(),
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
        let snapshot = Snapshot {
            hotspot_users: std::mem::take(&mut self.reuse.hotspot_users.rows),
            hotspot_active: active.hotspot,
            ppp_secrets: std::mem::take(&mut self.reuse.ppp_secrets.rows),
            ppp_active: active.ppp,
            router_boot: self.router_boot,
            // Assessed by the caller, after the reads.
            clock: None,
            hotspot_users_kept: !due[service_index(Service::Hotspot)],
            users_same: self.reuse.users_same(),
            sessions_kept: active.read == ActiveRead::Check,
            usage_early_secs: usage_early.as_secs(),
            // Filled by the caller with the clock.
            kicked: Default::default(),
        };
        Ok((snapshot, active.read))
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
        self.vet_reads(
            "list read",
            [&ha.traps, &pa.traps],
            &pi.traps,
            [&ha.value.warnings, &pa.value.warnings, &pi.value.warnings],
        )?;
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

    /// What a poll's active reads brought besides rows: a refused list
    /// fails the poll; a refused `/interface` read is extra (a restricted
    /// API user, an odd build: sessions still polled, PPPoE bytes unknown)
    /// and said once; values that did not parse are said once each.
    fn vet_reads(
        &mut self,
        what: &str,
        lists: [&Vec<crate::client::Trap>; 2],
        interfaces: &[crate::client::Trap],
        warnings: [&Vec<rows::ValueWarning>; 3],
    ) -> Result<(), ClientError> {
        if let Some(t) = interfaces.first() {
            self.warn_once(format!(
                "/interface/print refused ({}): PPPoE byte counters unavailable",
                t.message
            ));
        }
        for folded in lists {
            if let Some(t) = folded.first() {
                return Err(ClientError::Trap {
                    command: what.into(),
                    category: t.category,
                    message: t.message.clone(),
                });
            }
        }
        for w in warnings.into_iter().flatten() {
            self.warn_once(format!(
                "{} {}: cannot parse {:?}; value skipped",
                w.table, w.field, w.value
            ));
        }
        Ok(())
    }

    /// The active lists' counters, merged into the agent's copy; `None`
    /// when a list's `.id`s disagree with the copy (its listen is then
    /// marked for reopening, and the caller reads the lists in full).
    fn took_counters(
        &mut self,
        read: CountersActive,
        now: std::time::Instant,
    ) -> Result<Option<ActiveRows>, ClientError> {
        let CountersActive {
            hotspot: mut ha,
            ppp: mut pa,
            counters: pi,
        } = read;
        self.vet_reads(
            "counters read",
            [&ha.traps, &pa.traps],
            &pi.traps,
            [&ha.value.warnings, &pa.value.warnings, &pi.value.warnings],
        )?;
        let mut agree = true;
        for (service, rows) in [
            (Service::Hotspot, &mut ha.value),
            (Service::Pppoe, &mut pa.value),
        ] {
            let mut ids: Vec<_> = rows.rows.iter().map(|r| r.id).collect();
            if rows.bad_ids == 0 && self.book.poll.same_ids(service, &mut ids) {
                continue;
            }
            let (held, kept) = (
                rows.rows.len() + rows.bad_ids,
                self.book.poll.active_count(service),
            );
            let list = crate::commands::active(service);
            if held == kept {
                log::info!(
                    "{list}'s .ids differ from the listen's copy ({held} rows each): reading it in full, reopening its listen"
                );
            } else {
                log::info!(
                    "{list} holds {held} rows, the listen's copy {kept}: reading it in full, reopening its listen"
                );
            }
            self.book.poll.listen_ended(List::Active(service), true);
            agree = false;
        }
        if !agree {
            return Ok(None);
        }
        // Sessions of users the agent does not manage are counted, not
        // kept: the step would drop them anyway.
        let (hotspot, ppp) = monitor::kept_rows(&self.state.sessions);
        let mut kept = ActiveRows {
            hotspot,
            ppp,
            read: ActiveRead::Counters,
        };
        for (rows, counters) in [
            (&mut kept.hotspot, &mut ha.value.rows),
            (&mut kept.ppp, &mut pa.value.rows),
        ] {
            counters.sort_unstable_by_key(|c| c.id);
            for row in rows.iter_mut() {
                let Ok(at) = counters.binary_search_by_key(&row.id, |c| c.id) else {
                    continue;
                };
                let c = counters[at];
                row.uptime_secs = c.uptime_secs;
                row.bytes_in = c.bytes_in;
                row.bytes_out = c.bytes_out;
            }
        }
        if pi.traps.is_empty() {
            pi.value.fill(&mut kept.ppp);
        }
        self.book.poll.read_counters(now);
        Ok(Some(kept))
    }

    /// The active lists only counted (their counts agree with the copy):
    /// the step takes the open sessions of its state for rows.
    fn kept_active(&self) -> ActiveRows {
        ActiveRows {
            hotspot: Vec::new(),
            ppp: Vec::new(),
            read: ActiveRead::Check,
        }
    }
}

/// The active lists as a poll has them: read in full, or the agent's copy.
struct ActiveRows {
    hotspot: Vec<SessionRow>,
    ppp: Vec<SessionRow>,
    read: ActiveRead,
}

/// The active lists and the PPPoE counters as read in full.
struct FullActive {
    hotspot: crate::client::Folded<rows::SessionRows>,
    ppp: crate::client::Folded<rows::SessionRows>,
    counters: crate::client::Folded<rows::PppoeCounters>,
}

impl FullActive {
    /// The read's names, for the next full read to reuse.
    fn keep_names(&mut self, reuse: &mut super::Reuse) {
        reuse.hotspot_active.0 = self.hotspot.value.names.rotated();
        reuse.ppp_active.0 = self.ppp.value.names.rotated();
    }
}

/// The active lists' counters and the PPPoE counters.
struct CountersActive {
    hotspot: crate::client::Folded<CounterRows>,
    ppp: crate::client::Folded<CounterRows>,
    counters: crate::client::Folded<rows::PppoeCounters>,
}

/// What a poll's active read brought.
enum ActiveReply {
    Full(FullActive),
    Counters(CountersActive),
    /// Counted only (or nothing): the agent's copy stands in.
    Kept,
}

/// Reads both active lists' counters and the PPPoE counters.
async fn read_active_counters(router: &Router) -> Result<CountersActive, ClientError> {
    let (ha, pa, pi) = tokio::join!(
        reads::counters(router, Service::Hotspot),
        reads::counters(router, Service::Pppoe),
        reads::pppoe_counters(router),
    );
    Ok(CountersActive {
        hotspot: ha?,
        ppp: pa?,
        counters: pi?,
    })
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
