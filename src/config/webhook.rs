//! The alert webhook's settings: URL, body template and format, extra
//! headers (whose values may come from secret files).

use std::fmt;

use super::sources::{Raw, Sources, describe, error, label, read_secret_file};
use super::uplink::parse_url;
use super::{ConfigError, Secret};
use crate::template::{BodyFormat, DEFAULT_FORM, Template};

/// Where and how alerts are posted.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookConfig {
    /// `http(s)` URL; may hold a secret in its path or query, so it is
    /// only ever shown through [`crate::redact::redact_url`].
    pub url: String,
    pub format: BodyFormat,
    /// `None`: the alert event's own JSON (format `json` only).
    pub body: Option<Template>,
    /// Extra request headers (e.g. a gateway's token); values never shown.
    pub headers: Vec<(String, Secret)>,
}

impl fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("WebhookConfig")
            .field("url", &crate::redact::redact_url(&self.url))
            .field("format", &self.format)
            .field("body", &self.body.as_ref().map(|_| "<template>"))
            .field("headers", &names)
            .finish()
    }
}

const BODY: &str = "alert_webhook_body";
const FORMAT: &str = "alert_webhook_format";
const HEADERS: &str = "alert_webhook_headers";

pub(super) fn load_webhook(src: &Sources<'_>) -> Result<Option<WebhookConfig>, ConfigError> {
    let url = match src.string("alert_webhook")? {
        Some(s) => Some(parse_url("alert_webhook", &s, true)?),
        None => None,
    };
    let format = match src.string(FORMAT)? {
        None => None,
        Some(s) if s.trim().eq_ignore_ascii_case("json") => Some(BodyFormat::Json),
        Some(s) if s.trim().eq_ignore_ascii_case("form") => Some(BodyFormat::Form),
        Some(s) => return Err(error(FORMAT, format!("expected json|form, got {s:?}"))),
    };
    let body = src.string(BODY)?;
    let headers = load_headers(src)?;
    let Some(url) = url else {
        for (key, set) in [
            (BODY, body.is_some()),
            (FORMAT, format.is_some()),
            (HEADERS, !headers.is_empty()),
        ] {
            if set {
                return Err(error(
                    key,
                    format!("set without {}", label("alert_webhook")),
                ));
            }
        }
        return Ok(None);
    };
    let format = format.unwrap_or(BodyFormat::Json);
    let body = match (body, format) {
        (Some(text), f) => Some(Template::parse(&text, f).map_err(|why| error(BODY, why))?),
        (None, BodyFormat::Form) => {
            Some(Template::parse(DEFAULT_FORM, BodyFormat::Form).map_err(|why| error(BODY, why))?)
        }
        (None, BodyFormat::Json) => None,
    };
    Ok(Some(WebhookConfig {
        url,
        format,
        body,
        headers,
    }))
}

/// A TOML table `Name = "value"` (or `"file:/path"`), or in the
/// environment `Name: value; Name2: file:/path`.
fn load_headers(src: &Sources<'_>) -> Result<Vec<(String, Secret)>, ConfigError> {
    let pairs: Vec<(String, String)> = match src.raw(HEADERS)? {
        None => return Ok(Vec::new()),
        Some(Raw::Env(s)) => {
            let mut out = Vec::new();
            for item in s.split(';').map(str::trim).filter(|i| !i.is_empty()) {
                let Some((name, value)) = item.split_once(':') else {
                    // Not quoted: it may be a bare token.
                    return Err(error(
                        HEADERS,
                        "expected Name: value pairs separated by ; (e.g. Authorization: file:/etc/mikrotik-edge/wa-token)",
                    ));
                };
                out.push((name.trim().to_owned(), value.trim().to_owned()));
            }
            out
        }
        Some(Raw::File(toml::Value::Table(t))) => {
            let mut out = Vec::new();
            for (name, v) in t {
                match v {
                    toml::Value::String(s) => out.push((name.clone(), s.clone())),
                    // Not `describe`d: a wrongly typed token is still a token.
                    _ => {
                        return Err(error(
                            HEADERS,
                            format!("header {}: expected a string", name.escape_debug()),
                        ));
                    }
                }
            }
            out
        }
        Some(Raw::File(v)) => {
            return Err(error(
                HEADERS,
                format!(
                    "expected a table of header names and values, got {}",
                    describe(v)
                ),
            ));
        }
    };
    let mut headers = Vec::new();
    for (name, value) in pairs {
        if ureq::http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(error(
                HEADERS,
                format!("{:?} is not a valid header name", name),
            ));
        }
        let value = match value.strip_prefix("file:") {
            Some(path) => read_secret_file(HEADERS, std::path::Path::new(path.trim()))?,
            None => value,
        };
        // The value is never quoted: it is typically a token.
        if value.is_empty() || ureq::http::HeaderValue::from_str(&value).is_err() {
            return Err(error(
                HEADERS,
                format!(
                    "header {name}: the value is empty or not a valid header value (no line breaks or control characters)"
                ),
            ));
        }
        headers.push((name, Secret::new(value)));
    }
    Ok(headers)
}
