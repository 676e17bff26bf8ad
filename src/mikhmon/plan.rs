//! What an import (or an undo) would change: router lists, the router's
//! offset and `now` in, rewrites and a report out. Pure, so every case is
//! a unit test; the driver (`import.rs`) does the reading and writing.

use std::collections::HashMap;

use super::comment::{MikhmonComment, parse_user_comment};
use super::csv::CsvRow;
use super::profile::{ExpiryMode, HeaderError, ProfileMeta, parse_on_login};
use crate::clock::Timestamp;
use crate::comment::{Comment, SystemComment, SystemKind, has_system_marker};
use crate::monitor::glob_match;
use crate::name::{Id, Name};

/// `created_by` of every migrated comment.
pub const CREATED_BY: &[u8] = b"mikhmon";

/// Comment prefix of Mikhmon's per-profile monitor schedulers.
pub const MONITOR_PREFIX: &[u8] = b"Monitor Profile ";

/// A hotspot user as read from the router.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: Id,
    pub name: Name,
    pub profile: Name,
    pub comment: Name,
}

/// A hotspot user profile and its `on-login` script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub name: Name,
    pub on_login: Name,
}

/// A `/system/scheduler` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scheduler {
    pub id: Id,
    pub name: Name,
    pub comment: Name,
    pub disabled: bool,
}

/// One comment to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewrite {
    pub id: Id,
    pub name: Name,
    pub profile: Name,
    pub old: Name,
    pub new: Name,
    /// Mikhmon had recorded an expiry (the user logged in before).
    pub used: bool,
    /// That expiry has passed: the agent applies `expired_action` at once.
    pub expired: bool,
}

/// A user left alone, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skip {
    pub name: Name,
    pub profile: Name,
    pub reason: String,
    /// Still looked after by Mikhmon (its comment or profile is
    /// Mikhmon's), so its profile's monitor scheduler is still needed.
    pub mikhmon: bool,
}

/// The import plan and its report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Profiles with a Mikhmon header (or a broken one), in router order.
    pub profiles: Vec<(Name, Result<ProfileMeta, HeaderError>)>,
    pub rewrites: Vec<Rewrite>,
    pub skipped: Vec<Skip>,
    pub already_ours: Vec<Name>,
    /// Users that are neither Mikhmon's nor ours (free text comments,
    /// users without comment in other profiles); not listed one by one.
    pub others: usize,
    /// Profiles of rewritten users that `hotspot_profile_pattern` does not
    /// match: the agent would not manage those users.
    pub unmanaged_profiles: Vec<Name>,
}

/// Plans the import of `users`.
///
/// `offset` is the router's offset from UTC in seconds (None if unknown:
/// used users then cannot be converted and are skipped); `pattern` is the
/// agent's `hotspot_profile_pattern`.
pub fn plan(
    users: &[User],
    profiles: &[Profile],
    offset: Option<i32>,
    now: Timestamp,
    pattern: &str,
) -> Plan {
    let mut out = Plan::default();
    let mut metas: HashMap<&Name, Result<ProfileMeta, HeaderError>> = HashMap::new();
    for p in profiles {
        if let Some(meta) = parse_on_login(p.on_login.as_bytes()) {
            out.profiles.push((p.name.clone(), meta.clone()));
            metas.insert(&p.name, meta);
        }
    }
    for user in users {
        match plan_user(user, metas.get(&user.profile), offset, now) {
            Verdict::Ours => out.already_ours.push(user.name.clone()),
            Verdict::Other => out.others += 1,
            Verdict::Skip(skip) => out.skipped.push(skip),
            Verdict::Rewrite(rewrite) => {
                if !glob_match(pattern, user.profile.as_bytes())
                    && !out.unmanaged_profiles.contains(&user.profile)
                {
                    out.unmanaged_profiles.push(user.profile.clone());
                }
                out.rewrites.push(rewrite);
            }
        }
    }
    out
}

/// What the import does with one user.
enum Verdict {
    /// Already a `VOUCHER_SYSTEM` voucher.
    Ours,
    /// Neither Mikhmon's nor ours: left alone, counted.
    Other,
    Skip(Skip),
    Rewrite(Rewrite),
}

/// One user: its comment and its profile's Mikhmon header (`meta`) decide.
fn plan_user(
    user: &User,
    meta: Option<&Result<ProfileMeta, HeaderError>>,
    offset: Option<i32>,
    now: Timestamp,
) -> Verdict {
    let raw = user.comment.as_bytes();
    let skip = |reason: String| {
        Verdict::Skip(Skip {
            name: user.name.clone(),
            profile: user.profile.clone(),
            reason,
            mikhmon: true,
        })
    };
    let profile = user.profile.lossy();
    if let Comment::System(sys) = Comment::parse(raw)
        && sys.kind() == SystemKind::Voucher
    {
        return Verdict::Ours;
    }
    if has_system_marker(raw) {
        return Verdict::Skip(Skip {
            name: user.name.clone(),
            profile: user.profile.clone(),
            reason: "comment has a _SYSTEM marker but is not a VOUCHER_SYSTEM comment".into(),
            mikhmon: false,
        });
    }
    let Some(parsed) = parse_user_comment(raw) else {
        // Mikhmon's on-login treats users without comment as its own.
        let mikhmon_expiry = matches!(meta, Some(Ok(m)) if m.mode != ExpiryMode::None);
        if raw.is_empty() && mikhmon_expiry {
            return skip(format!(
                "no comment in Mikhmon profile {profile:?}: not a Mikhmon voucher \
                 (Mikhmon's on-login script still sets its expiry at login)"
            ));
        }
        return Verdict::Other;
    };
    let meta = match meta {
        None => {
            return skip(format!(
                "profile {profile:?} has no Mikhmon on-login header"
            ));
        }
        Some(Err(e)) => return skip(format!("profile {profile:?}: {e}")),
        Some(Ok(m)) => m,
    };
    if meta.mode == ExpiryMode::None {
        return skip(format!(
            "profile {profile:?} has no validity (Mikhmon expiry mode none)"
        ));
    }
    let hours = match meta.valid_hours() {
        Ok(h) => h,
        Err(e) => return skip(format!("profile {profile:?}: {e}")),
    };
    let (comment, used, expired) = match voucher_comment(parsed, meta, hours, offset, now) {
        Ok(c) => c,
        Err(reason) => return skip(reason),
    };
    Verdict::Rewrite(Rewrite {
        id: user.id,
        name: user.name.clone(),
        profile: user.profile.clone(),
        old: user.comment.clone(),
        new: Name::new(comment),
        used,
        expired,
    })
}

/// The `VOUCHER_SYSTEM` comment for a Mikhmon comment: with its activation
/// when used, Mikhmon's free-text note kept after `expires_at` (where the
/// agent keeps extra fields byte for byte). The comment, used, expired.
fn voucher_comment(
    parsed: MikhmonComment,
    meta: &ProfileMeta,
    hours: u32,
    offset: Option<i32>,
    now: Timestamp,
) -> Result<(Vec<u8>, bool, bool), String> {
    let hours_text = hours.to_string().into_bytes();
    let voucher = |batch: &[u8], created: &[u8]| {
        SystemComment::new_voucher(
            batch,
            meta.sell_price(),
            &meta.price,
            &hours_text,
            b"",
            created,
            CREATED_BY,
        )
    };
    let (comment, note, used, expired) = match parsed {
        MikhmonComment::Fresh {
            batch,
            created,
            note,
            ..
        } => {
            let created = created.unwrap_or_default();
            let c = voucher(&batch.unwrap_or_default(), created.as_bytes());
            (c, note, false, false)
        }
        MikhmonComment::Used { local, note } => {
            let Some(offset) = offset else {
                return Err("used, but the router's time zone is unknown \
                     (no gmt-offset or known time-zone-name in /system/clock)"
                    .into());
            };
            let expires = local.plus_secs(-i64::from(offset));
            // Mikhmon does not store the first login; its expiry is
            // first login + validity, so this is exact up to its clock.
            let first = expires.plus_secs(-i64::from(hours) * 3_600);
            let c = voucher(b"", b"").with_activation(first, expires);
            (c, note, true, expires <= now)
        }
    };
    let mut fields = comment.fields().to_vec();
    if !note.is_empty() {
        fields.push(note);
    }
    let new = SystemComment::new(SystemKind::Voucher, fields).to_bytes();
    Ok((new, used, expired))
}

/// Mikhmon's monitor schedulers (comment `Monitor Profile <name>`), with
/// the profile name from the comment.
pub fn monitor_schedulers(list: &[Scheduler]) -> Vec<(Scheduler, Name)> {
    list.iter()
        .filter_map(|s| {
            let profile = s.comment.as_bytes().strip_prefix(MONITOR_PREFIX)?;
            Some((s.clone(), Name::new(profile)))
        })
        .collect()
}

/// What `--disable-schedulers` does with one monitor scheduler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MonitorAction {
    /// Already disabled.
    AlreadyDisabled,
    /// Users of its profile stay with Mikhmon (skipped), so it stays on.
    Keep {
        users: usize,
    },
    Disable,
}

/// Mikhmon's monitor schedulers and what to do with each: a monitor is
/// only switched off when no user of its profile stays with Mikhmon.
pub fn monitor_actions(list: &[Scheduler], plan: &Plan) -> Vec<(Scheduler, Name, MonitorAction)> {
    monitor_schedulers(list)
        .into_iter()
        .map(|(s, profile)| {
            let users = plan
                .skipped
                .iter()
                .filter(|k| k.mikhmon && k.profile == profile)
                .count();
            let action = if s.disabled {
                MonitorAction::AlreadyDisabled
            } else if users > 0 {
                MonitorAction::Keep { users }
            } else {
                MonitorAction::Disable
            };
            (s, profile, action)
        })
        .collect()
}

/// One comment to put back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restore {
    pub id: Id,
    pub name: Name,
    /// The comment the import wrote, still on the router.
    pub current: Name,
    /// The original comment to write back.
    pub comment: Name,
}

/// Plans an undo from an export file: restore exactly the users whose
/// comment is still the one the import wrote.
pub fn plan_undo(rows: &[CsvRow], users: &[User]) -> (Vec<Restore>, Vec<Skip>) {
    let by_id: HashMap<Id, &User> = users.iter().map(|u| (u.id, u)).collect();
    let mut restores = Vec::new();
    let mut skipped = Vec::new();
    for row in rows {
        let name = Name::new(&row.name);
        let mut skip = |reason: String| {
            skipped.push(Skip {
                name: name.clone(),
                profile: Name::empty(),
                reason,
                mikhmon: false,
            });
        };
        let Some(id) = Id::parse(&row.id) else {
            skip(format!(
                "bad id {:?} in the file",
                String::from_utf8_lossy(&row.id)
            ));
            continue;
        };
        let Some(user) = by_id.get(&id) else {
            skip(format!("{id} is no longer on the router"));
            continue;
        };
        if user.name.as_bytes() != row.name {
            skip(format!("{id} is now user {}", user.name));
            continue;
        }
        if user.comment.as_bytes() == row.old_comment {
            skip("already has its original comment".into());
            continue;
        }
        if user.comment.as_bytes() != row.new_comment {
            skip("comment changed since the import (e.g. the agent activated it)".into());
            continue;
        }
        restores.push(Restore {
            id,
            name: name.clone(),
            current: user.comment.clone(),
            comment: Name::new(&row.old_comment),
        });
    }
    (restores, skipped)
}

#[cfg(test)]
mod tests {
    use super::*;

    const REM: &str = ":put (\",rem,5000,1d,6000,,Disable,\"); {:local comment [ /ip hotspot user get [/ip hotspot user find where name=\"$user\"] comment]; :local ucode [:pic $comment 0 2]; :if ($ucode = \"vc\" or $ucode = \"up\" or $comment = \"\") do={ }}";

    fn profiles() -> Vec<Profile> {
        [
            ("1hari", REM),
            ("3jam", ":put (\",ntfc,3000,3h,0,,Enable,\"); {}"),
            ("bebas", ":put (\",,2000,,,noexp,Disable,\")"),
            ("half", ":put (\",remc,1000,30m,0,,Disable,\"); {}"),
            ("broken", ":put (\",zap,1,1d,1,,Disable,\")"),
            ("default", ""),
        ]
        .iter()
        .map(|(n, s)| Profile {
            name: Name::from(*n),
            on_login: Name::from(*s),
        })
        .collect()
    }

    fn user(id: u64, name: &str, profile: &str, comment: &[u8]) -> User {
        User {
            id: Id(id),
            name: Name::from(name),
            profile: Name::from(profile),
            comment: Name::new(comment),
        }
    }

    const NOW: i64 = 1_706_702_400; // 2024-01-31T12:00:00Z
    const WIB: i32 = 7 * 3_600;

    fn run(users: &[User], offset: Option<i32>) -> Plan {
        plan(users, &profiles(), offset, Timestamp::from_unix(NOW), "*")
    }

    fn new_of(p: &Plan, name: &str) -> Vec<u8> {
        p.rewrites
            .iter()
            .find(|r| r.name.as_bytes() == name.as_bytes())
            .map(|r| r.new.as_bytes().to_vec())
            .unwrap_or_else(|| panic!("{name} not rewritten: {p:#?}"))
    }

    #[test]
    fn fresh_users() {
        let p = run(
            &[
                user(1, "mk4821", "1hari", b"vc-482-01.15.25-"),
                user(2, "mk7730", "3jam", b"up-773-01.15.25-reseller|budi"),
                user(3, "lobby", "1hari", b"vc-lobby \xe9"),
            ],
            Some(WIB),
        );
        assert_eq!(
            new_of(&p, "mk4821"),
            b"VOUCHER_SYSTEM|vc-482-01.15.25|6000|5000|24||2025-01-15|mikhmon||"
        );
        // No selling price: the price is both; the note is kept after expires_at.
        assert_eq!(
            new_of(&p, "mk7730"),
            b"VOUCHER_SYSTEM|up-773-01.15.25|3000|3000|3||2025-01-15|mikhmon|||reseller|budi"
        );
        assert_eq!(
            new_of(&p, "lobby"),
            b"VOUCHER_SYSTEM||6000|5000|24|||mikhmon|||lobby \xe9"
        );
        assert!(p.rewrites.iter().all(|r| !r.used && !r.expired));
        assert_eq!(p.skipped, vec![]);
        assert_eq!(p.profiles.len(), 5);
        // The new comments are ours and read back as unactivated vouchers.
        for r in &p.rewrites {
            let c = Comment::parse(r.new.as_bytes());
            let sys = c.as_system().expect("ours");
            assert!(sys.valid_hours().is_some());
            assert_eq!(sys.first_login_at(), None);
            assert_eq!(sys.created_by(), Some(CREATED_BY));
        }
    }

    #[test]
    fn used_users_in_both_formats_and_local_time() {
        let p = run(
            &[
                // 2024-01-31 19:00 WIB = 12:00 UTC: just expired at NOW.
                user(1, "old", "1hari", b"jan/31/2024 19:00:00"),
                user(2, "new", "1hari", b"2024-02-01 19:00:00"),
                user(3, "h3", "3jam", b"2024-01-31 20:30:00"),
            ],
            Some(WIB),
        );
        assert_eq!(
            new_of(&p, "old"),
            b"VOUCHER_SYSTEM||6000|5000|24|||mikhmon|2024-01-30T12:00:00Z|2024-01-31T12:00:00Z"
                .to_vec()
        );
        assert_eq!(
            new_of(&p, "new"),
            b"VOUCHER_SYSTEM||6000|5000|24|||mikhmon|2024-01-31T12:00:00Z|2024-02-01T12:00:00Z"
                .to_vec()
        );
        assert_eq!(
            new_of(&p, "h3"),
            b"VOUCHER_SYSTEM||3000|3000|3|||mikhmon|2024-01-31T10:30:00Z|2024-01-31T13:30:00Z"
                .to_vec()
        );
        let flags: Vec<(bool, bool)> = p.rewrites.iter().map(|r| (r.used, r.expired)).collect();
        assert_eq!(flags, vec![(true, true), (true, false), (true, false)]);
        for r in &p.rewrites {
            let c = Comment::parse(r.new.as_bytes());
            let sys = c.as_system().expect("ours");
            assert_eq!(
                sys.expires_at()
                    .map(|e| e.secs_since(sys.first_login_at().unwrap_or(e))),
                Some(sys.valid_hours().map_or(0, |v| v.secs()))
            );
        }
        // West of UTC the offset is added.
        let p = run(
            &[user(1, "x", "3jam", b"2024-01-31 12:00:00")],
            Some(-3 * 3_600),
        );
        assert!(new_of(&p, "x").ends_with(b"|2024-01-31T15:00:00Z"));
    }

    #[test]
    fn unknown_time_zone_skips_only_used_users() {
        let p = run(
            &[
                user(1, "fresh", "1hari", b"vc-1-01.01.24-"),
                user(2, "used", "1hari", b"2024-02-01 19:00:00"),
            ],
            None,
        );
        assert_eq!(p.rewrites.len(), 1);
        assert_eq!(p.skipped.len(), 1);
        assert!(p.skipped[0].reason.contains("time zone"), "{:?}", p.skipped);
    }

    #[test]
    fn skips_ours_and_others() {
        let p = run(
            &[
                user(1, "ours", "1hari", b"VOUCHER_SYSTEM|B1|1|1|1"),
                user(2, "ppp", "1hari", b"PPPOE_SYSTEM|x"),
                user(3, "noexp", "bebas", b"vc-1-01.01.24-"),
                user(4, "half", "half", b"vc-1-01.01.24-"),
                user(5, "broken", "broken", b"vc-1-01.01.24-"),
                user(6, "plain", "default", b"vc-1-01.01.24-"),
                user(7, "ghost", "nope", b"2024-01-01 00:00:00"),
                user(8, "empty", "1hari", b""),
                user(9, "john", "1hari", b"staff laptop"),
                user(10, "printer", "default", b""),
            ],
            Some(WIB),
        );
        assert_eq!(p.rewrites, vec![]);
        assert_eq!(p.already_ours, vec![Name::from("ours")]);
        assert_eq!(p.others, 2);
        let reasons: Vec<(String, &str)> = p
            .skipped
            .iter()
            .map(|s| (s.name.lossy(), s.reason.as_str()))
            .collect();
        let expect = [
            ("ppp", "_SYSTEM marker"),
            ("noexp", "no validity"),
            ("half", "not a whole number of hours"),
            ("broken", "unknown Mikhmon expiry mode"),
            ("plain", "no Mikhmon on-login header"),
            ("ghost", "no Mikhmon on-login header"),
            ("empty", "no comment"),
        ];
        assert_eq!(reasons.len(), expect.len(), "{reasons:?}");
        for ((name, reason), (want_name, want)) in reasons.iter().zip(expect) {
            assert_eq!(name, want_name);
            assert!(reason.contains(want), "{name}: {reason}");
        }
    }

    #[test]
    fn rerun_finds_everything_ours() {
        let users = vec![
            user(1, "a", "1hari", b"vc-482-01.15.25-x"),
            user(2, "b", "1hari", b"jan/31/2024 19:00:00"),
        ];
        let first = run(&users, Some(WIB));
        let after: Vec<User> = first
            .rewrites
            .iter()
            .map(|r| user(r.id.0, &r.name.lossy(), "1hari", r.new.as_bytes()))
            .collect();
        let second = run(&after, Some(WIB));
        assert_eq!(second.rewrites, vec![]);
        assert_eq!(second.already_ours.len(), 2);
    }

    #[test]
    fn unmanaged_profiles_are_reported() {
        let users = vec![
            user(1, "a", "1hari", b"vc-1-01.01.24-"),
            user(2, "b", "1hari", b"vc-1-01.01.24-"),
        ];
        let p = plan(
            &users,
            &profiles(),
            Some(0),
            Timestamp::from_unix(NOW),
            "*voucher*",
        );
        assert_eq!(p.unmanaged_profiles, vec![Name::from("1hari")]);
    }

    #[test]
    fn schedulers() {
        let s = |id, name: &str, comment: &str| Scheduler {
            id: Id(id),
            name: Name::from(name),
            comment: Name::from(comment),
            disabled: false,
        };
        let found = monitor_schedulers(&[
            s(1, "1hari", "Monitor Profile 1hari"),
            s(2, "backup", "nightly backup"),
            s(3, "mk1", ""),
        ]);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].1, Name::from("1hari"));

        let mut off = s(4, "3jam", "Monitor Profile 3jam");
        off.disabled = true;
        let list = [
            s(1, "1hari", "Monitor Profile 1hari"),
            off,
            s(5, "half", "Monitor Profile half"),
        ];
        let p = run(
            &[
                user(1, "a", "1hari", b"vc-1-01.01.24-"),
                user(2, "b", "half", b"vc-1-01.01.24-"),
            ],
            Some(0),
        );
        let actions: Vec<MonitorAction> = monitor_actions(&list, &p)
            .into_iter()
            .map(|(_, _, a)| a)
            .collect();
        assert_eq!(
            actions,
            vec![
                MonitorAction::Disable,
                MonitorAction::AlreadyDisabled,
                MonitorAction::Keep { users: 1 },
            ]
        );
    }

    #[test]
    fn undo_only_restores_untouched_rewrites() {
        let row = |id: &str, name: &str, old: &str, new: &str| CsvRow {
            id: id.into(),
            name: name.into(),
            old_comment: old.into(),
            new_comment: new.into(),
        };
        let rows = vec![
            row("*1", "a", "vc-1", "V|a"),
            row("*2", "b", "vc-2", "V|b"),
            row("*3", "c", "vc-3", "V|c"),
            row("*4", "d", "vc-4", "V|d"),
            row("*5", "e", "vc-5", "V|e"),
            row("x", "f", "vc-6", "V|f"),
        ];
        let users = vec![
            user(1, "a", "p", b"V|a"),
            user(2, "b", "p", b"V|b|activated"),
            user(3, "c", "p", b"vc-3"),
            user(4, "other", "p", b"V|d"),
        ];
        let (restores, skipped) = plan_undo(&rows, &users);
        assert_eq!(
            restores,
            vec![Restore {
                id: Id(1),
                name: Name::from("a"),
                current: Name::from("V|a"),
                comment: Name::from("vc-1"),
            }]
        );
        let reasons: Vec<&str> = skipped.iter().map(|s| s.reason.as_str()).collect();
        assert_eq!(reasons.len(), 5);
        assert!(reasons[0].contains("changed since the import"));
        assert!(reasons[1].contains("original comment"));
        assert!(reasons[2].contains("is now user"));
        assert!(reasons[3].contains("no longer on the router"));
        assert!(reasons[4].contains("bad id"));
    }
}
