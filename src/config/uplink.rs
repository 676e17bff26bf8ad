//! Typed settings for the upload to the central side and for alerts.

use std::path::PathBuf;
use std::time::Duration;

use super::sources::{Raw, Sources, check_readable_file, describe, error, label, read_secret_file};
use super::webhook::{WebhookConfig, load_webhook};
use super::{ConfigError, Secret};

/// Where and how to upload events, and when to raise alerts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UplinkConfig {
    /// `None`: no upload; events stay queued in the state file.
    pub central: Option<CentralConfig>,
    /// Most events in one `ingest_batch` call.
    pub batch_max: usize,
    /// Cap on the outbox (sum of the stored event sizes), in bytes.
    pub outbox_max_bytes: u64,
    /// Failed router reconnects before the `mikrotik_connection_failed` alert.
    pub alert_after: u32,
    /// Where and how each alert is POSTed.
    pub alert_webhook: Option<WebhookConfig>,
    /// Longest wait between upload retries.
    pub backoff_cap: Duration,
    /// Whole-request timeout of one upload.
    pub timeout: Duration,
}

impl Default for UplinkConfig {
    fn default() -> Self {
        UplinkConfig {
            central: None,
            batch_max: 500,
            outbox_max_bytes: 64 * 1024 * 1024,
            alert_after: 10,
            alert_webhook: None,
            backoff_cap: Duration::from_secs(60),
            timeout: Duration::from_secs(30),
        }
    }
}

/// The central endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CentralConfig {
    /// `http(s)://host[:port][/prefix]`, without a trailing slash;
    /// calls go to `{url}/rpc/{function}`.
    pub url: String,
    pub token: Secret,
    /// PEM CA to trust instead of the webpki roots (https only).
    pub ca_file: Option<PathBuf>,
}

/// 1 TiB: far beyond any disk the agent runs on, and far from overflow.
const MAX_OUTBOX_MB: f64 = 1024.0 * 1024.0;

pub(super) fn load_uplink(src: &Sources<'_>) -> Result<UplinkConfig, ConfigError> {
    let defaults = UplinkConfig::default();
    let central = load_central(src)?;
    let batch_max = src
        .uint("batch_max", 1..=10_000, "a number of events 1-10000")?
        .map_or(defaults.batch_max, |n| {
            usize::try_from(n).unwrap_or(defaults.batch_max)
        });
    let outbox_max_bytes = match outbox_mb(src)? {
        Some(mb) => (mb * 1024.0 * 1024.0) as u64,
        None => defaults.outbox_max_bytes,
    };
    let alert_after = src
        .uint(
            "alert_after",
            1..=1_000_000,
            "a number of reconnects 1-1000000",
        )?
        .map_or(defaults.alert_after, |n| {
            u32::try_from(n).unwrap_or(defaults.alert_after)
        });
    let alert_webhook = load_webhook(src)?;
    let backoff_cap = src
        .secs("central_backoff_cap_secs")?
        .map_or(defaults.backoff_cap, Duration::from_secs);
    let timeout = src
        .secs("central_timeout_secs")?
        .map_or(defaults.timeout, Duration::from_secs);
    Ok(UplinkConfig {
        central,
        batch_max,
        outbox_max_bytes,
        alert_after,
        alert_webhook,
        backoff_cap,
        timeout,
    })
}

/// The central side: `central_url` and its token (`central_token` or
/// `central_token_file`, not both), both or neither, and `central_ca_file`
/// only with an https URL.
fn load_central(src: &Sources<'_>) -> Result<Option<CentralConfig>, ConfigError> {
    let url = match src.string("central_url")? {
        Some(s) => Some(parse_url("central_url", &s, false)?),
        None => None,
    };
    let token = match (
        src.secret("central_token")?,
        src.path_with_origin("central_token_file")?,
    ) {
        (Some((_, a)), Some((_, b))) => {
            return Err(ConfigError {
                key: format!(
                    "{} and {}",
                    label("central_token"),
                    label("central_token_file")
                ),
                reason: format!(
                    "both are set (central_token in the {a}, central_token_file in the {b}); set only one"
                ),
            });
        }
        (Some((t, _)), None) => Some(Secret::new(t)),
        (None, Some((path, _))) => {
            Some(Secret::new(read_secret_file("central_token_file", &path)?))
        }
        (None, None) => None,
    };
    if let Some(t) = &token
        && !valid_token(t.expose())
    {
        // The value is never quoted: it is a secret.
        return Err(error(
            "central_token",
            "must be non-empty printable ASCII without spaces",
        ));
    }
    let ca_file = src.path("central_ca_file")?;
    let central = match (url, token) {
        (Some(url), Some(token)) => {
            if let Some(path) = &ca_file {
                if !url.starts_with("https://") {
                    return Err(error(
                        "central_ca_file",
                        "only valid with an https:// central_url",
                    ));
                }
                check_readable_file("central_ca_file", path)?;
            }
            Some(CentralConfig {
                url,
                token,
                ca_file,
            })
        }
        (Some(_), None) => {
            return Err(error(
                "central_url",
                format!(
                    "needs a token: set {} or {}",
                    label("central_token"),
                    label("central_token_file")
                ),
            ));
        }
        (None, Some(_)) => {
            return Err(error(
                "central_token",
                format!("set without {}", label("central_url")),
            ));
        }
        (None, None) => {
            if ca_file.is_some() {
                return Err(error(
                    "central_ca_file",
                    format!("set without {}", label("central_url")),
                ));
            }
            None
        }
    };
    Ok(central)
}

/// Megabytes, decimals allowed (0.05 is 52 KB: handy for tests and tiny
/// boxes), from 0.001 up to 1 TiB.
fn outbox_mb(src: &Sources<'_>) -> Result<Option<f64>, ConfigError> {
    let key = "outbox_max_mb";
    let what = "a size in MB, 0.001-1048576 (decimals allowed)";
    let n = match src.raw(key)? {
        None => return Ok(None),
        Some(Raw::Env(s)) => s
            .trim()
            .parse::<f64>()
            .map_err(|_| error(key, format!("expected {what}, got {s:?}")))?,
        Some(Raw::File(toml::Value::Integer(i))) => *i as f64,
        Some(Raw::File(toml::Value::Float(f))) => *f,
        Some(Raw::File(v)) => {
            return Err(error(key, format!("expected {what}, got {}", describe(v))));
        }
    };
    if n.is_finite() && (0.001..=MAX_OUTBOX_MB).contains(&n) {
        Ok(Some(n))
    } else {
        Err(error(key, format!("expected {what}, got {n}")))
    }
}

/// Accepts `http://` and `https://` URLs with a host, no credentials (use
/// a token setting or header instead), no fragment, and a query only if
/// `query_ok` (a webhook's token often sits there); drops a trailing `/`.
/// Errors quote the URL redacted: it may hold a password or token.
pub(super) fn parse_url(key: &str, s: &str, query_ok: bool) -> Result<String, ConfigError> {
    let shown = crate::redact::redact_url(s);
    let bad = |why: &str| error(key, format!("{why}, got {shown:?}"));
    let uri: ureq::http::Uri = s
        .parse()
        .map_err(|_| bad("expected an http:// or https:// URL"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err(bad("expected an http:// or https:// URL")),
    }
    let Some(authority) = uri.authority() else {
        return Err(bad("expected a host in the URL"));
    };
    if authority.host().is_empty() {
        return Err(bad("expected a host in the URL"));
    }
    if authority.as_str().contains('@') {
        // Quoted redacted: the part before '@' may be a password.
        return Err(bad(
            "credentials in the URL are not allowed (use the token settings or alert_webhook_headers)",
        ));
    }
    if s.contains('#') || (uri.query().is_some() && !query_ok) {
        return Err(bad(if query_ok {
            "expected a URL without fragment"
        } else {
            "expected a URL without query or fragment"
        }));
    }
    if uri.query().is_some() {
        return Ok(s.to_owned());
    }
    Ok(s.trim_end_matches('/').to_owned())
}

fn valid_token(t: &str) -> bool {
    !t.is_empty() && t.bytes().all(|b| b.is_ascii_graphic())
}
