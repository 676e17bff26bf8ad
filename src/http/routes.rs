//! Routing, authorization, request bodies, and the read-only endpoints.
//!
//! Reads are open and answer from the published view. Everything that
//! changes something (router writes, forced polls) needs the bearer token;
//! without a configured token those routes are refused outright (403), so
//! an endpoint exposed by mistake can still not be used to add users.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::http::request::Parts;
use hyper::{HeaderMap, Method, Request, StatusCode};
use serde_json::{Value, json};

use super::body::Body;
use super::json::{self, ApiError, Resp, error};
use super::{Ctx, metrics, users};
use crate::client::Connection;
use crate::clock::Timestamp;
use crate::event::Service;
use crate::name::Name;
use crate::proto::Command;
use crate::status::Control;

const STATUS_PAGE: &str = include_str!("status.html");

/// The routes, after the path is matched and before the method is.
enum Route {
    Page,
    Health,
    Metrics,
    ActiveUsers,
    Summary,
    Status,
    TestConnection,
    SyncForce,
    Create(Service),
    Delete(Service, Name),
    Toggle(Name, bool),
}

impl Route {
    /// The one method each route answers (GET routes also answer HEAD).
    fn method(&self) -> Method {
        match self {
            Route::SyncForce | Route::Create(_) | Route::Toggle(..) => Method::POST,
            Route::Delete(..) => Method::DELETE,
            _ => Method::GET,
        }
    }

    fn changes_something(&self) -> bool {
        self.method() != Method::GET
    }
}

/// Serves one request and logs it (never its headers or body: they may
/// hold the token or a password). `local` is the address the client
/// connected to.
pub(crate) async fn handle(
    req: Request<Incoming>,
    ctx: &Ctx,
    peer: SocketAddr,
    local: SocketAddr,
) -> Resp {
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    let method = parts.method.clone();
    let mut path = parts.uri.path().to_owned();
    if path.len() > 200 {
        path.truncate(path.floor_char_boundary(200));
        path.push('…');
    }
    let mut body = Body::new(body, &parts.headers);
    let mut resp = route(&parts, &mut body, ctx, local).await;
    // Whatever the answer, the rest of the body must be off the wire
    // before the next request can be read; if it cannot be, say that the
    // connection closes instead of letting the client find out by writing.
    if !body.finish().await {
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    log::debug!(
        "http: {peer} {method} {path} {} {} ms",
        resp.status().as_u16(),
        started.elapsed().as_millis()
    );
    resp
}

async fn route(req: &Parts, body: &mut Body, ctx: &Ctx, local: SocketAddr) -> Resp {
    // Before anything else, so a rebinding page learns not even which
    // paths exist. A valid token proves a deliberate client.
    let host_ok = ctx.hosts.allows(&req.uri, &req.headers, ctx.listen, local);
    if !host_ok && authorize(&req.headers, ctx).is_err() {
        return error(
            StatusCode::MISDIRECTED_REQUEST,
            "this Host is not served here: use the endpoint's address or localhost, or list the name in http_allowed_hosts",
        );
    }
    let route = match parse_path(req.uri.path()) {
        Ok(Some(r)) => r,
        Ok(None) => return error(StatusCode::NOT_FOUND, "no such route"),
        Err(msg) => return error(StatusCode::BAD_REQUEST, msg),
    };
    let allowed = route.method();
    let method = &req.method;
    if *method != allowed && !(allowed == Method::GET && method == Method::HEAD) {
        let mut r = error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
        let allow = if allowed == Method::GET {
            HeaderValue::from_static("GET, HEAD")
        } else {
            HeaderValue::from_str(allowed.as_str()).unwrap_or(HeaderValue::from_static("GET"))
        };
        r.headers_mut().insert(header::ALLOW, allow);
        return r;
    }
    if route.changes_something()
        && let Err(e) = authorize(&req.headers, ctx)
    {
        return e.response();
    }
    match route {
        Route::Page => page(),
        Route::Health => health(ctx).await,
        Route::Metrics => {
            let stats = ctx.stats.get(&ctx.shared.store).await.ok();
            let view = ctx.shared.view.borrow().clone();
            json::body(
                StatusCode::OK,
                "text/plain; version=0.0.4; charset=utf-8",
                metrics::render(&view, stats.as_ref()),
            )
        }
        Route::ActiveUsers => {
            let filter = match query_param(req.uri.query(), "filter") {
                None => None,
                Some("hotspot") => Some(Service::Hotspot),
                Some("pppoe") => Some(Service::Pppoe),
                Some(_) => {
                    return error(StatusCode::BAD_REQUEST, "filter must be hotspot or pppoe");
                }
            };
            let view = ctx.shared.view.borrow().clone();
            json::json(StatusCode::OK, &json::active_users(&view, filter))
        }
        Route::Summary => {
            let view = ctx.shared.view.borrow().clone();
            json::json(StatusCode::OK, &json::summary(&view, Timestamp::now()))
        }
        Route::Status => {
            let stats = ctx.stats.get(&ctx.shared.store).await.ok();
            let view = ctx.shared.view.borrow().clone();
            json::json(
                StatusCode::OK,
                &json::status(&view, stats.as_ref(), Timestamp::now()),
            )
        }
        Route::TestConnection => test_connection(ctx).await,
        Route::SyncForce => {
            if let Err(e) = body.json(&req.headers, false).await {
                return e.response();
            }
            sync_force(ctx)
        }
        Route::Create(service) => match body.json(&req.headers, true).await {
            Err(e) => e.response(),
            Ok(body) => users::create(ctx, service, body.unwrap_or(Value::Null)).await,
        },
        Route::Delete(service, name) => users::delete(ctx, service, name).await,
        Route::Toggle(name, disable) => {
            if let Err(e) = body.json(&req.headers, false).await {
                return e.response();
            }
            users::toggle_pppoe(ctx, name, disable).await
        }
    }
}

/// Matches the path; `Err` for a name that does not percent-decode.
fn parse_path(path: &str) -> Result<Option<Route>, &'static str> {
    let segments: Vec<&str> = path.strip_prefix('/').unwrap_or(path).split('/').collect();
    let service = |s: &str| match s {
        "hotspot" => Some(Service::Hotspot),
        "pppoe" => Some(Service::Pppoe),
        _ => None,
    };
    let name = |s: &str| -> Result<Name, &'static str> {
        match percent_decode(s) {
            Some(b) if !b.is_empty() => Ok(Name::new(b)),
            Some(_) => Err("empty user name"),
            None => Err("malformed percent-encoding in the user name"),
        }
    };
    Ok(Some(match segments.as_slice() {
        [""] => Route::Page,
        ["healthz"] => Route::Health,
        ["metrics"] => Route::Metrics,
        ["api", "mikrotik", rest @ ..] => match rest {
            ["users", "active"] => Route::ActiveUsers,
            ["stats", "summary"] => Route::Summary,
            ["monitoring", "status"] => Route::Status,
            ["test-connection"] => Route::TestConnection,
            ["sync", "force"] => Route::SyncForce,
            ["users", s] => match service(s) {
                Some(svc) => Route::Create(svc),
                None => return Ok(None),
            },
            ["users", s, n] => match service(s) {
                Some(svc) => Route::Delete(svc, name(n)?),
                None => return Ok(None),
            },
            ["users", "pppoe", n, "disable"] => Route::Toggle(name(n)?, true),
            ["users", "pppoe", n, "enable"] => Route::Toggle(name(n)?, false),
            _ => return Ok(None),
        },
        _ => return Ok(None),
    }))
}

/// `%XX` escapes to bytes; anything else is taken as is. Names are raw
/// bytes on the router, so the result need not be UTF-8.
pub(crate) fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

fn query_param<'a>(query: Option<&'a str>, key: &str) -> Option<&'a str> {
    query?
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

/// 403 without a configured token, 401 without a matching bearer token.
fn authorize(headers: &HeaderMap, ctx: &Ctx) -> Result<(), ApiError> {
    let Some(expected) = &ctx.shared.token else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "changes are disabled: no http_token is configured",
        ));
    };
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing bearer token",
        ));
    };
    let given = value
        .to_str()
        .ok()
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim());
    match given {
        Some(t) if tokens_equal(t.as_bytes(), expected.expose().as_bytes()) => Ok(()),
        _ => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid bearer token",
        )),
    }
}

/// Constant time in the content and the length: both sides are hashed
/// first, then the digests compared with an xor-fold.
fn tokens_equal(a: &[u8], b: &[u8]) -> bool {
    use ring::digest::{SHA256, digest};
    let (a, b) = (digest(&SHA256, a), digest(&SHA256, b));
    a.as_ref()
        .iter()
        .zip(b.as_ref())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

fn page() -> Resp {
    let mut r = json::body(StatusCode::OK, "text/html; charset=utf-8", STATUS_PAGE);
    // The page is self-contained: it needs its own inline script and
    // style, and requests to this origin, nothing else.
    r.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:",
        ),
    );
    r
}

async fn health(ctx: &Ctx) -> Resp {
    let stats = ctx.stats.get(&ctx.shared.store).await;
    let view = ctx.shared.view.borrow().clone();
    let (status, body) = match &stats {
        Ok(s) => json::health(&view, Ok(s)),
        Err(e) => json::health(&view, Err(e.to_string())),
    };
    json::json(status, &body)
}

fn sync_force(ctx: &Ctx) -> Resp {
    if !ctx.shared.view.borrow().router_connected {
        return error(StatusCode::SERVICE_UNAVAILABLE, "router not connected");
    }
    use tokio::sync::mpsc::error::TrySendError;
    match ctx.shared.control.try_send(Control::SyncNow) {
        // Full: a forced poll is already waiting; this one joins it.
        Ok(()) | Err(TrySendError::Full(_)) => {
            json::json(StatusCode::ACCEPTED, &json!({ "accepted": true }))
        }
        Err(TrySendError::Closed(_)) => error(StatusCode::SERVICE_UNAVAILABLE, "agent stopping"),
    }
}

/// A fresh login on a second, short-lived session: proves the address,
/// credentials and API service work independently of the long-lived
/// session. Serialized, and a result younger than a second is reused, so
/// this open endpoint cannot be used to flood the router with logins.
async fn test_connection(ctx: &Ctx) -> Resp {
    let mut last = ctx.probe.lock().await;
    if let Some((at, v)) = last.as_ref()
        && at.elapsed() < Duration::from_secs(1)
    {
        return probe_response(v);
    }
    let started = Instant::now();
    let v = match Connection::open(&ctx.shared.router_config).await {
        Err(e) => json!({ "ok": false, "error": e.to_string(), "kind": e.kind() }),
        Ok(conn) => {
            let login_ms = started.elapsed().as_secs_f64() * 1e3;
            let t = Instant::now();
            let identity = conn.execute(Command::new("/system/identity/print")).await;
            let rtt_ms = t.elapsed().as_secs_f64() * 1e3;
            let resource = conn
                .execute(
                    Command::new("/system/resource/print").proplist(&["board-name", "version"]),
                )
                .await;
            conn.quit(Duration::from_secs(2)).await;
            match (identity, resource) {
                (Ok(i), Ok(r)) => {
                    let mut m = serde_json::Map::new();
                    m.insert("ok".into(), true.into());
                    m.insert("latencyMs".into(), json!((login_ms * 10.0).round() / 10.0));
                    m.insert("rttMs".into(), json!((rtt_ms * 10.0).round() / 10.0));
                    let field = |rows: &[crate::proto::Attrs], k: &str| {
                        Name::new(rows.first().and_then(|a| a.get(k)).unwrap_or_default())
                    };
                    field(&i.rows, "name").json_into(&mut m, "identity");
                    field(&r.rows, "board-name").json_into(&mut m, "board");
                    field(&r.rows, "version").json_into(&mut m, "version");
                    Value::Object(m)
                }
                (Err(e), _) | (_, Err(e)) => {
                    json!({ "ok": false, "error": e.to_string(), "kind": e.kind() })
                }
            }
        }
    };
    let resp = probe_response(&v);
    *last = Some((Instant::now(), v));
    resp
}

fn probe_response(v: &Value) -> Resp {
    let status = if v["ok"] == true {
        StatusCode::OK
    } else {
        StatusCode::BAD_GATEWAY
    };
    json::json(status, v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding_is_bytewise() {
        assert_eq!(percent_decode("a%20b").unwrap(), b"a b");
        assert_eq!(percent_decode("%FF%fe").unwrap(), [0xff, 0xfe]);
        assert_eq!(percent_decode("a%2Fb+").unwrap(), b"a/b+");
        assert!(percent_decode("%").is_none());
        assert!(percent_decode("%4").is_none());
        assert!(percent_decode("%zz").is_none());
        assert!(percent_decode("%é").is_none());
    }

    #[test]
    fn paths_match_routes() {
        assert!(matches!(parse_path("/"), Ok(Some(Route::Page))));
        assert!(matches!(
            parse_path("/api/mikrotik/users/hotspot/a%2Fb"),
            Ok(Some(Route::Delete(Service::Hotspot, n))) if n.as_bytes() == b"a/b"
        ));
        assert!(matches!(
            parse_path("/api/mikrotik/users/pppoe/x/disable"),
            Ok(Some(Route::Toggle(_, true)))
        ));
        assert!(matches!(
            parse_path("/api/mikrotik/users/hotspot/x/disable"),
            Ok(None)
        ));
        assert!(matches!(parse_path("/api/mikrotik/users/ftp"), Ok(None)));
        assert!(parse_path("/api/mikrotik/users/hotspot/%zz").is_err());
        assert!(matches!(parse_path("/nope"), Ok(None)));
    }

    #[test]
    fn token_comparison() {
        assert!(tokens_equal(b"abc", b"abc"));
        assert!(!tokens_equal(b"abc", b"abd"));
        assert!(!tokens_equal(b"abc", b"abcd"));
        assert!(!tokens_equal(b"", b"abc"));
    }
}
