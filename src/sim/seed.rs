//! Deterministic starting data: the profiles an operator's router has, and
//! users/secrets in the mix the agent meets in the field (ours, Mikhmon's,
//! hand-made ones with odd comments).

use super::SeedData;
use super::router::Router;
use super::tables::Value;

fn s(v: impl AsRef<[u8]>) -> Value {
    Value::str(v)
}

/// Voucher code number `i`: a bijection on 0..1_000_000 (7919 is prime and
/// coprime to 10^6), so codes look random but never collide.
fn code(i: usize) -> u64 {
    (i as u64 * 7_919 + 104_729) % 1_000_000
}

pub(crate) fn seed(r: &mut Router, seed: &SeedData) {
    profiles(r);
    hotspot_users(r, seed.hotspot_users);
    expiring_vouchers(r, seed.expiring);
    ppp_secrets(r, seed.pppoe_secrets);
    // Seeded vouchers are enabled, fresh and have no session yet, so a
    // login cannot be refused: their sessions are made directly, with the
    // time left a login would give them (a login's checks scan every user
    // and session, which at 50,000 users took minutes).
    let vouchers: Vec<(Vec<u8>, Option<Value>)> = r
        .hs_users
        .rows
        .iter()
        .filter(|u| u.bytes("comment").starts_with(b"VOUCHER_SYSTEM|"))
        .map(|u| {
            let left = u
                .get("limit-uptime")
                .map(|l| Value::Dur(l.as_int().saturating_sub(u.int("uptime"))));
            (u.bytes("name").to_vec(), left)
        })
        .take(seed.hotspot_active)
        .collect();
    for (i, (name, left)) in vouchers.into_iter().enumerate() {
        let ip = format!("10.5.50.{}", 10 + i % 240);
        let mac = format!("02:00:00:00:{:02X}:{:02X}", i / 256 % 256, i % 256);
        let id = r.hs_active.insert(vec![
            ("user", Value::str(name)),
            ("address", Value::str(ip)),
            ("mac-address", Value::str(mac)),
        ]);
        if let Some(s) = r.hs_active.by_id_mut(id) {
            s.set("session-time-left", left);
        }
    }
    let secrets: Vec<Vec<u8>> = r
        .ppp_secrets
        .rows
        .iter()
        .filter(|u| u.bytes("comment").starts_with(b"PPPOE_SYSTEM|"))
        .map(|u| u.bytes("name").to_vec())
        .take(seed.ppp_active)
        .collect();
    for (i, name) in secrets.iter().enumerate() {
        let ip = format!("10.10.{}.{}", 1 + i / 250 % 250, 2 + i % 250);
        let caller = format!("04:00:00:00:{:02X}:{:02X}", i / 256 % 256, i % 256);
        let _ = r.ppp_connect(name, &ip, &caller);
    }
}

/// Vouchers activated long ago whose term ends 60, 90, 120 … seconds after
/// start (by the real clock, which is the agent's), each with a session:
/// the demo shows `voucher_expired` and the kick within a minute or two.
fn expiring_vouchers(r: &mut Router, n: usize) {
    let now = crate::clock::Timestamp::now();
    for i in 0..n {
        let name = format!("DEMO-EXP-{}", i + 1);
        let expires = now.plus_secs(60 + 30 * i as i64);
        let first = expires.plus_secs(-3_600);
        let comment = format!(
            "VOUCHER_SYSTEM|DEMO|5000|3000|1|V1|2025-01-01|demo|{}|{}",
            first.to_rfc3339(),
            expires.to_rfc3339()
        );
        r.hs_users.insert(vec![
            ("name", s(&name)),
            ("password", s(&name)),
            ("profile", s("voucher-1h")),
            ("comment", s(comment)),
        ]);
        let ip = format!("10.5.51.{}", 10 + i % 240);
        let mac = format!("02:00:00:01:00:{:02X}", i % 256);
        let _ = r.hotspot_login(name.as_bytes(), &ip, &mac);
    }
}

/// The `on-login` of the seeded Mikhmon profile `mikhmon-3h`, as Mikhmon
/// v3's `adduserprofile.php` writes it (shortened after the header).
pub(crate) const MIKHMON_ON_LOGIN: &str = ":put (\",rem,3000,3h,5000,,Disable,\"); \
{:local comment [ /ip hotspot user get [/ip hotspot user find where name=\"$user\"] comment]; \
:local ucode [:pic $comment 0 2]; \
:if ($ucode = \"vc\" or $ucode = \"up\" or $comment = \"\") do={ \
:local date [ /system clock get date ]; :local time [ /system clock get time ]; \
/sys sch add name=\"$user\" disable=no start-date=$date interval=\"3h\"; \
:delay 2s; :local exp [ /sys sch get [ /sys sch find where name=\"$user\" ] next-run]; \
/sys sch remove [find where name=\"$user\"]; \
/ip hotspot user set comment=$exp [find where name=\"$user\"] }}";

fn profiles(r: &mut Router) {
    let hs = &mut r.hs_profiles;
    hs.insert(vec![
        ("name", s("voucher-1h")),
        ("rate-limit", s("2M/5M")),
        ("session-timeout", Value::Dur(3600)),
    ]);
    hs.insert(vec![
        ("name", s("voucher-24h")),
        ("rate-limit", s("5M/10M")),
    ]);
    // Mikhmon v3's on-login: its header first (expiry mode remove, price
    // 3000, validity 3h, selling price 5000, no MAC lock), then the script
    // that stamps the expiry date into the comment of `vc`/`up` users.
    hs.insert(vec![
        ("name", s("mikhmon-3h")),
        ("rate-limit", s("1M/2M")),
        ("on-login", s(MIKHMON_ON_LOGIN)),
    ]);
    hs.insert(vec![("name", s("staff")), ("shared-users", Value::Int(3))]);
    let ppp = &mut r.ppp_profiles;
    for (name, rate) in [("pppoe-10M", "10M/10M"), ("pppoe-20M", "20M/20M")] {
        ppp.insert(vec![
            ("name", s(name)),
            ("local-address", s("10.10.0.1")),
            ("remote-address", s("pppoe-pool")),
            ("rate-limit", s(rate)),
            ("only-one", s("yes")),
        ]);
    }
}

fn hotspot_users(r: &mut Router, n: usize) {
    let t = &mut r.hs_users;
    for i in 0..n {
        let name = format!("WIFI-{:06}", code(i));
        let batch = i / 50 + 1;
        let (profile, hours, sell, cost) = if i % 2 == 0 {
            ("voucher-1h", 1, 5_000, 3_000)
        } else {
            ("voucher-24h", 24, 15_000, 10_000)
        };
        // Older vouchers carry the short five-field form.
        let comment = if i % 3 == 0 {
            format!("VOUCHER_SYSTEM|BATCH-{batch:03}|{sell}|{cost}|{hours}")
        } else {
            format!(
                "VOUCHER_SYSTEM|BATCH-{batch:03}|{sell}|{cost}|{hours}|V{}|2025-01-{:02}|admin||",
                i / 100 % 3 + 1,
                batch % 28 + 1
            )
        };
        let mut vals = vec![
            ("name", s(&name)),
            ("password", s(&name)),
            ("profile", s(profile)),
            ("comment", s(comment)),
        ];
        if hours == 1 {
            vals.push(("limit-uptime", Value::Dur(3600)));
        }
        t.insert(vals);
    }
    if n == 0 {
        return;
    }
    // Mikhmon: `vc-`/`up-` comments, and an activated one whose comment
    // Mikhmon's on-login script replaced with the expiry date.
    t.insert(vec![
        ("name", s("mk4821")),
        ("password", s("mk4821")),
        ("profile", s("mikhmon-3h")),
        ("comment", s("vc-482-01.15.25-")),
    ]);
    t.insert(vec![
        ("name", s("mk7730")),
        ("password", s("k2p9")),
        ("profile", s("mikhmon-3h")),
        ("comment", s("up-773-01.15.25-")),
    ]);
    t.insert(vec![
        ("name", s("mk1094")),
        ("password", s("mk1094")),
        ("profile", s("mikhmon-3h")),
        ("comment", s("jan/20/2025 14:03:11")),
        ("uptime", Value::Dur(2 * 3600 + 17 * 60)),
    ]);
    // Mikhmon's monitor scheduler for the profile and one sales record, so
    // `import-mikhmon` has all it reports on.
    r.schedulers.insert(vec![
        ("name", s("mikhmon-3h")),
        ("start-time", s("03:12:45")),
        ("interval", s("00:02:37")),
        (
            "on-event",
            s(":foreach i in [ /ip hotspot user find where profile=\"mikhmon-3h\" ] do={ :local comment [ /ip hotspot user get $i comment]; }"),
        ),
        ("disabled", Value::Bool(false)),
        ("comment", s("Monitor Profile mikhmon-3h")),
    ]);
    r.scripts.insert(vec![
        (
            "name",
            s("jan/20/2025-|-14:03:11-|-mk1094-|-5000-|-10.5.50.7-|-02:00:00:00:00:07-|-3h-|-mikhmon-3h-|-vc-109-01.15.25-"),
        ),
        ("owner", s("jan2025")),
        ("source", s("jan/20/2025")),
        ("comment", s("mikhmon")),
    ]);
    let t = &mut r.hs_users;
    // Hand-made: free text, a Windows-1252 comment, none at all.
    t.insert(vec![
        ("name", s("john")),
        ("password", s("john123")),
        ("profile", s("staff")),
        ("comment", s("staff laptop - John")),
    ]);
    t.insert(vec![
        ("name", s("guest-lobby")),
        ("password", s("welcome")),
        ("comment", s(b"Caf\xe9 lobby \x96 ask front desk")),
    ]);
    t.insert(vec![
        ("name", s("printer")),
        ("password", s("p")),
        ("disabled", Value::Bool(true)),
    ]);
}

fn ppp_secrets(r: &mut Router, n: usize) {
    let t = &mut r.ppp_secrets;
    for i in 0..n {
        let name = format!("pppoe-{:04}", i + 1);
        let (profile, sell, cost) = if i % 2 == 0 {
            ("pppoe-10M", 150_000, 90_000)
        } else {
            ("pppoe-20M", 250_000, 160_000)
        };
        let comment = format!(
            "PPPOE_SYSTEM|BATCH-P{:02}|{sell}|{cost}|CUST-{:05}|SUB-{:05}|2025-01-05|admin",
            i / 50 + 1,
            i + 1,
            i + 1
        );
        t.insert(vec![
            ("name", s(&name)),
            ("password", s(format!("pw{:06}", code(i)))),
            ("service", s("pppoe")),
            ("profile", s(profile)),
            ("comment", s(comment)),
        ]);
    }
    if n == 0 {
        return;
    }
    t.insert(vec![
        ("name", s("office-link")),
        ("password", s("0ff1ce")),
        ("service", s("pppoe")),
    ]);
    t.insert(vec![
        ("name", s("tower-2")),
        ("password", s("t2")),
        ("service", s("pppoe")),
        ("profile", s("pppoe-20M")),
        ("comment", s("backhaul, do not touch")),
    ]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_the_documented_mix() {
        let mut r = Router::new("sim", "7.16.2 (stable)", "hAP ac^2");
        let data = SeedData {
            hotspot_users: 10,
            pppoe_secrets: 4,
            hotspot_active: 3,
            ppp_active: 2,
            expiring: 0,
        };
        seed(&mut r, &data);
        let comment_starts = |p: &[u8]| {
            r.hs_users
                .rows
                .iter()
                .filter(|u| u.bytes("comment").starts_with(p))
                .count()
        };
        assert_eq!(comment_starts(b"VOUCHER_SYSTEM|"), 10);
        assert_eq!(r.hs_users.rows.len(), 16);
        assert_eq!(r.ppp_secrets.rows.len(), 6);
        assert_eq!(r.hs_active.rows.len(), 3);
        // As a login gives them: the 1-hour voucher's limit, none for the 24-hour one.
        let left = |i: usize| r.hs_active.rows[i].get("session-time-left").cloned();
        assert_eq!(left(0), Some(Value::Dur(3600)));
        assert_eq!(left(1), None);
        assert_eq!(r.ppp_active.rows.len(), 2);
        // The Mikhmon profile carries a header import-mikhmon reads.
        let mikhmon = r.hs_profiles.by_name(b"mikhmon-3h").expect("profile");
        let meta = crate::mikhmon::profile::parse_on_login(mikhmon.bytes("on-login"))
            .expect("a Mikhmon header")
            .expect("a valid one");
        assert_eq!(meta.valid_hours(), Ok(3));
        assert_eq!(meta.sell_price(), b"5000");
        assert_eq!(r.schedulers.rows.len(), 1);
        assert_eq!(r.scripts.rows.len(), 1);
        let names: std::collections::HashSet<&[u8]> =
            r.hs_users.rows.iter().map(|u| u.bytes("name")).collect();
        assert_eq!(names.len(), 16);
        for u in &r.hs_users.rows {
            assert!(r.hs_profiles.by_name(u.bytes("profile")).is_some());
        }
        for s in &r.ppp_secrets.rows {
            assert!(r.ppp_profiles.by_name(s.bytes("profile")).is_some());
        }
    }

    #[test]
    fn zero_seed_has_profiles_only() {
        let mut r = Router::new("sim", "7.16.2 (stable)", "hAP ac^2");
        seed(&mut r, &SeedData::default());
        assert!(r.hs_users.rows.is_empty() && r.ppp_secrets.rows.is_empty());
        assert_eq!(r.hs_profiles.rows.len(), 5);
        assert_eq!(r.ppp_profiles.rows.len(), 4);
    }
}
