//! Voucher lifecycle: activation on first login, enforcement at expiry.
//!
//! Decisions are recorded in [`VoucherProgress`] and committed (with their
//! events) before the driver touches the router, so a crash between the
//! two repeats the router write, never the event. Router actions are
//! re-planned every cycle until the router's own lists confirm them.

use std::collections::BTreeMap;

use super::action::Action;
use super::{SessionRow, UserRow, VoucherProgress};
use crate::clock::{Timestamp, parse_rfc3339};
use crate::comment::{Comment, SystemComment, SystemKind};
use crate::event::{EventKind, ExpiredAction};
use crate::name::Name;

pub(super) struct Plan {
    pub vouchers: BTreeMap<Name, VoucherProgress>,
    pub events: Vec<EventKind>,
    pub actions: Vec<Action>,
    pub warnings: Vec<String>,
}

pub(super) fn plan(
    prev: &BTreeMap<Name, VoucherProgress>,
    users: &[&UserRow],
    active: &[&SessionRow],
    now: Timestamp,
    on_expiry: ExpiredAction,
) -> Plan {
    let mut out = Plan {
        vouchers: BTreeMap::new(),
        events: Vec::new(),
        actions: Vec::new(),
        warnings: Vec::new(),
    };
    // Sessions by user, built once: a scan per user would be quadratic.
    let mut by_user: BTreeMap<&Name, Vec<&SessionRow>> = BTreeMap::new();
    for s in active {
        by_user.entry(&s.user).or_default().push(s);
    }
    for user in users {
        let Comment::System(meta) = Comment::parse(user.comment.as_bytes()) else {
            continue;
        };
        if meta.kind() != SystemKind::Voucher {
            continue;
        }
        let mut progress = prev.get(&user.name).cloned().unwrap_or_default();
        let sessions: &[&SessionRow] = by_user.get(&user.name).map_or(&[], Vec::as_slice);
        let batch_id = Name::new(meta.batch_id().unwrap_or_default());

        // A hand-edited date that does not parse: acting on it could extend
        // the voucher (re-activation) or end it early, so leave it alone and
        // say so once, until the comment is fixed.
        if let Some(reason) = unreadable_dates(&meta) {
            if !progress.invalid_reported {
                progress.invalid_reported = true;
                out.events.push(EventKind::VoucherInvalid {
                    user: user.name.clone(),
                    reason,
                    comment: user.comment.clone(),
                });
            }
            out.vouchers.insert(user.name.clone(), progress);
            continue;
        }
        progress.invalid_reported = false;

        // Activation.
        if meta.first_login_at().is_some() {
            // The router has it: nothing pending any more.
            progress.activation = None;
        } else if let Some((first, expires)) = progress.activation {
            // Decided earlier, write not confirmed yet: retry with the same times.
            out.actions.push(Action::SetComment {
                id: user.id,
                user: user.name.clone(),
                comment: Name::new(meta.with_activation(first, expires).to_bytes()),
            });
        } else if let Some((first, estimated)) = first_use(sessions, user, now) {
            match meta.valid_hours() {
                Some(hours) => {
                    let expires = first.plus_hours(hours);
                    progress.activation = Some((first, expires));
                    out.events.push(EventKind::VoucherActivated {
                        user: user.name.clone(),
                        batch_id: batch_id.clone(),
                        valid_hours: hours,
                        first_login_at: first,
                        expires_at: expires,
                        estimated,
                    });
                    out.actions.push(Action::SetComment {
                        id: user.id,
                        user: user.name.clone(),
                        comment: Name::new(meta.with_activation(first, expires).to_bytes()),
                    });
                }
                None => out.warnings.push(format!(
                    "voucher {} has no usable valid_hours in its comment; not activating it",
                    user.name
                )),
            }
        }

        // Expiry: from the comment, else from first login + valid hours,
        // else from an activation not yet written back.
        let expires_at = meta
            .expires_at()
            .or_else(|| Some(meta.first_login_at()?.plus_hours(meta.valid_hours()?)))
            .or(progress.activation.map(|(_, e)| e));
        if let Some(expires_at) = expires_at.filter(|e| now >= *e) {
            if progress.expired_for != Some(expires_at) {
                progress.expired_for = Some(expires_at);
                progress.enforced = false;
                out.events.push(EventKind::VoucherExpired {
                    user: user.name.clone(),
                    batch_id,
                    expires_at,
                    action: on_expiry,
                });
            }
            if !progress.enforced {
                let user_done = match on_expiry {
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
                    if on_expiry == ExpiredAction::Disable && !user.disabled {
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
                    if on_expiry == ExpiredAction::Remove {
                        out.actions.push(Action::RemoveUser {
                            id: user.id,
                            user: user.name.clone(),
                        });
                    }
                }
            }
        }
        if progress != VoucherProgress::default() {
            out.vouchers.insert(user.name.clone(), progress);
        }
    }
    // Vouchers whose user is gone from the router (removed at expiry, or by
    // the operator) are dropped: there is nothing left to act on.
    out
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
fn unreadable_dates(meta: &SystemComment) -> Option<String> {
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
