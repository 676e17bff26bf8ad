use super::sources::{env_name, label};
use super::validate::parse_fingerprint;
use super::*;
use std::collections::HashMap;
use std::io::Write;

fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> + use<> {
    let map: HashMap<String, OsString> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), OsString::from(v)))
        .collect();
    move |name| map.get(name).cloned()
}

const REQUIRED: &[(&str, &str)] = &[
    ("MIKROTIK_EDGE_ROUTER_HOST", "10.0.0.1"),
    ("MIKROTIK_EDGE_ROUTER_USER", "api"),
];

fn with_required(extra: &[(&str, &str)]) -> Vec<(String, String)> {
    REQUIRED
        .iter()
        .chain(extra)
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn load_env(extra: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let pairs = with_required(extra);
    let refs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    Config::load(None, &env_of(&refs))
}

fn toml_file(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f
}

fn no_env(_: &str) -> Option<OsString> {
    None
}

#[test]
fn defaults() {
    let c = load_env(&[]).unwrap();
    assert_eq!(c.log_level, LevelFilter::Info);
    assert_eq!(
        c.state_path,
        PathBuf::from("/var/lib/mikrotik-edge/state.redb")
    );
    assert_eq!(c.site_id, "default");
    assert_eq!(c.poll_secs, 30);
    assert_eq!(c.poll_interval(), Duration::from_secs(30));
    assert_eq!(c.usage_secs, 300);
    assert_eq!(c.user_read_secs, 3600);
    assert_eq!(c.active_read_secs, 300);
    assert_eq!(c.hotspot_profile_pattern, "*voucher*");
    assert_eq!(c.pppoe_profile_pattern, "*pppoe*");
    assert_eq!(c.expired_action, ExpiredAction::Disable);
    assert!(!c.mac_lock);
    assert_eq!(c.mac_lock_profile_pattern, None);
    let mut expected = RouterConfig::new("10.0.0.1", "api");
    expected.password = Secret::new("");
    assert_eq!(c.router, expected);
    assert_eq!(c.router.port, 8728);
    assert_eq!(c.router.max_word_bytes, 1_048_576);
    assert_eq!(c.router.max_sentence_bytes, 4_194_304);
    assert_eq!(c.router.max_reply_bytes, 33_554_432);
}

#[test]
fn missing_required_keys() {
    let e = Config::load(None, &no_env).unwrap_err();
    assert_eq!(e.key(), "router.host (MIKROTIK_EDGE_ROUTER_HOST)");
    let e = Config::load(None, &env_of(&[("MIKROTIK_EDGE_ROUTER_HOST", "h")])).unwrap_err();
    assert_eq!(e.key(), "router.user (MIKROTIK_EDGE_ROUTER_USER)");
}

const FULL: &str = r#"
log_level = "debug"
state_path = "/tmp/state.redb"
site_id = "site-1.a_b"
poll_secs = 15
usage_secs = 120
hotspot_profile_pattern = "hs-*"
pppoe_profile_pattern = "ppp?"
expired_action = "remove"

[router]
host = "192.168.88.1"
port = 18728
user = "edge"
password = "hunter2"
tls = false
connect_timeout_secs = 3
command_timeout_secs = 7
keepalive_secs = 20
backoff_base_secs = 2
backoff_cap_secs = 40
max_word_bytes = 4096
"#;

#[test]
fn file_only() {
    let f = toml_file(FULL);
    let c = Config::load(Some(f.path()), &no_env).unwrap();
    assert_eq!(c.log_level, LevelFilter::Debug);
    assert_eq!(c.state_path, PathBuf::from("/tmp/state.redb"));
    assert_eq!(c.site_id, "site-1.a_b");
    assert_eq!((c.poll_secs, c.usage_secs), (15, 120));
    assert_eq!(c.hotspot_profile_pattern, "hs-*");
    assert_eq!(c.pppoe_profile_pattern, "ppp?");
    assert_eq!(c.expired_action, ExpiredAction::Remove);
    let r = &c.router;
    assert_eq!(
        (r.host.as_str(), r.port, r.user.as_str()),
        ("192.168.88.1", 18728, "edge")
    );
    assert_eq!(r.password.expose(), "hunter2");
    assert_eq!(r.tls, None);
    assert_eq!(r.connect_timeout, Duration::from_secs(3));
    assert_eq!(r.command_timeout, Duration::from_secs(7));
    assert_eq!(r.keepalive, Duration::from_secs(20));
    assert_eq!(r.backoff_base, Duration::from_secs(2));
    assert_eq!(r.backoff_cap, Duration::from_secs(40));
    assert_eq!(r.max_word_bytes, 4096);
}

#[test]
fn env_overrides_file() {
    let f = toml_file(FULL);
    let env = env_of(&[
        ("MIKROTIK_EDGE_LOG_LEVEL", "TRACE"),
        ("MIKROTIK_EDGE_POLL_SECS", "60"),
        ("MIKROTIK_EDGE_ROUTER_PORT", "8000"),
        ("MIKROTIK_EDGE_ROUTER_PASSWORD", "from-env"),
        ("MIKROTIK_EDGE_EXPIRED_ACTION", "disable"),
        ("MIKROTIK_EDGE_MAC_LOCK", "true"),
        ("MIKROTIK_EDGE_MAC_LOCK_PROFILE_PATTERN", "*locked*"),
    ]);
    let c = Config::load(Some(f.path()), &env).unwrap();
    assert!(c.mac_lock);
    assert_eq!(c.mac_lock_profile_pattern.as_deref(), Some("*locked*"));
    assert_eq!(c.log_level, LevelFilter::Trace);
    assert_eq!(c.poll_secs, 60);
    assert_eq!(c.router.port, 8000);
    assert_eq!(c.router.password.expose(), "from-env");
    assert_eq!(c.expired_action, ExpiredAction::Disable);
    // Untouched keys still come from the file.
    assert_eq!(c.router.user, "edge");
    assert_eq!(c.usage_secs, 120);
}

#[test]
fn validation_errors_name_their_key() {
    let long_id = "x".repeat(65);
    let fingerprint = "ab".repeat(32);
    let cases: &[(&str, &str)] = &[
        ("log_level", "loud"),
        ("state_path", ""),
        ("site_id", ""),
        ("site_id", "a b"),
        ("site_id", &long_id),
        ("poll_secs", "0"),
        ("poll_secs", "86401"),
        ("poll_secs", "-1"),
        ("usage_secs", "0"),
        ("usage_secs", "31536001"),
        ("user_read_secs", "86401"),
        ("user_read_secs", "-1"),
        ("active_read_secs", "86401"),
        ("active_read_secs", "-1"),
        ("hotspot_profile_pattern", ""),
        ("pppoe_profile_pattern", ""),
        ("expired_action", "delete"),
        ("router.host", ""),
        ("router.host", "a b"),
        ("router.user", ""),
        ("router.port", "abc"),
        ("router.port", "0"),
        ("router.port", "65536"),
        ("router.tls", "maybe"),
        ("router.ca_file", "/etc/hosts"),
        ("router.cert_sha256", &fingerprint),
        ("router.connect_timeout_secs", "0"),
        ("router.command_timeout_secs", "0"),
        ("router.keepalive_secs", "x"),
        ("router.backoff_base_secs", "0"),
        ("router.backoff_base_secs", "61"),
        ("router.backoff_cap_secs", "4"),
        ("router.max_word_bytes", "1023"),
        ("router.max_word_bytes", "1073741825"),
        ("router.password_file", "/nonexistent/pw"),
    ];
    for (key, value) in cases {
        let var = env_name(key);
        let e = load_env(&[(&var, value)]).unwrap_err();
        assert_eq!(e.key(), format!("{key} ({var})"), "{var}={value:?}: {e}");
        assert!(e.to_string().starts_with("invalid config: "), "{e}");
    }
    assert_eq!(env_name("router.ca_file"), "MIKROTIK_EDGE_ROUTER_CA_FILE");
    assert_eq!(env_name("site_id"), "MIKROTIK_EDGE_SITE_ID");
}

#[test]
fn file_type_errors_name_their_key() {
    let cases: &[(&str, &str)] = &[
        ("poll_secs = \"30\"", "poll_secs"),
        ("poll_secs = 1.5", "poll_secs"),
        ("site_id = 5", "site_id"),
        ("[router]\nport = -1", "router.port"),
        ("[router]\ntls = \"yes\"", "router.tls"),
        ("[router]\nkeepalive_secs = []", "router.keepalive_secs"),
        ("[router]\nca_file = \"/etc/hosts\"", "router.ca_file"),
    ];
    let env = env_of(REQUIRED);
    for (text, key) in cases {
        let f = toml_file(text);
        let e = Config::load(Some(f.path()), &env).unwrap_err();
        assert_eq!(e.key(), label(key), "{text}: {e}");
    }
}

#[test]
fn port_error_message() {
    let e = load_env(&[("MIKROTIK_EDGE_ROUTER_PORT", "abc")]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid config: router.port (MIKROTIK_EDGE_ROUTER_PORT): \
         expected a port number 1-65535, got \"abc\""
    );
}

#[test]
fn backoff_base_above_default_cap_blames_base() {
    let e = load_env(&[("MIKROTIK_EDGE_ROUTER_BACKOFF_BASE_SECS", "90")]).unwrap_err();
    assert_eq!(e.key(), label("router.backoff_base_secs"));
    let c = load_env(&[
        ("MIKROTIK_EDGE_ROUTER_BACKOFF_BASE_SECS", "90"),
        ("MIKROTIK_EDGE_ROUTER_BACKOFF_CAP_SECS", "90"),
    ])
    .unwrap();
    assert_eq!(c.router.backoff_cap, Duration::from_secs(90));
}

#[test]
fn password_file_read_and_trimmed() {
    for (content, expected) in [
        ("s3cret\n", "s3cret"),
        ("s3cret\r\n", "s3cret"),
        ("s3cret", "s3cret"),
        ("two\n\n", "two\n"),
        (" spaced \n", " spaced "),
        ("", ""),
    ] {
        let f = toml_file(content);
        let path = f.path().to_str().unwrap();
        let c = load_env(&[("MIKROTIK_EDGE_ROUTER_PASSWORD_FILE", path)]).unwrap();
        assert_eq!(c.router.password.expose(), expected, "{content:?}");
    }
}

#[test]
fn password_file_error_names_path_not_content() {
    let f = toml_file("");
    std::fs::write(f.path(), b"secret\xff\n").unwrap();
    let path = f.path().to_str().unwrap();
    let e = load_env(&[("MIKROTIK_EDGE_ROUTER_PASSWORD_FILE", path)]).unwrap_err();
    assert_eq!(e.key(), label("router.password_file"));
    assert!(e.reason().contains(path), "{e}");
    assert!(!e.to_string().contains("secret"), "{e}");

    let e = load_env(&[("MIKROTIK_EDGE_ROUTER_PASSWORD_FILE", "/nonexistent/pw")]).unwrap_err();
    assert!(e.reason().contains("/nonexistent/pw"), "{e}");
}

#[test]
fn password_and_password_file_conflict() {
    let pw = toml_file("hunter2\n");
    let pw_path = pw.path().to_str().unwrap();
    let e = load_env(&[
        ("MIKROTIK_EDGE_ROUTER_PASSWORD", "hunter2"),
        ("MIKROTIK_EDGE_ROUTER_PASSWORD_FILE", pw_path),
    ])
    .unwrap_err();
    assert!(e.key().contains("(MIKROTIK_EDGE_ROUTER_PASSWORD)"), "{e}");
    assert!(
        e.key().contains("MIKROTIK_EDGE_ROUTER_PASSWORD_FILE"),
        "{e}"
    );
    assert!(!format!("{e} {e:?}").contains("hunter2"));

    // Across sources too: the file's password does not yield to the
    // environment's password_file, they conflict.
    let f = toml_file("[router]\npassword = \"hunter2\"");
    let env = env_of(&[
        REQUIRED[0],
        REQUIRED[1],
        ("MIKROTIK_EDGE_ROUTER_PASSWORD_FILE", pw_path),
    ]);
    let e = Config::load(Some(f.path()), &env).unwrap_err();
    assert!(e.reason().contains("config file"), "{e}");
    assert!(e.reason().contains("environment"), "{e}");
}

#[test]
fn unknown_keys_are_errors() {
    let env = env_of(REQUIRED);
    for (text, key) in [
        ("pol_secs = 5", "pol_secs"),
        ("[router]\npasword = \"hunter2\"", "router.pasword"),
        ("[routr]\nhost = \"x\"", "routr"),
    ] {
        let f = toml_file(text);
        let e = Config::load(Some(f.path()), &env).unwrap_err();
        assert_eq!(e.key(), key, "{e}");
        assert!(e.reason().contains("unknown key"), "{e}");
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }
    let f = toml_file("router = 5");
    let e = Config::load(Some(f.path()), &env).unwrap_err();
    assert_eq!(e.key(), "router");
}

#[test]
fn password_never_in_debug_or_errors() {
    let f = toml_file(FULL);
    let c = Config::load(Some(f.path()), &no_env).unwrap();
    let debug = format!("{c:?} {:?} {}", c.router.password, c.router.password);
    assert!(!debug.contains("hunter2"), "{debug}");
    assert!(debug.contains("<redacted>"));

    // A wrongly typed password is not quoted back.
    let f = toml_file("[router]\npassword = [\"hunter2\"]");
    let e = Config::load(Some(f.path()), &env_of(REQUIRED)).unwrap_err();
    assert_eq!(e.key(), label("router.password"));
    assert!(!format!("{e} {e:?}").contains("hunter2"), "{e}");

    // Nor is the line of a syntax error.
    let f = toml_file("[router]\npassword = \"hunter2");
    let e = Config::load(Some(f.path()), &env_of(REQUIRED)).unwrap_err();
    assert!(!format!("{e} {e:?}").contains("hunter2"), "{e}");
}

#[test]
fn toml_syntax_error_names_file_and_line() {
    let f = toml_file("log_level = \"info\"\n\n[router\nhost = \"x\"\n");
    let e = Config::load(Some(f.path()), &no_env).unwrap_err();
    assert_eq!(e.key(), f.path().display().to_string());
    assert!(e.reason().contains("line 3"), "{e}");
}

#[test]
fn unreadable_config_file() {
    let e = Config::load(Some(Path::new("/nonexistent/edge.toml")), &no_env).unwrap_err();
    assert_eq!(e.key(), "--config /nonexistent/edge.toml");
    assert!(e.reason().contains("cannot read"), "{e}");
}

#[test]
fn non_utf8_env_names_variable() {
    use std::os::unix::ffi::OsStringExt;
    let env = |name: &str| match name {
        "MIKROTIK_EDGE_ROUTER_HOST" => Some(OsString::from("h")),
        "MIKROTIK_EDGE_ROUTER_USER" => Some(OsString::from_vec(b"ad\xffmin".to_vec())),
        _ => None,
    };
    let e = Config::load(None, &env).unwrap_err();
    assert_eq!(e.key(), "router.user (MIKROTIK_EDGE_ROUTER_USER)");
    assert!(e.reason().contains("UTF-8"), "{e}");
}

#[test]
fn env_booleans() {
    for (value, tls) in [
        ("true", true),
        ("1", true),
        ("YES", true),
        ("false", false),
        ("0", false),
        ("no", false),
    ] {
        let c = load_env(&[("MIKROTIK_EDGE_ROUTER_TLS", value)]).unwrap();
        assert_eq!(c.router.tls.is_some(), tls, "{value}");
    }
}

#[test]
fn tls_defaults_to_port_8729() {
    let c = load_env(&[("MIKROTIK_EDGE_ROUTER_TLS", "true")]).unwrap();
    assert_eq!(c.router.port, 8729);
    assert_eq!(c.router.tls, Some(TlsConfig::default()));
    let c = load_env(&[
        ("MIKROTIK_EDGE_ROUTER_TLS", "true"),
        ("MIKROTIK_EDGE_ROUTER_PORT", "443"),
    ])
    .unwrap();
    assert_eq!(c.router.port, 443);
}

#[test]
fn tls_with_ca_file_or_fingerprint() {
    let ca = toml_file("-----BEGIN CERTIFICATE-----\n");
    let ca_line = format!("ca_file = {:?}", ca.path().to_str().unwrap());
    let pin_line = format!("cert_sha256 = \"{}\"", ["Ab"; 32].join(":"));
    let load = |lines: &[&str]| {
        let f = toml_file(&format!("[router]\ntls = true\n{}", lines.join("\n")));
        Config::load(Some(f.path()), &env_of(REQUIRED))
    };

    let tls = load(&[&ca_line]).unwrap().router.tls.unwrap();
    assert_eq!(tls.ca_file.as_deref(), Some(ca.path()));
    assert_eq!(tls.cert_sha256, None);

    let tls = load(&[&pin_line]).unwrap().router.tls.unwrap();
    assert_eq!(tls.ca_file, None);
    assert_eq!(tls.cert_sha256, Some([0xab; 32]));

    let e = load(&[&ca_line, &pin_line]).unwrap_err();
    assert!(e.key().contains("router.ca_file"), "{e}");
    assert!(e.key().contains("router.cert_sha256"), "{e}");

    let e = load(&["ca_file = \"/nonexistent/ca.pem\""]).unwrap_err();
    assert_eq!(e.key(), label("router.ca_file"));
    assert!(e.reason().contains("/nonexistent/ca.pem"), "{e}");
}

#[test]
fn fingerprint_parsing() {
    let mut expected = [0u8; 32];
    for (i, b) in expected.iter_mut().enumerate() {
        *b = u8::try_from(i * 7).unwrap();
    }
    let upper: Vec<String> = expected.iter().map(|b| format!("{b:02X}")).collect();
    assert_eq!(parse_fingerprint(&upper.join(":")), Some(expected));
    assert_eq!(parse_fingerprint(&upper.join(" ")), Some(expected));
    assert_eq!(
        parse_fingerprint(&upper.concat().to_lowercase()),
        Some(expected)
    );
    assert_eq!(parse_fingerprint(&upper.concat()[..62]), None);
    assert_eq!(parse_fingerprint(&format!("{}00", upper.concat())), None);
    assert_eq!(parse_fingerprint(&format!("{}0", upper.concat())), None);
    assert_eq!(parse_fingerprint(&upper.concat().replace('0', "g")), None);
    assert_eq!(parse_fingerprint(""), None);
}

#[allow(unsafe_code)]
#[test]
fn endless_and_special_files_are_refused_at_once() {
    let started = std::time::Instant::now();
    let e = load_env(&[("MIKROTIK_EDGE_ROUTER_PASSWORD_FILE", "/dev/zero")]).unwrap_err();
    assert_eq!(e.key(), label("router.password_file"));
    assert!(e.reason().contains("not a regular file"), "{e}");
    let e = Config::load(Some(Path::new("/dev/zero")), &env_of(REQUIRED)).unwrap_err();
    assert!(e.reason().contains("not a regular file"), "{e}");
    // A regular file over the limit is refused after limit + 1 bytes.
    let big = toml_file(&"x".repeat(70 * 1024));
    let e = load_env(&[(
        "MIKROTIK_EDGE_HTTP_TOKEN_FILE",
        big.path().to_str().unwrap(),
    )])
    .unwrap_err();
    assert_eq!(e.key(), label("http_token_file"));
    assert!(e.reason().contains("limit"), "{e}");
    // A FIFO without a writer would block a plain open() forever.
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path; mkfifo only creates a node.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let fifo = fifo.to_str().unwrap();
    for (var, key) in [
        ("MIKROTIK_EDGE_ROUTER_PASSWORD_FILE", "router.password_file"),
        ("MIKROTIK_EDGE_HTTP_TOKEN_FILE", "http_token_file"),
    ] {
        let e = load_env(&[(var, fifo)]).unwrap_err();
        assert_eq!(e.key(), label(key));
        assert!(e.reason().contains("not a regular file (a FIFO)"), "{e}");
    }
    let e = load_env(&[
        ("MIKROTIK_EDGE_CENTRAL_URL", "http://127.0.0.1:1"),
        ("MIKROTIK_EDGE_CENTRAL_TOKEN_FILE", fifo),
    ])
    .unwrap_err();
    assert_eq!(e.key(), label("central_token_file"));
    let e = Config::load(Some(Path::new(fifo)), &env_of(REQUIRED)).unwrap_err();
    assert!(e.key().starts_with("--config"), "{e}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[test]
fn huge_values_are_quoted_as_a_short_excerpt() {
    let huge = "x".repeat(10 * 1024 * 1024);
    let e = load_env(&[("MIKROTIK_EDGE_SITE_ID", &huge)]).unwrap_err();
    assert_eq!(e.key(), label("site_id"));
    let text = e.to_string();
    assert!(text.len() < 400, "{} bytes", text.len());
    assert!(text.contains("bytes in all"), "{text}");
}

#[test]
fn http_listen_default_off_and_errors() {
    let c = load_env(&[]).unwrap();
    assert_eq!(c.http.listen, Some("127.0.0.1:8080".parse().unwrap()));
    assert_eq!(c.http.token, None);
    let off = load_env(&[("MIKROTIK_EDGE_HTTP_LISTEN", "off")]).unwrap();
    assert_eq!(off.http.listen, None);
    let v6 = load_env(&[("MIKROTIK_EDGE_HTTP_LISTEN", "[::1]:9000")]).unwrap();
    assert_eq!(v6.http.listen, Some("[::1]:9000".parse().unwrap()));
    let bad = load_env(&[("MIKROTIK_EDGE_HTTP_LISTEN", "localhost")]).unwrap_err();
    assert_eq!(bad.key(), "http_listen (MIKROTIK_EDGE_HTTP_LISTEN)");
    let f = toml_file("http_listen = \"0.0.0.0:80\"\n[router]\nhost = \"h\"\nuser = \"u\"\n");
    let c = Config::load(Some(f.path()), &no_env).unwrap();
    assert_eq!(c.http.listen, Some("0.0.0.0:80".parse().unwrap()));
}

#[test]
fn http_token_from_env_or_file_never_both_never_shown() {
    let c = load_env(&[("MIKROTIK_EDGE_HTTP_TOKEN", "tok-123")]).unwrap();
    assert_eq!(c.http.token.as_ref().map(Secret::expose), Some("tok-123"));
    assert!(!format!("{c:?}").contains("tok-123"));

    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(b"from-file\n").unwrap();
    let path = f.path().to_str().unwrap().to_owned();
    let c = load_env(&[("MIKROTIK_EDGE_HTTP_TOKEN_FILE", &path)]).unwrap();
    assert_eq!(c.http.token.as_ref().map(Secret::expose), Some("from-file"));

    let both = load_env(&[
        ("MIKROTIK_EDGE_HTTP_TOKEN", "tok-123"),
        ("MIKROTIK_EDGE_HTTP_TOKEN_FILE", &path),
    ])
    .unwrap_err();
    assert!(both.key().contains("http_token (MIKROTIK_EDGE_HTTP_TOKEN)"));
    assert!(
        both.key()
            .contains("http_token_file (MIKROTIK_EDGE_HTTP_TOKEN_FILE)")
    );
    assert!(!both.to_string().contains("tok-123"));

    let empty = load_env(&[("MIKROTIK_EDGE_HTTP_TOKEN", "")]).unwrap_err();
    assert_eq!(empty.key(), "http_token (MIKROTIK_EDGE_HTTP_TOKEN)");
}

#[test]
fn uplink_defaults_and_keys() {
    let c = load_env(&[]).unwrap();
    assert_eq!(c.uplink, UplinkConfig::default());
    assert!(c.uplink.central.is_none());
    assert_eq!(c.uplink.batch_max, 500);
    assert_eq!(c.uplink.outbox_max_bytes, 64 * 1024 * 1024);
    assert_eq!(c.uplink.alert_after, 10);
    let c = load_env(&[
        ("MIKROTIK_EDGE_CENTRAL_URL", "https://central.example/api/"),
        ("MIKROTIK_EDGE_CENTRAL_TOKEN", "tok-123"),
        ("MIKROTIK_EDGE_BATCH_MAX", "50"),
        ("MIKROTIK_EDGE_OUTBOX_MAX_MB", "0.5"),
        ("MIKROTIK_EDGE_ALERT_AFTER", "3"),
        ("MIKROTIK_EDGE_ALERT_WEBHOOK", "http://127.0.0.1:9000/hook"),
    ])
    .unwrap();
    let central = c.uplink.central.clone().unwrap();
    assert_eq!(central.url, "https://central.example/api");
    assert_eq!(central.token.expose(), "tok-123");
    assert_eq!(c.uplink.batch_max, 50);
    assert_eq!(c.uplink.outbox_max_bytes, 512 * 1024);
    assert_eq!(c.uplink.alert_after, 3);
    assert_eq!(
        c.uplink.alert_webhook.as_ref().map(|w| w.url.as_str()),
        Some("http://127.0.0.1:9000/hook")
    );
    assert!(!format!("{c:?}").contains("tok-123"));
}

#[test]
fn uplink_errors_name_their_key() {
    for (pairs, key) in [
        (
            &[("MIKROTIK_EDGE_CENTRAL_URL", "ftp://x")][..],
            "central_url",
        ),
        (
            &[("MIKROTIK_EDGE_CENTRAL_URL", "not a url")][..],
            "central_url",
        ),
        (
            &[("MIKROTIK_EDGE_CENTRAL_URL", "https://x")][..],
            "central_url",
        ),
        (&[("MIKROTIK_EDGE_CENTRAL_TOKEN", "t")][..], "central_token"),
        (
            &[
                ("MIKROTIK_EDGE_CENTRAL_URL", "https://u:p@x"),
                ("MIKROTIK_EDGE_CENTRAL_TOKEN", "t"),
            ][..],
            "central_url",
        ),
        (
            &[
                ("MIKROTIK_EDGE_CENTRAL_URL", "http://x"),
                ("MIKROTIK_EDGE_CENTRAL_TOKEN", "t"),
                ("MIKROTIK_EDGE_CENTRAL_CA_FILE", "/etc/hostname"),
            ][..],
            "central_ca_file",
        ),
        (&[("MIKROTIK_EDGE_BATCH_MAX", "0")][..], "batch_max"),
        (
            &[("MIKROTIK_EDGE_OUTBOX_MAX_MB", "-1")][..],
            "outbox_max_mb",
        ),
        (
            &[("MIKROTIK_EDGE_OUTBOX_MAX_MB", "lots")][..],
            "outbox_max_mb",
        ),
        (&[("MIKROTIK_EDGE_ALERT_AFTER", "0")][..], "alert_after"),
        (
            &[("MIKROTIK_EDGE_ALERT_WEBHOOK", "whatsapp")][..],
            "alert_webhook",
        ),
    ] {
        let e = load_env(pairs).unwrap_err();
        assert!(e.key().starts_with(key), "{pairs:?}: {e}");
    }
    let e = load_env(&[
        ("MIKROTIK_EDGE_CENTRAL_URL", "https://x"),
        ("MIKROTIK_EDGE_CENTRAL_TOKEN", "secret token"),
    ])
    .unwrap_err();
    assert!(!e.to_string().contains("secret token"), "{e}");
}

#[test]
fn central_token_file_is_read_and_trimmed() {
    let f = toml_file("abc123\n");
    let c = load_env(&[
        ("MIKROTIK_EDGE_CENTRAL_URL", "http://127.0.0.1:8090"),
        (
            "MIKROTIK_EDGE_CENTRAL_TOKEN_FILE",
            f.path().to_str().unwrap(),
        ),
    ])
    .unwrap();
    assert_eq!(c.uplink.central.unwrap().token.expose(), "abc123");
}

#[test]
fn http_allowed_hosts_from_file_or_env() {
    let c = load_env(&[]).unwrap();
    assert!(c.http.allowed_hosts.is_empty());
    let c = load_env(&[(
        "MIKROTIK_EDGE_HTTP_ALLOWED_HOSTS",
        "Edge.LAN, 192.168.88.10:8080,[fd00::1],",
    )])
    .unwrap();
    assert_eq!(
        c.http.allowed_hosts,
        ["edge.lan", "192.168.88.10:8080", "[fd00::1]"]
    );
    let f = toml_file(
        "http_allowed_hosts = [\"edge.lan\", \"pi.example:443\"]\n[router]\nhost = \"h\"\nuser = \"u\"\n",
    );
    let c = Config::load(Some(f.path()), &no_env).unwrap();
    assert_eq!(c.http.allowed_hosts, ["edge.lan", "pi.example:443"]);
    for bad in [
        "http://edge.lan",
        "edge lan",
        "edge.lan:99999",
        "[zz]",
        "a/b",
    ] {
        let e = load_env(&[("MIKROTIK_EDGE_HTTP_ALLOWED_HOSTS", bad)]).unwrap_err();
        assert_eq!(e.key(), label("http_allowed_hosts"), "{bad}");
    }
    let f = toml_file("http_allowed_hosts = \"edge.lan\"\n[router]\nhost = \"h\"\nuser = \"u\"\n");
    let e = Config::load(Some(f.path()), &no_env).unwrap_err();
    assert_eq!(e.key(), label("http_allowed_hosts"));
    assert!(e.reason().contains("array of strings"), "{e}");
}

#[test]
fn alert_webhook_body_format_and_headers() {
    use crate::template::{AlertFields, BodyFormat};
    let token = toml_file("wa-secret-token\n");
    let f = toml_file(&format!(
        "alert_webhook = \"https://gw.example/send?apikey=K3Y\"\n\
         alert_webhook_format = \"form\"\n\
         alert_webhook_body = \"target=62812000&message={{message}}\"\n\
         [alert_webhook_headers]\n\
         Authorization = \"file:{}\"\n\
         X-Plain = \"abc\"\n\
         [router]\nhost = \"h\"\nuser = \"u\"\n",
        token.path().display()
    ));
    let c = Config::load(Some(f.path()), &no_env).unwrap();
    let w = c.uplink.alert_webhook.clone().unwrap();
    assert_eq!(w.url, "https://gw.example/send?apikey=K3Y");
    assert_eq!(w.format, BodyFormat::Form);
    let fields = AlertFields {
        message: "a b".into(),
        ..AlertFields::default()
    };
    assert_eq!(
        w.body.as_ref().unwrap().render(&fields),
        "target=62812000&message=a%20b"
    );
    let headers: Vec<(&str, &str)> = w
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.expose()))
        .collect();
    assert_eq!(
        headers,
        [("Authorization", "wa-secret-token"), ("X-Plain", "abc")]
    );
    let debug = format!("{c:?}");
    assert!(
        !debug.contains("wa-secret-token") && !debug.contains("K3Y"),
        "{debug}"
    );

    // The environment forms.
    let c = load_env(&[
        ("MIKROTIK_EDGE_ALERT_WEBHOOK", "http://127.0.0.1:9/hook"),
        ("MIKROTIK_EDGE_ALERT_WEBHOOK_FORMAT", "json"),
        (
            "MIKROTIK_EDGE_ALERT_WEBHOOK_BODY",
            r#"{"phone": "62812", "text": "{message} at {time}"}"#,
        ),
        (
            "MIKROTIK_EDGE_ALERT_WEBHOOK_HEADERS",
            &format!("X-Token: file:{}; X-Site: a", token.path().display()),
        ),
    ])
    .unwrap();
    let w = c.uplink.alert_webhook.unwrap();
    assert_eq!(w.format, BodyFormat::Json);
    assert_eq!(w.headers.len(), 2);
    assert_eq!(w.headers[0].1.expose(), "wa-secret-token");
    // Default: no template (the event JSON) in json format.
    let c = load_env(&[("MIKROTIK_EDGE_ALERT_WEBHOOK", "http://127.0.0.1:9/hook")]).unwrap();
    assert!(c.uplink.alert_webhook.unwrap().body.is_none());

    // Bad values exit naming the key; header values never quoted.
    let hook = ("MIKROTIK_EDGE_ALERT_WEBHOOK", "http://127.0.0.1:9/hook");
    for (pair, key) in [
        (
            ("MIKROTIK_EDGE_ALERT_WEBHOOK_FORMAT", "xml"),
            "alert_webhook_format",
        ),
        (
            ("MIKROTIK_EDGE_ALERT_WEBHOOK_BODY", r#"{"t": {message}}"#),
            "alert_webhook_body",
        ),
        (
            ("MIKROTIK_EDGE_ALERT_WEBHOOK_BODY", r#"{"t": "{nope}"}"#),
            "alert_webhook_body",
        ),
        (
            ("MIKROTIK_EDGE_ALERT_WEBHOOK_HEADERS", "Bad Name: SECRETV"),
            "alert_webhook_headers",
        ),
        (
            ("MIKROTIK_EDGE_ALERT_WEBHOOK_HEADERS", "SECRETV"),
            "alert_webhook_headers",
        ),
        (
            (
                "MIKROTIK_EDGE_ALERT_WEBHOOK_HEADERS",
                "X-A: file:/nonexistent/SECRETV",
            ),
            "alert_webhook_headers",
        ),
    ] {
        let e = load_env(&[hook, pair]).unwrap_err();
        assert_eq!(e.key(), label(key), "{pair:?}: {e}");
        if key == "alert_webhook_headers" && !pair.1.contains("file:") {
            assert!(!e.to_string().contains("SECRETV"), "{e}");
        }
    }
    let e = load_env(&[("MIKROTIK_EDGE_ALERT_WEBHOOK_FORMAT", "form")]).unwrap_err();
    assert_eq!(e.key(), label("alert_webhook_format"));
}

#[test]
fn urls_in_config_errors_are_redacted() {
    for (var, value) in [
        (
            "MIKROTIK_EDGE_CENTRAL_URL",
            "ftp://user:PA55WORD@central.example/x",
        ),
        (
            "MIKROTIK_EDGE_CENTRAL_URL",
            "https://central.example/x?token=T0K3N",
        ),
        ("MIKROTIK_EDGE_CENTRAL_URL", "central.example/x?token=T0K3N"),
        (
            "MIKROTIK_EDGE_ALERT_WEBHOOK",
            "ftp://user:PA55WORD@gw.example/hook/T0K3N",
        ),
        (
            "MIKROTIK_EDGE_ALERT_WEBHOOK",
            "https://gw.example/hook/T0K3N#frag",
        ),
    ] {
        let mut pairs = vec![(var, value)];
        if var == "MIKROTIK_EDGE_CENTRAL_URL" {
            pairs.push(("MIKROTIK_EDGE_CENTRAL_TOKEN", "t"));
        }
        let e = load_env(&pairs).unwrap_err().to_string();
        assert!(!e.contains("PA55WORD") && !e.contains("T0K3N"), "{e}");
        assert!(e.contains("example"), "the host is still named: {e}");
    }
}
