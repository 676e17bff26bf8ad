//! The HTTP client for the central side: one std thread owns a blocking
//! ureq `Agent` (and its keep-alive connection); the async side hands it
//! calls over a bounded channel and awaits a oneshot. ureq blocks, so it
//! must never run on the runtime thread; at exit the thread is simply
//! abandoned (a request in flight cannot delay shutdown).
//!
//! [`CentralClient::rpc`] is the generic PostgREST-style call, `POST
//! {url}/rpc/{function}` with a JSON object of arguments: `ingest_batch`
//! for the upload, `site_desired_state` for reconciliation.
//!
//! Every successful reply's `Date` header also goes to the agent's clock
//! trust (a [`DateSink`]), with the request's send and receive instants
//! as its error bound: on a Pi without NTP, the central server is often
//! the only clock to be had.

use std::path::Path;
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::oneshot;

use super::UplinkError;
use crate::central_date::CentralDate;
pub use crate::central_date::DateSink;
use crate::clock::parse_http_date;
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
    /// is unusable every call fails with that reason. Successful replies'
    /// `Date` headers go to `dates` when given.
    pub fn start(
        cfg: &CentralConfig,
        timeout: Duration,
        dates: Option<DateSink>,
    ) -> Result<CentralClient, UplinkError> {
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
                let mut dates = dates.map(|sink| DateFeed {
                    sink,
                    warned: false,
                });
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
                    let result = result.map(|reply| {
                        if let Some(feed) = &mut dates {
                            feed.feed(&job.function, &reply);
                        }
                        reply.value
                    });
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

/// A successful reply: its JSON, and its `Date` header with the instants
/// the request was sent and its reply's head received.
struct Reply {
    value: Value,
    date: Option<Vec<u8>>,
    sent: Instant,
    received: Instant,
}

/// Feeds replies' `Date` headers into a [`DateSink`].
struct DateFeed {
    sink: DateSink,
    /// A missing or unreadable header was logged at warn (once: repeats
    /// would flood the log at every upload).
    warned: bool,
}

impl DateFeed {
    fn feed(&mut self, function: &str, reply: &Reply) {
        let Some(date) = reply.date.as_deref().and_then(parse_http_date) else {
            let what = match &reply.date {
                None => "no Date header".to_owned(),
                Some(raw) => format!("unreadable Date header {:?}", String::from_utf8_lossy(raw)),
            };
            if std::mem::replace(&mut self.warned, true) {
                log::debug!("central {function} reply: {what}");
            } else {
                log::warn!("central {function} reply: {what}; it cannot vouch for the clock");
            }
            return;
        };
        let reading = CentralDate {
            date,
            sent: reply.sent,
            received: reply.received,
        };
        // The upload and the sync each have a client feeding the one
        // channel: keep the reading received last.
        self.sink.send_if_modified(|current| {
            if current.is_some_and(|c| c.received > reading.received) {
                return false;
            }
            *current = Some(reading);
            true
        });
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
    post(agent, url, token, &bytes).map(|r| r.value)
}

/// One blocking POST of a serialized JSON body; parses a 2xx reply as
/// JSON.
fn post(
    agent: &ureq::Agent,
    url: &str,
    token: Option<&Secret>,
    bytes: &[u8],
) -> Result<Reply, UplinkError> {
    let auth = token.map(|t| Secret::new(format!("Bearer {}", t.expose())));
    let headers: Vec<(&str, &Secret)> = auth.iter().map(|a| ("Authorization", a)).collect();
    let r = send_full(agent, url, "application/json", &headers, bytes)?;
    let value = if r.text.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&r.text).map_err(|e| UplinkError::BadReply(e.to_string()))?
    };
    Ok(Reply {
        value,
        date: r.date,
        sent: r.sent,
        received: r.received,
    })
}

/// A 2xx as [`send_full`] saw it.
struct Sent {
    code: u16,
    text: String,
    date: Option<Vec<u8>>,
    sent: Instant,
    received: Instant,
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
    send_full(agent, url, content_type, headers, bytes).map(|r| (r.code, r.text))
}

fn send_full(
    agent: &ureq::Agent,
    url: &str,
    content_type: &str,
    headers: &[(&str, &Secret)],
    bytes: &[u8],
) -> Result<Sent, UplinkError> {
    let mut req = agent.post(url).header("Content-Type", content_type);
    for (name, value) in headers {
        req = req.header(*name, value.expose());
    }
    let sent = Instant::now();
    let mut resp = req.send(bytes).map_err(transport)?;
    // The head is in: the server wrote `Date` before this, after `sent`.
    let received = Instant::now();
    let date = resp.headers().get("date").map(|d| d.as_bytes().to_vec());
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
        return Ok(Sent {
            code,
            text,
            date,
            sent,
            received,
        });
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
    use tokio::sync::watch;

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

    /// An HTTP server answering each connection's one request with the
    /// next of `replies` (status line and headers; the body is `{}`), then
    /// closing it. Returns the base URL.
    fn canned(replies: Vec<String>) -> String {
        use std::io::{BufRead, BufReader, Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            for head in replies {
                let Ok((stream, _)) = listener.accept() else {
                    return;
                };
                let mut reader = BufReader::new(stream);
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    let lower = line.to_ascii_lowercase();
                    if let Some(v) = lower.strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                let reply = format!(
                    "{head}\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
                );
                let _ = reader.get_mut().write_all(reply.as_bytes());
            }
        });
        base
    }

    #[tokio::test(flavor = "current_thread")]
    async fn successful_replies_feed_their_date_and_nothing_else_does() {
        const DATE: &str = "Date: Tue, 24 Nov 2026 15:00:04 GMT";
        let base = canned(vec![
            format!("HTTP/1.1 500 Internal Server Error\r\n{DATE}"),
            "HTTP/1.1 200 OK\r\nDate: Tue, 24 Nov 2026 15:00:04 UTC".to_owned(),
            "HTTP/1.1 200 OK".to_owned(),
            format!("HTTP/1.1 200 OK\r\n{DATE}"),
        ]);
        let cfg = CentralConfig {
            url: base,
            token: Secret::new("t"),
            ca_file: None,
        };
        let (tx, mut rx) = watch::channel(None);
        let client = CentralClient::start(&cfg, Duration::from_secs(5), Some(tx)).unwrap();
        let args = serde_json::json!({});
        // An error status, a malformed Date, no Date: nothing fed.
        assert!(client.rpc("site_desired_state", &args).await.is_err());
        assert!(client.rpc("site_desired_state", &args).await.is_ok());
        assert!(client.rpc("ingest_batch", &args).await.is_ok());
        assert!(rx.borrow_and_update().is_none());
        // Any successful call feeds it (the sync's fetch as the upload).
        let before = Instant::now();
        assert!(client.rpc("site_desired_state", &args).await.is_ok());
        let got = rx.borrow_and_update().unwrap();
        assert_eq!(got.date.to_rfc3339(), "2026-11-24T15:00:04Z");
        assert!(before <= got.sent && got.sent <= got.received);
        assert!(got.received <= Instant::now());
    }

    #[test]
    fn a_bad_ca_file_is_refused() {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), b"not a certificate").unwrap();
        let e = http_agent(Some(f.path()), Duration::from_secs(1)).unwrap_err();
        assert!(e.contains("no certificate found"), "{e}");
    }
}
