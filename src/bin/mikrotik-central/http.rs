//! The HTTP(S) server: routing, limits, status codes.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use deadpool_postgres::Pool;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;

use crate::args::ServeOptions;
use crate::db::{self, CallError, Rpc};

/// Largest request body accepted (413 above).
pub const MAX_BODY: usize = 8 * 1024 * 1024;
/// How often the gateway creates the coming months' partitions.
const MAINTENANCE_EVERY: Duration = Duration::from_secs(24 * 3600);
/// Retry-After on a 503: the agent's uploader backs off at least this long.
const RETRY_AFTER: HeaderValue = HeaderValue::from_static("1");
/// Time allowed to send a whole request body.
const BODY_TIMEOUT: Duration = Duration::from_secs(60);

struct State {
    pool: Pool,
    /// Served over TLS: page session cookies get `Secure`.
    tls: bool,
}

type Resp = Response<Full<Bytes>>;

pub async fn serve(opts: ServeOptions) -> Result<(), String> {
    let pool = db::pool(&opts.database_url, opts.pool_size, opts.pool_wait)?;
    // The coming months' partitions: now, then daily (a missing month
    // would only fill the default partition, so a failure is a warning).
    let maint = pool.clone();
    tokio::spawn(async move {
        loop {
            match db::maintain_partitions(&maint).await {
                Ok(0) => {}
                Ok(n) => log::info!("created {n} partitions"),
                Err(e) => log::warn!("partition maintenance: {e}"),
            }
            tokio::time::sleep(MAINTENANCE_EVERY).await;
        }
    });
    let tls = match &opts.tls {
        Some((cert, key)) => Some(tokio_rustls::TlsAcceptor::from(crate::tls::server_config(
            cert, key,
        )?)),
        None => None,
    };
    let listener = TcpListener::bind(opts.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", opts.listen))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    log::info!(
        "listening on {local} ({})",
        if tls.is_some() { "https" } else { "http" }
    );
    let state = Arc::new(State {
        pool,
        tls: tls.is_some(),
    });
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| format!("cannot handle SIGTERM: {e}"))?;
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    log::warn!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
        };
        let state = state.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            match tls {
                None => serve_conn(stream, state, peer).await,
                Some(acceptor) => {
                    match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream))
                        .await
                    {
                        Ok(Ok(s)) => serve_conn(s, state, peer).await,
                        Ok(Err(e)) => log::debug!("{peer}: TLS handshake failed: {e}"),
                        Err(_) => log::debug!("{peer}: TLS handshake timed out"),
                    }
                }
            }
        });
    }
    log::info!("shutting down");
    Ok(())
}

async fn serve_conn<S>(io: S, state: Arc<State>, peer: SocketAddr)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let svc = service_fn(move |req| {
        let state = state.clone();
        async move { Ok::<_, Infallible>(handle(req, &state, peer).await) }
    });
    let result = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30))
        .serve_connection(TokioIo::new(io), svc)
        .await;
    if let Err(e) = result {
        log::debug!("{peer}: connection: {e}");
    }
}

async fn handle(req: Request<Incoming>, state: &State, peer: SocketAddr) -> Resp {
    let start = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let (resp, site) = route(req, state).await;
    let status = resp.status().as_u16();
    let site = site.map(|s| format!(" {s}")).unwrap_or_default();
    let ms = start.elapsed().as_millis();
    if status >= 500 {
        log::warn!("{peer} {method} {path} {status} {ms}ms{site}");
    } else {
        log::info!("{peer} {method} {path} {status} {ms}ms{site}");
    }
    resp
}

/// The response and, once authenticated, who the token is (`site=…` or
/// `operator=…`, for the log).
async fn route(req: Request<Incoming>, state: &State) -> (Resp, Option<String>) {
    let post_only = |req: &Request<Incoming>| req.method() == Method::POST;
    match req.uri().path() {
        "/healthz" => {
            if req.method() == Method::GET || req.method() == Method::HEAD {
                (healthz(state).await, None)
            } else {
                (method_not_allowed("GET, HEAD"), None)
            }
        }
        "/rpc/ingest_batch" | "/rpc/site_desired_state" | "/rpc/site_desired_version"
            if !post_only(&req) =>
        {
            (method_not_allowed("POST"), None)
        }
        "/rpc/ingest_batch" => rpc(req, state, SiteCall::IngestBatch).await,
        "/rpc/site_desired_state" => rpc(req, state, SiteCall::DesiredState).await,
        "/rpc/site_desired_version" => rpc(req, state, SiteCall::DesiredVersion).await,
        // The operator API: operator tokens only (see operator_auth).
        p if p.starts_with("/api/") => crate::api::handle(req, &state.pool).await,
        p if crate::pages::is_page(p) => {
            (crate::pages::route(req, &state.pool, state.tls).await, None)
        }
        _ => (error(StatusCode::NOT_FOUND, "no such route"), None),
    }
}

async fn healthz(state: &State) -> Resp {
    match db::ping(&state.pool).await {
        Ok(()) => json_response(StatusCode::OK, &json!({"status": "ok", "database": "ok"})),
        Err(e) => {
            log::warn!("healthz: database unreachable: {e}");
            json_response(
                StatusCode::SERVICE_UNAVAILABLE,
                &json!({"status": "unavailable", "database": "unreachable"}),
            )
        }
    }
}

fn bearer(req: &Request<Incoming>) -> Option<String> {
    let v = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| token.to_string())
}

/// Which site function a `/rpc/...` route calls.
#[derive(Clone, Copy)]
enum SiteCall {
    IngestBatch,
    DesiredState,
    DesiredVersion,
}

async fn rpc(req: Request<Incoming>, state: &State, kind: SiteCall) -> (Resp, Option<String>) {
    let Some(token) = bearer(&req) else {
        return (unauthorized("missing bearer token"), None);
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return (too_large(), None);
    }
    let body = match tokio::time::timeout(
        BODY_TIMEOUT,
        Limited::new(req.into_body(), MAX_BODY).collect(),
    )
    .await
    {
        Err(_) => {
            return (
                error(StatusCode::REQUEST_TIMEOUT, "request body too slow"),
                None,
            );
        }
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => return (too_large(), None),
        Ok(Err(e)) => {
            return (
                error(StatusCode::BAD_REQUEST, &format!("cannot read body: {e}")),
                None,
            );
        }
        Ok(Ok(b)) => b.to_bytes(),
    };
    let args: Value = match serde_json::from_slice(&body) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => {
            return (
                bad_request("the body must be a JSON object of arguments"),
                None,
            );
        }
        Err(e) => return (bad_request(&format!("malformed JSON: {e}")), None),
    };
    let Some(site_id) = args.get("site_id").and_then(Value::as_str) else {
        return (bad_request("missing argument site_id (a string)"), None);
    };
    let call = match kind {
        SiteCall::IngestBatch => {
            let Some(mut batch) = args.get("batch").cloned() else {
                return (bad_request("missing argument batch"), None);
            };
            // Only an escape can put U+0000 in a JSON string: no walk without one.
            let fixed = if crate::sanitize::may_hold_nul(&body) {
                crate::sanitize::nul_free(&mut batch)
            } else {
                0
            };
            if fixed > 0 {
                log::info!("{fixed} strings with U+0000 made storable (U+FFFD, bytes in _b64)");
            }
            Rpc::IngestBatch {
                site_id: site_id.to_string(),
                batch,
            }
        }
        SiteCall::DesiredState => Rpc::SiteDesiredState {
            site_id: site_id.to_string(),
        },
        SiteCall::DesiredVersion => Rpc::SiteDesiredVersion {
            site_id: site_id.to_string(),
        },
    };
    match db::call(&state.pool, &token, &call).await {
        Ok((site, out)) => (json_text(StatusCode::OK, out), Some(format!("site={site}"))),
        Err(CallError::Unauthorized) => (unauthorized("invalid token"), None),
        Err(CallError::Unavailable(e)) => {
            log::warn!("database unavailable: {e}");
            (unavailable("database unavailable"), None)
        }
        // A database whose schema predates the counter: 404, as PostgREST
        // answers for a missing function, so agents fall back quietly.
        Err(CallError::Db(e))
            if matches!(kind, SiteCall::DesiredVersion)
                && e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_FUNCTION) =>
        {
            (
                error(
                    StatusCode::NOT_FOUND,
                    "site_desired_version is not in the database schema (load the current schema)",
                ),
                None,
            )
        }
        Err(CallError::Db(e)) => {
            let status = StatusCode::from_u16(db::status_for(&e))
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let code = e.code().map(|c| c.code().to_string());
            let message = if status == StatusCode::INTERNAL_SERVER_ERROR {
                log::error!("database error: {}", db::db_message(&e));
                "internal error".to_string()
            } else {
                db::db_message(&e)
            };
            let mut r = json_response(status, &json!({"code": code, "message": message}));
            if status == StatusCode::SERVICE_UNAVAILABLE {
                r.headers_mut().insert(header::RETRY_AFTER, RETRY_AFTER);
            }
            (r, None)
        }
    }
}

/// 503 with Retry-After: overload or the database away; the agent retries.
fn unavailable(message: &str) -> Resp {
    let mut r = error(StatusCode::SERVICE_UNAVAILABLE, message);
    r.headers_mut().insert(header::RETRY_AFTER, RETRY_AFTER);
    r
}

fn json_text(status: StatusCode, body: String) -> Resp {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    r
}

fn json_response(status: StatusCode, v: &Value) -> Resp {
    json_text(status, v.to_string())
}

fn error(status: StatusCode, message: &str) -> Resp {
    json_response(status, &json!({ "message": message }))
}

fn bad_request(message: &str) -> Resp {
    error(StatusCode::BAD_REQUEST, message)
}

fn too_large() -> Resp {
    error(
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!("request body over {MAX_BODY} bytes"),
    )
}

fn unauthorized(message: &str) -> Resp {
    let mut r = error(StatusCode::UNAUTHORIZED, message);
    r.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    r
}

fn method_not_allowed(allow: &'static str) -> Resp {
    let mut r = error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    r
}
