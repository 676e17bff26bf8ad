//! The real `mikrotik-edge` binary: `check`, `api`, and config errors.

mod common;

use std::process::Output;

use common::*;

fn run(args: &[&str], env: &[(&str, &str)], sim: Option<&mikrotik_edge::sim::SimHandle>) -> Output {
    let mut cmd = agent_command();
    if let Some(sim) = sim {
        agent_env(&mut cmd, sim);
    }
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run mikrotik-edge")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn check_prints_identity_board_and_version() {
    let sim = sim_with(|o| {
        o.identity = "hq-gateway".into();
        o.board_name = "hAP ax3".into();
        o.version = "7.16.2 (stable)".into();
    });
    let out = run(&["check"], &[], Some(&sim));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("identity: hq-gateway"), "{stdout}");
    assert!(stdout.contains("board: hAP ax3"), "{stdout}");
    assert!(stdout.contains("version: 7.16.2 (stable)"), "{stdout}");
}

#[test]
fn check_with_bad_password_says_so_and_hides_it() {
    let sim = sim();
    let out = run(
        &["check"],
        &[
            ("MIKROTIK_EDGE_ROUTER_PASSWORD", "Hunter2-wrong"),
            ("MIKROTIK_EDGE_LOG_LEVEL", "trace"),
        ],
        Some(&sim),
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("bad credentials"), "{stderr}");
    assert_eq!(
        stderr
            .trim()
            .lines()
            .filter(|l| l.contains("check failed"))
            .count(),
        1
    );
    assert!(!stderr.contains("Hunter2-wrong") && !text(&out.stdout).contains("Hunter2-wrong"));
}

#[test]
fn check_refused_and_timeout_give_one_line_reasons() {
    let sim = sim();
    let closed_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port().to_string()
    };
    let out = run(
        &["check"],
        &[("MIKROTIK_EDGE_ROUTER_PORT", &closed_port)],
        Some(&sim),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("connection refused"),
        "{}",
        text(&out.stderr)
    );

    sim.set_silent(true);
    let out = run(
        &["check"],
        &[("MIKROTIK_EDGE_ROUTER_COMMAND_TIMEOUT_SECS", "1")],
        Some(&sim),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("timeout"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn check_over_tls_with_wrong_pin_is_a_certificate_error() {
    let sim = sim_with(|o| o.tls = true);
    let tls_port = sim.tls_addr().unwrap().port().to_string();
    let wrong = vec!["00"; 32].join(":");
    let out = run(
        &["check"],
        &[
            ("MIKROTIK_EDGE_ROUTER_TLS", "true"),
            ("MIKROTIK_EDGE_ROUTER_PORT", &tls_port),
            ("MIKROTIK_EDGE_ROUTER_CERT_SHA256", &wrong),
        ],
        Some(&sim),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("certificate"),
        "{}",
        text(&out.stderr)
    );

    let pin = mikrotik_edge::encoding::hex_colon(&sim.cert_sha256().unwrap());
    let out = run(
        &["check"],
        &[
            ("MIKROTIK_EDGE_ROUTER_TLS", "true"),
            ("MIKROTIK_EDGE_ROUTER_PORT", &tls_port),
            ("MIKROTIK_EDGE_ROUTER_CERT_SHA256", &pin),
        ],
        Some(&sim),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn bad_config_exits_2_naming_the_key() {
    let sim = sim();
    let out = run(
        &["check"],
        &[("MIKROTIK_EDGE_ROUTER_PORT", "eighty")],
        Some(&sim),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("MIKROTIK_EDGE_ROUTER_PORT"),
        "{}",
        text(&out.stderr)
    );

    let out = run(
        &["run"],
        &[("MIKROTIK_EDGE_EXPIRED_ACTION", "explode")],
        Some(&sim),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("MIKROTIK_EDGE_EXPIRED_ACTION"),
        "{}",
        text(&out.stderr)
    );

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.toml");
    std::fs::write(
        &file,
        "[router]\nhost = \"10.0.0.1\"\nuser = \"api\"\nprot = 8728\n",
    )
    .unwrap();
    let out = run(&["--config", file.to_str().unwrap(), "check"], &[], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("router.prot"),
        "{}",
        text(&out.stderr)
    );

    let out = run(&["frobnicate"], &[], None);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn api_prints_rows_as_json_lines_and_keeps_odd_bytes() {
    let sim = sim();
    sim.add_hotspot_user("v1", "pw", "voucher-1h", b"VOUCHER_SYSTEM|B1|5000|3000|24");
    sim.add_hotspot_user("v2", "pw", "voucher-1h", b"caf\xe9 \xff");
    let out = run(
        &[
            "api",
            "/ip/hotspot/user/print",
            ".proplist=name,comment",
            "?profile=voucher-1h",
        ],
        &[],
        Some(&sim),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["name"], "v1");
    assert_eq!(lines[0]["comment"], "VOUCHER_SYSTEM|B1|5000|3000|24");
    // Not UTF-8: the exact bytes, base64, in a form no text can take.
    assert_eq!(lines[1]["comment"]["base64"], "Y2Fm6SD/");
    // A literal backslash stays text, distinct from any byte escape.
    sim.add_hotspot_user("v3", "pw", "voucher-1h", b"caf\\xE9");
    let out = run(
        &["api", "/ip/hotspot/user/print", "?name=v3"],
        &[],
        Some(&sim),
    );
    let line = text(&out.stdout);
    let row: serde_json::Value = serde_json::from_str(line.trim()).expect("JSON");
    assert_eq!(row["comment"], "caf\\xE9");
    // The router's key order is kept.
    let keys: Vec<&str> = line
        .trim_matches(|c| c == '{' || c == '}' || c == '\n')
        .split(",\"")
        .map(|kv| kv.trim_start_matches('"').split('"').next().unwrap_or(""))
        .collect();
    assert_eq!(keys.first().copied(), Some(".id"), "{line}");
}

#[test]
fn api_add_prints_ret_and_trap_goes_to_stderr() {
    let sim = sim();
    let out = run(
        &[
            "api",
            "/ip/hotspot/user/add",
            "=name=new1",
            "=password=x",
            "=profile=voucher-1h",
        ],
        &[],
        Some(&sim),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
    assert!(v["!done"]["ret"].as_str().unwrap().starts_with('*'));

    let out = run(
        &["api", "/ip/hotspot/user/add", "=name=new1", "=password=x"],
        &[],
        Some(&sim),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("already have user with this name"),
        "{}",
        text(&out.stderr)
    );

    let out = run(
        &["api", "/ip/hotspot/user/remove", "=.id=*FFF"],
        &[],
        Some(&sim),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("no such item"));
}

#[test]
fn api_with_non_utf8_argument_does_not_crash() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let sim = sim();
    let mut cmd = agent_command();
    agent_env(&mut cmd, &sim);
    cmd.arg("api")
        .arg("/ip/hotspot/user/add")
        .arg("=name=weird")
        .arg(OsStr::from_bytes(b"=comment=\xff\xfe bytes"));
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let row = sim.find("/ip/hotspot/user", "weird").unwrap();
    let comment = row
        .iter()
        .find(|(k, _)| k == b"comment")
        .map(|(_, v)| v.clone());
    assert_eq!(comment.as_deref(), Some(&b"\xff\xfe bytes"[..]));
}

#[test]
fn every_command_has_its_own_help() {
    for (args, usage) in [
        (&["check", "--help"][..], "check"),
        (&["api", "--help"], "api <command>"),
        (&["run", "--help"], "run"),
        (&["import-mikhmon", "--help"], "--verbose"),
        (&["import-mikhmon", "--apply", "-h"], "--disable-schedulers"),
        (&["sync", "--help"], "sync"),
        (&["create-batch", "--help"], "--max-in-flight"),
        (&["create-batch", "FILE.csv", "--help"], "--failures"),
        (&["quarantine", "--help"], "quarantine list|resend"),
        (&["quarantine", "list", "--help"], "quarantine list|resend"),
        (&["help", "create-batch"], "create-batch FILE.csv"),
        (&["--help"], "Commands:"),
    ] {
        let out = run(args, &[], None);
        let stdout = text(&out.stdout);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        assert!(
            stdout.contains("Usage: mikrotik-edge"),
            "{args:?}: {stdout}"
        );
        assert!(stdout.contains(usage), "{args:?}: {stdout}");
    }
    // A command's help needs no config: nothing is read.
    let out = run(
        &["create-batch", "--help"],
        &[("MIKROTIK_EDGE_ROUTER_PORT", "abc")],
        None,
    );
    assert!(out.status.success());
    let out = run(&["help", "frobnicate"], &[], None);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn every_central_command_has_its_own_help() {
    for (args, usage) in [
        (&["serve", "--help"][..], "usage: mikrotik-central serve"),
        (&["serve", "--listen", "x", "-h"], "--pool-size"),
        (
            &["add-site", "--help"],
            "usage: mikrotik-central add-site NAME",
        ),
        (
            &["load-schema", "--help"],
            "usage: mikrotik-central load-schema",
        ),
        (
            &["add-operator", "--help"],
            "usage: mikrotik-central add-operator NAME",
        ),
        (&["set-site", "-h"], "--hotspot-login-url"),
        (&["help", "serve"], "--tls-cert"),
        (&["--help"], "add-site"),
        (&["--help"], "add-operator"),
    ] {
        let out = common::gateway::central_command()
            .args(args)
            .output()
            .expect("run mikrotik-central");
        let stdout = text(&out.stdout);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        assert!(stdout.contains(usage), "{args:?}: {stdout}");
    }
}
