//! `mikrotik-edge import-mikhmon` end to end: the real binary against the
//! simulator, set up the way Mikhmon v3 leaves a router (profile on-login
//! scripts, `vc-`/`up-` comments, expiry dates in both RouterOS formats,
//! monitor schedulers, sales records in `/system/script`).

mod common;

use std::path::Path;
use std::process::Output;

use common::*;
use mikrotik_edge::sim::SimHandle;
use mikrotik_edge::store::Store;

/// The on-login script Mikhmon v3 writes for mode `rem`, price 5000,
/// validity 1d, selling price 6000, lock Disable (hotspot/adduserprofile.php).
const ON_LOGIN_REM: &str = r#":put (",rem,5000,1d,6000,,Disable,"); {:local comment [ /ip hotspot user get [/ip hotspot user find where name="$user"] comment]; :local ucode [:pic $comment 0 2]; :if ($ucode = "vc" or $ucode = "up" or $comment = "") do={ :local date [ /system clock get date ];:local year [ :pick $date 7 11 ];:local month [ :pick $date 0 3 ]; /sys sch add name="$user" disable=no start-date=$date interval="1d"; :delay 5s; :local exp [ /sys sch get [ /sys sch find where name="$user" ] next-run]; :local getxp [len $exp]; :if ($getxp = 15) do={ :local d [:pic $exp 0 6]; :local t [:pic $exp 7 16]; :local s ("/"); :local exp ("$d$s$year $t"); /ip hotspot user set comment="$exp" [find where name="$user"];}; :if ($getxp = 8) do={ /ip hotspot user set comment="$date $exp" [find where name="$user"];}; :if ($getxp > 15) do={ /ip hotspot user set comment="$exp" [find where name="$user"];};:delay 5s; /sys sch remove [find where name="$user"]}}"#;

/// Mode `ntfc` (notice and record), validity 3h, no selling price, lock on.
const ON_LOGIN_NTFC: &str = r#":put (",ntfc,3000,3h,0,,Enable,"); {:local comment [ /ip hotspot user get [/ip hotspot user find where name="$user"] comment]; :local ucode [:pic $comment 0 2]; :if ($ucode = "vc" or $ucode = "up" or $comment = "") do={ :local mac $"mac-address"; :local time [/system clock get time ]; /system script add name="$date-|-$time-|-$user-|-3000-|-$address-|-$mac-|-3h-|-3jam-|-$comment" owner="$month$year" source="$date" comment="mikhmon"; [:local mac $"mac-address"; /ip hotspot user set mac-address=$mac [find where name=$user]]}}"#;

/// Expiry mode none: Mikhmon's `noexp` form.
const ON_LOGIN_NOEXP: &str = r#":put (",,2000,,,noexp,Disable,")"#;

/// A profile whose validity is not whole hours (30m).
const ON_LOGIN_HALF: &str = r#":put (",remc,1000,30m,0,,Disable,"); {}"#;

const MONITOR: &str = r#":local dateint do={:local montharray ( "jan","feb","mar","apr","may","jun","jul","aug","sep","oct","nov","dec" );}; :foreach i in [ /ip hotspot user find where profile="1hari" ] do={ :local comment [ /ip hotspot user get $i comment]; }"#;

const SALE: &str = "jan/31/2024-|-18:59:50-|-mk1094-|-5000-|-10.5.50.7-|-02:00:00:00:00:07-|-1d-|-1hari-|-vc-901-01.30.24-";

/// Users: (name, password, profile, comment).
const USERS: &[(&str, &str, &str, &[u8])] = &[
    ("mk4821", "mk4821", "1hari", b"vc-482-01.15.25-"),
    ("mk7730", "k2p9", "3jam", b"up-773-01.15.25-reseller budi"),
    // Used on RouterOS 6 (before an upgrade), and on 7.10+; WIB (UTC+7).
    ("mk1094", "mk1094", "1hari", b"jan/31/2024 19:00:00"),
    ("mk2201", "mk2201", "1hari", b"2030-02-01 19:00:00"),
    (
        "mk5555",
        "mk5555",
        "3jam",
        b"vc-100-06.01.24-caf\xe9 \\ \"x\"|y",
    ),
    (
        "WIFI-1",
        "WIFI-1",
        "voucher-1h",
        b"VOUCHER_SYSTEM|B1|5000|3000|1",
    ),
    ("bebas1", "bebas1", "bebas", b"vc-300-01.15.25-"),
    ("half1", "half1", "half", b"vc-301-01.15.25-"),
    ("blank", "blank", "half", b""),
    ("john", "john123", "staff", b"staff laptop - John"),
];

fn setup() -> SimHandle {
    let sim = sim();
    sim.set_time_zone("Asia/Jakarta", 7 * 3_600);
    for (name, script) in [
        ("1hari", ON_LOGIN_REM),
        ("3jam", ON_LOGIN_NTFC),
        ("bebas", ON_LOGIN_NOEXP),
        ("half", ON_LOGIN_HALF),
    ] {
        sim.add_item(
            "/ip/hotspot/user/profile",
            &[
                ("name", name.as_bytes()),
                ("shared-users", b"1"),
                ("status-autorefresh", b"1m"),
                ("on-login", script.as_bytes()),
            ],
        )
        .expect("add profile");
    }
    for (name, pw, profile, comment) in USERS {
        sim.add_hotspot_user(name, pw, profile, comment);
    }
    for profile in ["1hari", "3jam", "half"] {
        sim.add_item(
            "/system/scheduler",
            &[
                ("name", profile.as_bytes()),
                ("start-time", b"03:12:45"),
                ("interval", b"00:02:37"),
                ("on-event", MONITOR.as_bytes()),
                ("disabled", b"no"),
                ("comment", format!("Monitor Profile {profile}").as_bytes()),
            ],
        )
        .expect("add scheduler");
    }
    sim.add_item(
        "/system/scheduler",
        &[("name", b"backup"), ("on-event", b"/system backup save")],
    )
    .expect("add scheduler");
    sim.add_item(
        "/system/script",
        &[
            ("name", SALE.as_bytes()),
            ("owner", b"jan2024"),
            ("source", b"jan/31/2024"),
            ("comment", b"mikhmon"),
        ],
    )
    .expect("add script");
    sim
}

fn run(sim: &SimHandle, state: &Path, args: &[&str]) -> Output {
    let mut cmd = agent_command();
    agent_env(&mut cmd, sim);
    cmd.env("MIKROTIK_EDGE_STATE_PATH", state)
        .env("MIKROTIK_EDGE_HOTSPOT_PROFILE_PATTERN", "*")
        .arg("import-mikhmon")
        .args(args);
    cmd.output().expect("run mikrotik-edge")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn ok(out: &Output) -> String {
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "status {:?}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        text(&out.stderr)
    );
    stdout
}

fn comment(sim: &SimHandle, user: &str) -> Vec<u8> {
    let row = sim.find("/ip/hotspot/user", user).expect("user");
    row.iter()
        .find(|(k, _)| k == b"comment")
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

fn disabled(sim: &SimHandle, scheduler: &str) -> bool {
    let row = sim.find("/system/scheduler", scheduler).expect("scheduler");
    row.iter().any(|(k, v)| k == b"disabled" && v == b"true")
}

fn csv_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".csv"))
        .collect();
    names.sort();
    names
}

#[test]
fn dry_run_reports_and_changes_nothing() {
    let sim = setup();
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state.redb");
    let before: Vec<_> = ["/ip/hotspot/user", "/system/scheduler", "/system/script"]
        .iter()
        .map(|p| sim.rows(p))
        .collect();
    let out = ok(&run(&sim, &state, &["--disable-schedulers"]));
    let after: Vec<_> = ["/ip/hotspot/user", "/system/scheduler", "/system/script"]
        .iter()
        .map(|p| sim.rows(p))
        .collect();
    assert_eq!(before, after);
    assert!(csv_files(dir.path()).is_empty());
    assert!(!state.exists());
    for want in [
        "dry run",
        "using UTC+07:00 (from gmt-offset)",
        "\"1hari\": expiry mode rem, price \"5000\", validity \"1d\", selling price \"6000\", lock Disable",
        "\"3jam\": expiry mode ntfc, price \"3000\", validity \"3h\", selling price \"0\", lock Enable",
        "users: 5 to migrate (2 used, 1 of them already expired), 3 skipped, 1 already ours, 1 not Mikhmon's",
        "migrate \"mk4821\" (*1, profile \"1hari\"): \"vc-482-01.15.25-\" -> \"VOUCHER_SYSTEM|vc-482-01.15.25|6000|5000|24||2025-01-15|mikhmon||\"",
        "skip \"bebas1\": profile \"bebas\" has no validity",
        "skip \"half1\": profile \"half\": validity 30m is not a whole number of hours",
        "skip \"blank\": no comment in Mikhmon profile \"half\"",
        "already ours: \"WIFI-1\"",
        "*1 \"1hari\" (profile \"1hari\"): enabled; would disable",
        "(profile \"half\"): enabled; kept: 2 user(s) of this profile stay with Mikhmon",
        "Mikhmon sales records (/system/script, comment mikhmon): 1, left alone",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
    assert!(!out.contains("backup"), "{out}");
    // A summary: a few examples per kind, then a count; --verbose lists all.
    let migrate_lines = |out: &str| out.lines().filter(|l| l.starts_with("migrate ")).count();
    assert_eq!(migrate_lines(&out), 3, "{out}");
    assert!(
        out.contains("  ... and 2 more like these (--verbose lists them all)"),
        "{out}"
    );
    let out = ok(&run(&sim, &state, &["--verbose"]));
    assert_eq!(migrate_lines(&out), 5, "{out}");
    assert!(!out.contains("more like these"), "{out}");
}

#[test]
fn apply_rerun_and_undo_byte_exact() {
    let sim = setup();
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state.redb");
    // A state file that exists and is free: the import records into it.
    drop(Store::open(&state).expect("create state"));
    let export = dir.path().join("first.csv");
    let scripts = sim.rows("/system/script");

    let out = ok(&run(
        &sim,
        &state,
        &["--apply", "--export", export.to_str().expect("utf-8 path")],
    ));
    assert!(out.contains("written: 5 of 5 comments"), "{out}");
    assert!(out.contains("recorded in"), "{out}");
    let expect: &[(&str, &[u8])] = &[
        (
            "mk4821",
            b"VOUCHER_SYSTEM|vc-482-01.15.25|6000|5000|24||2025-01-15|mikhmon||",
        ),
        (
            "mk7730",
            b"VOUCHER_SYSTEM|up-773-01.15.25|3000|3000|3||2025-01-15|mikhmon|||reseller budi",
        ),
        // 19:00 WIB is 12:00 UTC; first login = expiry - validity.
        (
            "mk1094",
            b"VOUCHER_SYSTEM||6000|5000|24|||mikhmon|2024-01-30T12:00:00Z|2024-01-31T12:00:00Z",
        ),
        (
            "mk2201",
            b"VOUCHER_SYSTEM||6000|5000|24|||mikhmon|2030-01-31T12:00:00Z|2030-02-01T12:00:00Z",
        ),
        (
            "mk5555",
            b"VOUCHER_SYSTEM|vc-100-06.01.24|3000|3000|3||2024-06-01|mikhmon|||caf\xe9 \\ \"x\"|y",
        ),
    ];
    for (user, want) in expect {
        assert_eq!(comment(&sim, user), *want, "{user}");
    }
    // Untouched: ours, skipped, others; sales records; schedulers (no flag).
    assert_eq!(comment(&sim, "WIFI-1"), b"VOUCHER_SYSTEM|B1|5000|3000|1");
    assert_eq!(comment(&sim, "bebas1"), b"vc-300-01.15.25-");
    assert_eq!(comment(&sim, "john"), b"staff laptop - John");
    assert_eq!(sim.rows("/system/script"), scripts);
    assert!(!disabled(&sim, "1hari"));
    assert!(out.contains("add --disable-schedulers"), "{out}");
    let store = Store::open(&state).expect("open state");
    let rec = store
        .mikhmon_import_record(b"mk5555")
        .expect("read")
        .expect("recorded");
    assert_eq!(rec.old_comment, b"vc-100-06.01.24-caf\xe9 \\ \"x\"|y");
    drop(store);

    // Again: everything is ours, nothing is written, no new export.
    let out = ok(&run(&sim, &state, &["--apply"]));
    assert!(
        out.contains(
            "users: 0 to migrate (0 used, 0 of them already expired), 3 skipped, 6 already ours"
        ),
        "{out}"
    );
    assert_eq!(csv_files(dir.path()), vec!["first.csv".to_owned()]);

    // The agent activates one voucher meanwhile: undo leaves it alone.
    let activated =
        b"VOUCHER_SYSTEM|vc-482-01.15.25|6000|5000|24||2025-01-15|mikhmon|2031-01-01T00:00:00Z|2031-01-02T00:00:00Z";
    let mut cmd = agent_command();
    agent_env(&mut cmd, &sim);
    let set = cmd
        .args(["api", "/ip/hotspot/user/set", "=numbers=mk4821"])
        .arg(format!(
            "=comment={}",
            std::str::from_utf8(activated).expect("ascii")
        ))
        .output()
        .expect("api set");
    assert!(set.status.success(), "{}", text(&set.stderr));

    let export_arg = export.to_str().expect("utf-8 path");
    let before_undo = sim.rows("/ip/hotspot/user");
    let out = ok(&run(&sim, &state, &["--undo", export_arg]));
    assert_eq!(sim.rows("/ip/hotspot/user"), before_undo, "dry run wrote");
    assert!(out.contains("to restore: 4; skipped: 1"), "{out}");
    assert!(
        out.contains("skip \"mk4821\": comment changed since the import"),
        "{out}"
    );
    let out = ok(&run(&sim, &state, &["--undo", export_arg, "--apply"]));
    assert!(out.contains("restored: 4 of 4"), "{out}");
    for (name, _, _, original) in USERS {
        if *name == "mk4821" {
            assert_eq!(comment(&sim, name), activated);
        } else {
            assert_eq!(comment(&sim, name), *original, "{name}");
        }
    }
    // A second undo finds them all restored already.
    let out = ok(&run(&sim, &state, &["--undo", export_arg, "--apply"]));
    assert!(out.contains("to restore: 0; skipped: 5"), "{out}");
}

#[test]
fn schedulers_are_disabled_only_with_the_flag() {
    let sim = setup();
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state.redb");
    let scripts = sim.rows("/system/script");
    // --disable-schedulers without --apply: nothing.
    ok(&run(&sim, &state, &["--disable-schedulers"]));
    assert!(!disabled(&sim, "1hari"));

    let out = ok(&run(&sim, &state, &["--apply", "--disable-schedulers"]));
    assert!(disabled(&sim, "1hari"), "{out}");
    assert!(disabled(&sim, "3jam"), "{out}");
    // Its user was skipped, so Mikhmon still needs it.
    assert!(!disabled(&sim, "half"), "{out}");
    assert!(!disabled(&sim, "backup"), "{out}");
    assert!(out.contains("disabled now"), "{out}");
    assert!(
        out.contains("does not exist; the export file is the record"),
        "{out}"
    );
    assert_eq!(
        csv_files(dir.path()).len(),
        1,
        "default export next to the state file"
    );
    assert_eq!(sim.rows("/system/script"), scripts);
}

#[test]
fn gmt_offset_wins_over_the_zone_name_and_pattern_is_checked() {
    let sim = setup();
    sim.set_time_zone("Europe/Berlin", 0);
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state.redb");
    // gmt-offset is still there: it wins over the zone name.
    let out = ok(&run(&sim, &state, &[]));
    assert!(out.contains("using UTC+00:00 (from gmt-offset)"), "{out}");

    let mut cmd = agent_command();
    agent_env(&mut cmd, &sim);
    let out = cmd
        .env("MIKROTIK_EDGE_STATE_PATH", &state)
        .args(["import-mikhmon"])
        .output()
        .expect("run");
    let stdout = ok(&out);
    assert!(
        stdout.contains(
            "WARNING: profile \"1hari\" does not match hotspot_profile_pattern \"*voucher*\""
        ),
        "{stdout}"
    );
}

#[test]
fn usage_errors_exit_2() {
    let sim = sim();
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state.redb");
    for args in [
        &["--undo"][..],
        &["--undo", "a.csv", "--export", "b.csv"],
        &["--bogus"],
    ] {
        let out = run(&sim, &state, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
    // A missing export file is a plain failure.
    let out = run(&sim, &state, &["--undo", "/nonexistent/x.csv"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("/nonexistent/x.csv"));
}
