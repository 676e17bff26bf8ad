//! What the listens hear, handled: session changes applied through the
//! pure [`monitor::apply_listen`] and committed like a poll; user-list rows
//! kept in the copy of the user lists; ended listens noted for reopening.

use std::sync::Arc;

use super::listen::{self, List, Listens};
use super::{Agent, AgentError, service_index, user_table};
use crate::clock::Timestamp;
use crate::event::Service;
use crate::monitor;
use crate::store::StateDelta;

impl Agent {
    /// Takes note of which listens are open (after opening some).
    pub(super) fn note_listening(&mut self, listens: &Listens) {
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
    pub(super) fn reopen_listens(&mut self, listens: &mut Listens) {
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

    /// Handles what a listen heard that needs no commit (a user list's
    /// row, a skipped row, an ended listen, said once) and hands back a
    /// session list's change.
    pub(super) fn on_heard_quietly(
        &mut self,
        heard: listen::Heard,
    ) -> Option<monitor::ListenChange> {
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
    pub(super) async fn on_heard(&mut self, heard: listen::Heard) -> Result<(), AgentError> {
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
}
