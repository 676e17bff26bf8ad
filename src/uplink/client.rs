//! The HTTP client for the central side: one std thread owns a blocking
//! ureq `Agent` (and its keep-alive connection); the async side hands it
//! calls over a bounded channel and awaits a oneshot. ureq blocks, so it
//! must never run on the runtime thread; at exit the thread is simply
//! abandoned (a request in flight cannot delay shutdown).
//!
//! [`CentralClient::rpc`] is the generic PostgREST-style call, `POST
//! {url}/rpc/{function}` with a JSON object of arguments: `ingest_batch`
//! today, `site_desired_state` for reconciliation.

use std::path::Path;
use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::oneshot;

use super::UplinkError;
use crate::config::{CentralConfig, Secret};
use crate::files::{MAX_PEM_BYTES, read_regular};

/// Largest reply body read: `ingest_batch` answers are tiny, but the
/// desired state lists every voucher of a site (about 200 bytes each, so
/// 64 MiB is some 300,000), and a proxy's error page must not fill memory.
const MAX_REPLY_BYTES: u64 = 64 * 1024 * 1024;
/// Calls waiting for the thread. The uploader has one in flight at a time;
/// a little slack for other users (reconciliation).
const QUEUE: usize = 4;

struct Job {
    function: String,
    /// The JSON body, already serialized.
    body: Vec<u8>,
    reply: oneshot::Sender<Result<Value, UplinkError>>,
}

/// Handle to the HTTP thread. Cheap to clone.
#[derive(Clone)]
pub struct CentralClient {
    tx: std_mpsc::SyncSender<Job>,
}

impl CentralClient {
    /// Starts the thread. The CA file is read there (blocking I/O); if it
    /// is unusable every call fails with that reason.
    pub fn start(cfg: &CentralConfig, timeout: Duration) -> Result<CentralClient, UplinkError> {
        let (tx, rx) = std_mpsc::sync_channel::<Job>(QUEUE);
        let base = cfg.url.clone();
        let token = cfg.token.clone();
        let ca_file = cfg.ca_file.clone();
        std::thread::Builder::new()
            .name("uplink-http".into())
            .spawn(move || {
                let agent = http_agent(ca_file.as_deref(), timeout);
                if let Err(e) = &agent {
                    log::error!("central upload: {e}");
                }
                while let Ok(job) = rx.recv() {
                    // The caller gave up (shutdown): do not send it anyway.
                    if job.reply.is_closed() {
                        continue;
                    }
                    let result = match &agent {
                        Ok(agent) => {
                            let url = format!("{base}/rpc/{}", job.function);
                            post(agent, &url, Some(&token), &job.body)
                        }
                        Err(e) => Err(UplinkError::Transport(e.clone())),
                    };
                    let _ = job.reply.send(result);
                }
            })
            .map_err(|e| UplinkError::Transport(format!("cannot start the HTTP thread: {e}")))?;
        Ok(CentralClient { tx })
    }

    /// `POST {url}/rpc/{function}` with `args` as the JSON body; the 2xx
    /// reply's JSON, or why not.
    pub async fn rpc(&self, function: &str, args: &Value) -> Result<Value, UplinkError> {
        let body = serde_json::to_vec(args).map_err(|e| UplinkError::BadReply(e.to_string()))?;
        self.rpc_raw(function, body).await
    }

    /// [`rpc`](Self::rpc) with the arguments already serialized (the
    /// uploader streams a batch into bytes instead of building a tree).
    pub async fn rpc_raw(&self, function: &str, body: Vec<u8>) -> Result<Value, UplinkError> {
        let (reply, rx) = oneshot::channel();
        let job = Job {
            function: function.to_owned(),
            body,
            reply,
        };
        // The queue is small and the thread drains it; a full queue means
        // a call is hung, so report it as a timeout instead of blocking.
        self.tx.try_send(job).map_err(|e| match e {
            std_mpsc::TrySendError::Full(_) => UplinkError::Timeout,
            std_mpsc::TrySendError::Disconnected(_) => UplinkError::Closed,
        })?;
        rx.await.map_err(|_| UplinkError::Closed)?
    }
}

/// A ureq agent trusting the webpki roots, or only the certificates in
/// `ca_file`. No proxy from the environment, no redirects (a redirect
/// must not carry the token elsewhere), one overall timeout per request.
pub fn http_agent(ca_file: Option<&Path>, timeout: Duration) -> Result<ureq::Agent, String> {
    let roots = match ca_file {
        None => ureq::tls::RootCerts::WebPki,
        Some(path) => {
            let pem = read_regular(path, MAX_PEM_BYTES)
                .map_err(|e| format!("cannot read CA file {}: {e}", path.display()))?;
            let mut certs = Vec::new();
            for item in ureq::tls::parse_pem(&pem) {
                match item {
                    Ok(ureq::tls::PemItem::Certificate(c)) => certs.push(c),
                    Ok(_) => {}
                    Err(e) => return Err(format!("bad PEM in CA file {}: {e}", path.display())),
                }
            }
            if certs.is_empty() {
                return Err(format!(
                    "no certificate found in CA file {}",
                    path.display()
                ));
            }
            ureq::tls::RootCerts::new_with_certs(&certs)
        }
    };
    let tls = ureq::tls::TlsConfig::builder().root_certs(roots).build();
    Ok(ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .max_redirects(0)
        .timeout_global(Some(timeout))
        .tls_config(tls)
        .build()
        .into())
}

/// One blocking POST of `body` as JSON; parses a 2xx reply as JSON.
#[cfg(test)]
fn post_json(
    agent: &ureq::Agent,
    url: &str,
    token: Option<&Secret>,
    body: &Value,
) -> Result<Value, UplinkError> {
    let bytes = serde_json::to_vec(body).map_err(|e| UplinkError::BadReply(e.to_string()))?;
    post(agent, url, token, &bytes)
}

/// One blocking POST of a serialized JSON body; parses a 2xx reply as
/// JSON.
fn post(
    agent: &ureq::Agent,
    url: &str,
    token: Option<&Secret>,
    bytes: &[u8],
) -> Result<Value, UplinkError> {
    let auth = token.map(|t| Secret::new(format!("Bearer {}", t.expose())));
    let headers: Vec<(&str, &Secret)> = auth.iter().map(|a| ("Authorization", a)).collect();
    let (_, text) = send(agent, url, "application/json", &headers, bytes)?;
    if text.trim().is_empty() {
        Ok(Value::Null)
    } else {
        serde_json::from_str(&text).map_err(|e| UplinkError::BadReply(e.to_string()))
    }
}

/// One blocking POST of `bytes` with `content_type` and extra `headers`
/// (whose values are never logged); a 2xx's status and body text, or
/// why not.
pub fn send(
    agent: &ureq::Agent,
    url: &str,
    content_type: &str,
    headers: &[(&str, &Secret)],
    bytes: &[u8],
) -> Result<(u16, String), UplinkError> {
    let mut req = agent.post(url).header("Content-Type", content_type);
    for (name, value) in headers {
        req = req.header(*name, value.expose());
    }
    let mut resp = req.send(bytes).map_err(transport)?;
    let code = resp.status().as_u16();
    let bytes = resp
        .body_mut()
        .with_config()
        .limit(MAX_REPLY_BYTES)
        .read_to_vec()
        .map_err(transport)?;
    // Lossy: a gateway's plain-text (or binary) 2xx still counts.
    let text = String::from_utf8_lossy(&bytes).into_owned();
    if (200..300).contains(&code) {
        return Ok((code, text));
    }
    let message = match serde_json::from_str::<Value>(&text) {
        Ok(v) => v["message"].as_str().map(str::to_owned),
        Err(_) => None,
    }
    .unwrap_or_else(|| excerpt(&text));
    Err(UplinkError::Status { code, message })
}

fn transport(e: ureq::Error) -> UplinkError {
    match e {
        ureq::Error::Timeout(_) => UplinkError::Timeout,
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => UplinkError::Timeout,
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            UplinkError::Connect(io.to_string())
        }
        e @ (ureq::Error::ConnectionFailed | ureq::Error::HostNotFound) => {
            UplinkError::Connect(e.to_string())
        }
        // ureq's texts may quote the URL (`BadUri`), with its secrets.
        other => UplinkError::Transport(crate::redact::redact_urls_in(&other.to_string())),
    }
}

/// The first 200 characters, on one line.
fn excerpt(text: &str) -> String {
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect();
    one_line.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_port_is_a_connect_error_that_stored_nothing() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let agent = http_agent(None, Duration::from_secs(5)).unwrap();
        let e = post_json(
            &agent,
            &format!("http://127.0.0.1:{port}/rpc/x"),
            None,
            &Value::Null,
        )
        .unwrap_err();
        assert!(matches!(e, UplinkError::Connect(_)), "{e:?}");
        assert!(e.nothing_stored());
    }

    #[test]
    fn a_bad_ca_file_is_refused() {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), b"not a certificate").unwrap();
        let e = http_agent(Some(f.path()), Duration::from_secs(1)).unwrap_err();
        assert!(e.contains("no certificate found"), "{e}");
    }
}
