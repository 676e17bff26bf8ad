//! Deployment: the systemd units (`systemd-analyze verify` and `security`),
//! the example config against the real binary, `scripts/install.sh` into a
//! temporary root, and the RouterOS container tarballs of
//! `scripts/build-container.sh` (layout, manifest, image config, layer, and
//! the image's binary actually running, under qemu for foreign arches).
//!
//! Nothing here is skipped silently. A missing `systemd-analyze`, dist/
//! binary or qemu fails the test when `CI` is set (CI installs them all);
//! elsewhere it prints `SKIPPED: ...` with the reason straight to stderr
//! (past the test harness's capture) and appends it to the file named by
//! `MIKROTIK_EDGE_SKIPPED_FILE`, which `scripts/test.sh` prints at the end.
//! A check that does not apply to the machine (an amd64 image on another
//! architecture) is a skip everywhere, reported the same way.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// Highest accepted `systemd-analyze security` exposure (0 best, 10 worst).
const MAX_EXPOSURE: f64 = 2.0;
/// The user the container image runs as.
const IMAGE_USER: u32 = 65534;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn agent_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_mikrotik-edge"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `cmd`, returning its output; panics if it cannot be started.
fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

fn assert_success(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// A command for a binary built for the test target: prefixed by
/// `MIKROTIK_EDGE_TEST_RUNNER` (qemu) when the tests run under emulation,
/// with no `MIKROTIK_EDGE_*` variables inherited.
fn target_command(bin: &Path) -> Command {
    let mut cmd = match std::env::var_os("MIKROTIK_EDGE_TEST_RUNNER") {
        Some(runner) if !runner.is_empty() => {
            let mut c = Command::new(runner);
            c.arg(bin);
            c
        }
        _ => Command::new(bin),
    };
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("MIKROTIK_EDGE_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// Finds `name` in PATH (or /usr/bin, /usr/sbin).
fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// Whether this is a CI run (`CI` set, as CI services do, and not to
/// `false` or `0`): a missing tool is then a failure, never a skip.
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// A check that cannot run because a tool or a build output is missing:
/// fails under CI, elsewhere a reported skip (see [`skip`]).
fn missing(test: &str, why: &str) {
    assert!(
        !in_ci(),
        "{test}: {why}; CI must run every check (unset CI to skip it locally)"
    );
    skip(test, why);
}

/// A check left out, said where it cannot be missed: straight to stderr
/// (the harness captures `eprintln!` of passing tests) and into the
/// summary file of `scripts/test.sh` when it set one.
fn skip(test: &str, why: &str) {
    use std::io::Write;
    let line = format!("SKIPPED: {test}: {why}");
    let _ = writeln!(std::io::stderr().lock(), "{line}");
    if let Some(file) = std::env::var_os("MIKROTIK_EDGE_SKIPPED_FILE").filter(|f| !f.is_empty()) {
        let appended = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&file)
            .and_then(|mut f| writeln!(f, "{line}"));
        if let Err(e) = appended {
            panic!(
                "{line}; and cannot note it in {}: {e}",
                Path::new(&file).display()
            );
        }
    }
}

fn unit_text(name: &str) -> String {
    fs::read_to_string(root().join("systemd").join(name)).expect("read unit")
}

/// Directive lines (`Key=value`) of a unit, comments dropped.
fn directives(unit: &str) -> Vec<String> {
    unit.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('['))
        .map(str::to_owned)
        .collect()
}

#[test]
fn units_have_the_required_settings() {
    for name in ["mikrotik-edge.service", "mikrotik-edge@.service"] {
        let lines = directives(&unit_text(name));
        let has = |d: &str| lines.iter().any(|l| l == d);
        for required in [
            "Restart=on-failure",
            "RestartPreventExitStatus=2",
            "DynamicUser=yes",
            "ProtectSystem=strict",
            "ProtectHome=yes",
            "PrivateTmp=yes",
            "NoNewPrivileges=yes",
            "CapabilityBoundingSet=",
            "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
            "SystemCallFilter=@system-service",
            "UMask=0077",
            "MemoryMax=64M",
            "Environment=MIKROTIK_EDGE_ROUTER_PASSWORD_FILE=%d/router-password",
            "ExecStart=/usr/local/bin/mikrotik-edge --config %d/config.toml run",
        ] {
            assert!(has(required), "{name}: missing `{required}`");
        }
        for forbidden in ["Restart=always", "StartLimitIntervalSec=0"] {
            assert!(!has(forbidden), "{name}: must not have `{forbidden}`");
        }
        // No EnvironmentFile: config and secrets come only as credentials.
        assert!(
            !lines.iter().any(|l| l.starts_with("EnvironmentFile=")),
            "{name}: EnvironmentFile= is not used any more"
        );
    }

    let single = directives(&unit_text("mikrotik-edge.service"));
    for d in [
        "LoadCredential=config.toml:/etc/mikrotik-edge/config.toml",
        "LoadCredential=router-password:/etc/mikrotik-edge/router-password",
        "StateDirectory=mikrotik-edge",
        "Environment=MIKROTIK_EDGE_STATE_PATH=%S/mikrotik-edge/state.redb",
    ] {
        assert!(single.iter().any(|l| l == d), "single unit: missing `{d}`");
    }
    // Every per-router path of the template depends on the instance.
    let template = directives(&unit_text("mikrotik-edge@.service"));
    for d in [
        "LoadCredential=config.toml:/etc/mikrotik-edge/%i/config.toml",
        "LoadCredential=router-password:/etc/mikrotik-edge/%i/router-password",
        "StateDirectory=mikrotik-edge-%i",
        "Environment=MIKROTIK_EDGE_STATE_PATH=%S/mikrotik-edge-%i/state.redb",
    ] {
        assert!(template.iter().any(|l| l == d), "template: missing `{d}`");
    }
    for l in &template {
        if l.starts_with("LoadCredential=") || l.starts_with("StateDirectory=") {
            assert!(
                l.contains("%i"),
                "template: `{l}` is shared between instances"
            );
        }
    }
}

/// Copies the units into a fresh directory with ExecStart pointing at the
/// test-built binary (`verify` wants the binary to exist).
fn units_for_analyze() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = agent_bin();
    for name in ["mikrotik-edge.service", "mikrotik-edge@.service"] {
        let unit = unit_text(name).replace(
            "ExecStart=/usr/local/bin/mikrotik-edge ",
            &format!("ExecStart={} ", bin.display()),
        );
        assert!(unit.contains(&format!("ExecStart={} ", bin.display())));
        fs::write(dir.path().join(name), unit).expect("write unit");
    }
    dir
}

/// The overall exposure from `systemd-analyze security` output.
fn exposure(out: &str) -> f64 {
    let line = out
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| panic!("no overall exposure in:\n{out}"));
    let after = line.rsplit_once(": ").expect("score after ': '").1;
    after
        .split_whitespace()
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("cannot parse the score in {line:?}"))
}

#[test]
fn units_pass_systemd_analyze_verify_and_security() {
    let Some(analyze) = which("systemd-analyze") else {
        missing(
            "units_pass_systemd_analyze_verify_and_security",
            "systemd-analyze not found (install the `systemd` package; scripts/setup.sh does)",
        );
        return;
    };
    let dir = units_for_analyze();
    // The single unit, and the template through two instances.
    for unit in [
        "mikrotik-edge.service",
        "mikrotik-edge@site1.service",
        "mikrotik-edge@other-router.service",
    ] {
        let path = dir.path().join(unit);
        let out = run(Command::new(&analyze).arg("verify").arg(&path));
        assert_success(&out, &format!("systemd-analyze verify {unit}"));
        // verify exits 0 on unknown keys and bad values but says so: any
        // output at all is a finding.
        let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert!(
            said.trim().is_empty(),
            "systemd-analyze verify {unit} complained:\n{said}"
        );

        let out = run(Command::new(&analyze)
            .args(["security", "--offline=yes", "--no-pager"])
            .arg(&path));
        assert_success(&out, &format!("systemd-analyze security {unit}"));
        let score = exposure(&text(&out.stdout));
        eprintln!("{unit}: systemd-analyze security exposure {score}");
        assert!(
            score <= MAX_EXPOSURE,
            "{unit}: exposure {score} above {MAX_EXPOSURE}:\n{}",
            text(&out.stdout)
        );
    }

    // And verify notices a broken unit, so the checks above mean something.
    let broken = dir.path().join("broken.service");
    fs::write(
        &broken,
        unit_text("mikrotik-edge.service").replace("[Service]", "[Service]\nRestartt=always"),
    )
    .expect("write");
    let out = run(Command::new(&analyze).arg("verify").arg(&broken));
    assert!(
        text(&out.stderr).contains("Restartt"),
        "verify did not report an unknown key: {}",
        text(&out.stderr)
    );
}

/// Runs `check` with `config` and the environment the unit sets, against a
/// closed local port: a valid config fails with 1 (unreachable), a config
/// error with 2.
fn check_with_config(config: &Path, password_file: &Path, state: &Path) -> Output {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    run(target_command(&agent_bin())
        .arg("--config")
        .arg(config)
        .arg("check")
        .env("MIKROTIK_EDGE_ROUTER_PASSWORD_FILE", password_file)
        .env("MIKROTIK_EDGE_STATE_PATH", state)
        .env("MIKROTIK_EDGE_ROUTER_PORT", port.to_string())
        .env("MIKROTIK_EDGE_ROUTER_CONNECT_TIMEOUT_SECS", "3"))
}

#[test]
fn example_config_is_valid_for_the_agent() {
    let example = fs::read_to_string(root().join("systemd/config.example.toml")).expect("read");
    assert!(example.contains("\nhost = \"192.168.88.1\"\n"));
    assert!(
        !example.lines().any(|l| l.starts_with("tls")),
        "TLS must not be on without a pin or CA file"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let password = dir.path().join("router-password");
    fs::write(&password, "").expect("write");
    let state = dir.path().join("state.redb");

    // The example as shipped, aimed at a closed local port instead of the
    // placeholder router, with the unit's environment.
    let local = example.replace("\nhost = \"192.168.88.1\"\n", "\nhost = \"127.0.0.1\"\n");
    let cfg = dir.path().join("config.toml");
    fs::write(&cfg, &local).expect("write");
    let out = check_with_config(&cfg, &password, &state);
    assert_eq!(
        out.status.code(),
        Some(1),
        "the example config must only fail to connect: {}",
        text(&out.stderr)
    );
    assert!(!text(&out.stderr).contains("invalid config"));

    // With TLS and a pin uncommented, as the comments say.
    let tls = local.replace("\n#tls = true\n", "\ntls = true\n").replace(
        "\n#cert_sha256 = \"AB:CD:...\"\n",
        &format!("\ncert_sha256 = \"{}\"\n", "AB:".repeat(31) + "AB"),
    );
    assert!(tls.contains("\ntls = true\n") && tls.contains("\ncert_sha256 = \"AB:"));
    fs::write(&cfg, &tls).expect("write");
    let out = check_with_config(&cfg, &password, &state);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));

    // A typo is a config error (exit 2), the status the units do not restart on.
    fs::write(&cfg, local.replace("\nuser = ", "\nusr = ")).expect("write");
    let out = check_with_config(&cfg, &password, &state);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("invalid config"));
}

/// path -> (mode, uid, size, mtime, content) of every file and directory below `dir`.
type Snapshot = BTreeMap<PathBuf, (u32, u32, u64, i64, Vec<u8>)>;

fn snapshot(dir: &Path) -> Snapshot {
    let mut out = Snapshot::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).expect("read_dir") {
            let path = entry.expect("entry").path();
            let meta = fs::symlink_metadata(&path).expect("metadata");
            let content = if meta.is_file() {
                fs::read(&path).expect("read")
            } else {
                Vec::new()
            };
            if meta.is_dir() {
                stack.push(path.clone());
            }
            let rel = path.strip_prefix(dir).expect("prefix").to_path_buf();
            out.insert(
                rel,
                (
                    meta.mode() & 0o7777,
                    meta.uid(),
                    meta.len(),
                    meta.mtime(),
                    content,
                ),
            );
        }
    }
    out
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .mode()
        & 0o7777
}

fn install(dest: &Path, args: &[&str]) -> Output {
    let out = run(Command::new("bash")
        .arg(root().join("scripts/install.sh"))
        .args(args)
        .env("DESTDIR", dest));
    assert_success(&out, &format!("install.sh {args:?}"));
    out
}

#[test]
fn install_script_installs_idempotently_and_uninstalls_keeping_state() {
    let dest = tempfile::tempdir().expect("tempdir");
    let d = dest.path();
    let bin = agent_bin();
    let bin = bin.to_str().expect("utf-8 path");
    let out = install(d, &["--binary", bin, "--no-systemctl"]);
    let said = text(&out.stdout);
    assert!(said.contains("Next steps"), "{said}");
    assert!(
        said.contains("systemctl enable --now mikrotik-edge"),
        "{said}"
    );

    let etc = d.join("etc/mikrotik-edge");
    let units = d.join("etc/systemd/system");
    let installed_bin = d.join("usr/local/bin/mikrotik-edge");
    assert_eq!(
        fs::read(&installed_bin).expect("binary"),
        fs::read(bin).expect("binary")
    );
    assert_eq!(mode(&installed_bin), 0o755);
    for unit in ["mikrotik-edge.service", "mikrotik-edge@.service"] {
        assert_eq!(
            fs::read_to_string(units.join(unit)).expect("unit"),
            unit_text(unit)
        );
        assert_eq!(mode(&units.join(unit)), 0o644);
    }
    assert_eq!(mode(&etc), 0o750);
    assert_eq!(mode(&etc.join("config.toml")), 0o600);
    assert_eq!(mode(&etc.join("config.example.toml")), 0o644);
    assert_eq!(mode(&etc.join("router-password")), 0o600);
    assert_eq!(
        fs::metadata(etc.join("router-password")).expect("pw").len(),
        0
    );
    let example = fs::read_to_string(root().join("systemd/config.example.toml")).expect("read");
    assert_eq!(
        fs::read_to_string(etc.join("config.toml")).expect("config"),
        example
    );

    // The installed config and credential, as the unit passes them, are a
    // valid configuration.
    let local = dest.path().join("local.toml");
    fs::write(
        &local,
        example.replace("\nhost = \"192.168.88.1\"\n", "\nhost = \"127.0.0.1\"\n"),
    )
    .expect("write");
    let out = check_with_config(&local, &etc.join("router-password"), &d.join("state.redb"));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));

    // Idempotent: a second run touches nothing, not even mtimes.
    let before = snapshot(d);
    let out = install(d, &["--binary", bin, "--no-systemctl"]);
    assert_eq!(snapshot(d), before, "second run changed files");
    assert!(
        !text(&out.stdout).contains("installed "),
        "{}",
        text(&out.stdout)
    );

    // Never overwrites an edited config or a password.
    fs::write(etc.join("config.toml"), "# edited\n").expect("write");
    fs::write(etc.join("router-password"), "s3cret\n").expect("write");
    install(d, &["--binary", bin, "--no-systemctl"]);
    assert_eq!(
        fs::read_to_string(etc.join("config.toml")).expect("read"),
        "# edited\n"
    );
    assert_eq!(
        fs::read_to_string(etc.join("router-password")).expect("read"),
        "s3cret\n"
    );

    // A new binary replaces the old one (upgrade), and the run says so.
    let fake = dest.path().join("new-binary");
    fs::write(&fake, "#!/bin/sh\necho new\n").expect("write");
    let out = install(
        d,
        &["--binary", fake.to_str().expect("utf-8"), "--no-systemctl"],
    );
    assert_eq!(
        fs::read(&installed_bin).expect("read"),
        fs::read(&fake).expect("read")
    );
    assert_eq!(mode(&installed_bin), 0o755);
    assert!(
        text(&out.stdout).contains("upgraded"),
        "{}",
        text(&out.stdout)
    );

    // Instances for the template: own directory, config and credential.
    install(
        d,
        &[
            "--binary",
            bin,
            "--instance",
            "site1",
            "--instance",
            "site2",
        ],
    );
    for name in ["site1", "site2"] {
        let dir = etc.join(name);
        assert_eq!(mode(&dir), 0o750);
        assert_eq!(mode(&dir.join("config.toml")), 0o600);
        assert_eq!(mode(&dir.join("router-password")), 0o600);
        let cfg = fs::read_to_string(dir.join("config.toml")).expect("read");
        assert!(cfg.contains(&format!("\nsite_id = \"{name}\"\n")), "{cfg}");
    }
    let bad = run(Command::new("bash")
        .arg(root().join("scripts/install.sh"))
        .args(["--binary", bin, "--instance", "../x"])
        .env("DESTDIR", d));
    assert!(
        !bad.status.success(),
        "a path as instance name was accepted"
    );

    // Uninstall: everything but the state.
    let state = d.join("var/lib/private/mikrotik-edge");
    fs::create_dir_all(&state).expect("mkdir");
    fs::write(state.join("state.redb"), "state").expect("write");
    let drop_in = units.join("mikrotik-edge.service.d");
    fs::create_dir_all(&drop_in).expect("mkdir");
    fs::write(drop_in.join("override.conf"), "[Service]\n").expect("write");
    let out = install(d, &["--uninstall", "--no-systemctl"]);
    assert!(!installed_bin.exists());
    assert!(!units.join("mikrotik-edge.service").exists());
    assert!(!units.join("mikrotik-edge@.service").exists());
    assert!(!drop_in.exists());
    assert!(!etc.exists());
    assert_eq!(
        fs::read_to_string(state.join("state.redb")).expect("state kept"),
        "state"
    );
    assert!(
        text(&out.stdout).contains("State kept"),
        "{}",
        text(&out.stdout)
    );
    // Uninstalling twice is fine.
    install(d, &["--uninstall", "--no-systemctl"]);
}

/// One tar member.
struct Member {
    name: String,
    mode: u32,
    uid: u32,
    gid: u32,
    kind: u8,
    data: Vec<u8>,
}

fn octal(field: &[u8]) -> u64 {
    let s = std::str::from_utf8(field).expect("octal field");
    let s = s.trim_matches(|c: char| c == '\0' || c == ' ');
    if s.is_empty() {
        0
    } else {
        u64::from_str_radix(s, 8).unwrap_or_else(|_| panic!("bad octal {s:?}"))
    }
}

/// A minimal ustar reader: enough for the archives build-container.sh writes.
fn read_tar(bytes: &[u8]) -> Vec<Member> {
    let mut members = Vec::new();
    let mut at = 0;
    while at + 512 <= bytes.len() {
        let h = &bytes[at..at + 512];
        if h.iter().all(|&b| b == 0) {
            break;
        }
        let cstr = |f: &[u8]| {
            let end = f.iter().position(|&b| b == 0).unwrap_or(f.len());
            String::from_utf8(f[..end].to_vec()).expect("utf-8 name")
        };
        assert_eq!(&h[257..262], b"ustar", "not a ustar header at {at}");
        let stored: u64 = h
            .iter()
            .enumerate()
            .map(|(i, &b)| {
                if (148..156).contains(&i) {
                    32
                } else {
                    u64::from(b)
                }
            })
            .sum();
        assert_eq!(octal(&h[148..156]), stored, "header checksum at {at}");
        let (prefix, name) = (cstr(&h[345..500]), cstr(&h[0..100]));
        let name = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let size = usize::try_from(octal(&h[124..136])).expect("size");
        let data = bytes[at + 512..at + 512 + size].to_vec();
        members.push(Member {
            name,
            mode: u32::try_from(octal(&h[100..108])).expect("mode"),
            uid: u32::try_from(octal(&h[108..116])).expect("uid"),
            gid: u32::try_from(octal(&h[116..124])).expect("gid"),
            kind: h[156],
            data,
        });
        at += 512 + size.div_ceil(512) * 512;
    }
    members
}

fn sha256_hex(data: &[u8]) -> String {
    mikrotik_edge::encoding::hex(ring::digest::digest(&ring::digest::SHA256, data).as_ref())
}

fn build_images(args: &[&str], out: &Path) {
    let result = run(Command::new("bash")
        .arg(root().join("scripts/build-container.sh"))
        .arg("--out")
        .arg(out)
        .args(args));
    assert_success(&result, &format!("build-container.sh {args:?}"));
}

/// Checks one image tarball and returns its binary.
fn check_image(tarball: &Path, arch: &str, variant: Option<&str>) -> Vec<u8> {
    let members = read_tar(&fs::read(tarball).expect("read tarball"));
    let by_name: BTreeMap<&str, &Member> = members.iter().map(|m| (m.name.as_str(), m)).collect();
    for m in &members {
        assert_eq!((m.uid, m.gid), (0, 0), "{}: outer owner", m.name);
    }
    let json = |name: &str| -> Value {
        let m = by_name
            .get(name)
            .unwrap_or_else(|| panic!("{}: no {name}", tarball.display()));
        serde_json::from_slice(&m.data).unwrap_or_else(|e| panic!("{name}: {e}"))
    };

    let manifest = json("manifest.json");
    let entries = manifest.as_array().expect("manifest is an array");
    assert_eq!(entries.len(), 1);
    let entry = &entries[0];
    assert_eq!(
        entry["RepoTags"],
        serde_json::json!([format!("mikrotik-edge:{}", env!("CARGO_PKG_VERSION"))])
    );
    let config_name = entry["Config"].as_str().expect("Config");
    let layers = entry["Layers"].as_array().expect("Layers");
    assert_eq!(layers.len(), 1, "one layer");
    let layer_name = layers[0].as_str().expect("layer path");

    // Content addressing: the config file is named by its own digest.
    let config_member = by_name.get(config_name).expect("config member");
    assert_eq!(
        config_name,
        format!("{}.json", sha256_hex(&config_member.data))
    );
    let config = json(config_name);
    assert_eq!(config["architecture"], arch);
    assert_eq!(config["os"], "linux");
    match variant {
        Some(v) => assert_eq!(config["variant"], v),
        None => assert!(config.get("variant").is_none()),
    }
    let c = &config["config"];
    assert_eq!(c["User"], format!("{IMAGE_USER}:{IMAGE_USER}"));
    assert_eq!(
        c["Entrypoint"],
        serde_json::json!(["/mikrotik-edge", "run"])
    );
    let env: Vec<&str> = c["Env"]
        .as_array()
        .expect("Env")
        .iter()
        .map(|v| v.as_str().expect("env string"))
        .collect();
    assert!(
        env.contains(&"MIKROTIK_EDGE_STATE_PATH=/data/state.redb"),
        "{env:?}"
    );
    assert!(
        env.contains(&"MIKROTIK_EDGE_HTTP_LISTEN=0.0.0.0:8080"),
        "{env:?}"
    );
    assert_eq!(c["Volumes"], serde_json::json!({"/data": {}}));
    assert_eq!(c["ExposedPorts"], serde_json::json!({"8080/tcp": {}}));
    assert_eq!(config["rootfs"]["type"], "layers");

    // diff_ids are the digests of the uncompressed layer.
    let layer = by_name.get(layer_name).expect("layer member");
    assert_eq!(
        config["rootfs"]["diff_ids"],
        serde_json::json!([format!("sha256:{}", sha256_hex(&layer.data))])
    );
    // The older docker save files are consistent with it.
    let layer_dir = layer_name
        .strip_suffix("/layer.tar")
        .expect("<id>/layer.tar");
    assert_eq!(
        by_name
            .get(format!("{layer_dir}/VERSION").as_str())
            .expect("VERSION")
            .data,
        b"1.0"
    );
    assert_eq!(json(&format!("{layer_dir}/json"))["id"], layer_dir);
    let repos = json("repositories");
    assert_eq!(
        repos["mikrotik-edge"][env!("CARGO_PKG_VERSION")],
        layer_dir,
        "repositories"
    );

    // The layer: the binary, executable and root-owned; /data owned by the user.
    let files = read_tar(&layer.data);
    let names: Vec<&str> = files.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["mikrotik-edge", "data/"], "layer contents");
    let bin = &files[0];
    assert_eq!(bin.kind, b'0');
    assert_eq!((bin.uid, bin.gid, bin.mode), (0, 0, 0o755));
    let data = &files[1];
    assert_eq!(data.kind, b'5');
    assert_eq!(
        (data.uid, data.gid, data.mode),
        (IMAGE_USER, IMAGE_USER, 0o700)
    );
    bin.data.clone()
}

/// Writes `binary` to a temporary file and runs `--version` on it, with
/// `runner` (qemu) in front if given.
fn run_version(binary: &[u8], runner: Option<&Path>) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("mikrotik-edge");
    fs::write(&path, binary).expect("write");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod");
    let out = match runner {
        Some(r) => run(Command::new(r).arg(&path).arg("--version")),
        None => run(target_command(&path).arg("--version")),
    };
    assert_success(&out, "the image's binary --version");
    let version = text(&out.stdout);
    assert_eq!(
        version.trim(),
        format!("mikrotik-edge {}", env!("CARGO_PKG_VERSION"))
    );
    version
}

#[test]
fn container_image_of_the_test_binary() {
    // The test-built binary goes into the image of its own architecture.
    let (arch, variant) = match std::env::consts::ARCH {
        "x86_64" => ("amd64", None),
        "aarch64" => ("arm64", Some("v8")),
        "arm" => ("arm", Some("v7")),
        other => {
            skip(
                "container_image_of_the_test_binary",
                &format!("no container image for {other}"),
            );
            return;
        }
    };
    let bin = agent_bin();
    let spec = format!("{arch}={}", bin.display());
    let out1 = tempfile::tempdir().expect("tempdir");
    build_images(&["--binary", &spec, arch], out1.path());
    let tarball = out1.path().join(format!("mikrotik-edge-{arch}.tar"));
    let inside = check_image(&tarball, arch, variant);
    assert_eq!(
        inside,
        fs::read(&bin).expect("read"),
        "the layer holds the binary as given"
    );
    run_version(&inside, None);

    // Deterministic: a second build is byte-identical.
    let out2 = tempfile::tempdir().expect("tempdir");
    build_images(&["--binary", &spec, arch], out2.path());
    assert!(
        fs::read(&tarball).expect("read")
            == fs::read(out2.path().join(format!("mikrotik-edge-{arch}.tar"))).expect("read"),
        "two builds of the same binary differ"
    );

    // A binary of another architecture is refused.
    let wrong = if arch == "amd64" { "arm64" } else { "amd64" };
    let result = run(Command::new("bash")
        .arg(root().join("scripts/build-container.sh"))
        .arg("--out")
        .arg(out2.path())
        .args(["--binary", &format!("{wrong}={}", bin.display()), wrong]));
    assert!(
        !result.status.success(),
        "a {arch} binary was accepted as {wrong}"
    );
}

#[test]
fn container_images_of_the_dist_binaries() {
    let test = "container_images_of_the_dist_binaries";
    let out = tempfile::tempdir().expect("tempdir");
    let mut built = 0;
    for (arch, target, variant, runner) in [
        (
            "arm64",
            "aarch64-unknown-linux-musl",
            Some("v8"),
            Some("qemu-aarch64-static"),
        ),
        (
            "arm",
            "armv7-unknown-linux-gnueabihf",
            Some("v7"),
            Some("qemu-arm-static"),
        ),
        ("amd64", "x86_64-unknown-linux-musl", None, None),
    ] {
        let dist = root().join(format!("dist/mikrotik-edge-{target}"));
        if !dist.is_file() {
            missing(
                test,
                &format!("{} missing (scripts/build.sh makes it)", dist.display()),
            );
            continue;
        }
        let runner = match runner {
            Some(name) => match which(name) {
                Some(path) => Some(path),
                None => {
                    missing(
                        test,
                        &format!("{arch}: {name} not installed (scripts/setup.sh)"),
                    );
                    continue;
                }
            },
            None if std::env::consts::ARCH == "x86_64" => None,
            // A test binary of another architecture may still run on an
            // x86_64 machine: the aarch64 tests run under qemu-user there,
            // whose execve hands an x86_64 binary to the host kernel. Only
            // a kernel that refuses the format (ENOEXEC) makes this a skip.
            None => match Command::new(&dist).arg("--version").output() {
                Err(e) if e.raw_os_error() == Some(libc::ENOEXEC) => {
                    skip(test, "amd64: this machine cannot run x86_64 binaries");
                    continue;
                }
                _ => None,
            },
        };
        build_images(&[arch], out.path());
        let inside = check_image(
            &out.path().join(format!("mikrotik-edge-{arch}.tar")),
            arch,
            variant,
        );
        assert_eq!(inside, fs::read(&dist).expect("read"));
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("mikrotik-edge");
        fs::write(&path, &inside).expect("write");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod");
        let mut cmd = match &runner {
            Some(r) => {
                let mut c = Command::new(r);
                c.arg(&path);
                c
            }
            None => Command::new(&path),
        };
        let result = run(cmd.arg("--version"));
        assert_success(&result, &format!("{arch} image binary --version"));
        eprintln!("{arch}: {}", text(&result.stdout).trim());
        built += 1;
    }
    if built == 0 {
        missing(test, "no dist/ binaries: run scripts/build.sh first");
    }
}
