//! The operator API: JSON over HTTP under `/api/`, authenticated with an
//! operator token (`Authorization: Bearer …`, see [`crate::operator_auth`]).
//! Routing and HTTP only; the queries live in `fleet`, `vouchers`,
//! `subscriptions` and `site_lists` (shared with the pages).

use std::time::Duration;

use deadpool_postgres::Pool;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde::Serialize;
use serde_json::{Value, json};

use crate::api_error::ApiError;
use crate::api_input::{self, NewBatch, NewSubscription, percent_decode};
use crate::operator_auth::{self, Operator};
use crate::subscriptions::Change;
use crate::vouchers::no_site;
use crate::{fleet, site_lists, subscriptions, vouchers};

/// Largest request body (a batch request is a few hundred bytes).
pub const MAX_BODY: usize = 64 * 1024;
const BODY_TIMEOUT: Duration = Duration::from_secs(30);

type Resp = Response<Full<Bytes>>;

/// Answers a request under `/api/`; the operator's name goes to the log.
pub async fn handle(req: Request<Incoming>, pool: &Pool) -> (Resp, Option<String>) {
    match route(req, pool).await {
        Ok((status, body, op)) => (json(status, &body), Some(format!("operator={}", op.name))),
        Err((e, op)) => {
            let mut r = json(e.status(), &e.body());
            if let ApiError::Unauthorized(_) = e {
                r.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            if let ApiError::MethodNotAllowed(allow) = e {
                r.headers_mut()
                    .insert(header::ALLOW, HeaderValue::from_static(allow));
            }
            (r, op.map(|o| format!("operator={}", o.name)))
        }
    }
}

type Routed = Result<(StatusCode, Value, Operator), (ApiError, Option<Operator>)>;

async fn route(req: Request<Incoming>, pool: &Pool) -> Routed {
    let op = match bearer(&req) {
        None => return Err((ApiError::Unauthorized("missing bearer token"), None)),
        Some(token) => match operator_auth::authenticate(pool, &token).await {
            Ok(Some(op)) => op,
            Ok(None) => return Err((ApiError::Unauthorized("invalid operator token"), None)),
            Err(e) => return Err((e.into(), None)),
        },
    };
    match dispatch(req, pool, &op).await {
        Ok((status, body)) => Ok((status, body, op)),
        Err(e) => Err((e, Some(op))),
    }
}

fn bearer(req: &Request<Incoming>) -> Option<String> {
    let v = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| token.to_string())
}

fn to_value<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

async fn dispatch(
    req: Request<Incoming>,
    pool: &Pool,
    op: &Operator,
) -> Result<(StatusCode, Value), ApiError> {
    let path = req.uri().path().to_string();
    let query = req.uri().query().map(str::to_string);
    let segs: Vec<String> = path
        .trim_start_matches("/api/")
        .split('/')
        .map(|s| percent_decode(s, false).ok_or_else(|| ApiError::NotFound("no such route".into())))
        .collect::<Result<_, _>>()?;
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let method = req.method().clone();
    let ok = |v: Value| Ok((StatusCode::OK, v));
    let allow = |m: &Method, allowed: &'static str| -> Result<(), ApiError> {
        if allowed.split(", ").any(|a| a == m.as_str()) {
            Ok(())
        } else {
            Err(ApiError::MethodNotAllowed(allowed))
        }
    };
    match segs.as_slice() {
        ["sites"] => {
            allow(&method, "GET")?;
            api_input::query(query.as_deref(), &[])?;
            ok(json!({"sites": to_value(&fleet::sites(pool).await?)}))
        }
        ["sites", site] => {
            allow(&method, "GET")?;
            api_input::query(query.as_deref(), &[])?;
            match fleet::site(pool, site).await? {
                Some(s) => ok(to_value(&s)),
                None => Err(no_site(site)),
            }
        }
        ["sites", site, "vouchers"] => {
            allow(&method, "GET, POST")?;
            if method == Method::POST {
                api_input::query(query.as_deref(), &[])?;
                let body = read_json(req).await?;
                let batch = NewBatch::parse(&body)?;
                let made = vouchers::create_batch(pool, op, site, &batch).await?;
                Ok((StatusCode::CREATED, to_value(&made)))
            } else {
                let q = api_input::query(query.as_deref(), &["batch_id", "status"])?;
                let get = |k: &str| q.iter().find(|(x, _)| x == k).map(|(_, v)| v.as_str());
                let status = get("status");
                if let Some(s) = status
                    && !vouchers::STATUSES.contains(&s)
                {
                    return Err(ApiError::invalid(
                        "status",
                        format!("status must be one of {}", vouchers::STATUSES.join(", ")),
                    ));
                }
                match vouchers::list(pool, site, get("batch_id"), status).await? {
                    Some(rows) => ok(json!({"vouchers": to_value(&rows)})),
                    None => Err(no_site(site)),
                }
            }
        }
        ["sites", site, "vouchers", code] => {
            allow(&method, "DELETE")?;
            api_input::query(query.as_deref(), &[])?;
            vouchers::delete(pool, op, site, code).await?;
            ok(json!({"code": code, "status": "deleted"}))
        }
        ["sites", site, "subscriptions"] => {
            allow(&method, "GET, POST")?;
            api_input::query(query.as_deref(), &[])?;
            if method == Method::POST {
                let body = read_json(req).await?;
                let sub = NewSubscription::parse(&body)?;
                let row = subscriptions::create(pool, op, site, &sub).await?;
                Ok((StatusCode::CREATED, to_value(&row)))
            } else {
                match subscriptions::list(pool, site).await? {
                    Some(rows) => ok(json!({"subscriptions": to_value(&rows)})),
                    None => Err(no_site(site)),
                }
            }
        }
        [
            "sites",
            site,
            "subscriptions",
            user,
            action @ ("suspend" | "restore"),
        ] => {
            allow(&method, "POST")?;
            api_input::query(query.as_deref(), &[])?;
            let change = if *action == "suspend" {
                Change::Suspend
            } else {
                Change::Restore
            };
            let row = subscriptions::change(pool, op, site, user, change).await?;
            ok(to_value(&row))
        }
        ["sites", site, "sessions"] => {
            allow(&method, "GET")?;
            let q = api_input::query(query.as_deref(), &["active"])?;
            let active = api_input::flag(&q, "active")?.unwrap_or(false);
            match site_lists::sessions(pool, site, active).await? {
                Some(rows) => ok(json!({"sessions": to_value(&rows)})),
                None => Err(no_site(site)),
            }
        }
        ["sites", site, "alerts"] => {
            allow(&method, "GET")?;
            let q = api_input::query(query.as_deref(), &["open"])?;
            let open = api_input::flag(&q, "open")?.unwrap_or(false);
            match site_lists::alerts(pool, site, open).await? {
                Some(rows) => ok(json!({"alerts": to_value(&rows)})),
                None => Err(no_site(site)),
            }
        }
        ["sites", site, "alerts", id, "ack"] => {
            allow(&method, "POST")?;
            api_input::query(query.as_deref(), &[])?;
            let id: i64 = id
                .parse()
                .map_err(|_| ApiError::invalid("id", "the alert id must be an integer"))?;
            ok(to_value(&site_lists::ack(pool, op, site, id).await?))
        }
        _ => Err(ApiError::NotFound("no such route".into())),
    }
}

/// The body as a JSON value (an empty body is refused).
async fn read_json(req: Request<Incoming>) -> Result<Value, ApiError> {
    let body = match tokio::time::timeout(
        BODY_TIMEOUT,
        Limited::new(req.into_body(), MAX_BODY).collect(),
    )
    .await
    {
        Err(_) => return Err(ApiError::BadRequest("request body too slow".into())),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return Err(ApiError::TooLarge(MAX_BODY));
        }
        Ok(Err(e)) => return Err(ApiError::BadRequest(format!("cannot read body: {e}"))),
        Ok(Ok(b)) => b.to_bytes(),
    };
    serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest(format!("malformed JSON: {e}")))
}

fn json(status: StatusCode, v: &Value) -> Resp {
    let mut r = Response::new(Full::new(Bytes::from(v.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}
