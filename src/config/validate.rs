//! Typed settings from raw values: the `[router]` table, log levels, site
//! ids, certificate fingerprints.

use std::time::Duration;

use log::LevelFilter;

use super::sources::{
    Sources, check_readable_file, error, label, read_password_file, read_secret_file,
};
use super::{
    ConfigError, DEFAULT_API_PORT, DEFAULT_API_SSL_PORT, DEFAULT_HTTP_LISTEN, HttpConfig,
    RouterConfig, Secret, TlsConfig,
};

/// `http_listen` (an `IP:port`, or `off`) and the bearer token.
pub(super) fn load_http(src: &Sources<'_>) -> Result<HttpConfig, ConfigError> {
    let listen = match src.string("http_listen")? {
        Some(s) if s.trim().eq_ignore_ascii_case("off") => None,
        Some(s) => Some(s.trim().parse().map_err(|_| {
            error(
                "http_listen",
                format!("expected IP:port (e.g. 127.0.0.1:8080) or off, got {s:?}"),
            )
        })?),
        None => DEFAULT_HTTP_LISTEN.parse().ok(),
    };
    let token = match (
        src.secret("http_token")?,
        src.path_with_origin("http_token_file")?,
    ) {
        (Some((_, t_origin)), Some((_, f_origin))) => {
            return Err(ConfigError {
                key: format!("{} and {}", label("http_token"), label("http_token_file")),
                reason: format!(
                    "both are set (http_token in the {t_origin}, http_token_file in the {f_origin}); set only one"
                ),
            });
        }
        (Some((t, _)), None) => Some((t, "http_token")),
        (None, Some((path, _))) => Some((
            read_secret_file("http_token_file", &path)?,
            "http_token_file",
        )),
        (None, None) => None,
    };
    let token = match token {
        // An empty token would make `Authorization: Bearer ` a valid login.
        Some((t, key)) if t.trim().is_empty() => {
            return Err(error(key, "must not be empty"));
        }
        Some((t, _)) => Some(Secret(t)),
        None => None,
    };
    let mut allowed_hosts = Vec::new();
    for h in src.string_list("http_allowed_hosts")?.unwrap_or_default() {
        if !valid_allowed_host(&h) {
            return Err(error(
                "http_allowed_hosts",
                format!(
                    "expected host names or IP addresses, each optionally with :port (e.g. edge.lan, 192.168.88.10:8080, [fd00::1]), got {h:?}"
                ),
            ));
        }
        allowed_hosts.push(h.to_ascii_lowercase());
    }
    Ok(HttpConfig {
        listen,
        token,
        allowed_hosts,
    })
}

/// `name`, `name:port`, `[v6]`, `[v6]:port`: what a `Host` header can hold
/// (names of letters, digits, `-`, `.` and `_`).
fn valid_allowed_host(s: &str) -> bool {
    let (name, port) = if let Some(rest) = s.strip_prefix('[') {
        let Some((ip, after)) = rest.split_once(']') else {
            return false;
        };
        if ip.parse::<std::net::Ipv6Addr>().is_err() {
            return false;
        }
        match after {
            "" => return true,
            a => match a.strip_prefix(':') {
                Some(p) => ("ok", Some(p)),
                None => return false,
            },
        }
    } else {
        match s.split_once(':') {
            Some((n, p)) => (n, Some(p)),
            None => (s, None),
        }
    };
    let name_ok = !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|p| p > 0));
    name_ok && port_ok
}

pub(super) fn load_router(src: &Sources<'_>) -> Result<RouterConfig, ConfigError> {
    let defaults = RouterConfig::new("", "");
    // Checked in this order: the first bad key is the one named.
    let (host, user, password) = router_login(src)?;
    let tls = router_tls(src)?;
    let port = match src.uint("router.port", 1..=65_535, "a port number 1-65535")? {
        // The range check above makes the conversion infallible.
        Some(p) => u16::try_from(p).unwrap_or(DEFAULT_API_PORT),
        None if tls.is_some() => DEFAULT_API_SSL_PORT,
        None => DEFAULT_API_PORT,
    };
    let secs = |key: &'static str, default: Duration| -> Result<Duration, ConfigError> {
        Ok(src.secs(key)?.map(Duration::from_secs).unwrap_or(default))
    };
    let (backoff_base, backoff_cap) = router_backoff(src, &defaults)?;
    let (max_word_bytes, max_sentence_bytes, max_reply_bytes) = router_limits(src, &defaults)?;

    Ok(RouterConfig {
        host,
        port,
        user,
        password,
        tls,
        connect_timeout: secs("router.connect_timeout_secs", defaults.connect_timeout)?,
        command_timeout: secs("router.command_timeout_secs", defaults.command_timeout)?,
        keepalive: secs("router.keepalive_secs", defaults.keepalive)?,
        backoff_base,
        backoff_cap,
        max_word_bytes,
        max_sentence_bytes,
        max_reply_bytes,
    })
}

/// `router.host`, `router.user` and the password (`router.password` or
/// `router.password_file`, not both).
fn router_login(src: &Sources<'_>) -> Result<(String, String, Secret), ConfigError> {
    let host = src
        .string("router.host")?
        .ok_or_else(|| error("router.host", "required, not set"))?;
    if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(error(
            "router.host",
            format!("expected a host name or IP address, got {host:?}"),
        ));
    }
    let user = src
        .string("router.user")?
        .ok_or_else(|| error("router.user", "required, not set"))?;
    if user.is_empty() {
        return Err(error("router.user", "must not be empty"));
    }

    let password = match (
        src.secret("router.password")?,
        src.path_with_origin("router.password_file")?,
    ) {
        (Some((_, pw_origin)), Some((_, file_origin))) => {
            return Err(ConfigError {
                key: format!(
                    "{} and {}",
                    label("router.password"),
                    label("router.password_file")
                ),
                reason: format!(
                    "both are set (password in the {pw_origin}, password_file in the {file_origin}); set only one"
                ),
            });
        }
        (Some((pw, _)), None) => Secret(pw),
        (None, Some((path, _))) => Secret(read_password_file(&path)?),
        (None, None) => Secret::default(),
    };
    Ok((host, user, password))
}

/// `router.tls` with at most one way to verify the router's certificate;
/// the verification keys are refused without TLS.
fn router_tls(src: &Sources<'_>) -> Result<Option<TlsConfig>, ConfigError> {
    let tls_on = src.boolean("router.tls")?.unwrap_or(false);
    let ca_file = src.path("router.ca_file")?;
    let cert_sha256 = match src.string("router.cert_sha256")? {
        Some(s) => Some(parse_fingerprint(&s).ok_or_else(|| {
            error(
                "router.cert_sha256",
                format!("expected 64 hex digits (colons and spaces allowed), got {s:?}"),
            )
        })?),
        None => None,
    };
    let tls = if tls_on {
        // The client verifies one way or the other; accepting both would
        // leave it unclear which one is in force.
        if ca_file.is_some() && cert_sha256.is_some() {
            return Err(ConfigError {
                key: format!(
                    "{} and {}",
                    label("router.ca_file"),
                    label("router.cert_sha256")
                ),
                reason: "set at most one of them".to_owned(),
            });
        }
        if let Some(path) = &ca_file {
            check_readable_file("router.ca_file", path)?;
        }
        Some(TlsConfig {
            ca_file,
            cert_sha256,
        })
    } else {
        // Silently ignoring these would leave the operator believing the
        // connection is verified when it is not even encrypted.
        for (key, set) in [
            ("router.ca_file", ca_file.is_some()),
            ("router.cert_sha256", cert_sha256.is_some()),
        ] {
            if set {
                return Err(error(key, "only valid with router.tls = true"));
            }
        }
        None
    };
    Ok(tls)
}

/// The reconnect backoff: base and cap, the cap at least the base.
fn router_backoff(
    src: &Sources<'_>,
    defaults: &RouterConfig,
) -> Result<(Duration, Duration), ConfigError> {
    let backoff_base = src
        .secs("router.backoff_base_secs")?
        .map(Duration::from_secs)
        .unwrap_or(defaults.backoff_base);
    let explicit_cap = src.secs("router.backoff_cap_secs")?;
    let backoff_cap = explicit_cap
        .map(Duration::from_secs)
        .unwrap_or(defaults.backoff_cap);
    if backoff_cap < backoff_base {
        // Blame whichever of the two the operator actually set.
        let (key, reason) = if explicit_cap.is_some() {
            (
                "router.backoff_cap_secs",
                format!(
                    "must be at least router.backoff_base_secs ({}), got {}",
                    backoff_base.as_secs(),
                    backoff_cap.as_secs()
                ),
            )
        } else {
            (
                "router.backoff_base_secs",
                format!(
                    "must be at most router.backoff_cap_secs ({}), got {}",
                    backoff_cap.as_secs(),
                    backoff_base.as_secs()
                ),
            )
        };
        return Err(error(key, reason));
    }
    Ok((backoff_base, backoff_cap))
}

/// The reply size limits: word, sentence, whole reply.
fn router_limits(
    src: &Sources<'_>,
    defaults: &RouterConfig,
) -> Result<(usize, usize, u64), ConfigError> {
    let max_word_bytes = match src.uint(
        "router.max_word_bytes",
        1024..=1_073_741_824,
        "a byte count 1024-1073741824",
    )? {
        // At most 1 GiB, so it fits in usize on every supported target.
        Some(n) => usize::try_from(n).unwrap_or(defaults.max_word_bytes),
        None => defaults.max_word_bytes,
    };
    let max_sentence_bytes = match src.uint(
        "router.max_sentence_bytes",
        1024..=1_073_741_824,
        "a byte count 1024-1073741824",
    )? {
        Some(n) => usize::try_from(n).unwrap_or(defaults.max_sentence_bytes),
        None => defaults.max_sentence_bytes,
    };
    let max_reply_bytes = src
        .uint(
            "router.max_reply_bytes",
            65_536..=17_179_869_184,
            "a byte count 65536-17179869184",
        )?
        .unwrap_or(defaults.max_reply_bytes);
    Ok((max_word_bytes, max_sentence_bytes, max_reply_bytes))
}
pub(super) fn parse_level(s: &str) -> Option<LevelFilter> {
    [
        ("off", LevelFilter::Off),
        ("error", LevelFilter::Error),
        ("warn", LevelFilter::Warn),
        ("info", LevelFilter::Info),
        ("debug", LevelFilter::Debug),
        ("trace", LevelFilter::Trace),
    ]
    .into_iter()
    .find(|(name, _)| s.eq_ignore_ascii_case(name))
    .map(|(_, level)| level)
}

pub(super) fn valid_site_id(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// 64 hex digits in any case, optionally separated by colons or spaces, as
/// printed by `openssl x509 -fingerprint -sha256` and RouterOS.
pub(super) fn parse_fingerprint(s: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    let mut len = 0;
    let mut high: Option<u8> = None;
    for c in s.chars().filter(|c| !matches!(c, ':' | ' ')) {
        let digit = u8::try_from(c.to_digit(16)?).ok()?;
        match high.take() {
            None => high = Some(digit),
            Some(h) => {
                *out.get_mut(len)? = h << 4 | digit;
                len += 1;
            }
        }
    }
    (high.is_none() && len == out.len()).then_some(out)
}
