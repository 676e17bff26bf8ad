//! Voucher lifecycle: activation on first login, enforcement at expiry.
//!
//! Decisions are recorded in [`VoucherProgress`] and committed (with their
//! events) before the driver touches the router, so a crash between the
//! two repeats the router write, never the event. Router actions are
//! re-planned every cycle until the router's own lists confirm them.

use super::action::{Action, CommentText};
use super::clock_trust::ClockNow;
use super::glob::glob_match;
use super::sorted_map::SortedMap;
use super::{MonitorConfig, Provisional, SessionRow, UserRow, VoucherProgress};
use crate::clock::{Timestamp, parse_rfc3339};
use crate::comment::VoucherView;
use crate::event::{EventKind, ExpiredAction};
use crate::name::{Mac, Name};

pub(super) struct Plan {
    pub vouchers: SortedMap<Name, VoucherProgress>,
    pub events: Vec<EventKind>,
    pub actions: Vec<Action>,
    pub warnings: Vec<String>,
}

pub(super) fn plan(
    prev: &SortedMap<Name, VoucherProgress>,
    users: &[&UserRow],
    active: &[&SessionRow],
    now: Timestamp,
    clock: &ClockNow,
    cfg: &MonitorConfig,
) -> Plan {
    let mut out = Plan {
        vouchers: SortedMap::new(),
        events: Vec::new(),
        actions: Vec::new(),
        warnings: Vec::new(),
    };
    // Sessions by user: the active rows sorted by user name (stable, so a
    // user's sessions stay in the router's order), one binary search per
    // voucher. No hash map of lists: at 5,000 sessions that was most of
    // half a megabyte a poll, for what is four bytes a session here.
    let mut by_user: Vec<&SessionRow> = active.to_vec();
    by_user.sort_by(|a, b| a.user.cmp(&b.user));
    // What changes against `prev`: in most polls nothing, and `prev` is
    // then kept as it is (no new map is built just to be compared).
    let mut puts: Vec<(Name, VoucherProgress)> = Vec::new();
    let mut dels: Vec<Name> = Vec::new();
    // Entries of `prev` that stay (same name, progress to keep).
    let mut kept_from_prev = 0;
    for user in users {
        let Some(meta) = VoucherView::parse(user.comment.as_bytes()) else {
            continue;
        };
        let before = prev.get(&user.name);
        let mut progress = before.cloned().unwrap_or_default();
        let mut keep = |progress: VoucherProgress| {
            if progress == VoucherProgress::default() {
                if before.is_some() {
                    dels.push(user.name.clone());
                }
                return;
            }
            kept_from_prev += usize::from(before.is_some());
            if before != Some(&progress) {
                puts.push((user.name.clone(), progress));
            }
        };
        let sessions = sessions_of(&by_user, &user.name);
        // Only events carry it: made when one is emitted, not per voucher per poll.
        let batch_id = || Name::new(meta.batch_id().unwrap_or_default());

        // A hand-edited date that does not parse: acting on it could extend
        // the voucher (re-activation) or end it early, so leave it alone and
        // say so once, until the comment is fixed.
        // A validity that cannot be used (negative, not a number, empty)
        // with no `expires_at` to go by: the voucher would never expire, so
        // it is reported (an alert centrally) instead of activated.
        let hours = meta.valid_hours_checked();
        let unusable_hours = match (&hours, meta.expires_at_raw()) {
            (Err(e), None) => Some(e.to_string()),
            (Err(e), Some(b"")) => Some(e.to_string()),
            _ => None,
        };
        if let Some(reason) = unreadable_dates(&meta).or(unusable_hours) {
            if !progress.invalid_reported {
                progress.invalid_reported = true;
                out.events.push(EventKind::VoucherInvalid {
                    user: user.name.clone(),
                    reason,
                    comment: user.comment.clone(),
                });
            }
            keep(progress);
            continue;
        }
        progress.invalid_reported = false;

        let hours = hours.ok();
        let locks_mac = cfg.mac_lock
            || cfg
                .mac_lock_pattern
                .as_deref()
                .is_some_and(|p| glob_match(p, user.profile.as_bytes()));

        // Activation.
        let activation_text =
            |first: Timestamp, expires: Timestamp, mac: Option<Mac>| CommentText::Activation {
                base: user.comment.clone(),
                first_login_at: first,
                expires_at: expires,
                mac,
            };
        let pending_write =
            |first: Timestamp, expires: Timestamp, mac: Option<Mac>| Action::SetComment {
                id: user.id,
                user: user.name.clone(),
                comment: activation_text(first, expires, mac),
            };
        let correcting = progress.provisional.is_some_and(|p| p.corrected);
        if let Some(first) = meta.first_login_at()
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
                    id: user.id,
                    user: user.name.clone(),
                    mac,
                });
            }
            out.actions
                .push(pending_write(first, expires, progress.mac));
        } else if let Some((first, estimated)) = first_use(sessions, user, now) {
            match hours {
                Some(hours) => {
                    let expires = first.plus_valid(hours);
                    progress.activation = Some((first, expires));
                    let provisional = !clock.trusted;
                    // Assigned either way: a comment reset by hand starts a
                    // new activation, which must not inherit an old anchor.
                    // An estimated first use lies `now - first` in the past
                    // on the elapsed clock too.
                    let back = u64::try_from(now.secs_since(first)).unwrap_or(0);
                    progress.provisional = provisional.then(|| Provisional {
                        // Untrusted implies an assessed clock, so a ledger.
                        anchor: clock.elapsed.unwrap_or(0).saturating_sub(back),
                        first_login_at: first,
                        corrected: false,
                    });
                    let session_mac = sessions.first().and_then(|s| s.mac);
                    let mac = if locks_mac { session_mac } else { None };
                    if locks_mac && mac.is_none() && !estimated {
                        out.warnings.push(format!(
                            "voucher {}: MAC lock wanted but the session shows no MAC",
                            user.name
                        ));
                    }
                    progress.mac = mac;
                    out.events.push(EventKind::VoucherActivated {
                        user: user.name.clone(),
                        batch_id: batch_id(),
                        valid_hours: hours,
                        first_login_at: first,
                        expires_at: expires,
                        provisional,
                        mac,
                        estimated,
                        comment: Name::new(activation_text(first, expires, mac).render()),
                    });
                    if let Some(mac) = mac {
                        out.actions.push(Action::LockMac {
                            id: user.id,
                            user: user.name.clone(),
                            mac,
                        });
                    }
                    out.actions.push(pending_write(first, expires, mac));
                }
                None => out.warnings.push(format!(
                    "voucher {} has no usable valid_hours in its comment; not activating it",
                    user.name
                )),
            }
        }

        // A trusted time arrived for a provisional activation: re-stamp it
        // at trusted now minus the monotonic time elapsed since, once.
        if let (Some(p), true, Some(elapsed), Some(hours)) =
            (progress.provisional, clock.trusted, clock.elapsed, hours)
            && !p.corrected
        {
            let since = i64::try_from(elapsed.saturating_sub(p.anchor)).unwrap_or(i64::MAX);
            let first = now.plus_secs(-since);
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
                user: user.name.clone(),
                batch_id: batch_id(),
                valid_hours: hours,
                first_login_at: first,
                expires_at: expires,
                provisional_first_login_at: p.first_login_at,
                comment: Name::new(activation_text(first, expires, progress.mac).render()),
            });
            if meta.first_login_at() != Some(first) {
                // Replaces a retry of the provisional write planned above.
                out.actions
                    .retain(|a| !matches!(a, Action::SetComment { id, .. } if *id == user.id));
                out.actions
                    .push(pending_write(first, expires, progress.mac));
            } else {
                progress.activation = None;
                progress.provisional = None;
            }
        }

        // Expiry: from the comment, else from first login + valid hours,
        // else from an activation not yet written back. A corrected
        // activation's times win over the provisional ones in the comment.
        let from_comment = meta
            .expires_at()
            .or_else(|| Some(meta.first_login_at()?.plus_valid(meta.valid_hours()?)));
        let expires_at = if correcting || progress.provisional.is_some_and(|p| p.corrected) {
            progress.activation.map(|(_, e)| e).or(from_comment)
        } else {
            from_comment.or(progress.activation.map(|(_, e)| e))
        };
        // Never early because of a wrong clock: the wall clock counts only
        // when trusted; otherwise only time certainly elapsed does (the
        // floor from the last trusted time, or for a provisional activation
        // the monotonic time since it).
        let uncorrected = progress.provisional.filter(|p| !p.corrected);
        let due = |expires_at: Timestamp| match uncorrected {
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
        };
        if let Some(expires_at) = expires_at.filter(|e| due(*e)) {
            if progress.expired_for != Some(expires_at) {
                progress.expired_for = Some(expires_at);
                progress.enforced = false;
                out.events.push(EventKind::VoucherExpired {
                    user: user.name.clone(),
                    batch_id: batch_id(),
                    expires_at,
                    action: cfg.expired_action,
                });
            }
            if !progress.enforced {
                let user_done = match cfg.expired_action {
                    ExpiredAction::Disable => user.disabled,
                    // A removed user is absent from the list (handled below).
                    ExpiredAction::Remove => false,
                };
                if user_done && sessions.is_empty() {
                    progress.enforced = true;
                } else {
                    // Disable before kicking, so the user cannot log straight
                    // back in; kick before removing, because a session whose
                    // user is gone is no longer recognised as ours.
                    if cfg.expired_action == ExpiredAction::Disable && !user.disabled {
                        out.actions.push(Action::DisableUser {
                            id: user.id,
                            user: user.name.clone(),
                        });
                    }
                    for s in sessions {
                        out.actions.push(Action::Kick {
                            active_id: s.id,
                            user: user.name.clone(),
                        });
                    }
                    if cfg.expired_action == ExpiredAction::Remove {
                        out.actions.push(Action::RemoveUser {
                            id: user.id,
                            user: user.name.clone(),
                        });
                    }
                }
            }
        }
        keep(progress);
    }
    // `prev` patched; when nothing changed (most polls) the same copy, so
    // the two states share one and the delta sees it at once.
    out.vouchers = prev.clone();
    // Vouchers whose user is gone from the router (removed at expiry, or by
    // the operator), or is no voucher any more, are dropped: there is
    // nothing left to act on.
    if kept_from_prev < prev.len() {
        let mut vouchers: Vec<&Name> = users
            .iter()
            .filter(|u| VoucherView::parse(u.comment.as_bytes()).is_some())
            .map(|u| &u.name)
            .collect();
        vouchers.sort_unstable();
        dels.sort_unstable();
        out.vouchers.retain(|name, _| {
            vouchers.binary_search(&name).is_ok() && dels.binary_search(name).is_err()
        });
    }
    out.vouchers.insert_all(puts);
    out
}

/// `user`'s rows in `by_user` (sorted by user name).
fn sessions_of<'a>(by_user: &'a [&'a SessionRow], user: &Name) -> &'a [&'a SessionRow] {
    let start = by_user.partition_point(|s| s.user < *user);
    // A user has one session, or none, most of the time: a scan, not a
    // second search.
    let len = by_user[start..]
        .iter()
        .take_while(|s| s.user == *user)
        .count();
    &by_user[start..start + len]
}

/// When a not yet activated voucher was first used, and whether that is an
/// estimate: now, when a session is open (the poll or listen sees the
/// login); otherwise, when the user's cumulative uptime shows sessions the
/// agent never saw, now minus that uptime (the latest the first login can
/// have been, so the voucher never loses time to the estimate).
fn first_use(
    sessions: &[&SessionRow],
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

/// Why the comment's `first_login_at` or `expires_at` cannot be trusted:
/// present and non-empty, but not RFC 3339.
fn unreadable_dates(meta: &VoucherView) -> Option<String> {
    for (field, raw) in [
        ("first_login_at", meta.first_login_at_raw()),
        ("expires_at", meta.expires_at_raw()),
    ] {
        let Some(raw) = raw.filter(|r| !r.trim_ascii().is_empty()) else {
            continue;
        };
        if let Err(e) = parse_rfc3339(raw) {
            return Some(format!("{field}: {e}"));
        }
    }
    None
}
