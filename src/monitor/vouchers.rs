//! Voucher lifecycle: activation on first login, enforcement at expiry.
//!
//! Decisions are recorded in [`VoucherProgress`] and committed (with their
//! events) before the driver touches the router, so a crash between the
//! two repeats the router write, never the event. Router actions are
//! re-planned every cycle until the router's own lists confirm them.

use super::action::{Action, CommentText};
use super::clock_trust::ClockNow;
use super::glob::glob_match;
use super::name_index::NameIndex;
use super::sorted_map::SortedMap;
use super::{MonitorConfig, Provisional, SessionRow, UserRow, VoucherProgress};
use crate::clock::{Timestamp, parse_rfc3339};
use crate::comment::VoucherView;
use crate::event::{EventKind, ExpiredAction};
use crate::name::Id;
use crate::name::{Mac, Name};
use crate::valid_hours::{ValidHours, ValidHoursError};

pub(super) struct Plan {
    pub vouchers: SortedMap<Name, VoucherProgress>,
    pub events: Vec<EventKind>,
    pub actions: Vec<Action>,
    pub warnings: Vec<String>,
}

/// Plans every voucher among `users`: each one's progress decided by
/// [`Voucher::decide`] (its phases in order: unusable comment, activation,
/// correction, expiry), then `prev` patched with what changed.
pub(super) fn plan(
    prev: &SortedMap<Name, VoucherProgress>,
    users: &[&UserRow],
    active: &[OpenSession<'_>],
    now: Timestamp,
    clock: &ClockNow,
    cfg: &MonitorConfig,
    events: Vec<EventKind>,
) -> Plan {
    let mut out = Plan {
        vouchers: SortedMap::new(),
        // The step's events so far: the plan's follow them.
        events,
        actions: Vec::new(),
        warnings: Vec::new(),
    };
    let by_user = sessions_by_user(active);
    // `prev` by name through a hash index of its positions: a binary
    // search per voucher grew as n log n (16 name comparisons a voucher
    // at 50,000).
    let prev_len = u32::try_from(prev.len())
        .unwrap_or(u32::MAX - 1)
        .min(u32::MAX - 1);
    let prev_name = |i: u32| prev.key_at(i as usize).as_bytes();
    let prev_index = NameIndex::build(0..prev_len, prev_name);
    let mut changes = Changes::default();
    let mut sessions = Vec::new();
    for user in users {
        let Some(meta) = VoucherView::parse(user.comment.as_bytes()) else {
            continue;
        };
        let before = prev_index
            .get(user.name.as_bytes(), prev_name)
            .map(|i| prev.value_at(i as usize));
        by_user.of(&user.name, &mut sessions);
        let voucher = Voucher {
            user,
            meta,
            sessions: &sessions,
            now,
            clock,
            cfg,
        };
        let progress = voucher.decide(before.cloned().unwrap_or_default(), &mut out);
        changes.record(&user.name, before, progress);
    }
    out.vouchers = changes.patch(prev, users);
    out
}

/// What the plan needs of an open hotspot session, from a row read this
/// poll or from the state's own record of it (a poll that only counted).
#[derive(Debug, Clone, Copy)]
pub(super) struct OpenSession<'a> {
    pub user: &'a Name,
    pub id: Id,
    pub mac: Option<Mac>,
}

impl<'a> OpenSession<'a> {
    /// A session of `user` (the user row's own name is borrowed).
    pub fn of(user: &'a UserRow, id: Id, mac: Option<Mac>) -> OpenSession<'a> {
        OpenSession {
            user: &user.name,
            id,
            mac,
        }
    }
}

impl<'a> From<&'a SessionRow> for OpenSession<'a> {
    fn from(r: &'a SessionRow) -> OpenSession<'a> {
        OpenSession {
            user: &r.user,
            id: r.id,
            mac: r.mac,
        }
    }
}

/// Sessions by user: the active rows in the router's order, each linked
/// to the one before it of the same user, found from a hash index of each
/// user's last row. No hash map of lists (most of half a megabyte a poll
/// at 5,000 sessions), no sort by name and no binary search per voucher
/// (n log n name comparisons, a fifth of a quiet poll's CPU at 10,000
/// users): about twelve bytes a session.
struct SessionsByUser<'a> {
    rows: &'a [OpenSession<'a>],
    last: NameIndex,
    before: Vec<u32>,
}

fn sessions_by_user<'a>(active: &'a [OpenSession<'a>]) -> SessionsByUser<'a> {
    let len = u32::try_from(active.len())
        .unwrap_or(u32::MAX - 1)
        .min(u32::MAX - 1);
    let (last, before) = NameIndex::build_chained(len, |i| active[i as usize].user.as_bytes());
    SessionsByUser {
        rows: &active[..len as usize],
        last,
        before,
    }
}

impl<'a> SessionsByUser<'a> {
    /// `user`'s sessions into `out`, in the router's order.
    fn of(&self, user: &Name, out: &mut Vec<OpenSession<'a>>) {
        out.clear();
        let rows = self.rows;
        let mut at = self
            .last
            .get(user.as_bytes(), |i| rows[i as usize].user.as_bytes());
        while let Some(p) = at {
            out.push(rows[p as usize]);
            at = self
                .before
                .get(p as usize)
                .copied()
                .filter(|&b| b != u32::MAX);
        }
        out.reverse();
    }
}

/// What changes against `prev`: in most polls nothing, and `prev` is then
/// kept as it is (no new map is built just to be compared).
#[derive(Default)]
struct Changes {
    puts: Vec<(Name, VoucherProgress)>,
    dels: Vec<Name>,
    /// Entries of `prev` that stay (same name, progress to keep).
    kept_from_prev: usize,
}

impl Changes {
    /// One voucher's decided progress against its entry in `prev`.
    fn record(&mut self, name: &Name, before: Option<&VoucherProgress>, progress: VoucherProgress) {
        if progress == VoucherProgress::default() {
            if before.is_some() {
                self.dels.push(name.clone());
            }
            return;
        }
        self.kept_from_prev += usize::from(before.is_some());
        if before != Some(&progress) {
            self.puts.push((name.clone(), progress));
        }
    }

    /// `prev` patched; when nothing changed (most polls) the same copy, so
    /// the two states share one and the delta sees it at once.
    fn patch(
        mut self,
        prev: &SortedMap<Name, VoucherProgress>,
        users: &[&UserRow],
    ) -> SortedMap<Name, VoucherProgress> {
        let mut vouchers = prev.clone();
        // Vouchers whose user is gone from the router (removed at expiry, or
        // by the operator), or is no voucher any more, are dropped: there
        // is nothing left to act on.
        if self.kept_from_prev < prev.len() {
            let mut present: Vec<&Name> = users
                .iter()
                .filter(|u| VoucherView::parse(u.comment.as_bytes()).is_some())
                .map(|u| &u.name)
                .collect();
            present.sort_unstable();
            self.dels.sort_unstable();
            let dels = &self.dels;
            vouchers.retain(|name, _| {
                present.binary_search(&name).is_ok() && dels.binary_search(name).is_err()
            });
        }
        vouchers.insert_all(self.puts);
        vouchers
    }
}

/// The comment's dates, each parsed once.
struct Dates {
    first_login_at: Option<Timestamp>,
    expires_at: Option<Timestamp>,
}

impl Dates {
    /// The dates, or why they cannot be trusted: a field present and not
    /// blank that is not RFC 3339. A blank field is no date.
    fn parse(meta: &VoucherView) -> Result<Dates, String> {
        let date = |field: &str, raw: Option<&[u8]>| match raw.filter(|r| !r.is_empty()) {
            None => Ok(None),
            Some(raw) => match parse_rfc3339(raw) {
                Ok(t) => Ok(Some(t)),
                Err(_) if raw.trim_ascii().is_empty() => Ok(None),
                Err(e) => Err(format!("{field}: {e}")),
            },
        };
        Ok(Dates {
            first_login_at: date("first_login_at", meta.first_login_at_raw())?,
            expires_at: date("expires_at", meta.expires_at_raw())?,
        })
    }
}

/// One voucher as this poll sees it.
struct Voucher<'a> {
    user: &'a UserRow,
    meta: VoucherView<'a>,
    /// Its active rows, in the router's order.
    sessions: &'a [OpenSession<'a>],
    now: Timestamp,
    clock: &'a ClockNow,
    cfg: &'a MonitorConfig,
}

impl Voucher<'_> {
    /// The voucher's next progress, with the events, actions and warnings
    /// that go with it.
    fn decide(&self, mut progress: VoucherProgress, out: &mut Plan) -> VoucherProgress {
        let hours = self.meta.valid_hours_checked();
        let dates = match self.usable(&hours) {
            Ok(dates) => dates,
            Err(reason) => {
                self.report_invalid(&mut progress, reason, out);
                return progress;
            }
        };
        progress.invalid_reported = false;
        let hours = hours.ok();
        let correcting = progress.provisional.is_some_and(|p| p.corrected);
        self.activate(&mut progress, &dates, hours, correcting, out);
        if let Some(hours) = hours {
            self.correct(&mut progress, &dates, hours, out);
        }
        self.expire(&mut progress, &dates, hours, correcting, out);
        progress
    }

    /// The dates, unless the voucher must be left alone: a hand-edited
    /// date that does not parse (acting on it could extend the voucher by
    /// a re-activation or end it early), or a validity that cannot be used
    /// (negative, not a number, empty) with no `expires_at` to go by (the
    /// voucher would never expire).
    fn usable(&self, hours: &Result<ValidHours, ValidHoursError>) -> Result<Dates, String> {
        let dates = Dates::parse(&self.meta)?;
        match (hours, self.meta.expires_at_raw()) {
            (Err(e), None | Some(b"")) => Err(e.to_string()),
            _ => Ok(dates),
        }
    }

    /// Said once (an alert centrally), until the comment is fixed.
    fn report_invalid(&self, progress: &mut VoucherProgress, reason: String, out: &mut Plan) {
        if progress.invalid_reported {
            return;
        }
        progress.invalid_reported = true;
        out.events.push(EventKind::VoucherInvalid {
            user: self.user.name.clone(),
            reason,
            comment: self.user.comment.clone(),
        });
    }

    /// Only events carry it: made when one is emitted, not per voucher per poll.
    fn batch_id(&self) -> Name {
        Name::new(self.meta.batch_id().unwrap_or_default())
    }

    fn activation_text(
        &self,
        first: Timestamp,
        expires: Timestamp,
        mac: Option<Mac>,
    ) -> CommentText {
        CommentText::Activation {
            base: self.user.comment.clone(),
            first_login_at: first,
            expires_at: expires,
            mac,
        }
    }

    fn pending_write(&self, first: Timestamp, expires: Timestamp, mac: Option<Mac>) -> Action {
        Action::SetComment {
            id: self.user.id,
            user: self.user.name.clone(),
            comment: self.activation_text(first, expires, mac),
        }
    }

    fn locks_mac(&self) -> bool {
        self.cfg.mac_lock
            || self
                .cfg
                .mac_lock_pattern
                .as_deref()
                .is_some_and(|p| glob_match(p, self.user.profile.as_bytes()))
    }

    /// Activation: confirmed by the router's comment, a write to retry, or
    /// a first use that activates it now.
    fn activate(
        &self,
        progress: &mut VoucherProgress,
        dates: &Dates,
        hours: Option<ValidHours>,
        correcting: bool,
        out: &mut Plan,
    ) {
        if let Some(first) = dates.first_login_at
            && progress
                .activation
                .is_none_or(|(want, _)| !correcting || want == first)
        {
            // The router has it (for a correction: the corrected time).
            progress.activation = None;
            progress.mac = None;
            if correcting {
                progress.provisional = None;
            }
        } else if let Some((first, expires)) = progress.activation {
            // Decided earlier, write not confirmed yet: retry with the same
            // times. The MAC lock first: the driver skips a user's later
            // actions after a failure, so a written comment means a lock.
            if let Some(mac) = progress.mac {
                out.actions.push(Action::LockMac {
                    id: self.user.id,
                    user: self.user.name.clone(),
                    mac,
                });
            }
            out.actions
                .push(self.pending_write(first, expires, progress.mac));
        } else if let Some((first, estimated)) = first_use(self.sessions, self.user, self.now) {
            match hours {
                Some(hours) => self.activate_now(progress, first, estimated, hours, out),
                None => out.warnings.push(format!(
                    "voucher {} has no usable valid_hours in its comment; not activating it",
                    self.user.name
                )),
            }
        }
    }

    /// A first use seen: the activation decided, its event, and the writes.
    fn activate_now(
        &self,
        progress: &mut VoucherProgress,
        first: Timestamp,
        estimated: bool,
        hours: ValidHours,
        out: &mut Plan,
    ) {
        let (now, clock) = (self.now, self.clock);
        let expires = first.plus_valid(hours);
        progress.activation = Some((first, expires));
        let provisional = !clock.trusted;
        // Assigned either way: a comment reset by hand starts a new
        // activation, which must not inherit an old anchor. An estimated
        // first use lies `now - first` in the past on the elapsed clock too.
        let back = u64::try_from(now.secs_since(first)).unwrap_or(0);
        progress.provisional = provisional.then(|| Provisional {
            // Untrusted implies an assessed clock, so a ledger.
            anchor: clock.elapsed.unwrap_or(0).saturating_sub(back),
            first_login_at: first,
            corrected: false,
        });
        let locks_mac = self.locks_mac();
        let session_mac = self.sessions.first().and_then(|s| s.mac);
        let mac = if locks_mac { session_mac } else { None };
        if locks_mac && mac.is_none() && !estimated {
            out.warnings.push(format!(
                "voucher {}: MAC lock wanted but the session shows no MAC",
                self.user.name
            ));
        }
        progress.mac = mac;
        out.events.push(EventKind::VoucherActivated {
            user: self.user.name.clone(),
            batch_id: self.batch_id(),
            valid_hours: hours,
            first_login_at: first,
            expires_at: expires,
            provisional,
            mac,
            estimated,
            comment: Name::new(self.activation_text(first, expires, mac).render()),
        });
        if let Some(mac) = mac {
            out.actions.push(Action::LockMac {
                id: self.user.id,
                user: self.user.name.clone(),
                mac,
            });
        }
        out.actions.push(self.pending_write(first, expires, mac));
    }

    /// A trusted time arrived for a provisional activation: re-stamp it at
    /// trusted now minus the monotonic time elapsed since, once.
    fn correct(
        &self,
        progress: &mut VoucherProgress,
        dates: &Dates,
        hours: ValidHours,
        out: &mut Plan,
    ) {
        let (Some(p), true, Some(elapsed)) =
            (progress.provisional, self.clock.trusted, self.clock.elapsed)
        else {
            return;
        };
        if p.corrected {
            return;
        }
        let since = i64::try_from(elapsed.saturating_sub(p.anchor)).unwrap_or(i64::MAX);
        let first = self.now.plus_secs(-since);
        let expires = first.plus_valid(hours);
        progress.provisional = Some(Provisional {
            corrected: true,
            ..p
        });
        progress.activation = Some((first, expires));
        // Already expired on elapsed time: that event stands; the
        // corrected term is the one it was about.
        if progress.expired_for.is_some() {
            progress.expired_for = Some(expires);
        }
        out.events.push(EventKind::VoucherCorrected {
            user: self.user.name.clone(),
            batch_id: self.batch_id(),
            valid_hours: hours,
            first_login_at: first,
            expires_at: expires,
            provisional_first_login_at: p.first_login_at,
            comment: Name::new(self.activation_text(first, expires, progress.mac).render()),
        });
        if dates.first_login_at != Some(first) {
            // Replaces a retry of the provisional write planned above.
            let id = self.user.id;
            out.actions
                .retain(|a| !matches!(a, Action::SetComment { id: a_id, .. } if *a_id == id));
            out.actions
                .push(self.pending_write(first, expires, progress.mac));
        } else {
            progress.activation = None;
            progress.provisional = None;
        }
    }

    /// When the voucher expires: from the comment, else from first login
    /// plus valid hours, else from an activation not yet written back. A
    /// corrected activation's times win over the provisional ones in the
    /// comment.
    fn expires_at(
        &self,
        progress: &VoucherProgress,
        dates: &Dates,
        hours: Option<ValidHours>,
        correcting: bool,
    ) -> Option<Timestamp> {
        let from_comment = dates
            .expires_at
            .or_else(|| Some(dates.first_login_at?.plus_valid(hours?)));
        if correcting || progress.provisional.is_some_and(|p| p.corrected) {
            progress.activation.map(|(_, e)| e).or(from_comment)
        } else {
            from_comment.or(progress.activation.map(|(_, e)| e))
        }
    }

    /// Whether `expires_at` has come. Never early because of a wrong
    /// clock: the wall clock counts only when trusted; otherwise only time
    /// certainly elapsed does (the floor from the last trusted time, or for
    /// a provisional activation the monotonic time since it).
    fn due(
        &self,
        progress: &VoucherProgress,
        hours: Option<ValidHours>,
        expires_at: Timestamp,
    ) -> bool {
        let (now, clock) = (self.now, self.clock);
        match progress.provisional.filter(|p| !p.corrected) {
            Some(p) => match (clock.elapsed, hours) {
                (Some(elapsed), Some(hours)) => {
                    elapsed.saturating_sub(p.anchor) >= u64::from(hours.minutes()) * 60
                }
                // No ledger (clock not assessed): the wall clock decides.
                _ => clock.trusted && now >= expires_at,
            },
            None => {
                (clock.trusted && now >= expires_at)
                    || clock.floor.is_some_and(|floor| floor >= expires_at)
            }
        }
    }

    /// Expiry: the event once per term, then the router actions until the
    /// router's lists show them done.
    fn expire(
        &self,
        progress: &mut VoucherProgress,
        dates: &Dates,
        hours: Option<ValidHours>,
        correcting: bool,
        out: &mut Plan,
    ) {
        let Some(expires_at) = self
            .expires_at(progress, dates, hours, correcting)
            .filter(|e| self.due(progress, hours, *e))
        else {
            return;
        };
        if progress.expired_for != Some(expires_at) {
            progress.expired_for = Some(expires_at);
            progress.enforced = false;
            out.events.push(EventKind::VoucherExpired {
                user: self.user.name.clone(),
                batch_id: self.batch_id(),
                expires_at,
                action: self.cfg.expired_action,
            });
        }
        if !progress.enforced {
            self.enforce(progress, out);
        }
    }

    /// The expiry's router actions, or `enforced` once they show.
    fn enforce(&self, progress: &mut VoucherProgress, out: &mut Plan) {
        let (user, action) = (self.user, self.cfg.expired_action);
        let user_done = match action {
            ExpiredAction::Disable => user.disabled,
            // A removed user is absent from the list (handled by `patch`).
            ExpiredAction::Remove => false,
        };
        if user_done && self.sessions.is_empty() {
            progress.enforced = true;
            return;
        }
        // Disable before kicking, so the user cannot log straight back in;
        // kick before removing, because a session whose user is gone is no
        // longer recognised as ours.
        if action == ExpiredAction::Disable && !user.disabled {
            out.actions.push(Action::DisableUser {
                id: user.id,
                user: user.name.clone(),
            });
        }
        for s in self.sessions {
            out.actions.push(Action::Kick {
                active_id: s.id,
                user: user.name.clone(),
            });
        }
        if action == ExpiredAction::Remove {
            out.actions.push(Action::RemoveUser {
                id: user.id,
                user: user.name.clone(),
            });
        }
    }
}

/// When a not yet activated voucher was first used, and whether that is an
/// estimate: now, when a session is open (the poll or listen sees the
/// login); otherwise, when the user's cumulative uptime shows sessions the
/// agent never saw, now minus that uptime (the latest the first login can
/// have been, so the voucher never loses time to the estimate).
fn first_use(
    sessions: &[OpenSession<'_>],
    user: &UserRow,
    now: Timestamp,
) -> Option<(Timestamp, bool)> {
    if !sessions.is_empty() {
        return Some((now, false));
    }
    let used = user.totals.map_or(0, |t| t.uptime_secs);
    (used > 0).then(|| {
        (
            now.plus_secs(-(i64::try_from(used).unwrap_or(i64::MAX))),
            true,
        )
    })
}
