//! `create-batch` end to end: the real binary against the simulator.

mod common;

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use common::*;
use mikrotik_edge::sim::SimHandle;

fn create_batch(sim: &SimHandle, file: &Path, extra: &[&str]) -> Output {
    let mut cmd = agent_command();
    agent_env(&mut cmd, sim);
    cmd.arg("create-batch").arg(file).args(extra);
    cmd.output().expect("run create-batch")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const HEADER: &str = "service,name,password,profile,valid_hours,batch_id,price_sell,customer_id\n";

#[test]
fn a_bad_file_is_refused_with_line_numbers_and_nothing_is_sent() {
    let sim = sim();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.csv");
    std::fs::write(
        &file,
        format!(
            "{HEADER}hotspot,V1,p,voucher-1h,1,B1,5000,\nhotspot,V2,p,voucher-1h,,B1,5000,\nwifi,V3,p,voucher-1h,1,B1,,\nhotspot,V1,p,voucher-1h,1,B1,,\n"
        ),
    )
    .unwrap();
    let out = create_batch(&sim, &file, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("line 3: valid_hours"), "{err}");
    assert!(
        err.contains("line 4: service must be hotspot or pppoe"),
        "{err}"
    );
    assert!(
        err.contains("line 5: hotspot V1 is already on line 2"),
        "{err}"
    );
    assert!(err.contains("nothing was sent"), "{err}");
    assert!(sim.command_log().is_empty(), "{:?}", sim.command_log());
}

#[test]
fn creates_with_bounded_commands_in_flight_reports_failures_and_reruns_idempotently() {
    let sim = sim();
    // A router's work time, so commands overlap and in-flight is visible.
    sim.set_reply_delay(Duration::from_millis(20));
    sim.add_ppp_secret("taken", "x", "pppoe-10M", b"hand made");
    sim.add_hotspot_user("V0001", "x", "voucher-1h", b"VOUCHER_SYSTEM|old");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("batch.csv");
    let mut csv = HEADER.to_owned();
    for i in 1..=200 {
        csv.push_str(&format!("hotspot,V{i:04},pw{i},voucher-1h,1,B-NOV,5000,\n"));
    }
    csv.push_str("hotspot,BAD1,pw,no-such-profile,1,B-NOV,5000,\n");
    csv.push_str("pppoe,cust-1,pw,pppoe-10M,,B-NOV,150000,C1\n");
    std::fs::write(&file, csv).unwrap();

    let out = create_batch(&sim, &file, &["--max-in-flight", "8"]);
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    // One failure: exit 1, named in the failures CSV.
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("202 users: 200 created, 1 already on the router, 1 failed"),
        "{stdout}"
    );
    // Not a terminal: plain progress lines.
    assert!(stderr.contains("progress: "), "{stderr}");
    assert!(!stderr.contains('\r'), "{stderr}");
    let failures = std::fs::read_to_string(dir.path().join("batch.csv.failures.csv")).unwrap();
    assert_eq!(
        failures,
        "line,service,name,profile,error\n202,hotspot,BAD1,no-such-profile,input does not match any value of profile\n"
    );
    assert!(!failures.contains("pw"), "no password in the failures file");
    // Bounded, and really concurrent.
    let peak = sim.max_in_flight();
    assert!((2..=8).contains(&peak), "max in flight {peak}");
    // Comments in the system format; passwords as given.
    let v = sim
        .find("/ip/hotspot/user", "V0002")
        .expect("V0002 created");
    let get = |row: &mikrotik_edge::sim::Row, k: &str| {
        row.iter()
            .find(|(key, _)| key == k.as_bytes())
            .map(|(_, v)| text(v))
            .unwrap_or_default()
    };
    assert!(
        get(&v, "comment").starts_with("VOUCHER_SYSTEM|B-NOV|5000||1||"),
        "{v:?}"
    );
    assert_eq!(get(&v, "password"), "pw2");
    let c = sim.find("/ppp/secret", "cust-1").expect("cust-1 created");
    assert!(
        get(&c, "comment").starts_with("PPPOE_SYSTEM|B-NOV|150000||C1||"),
        "{c:?}"
    );
    // The existing voucher was left as it was.
    let old = sim.find("/ip/hotspot/user", "V0001").unwrap();
    assert_eq!(get(&old, "comment"), "VOUCHER_SYSTEM|old");

    // Rerun: nothing is created twice; only the failure is tried again.
    sim.clear_command_log();
    let out = create_batch(&sim, &file, &[]);
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("202 users: 0 created, 201 already on the router, 1 failed"),
        "{stdout}"
    );
    let adds = sim
        .command_log()
        .iter()
        .filter(|c| c.ends_with("/add"))
        .count();
    assert_eq!(adds, 1);
}
