//! The operator pages: routing, the login session, CSRF checks on every
//! form, and the calls into the same functions the operator API uses
//! (fleet, vouchers, subscriptions, alerts). Rendering is in page_views
//! and cards.

use std::time::Duration;

use deadpool_postgres::Pool;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Map, Value};

use crate::api_error::ApiError;
use crate::api_input::{NewBatch, percent_decode, query};
use crate::cards::{self, Card, Layout};
use crate::operator_auth::{self, Operator};
use crate::page_session::{self, Session};
use crate::page_views::{self, SiteView};
use crate::subscriptions::Change;
use crate::{fleet, html, page_queries, site_lists, subscriptions, vouchers};

type Resp = Response<Full<Bytes>>;

/// Largest form body (a batch form is well under 1 KiB).
const MAX_FORM: usize = 64 * 1024;

/// Whether the path is one of the pages (else the API or RPC routes).
pub fn is_page(path: &str) -> bool {
    path == "/" || path == "/login" || path == "/logout" || path.starts_with("/sites/")
}

/// Content-Security-Policy: only this page's own inline style and script,
/// forms to this origin, no framing.
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; \
                   img-src data:; connect-src 'self'; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";

fn html_resp(status: StatusCode, body: String) -> Resp {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    r
}

fn redirect(to: &str) -> Resp {
    let mut r = html_resp(StatusCode::SEE_OTHER, String::new());
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

fn with_cookie(mut r: Resp, cookie: &str) -> Resp {
    if let Ok(v) = HeaderValue::from_str(cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

fn message(status: StatusCode, title: &str, text: &str, csrf: Option<&str>) -> Resp {
    html_resp(status, page_views::message(title, text, csrf))
}

fn not_found(what: &str, csrf: Option<&str>) -> Resp {
    message(StatusCode::NOT_FOUND, "Not found", what, csrf)
}

fn unavailable(e: impl std::fmt::Display) -> Resp {
    log::warn!("pages: {e}");
    message(
        StatusCode::SERVICE_UNAVAILABLE,
        "Unavailable",
        "The database is unavailable; try again shortly.",
        None,
    )
}

/// An operator-API error as a page: the same status, its message.
fn api_error(e: &ApiError, csrf: &str) -> Resp {
    let body = e.body();
    let text = body
        .pointer("/error/message")
        .and_then(Value::as_str)
        .unwrap_or("error");
    message(e.status(), "Not done", text, Some(csrf))
}

/// Pages, by method and path. `secure`: served over TLS (the cookie's
/// `Secure` flag).
pub async fn route(req: Request<Incoming>, pool: &Pool, secure: bool) -> Resp {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    match (method.clone(), path.as_str()) {
        (Method::GET | Method::HEAD, "/login") => {
            html_resp(StatusCode::OK, page_views::login(None))
        }
        (Method::POST, "/login") => login(req, pool, secure).await,
        (Method::POST, "/logout") => logout(req, pool, secure).await,
        (_, "/login" | "/logout") => message(
            StatusCode::METHOD_NOT_ALLOWED,
            "Method not allowed",
            "method not allowed",
            None,
        ),
        _ => {
            let session = match session(&req, pool).await {
                Ok(Some(s)) => s,
                Ok(None) if method == Method::GET || method == Method::HEAD => {
                    return redirect("/login");
                }
                Ok(None) => {
                    return message(
                        StatusCode::FORBIDDEN,
                        "Not logged in",
                        "log in again; nothing was changed",
                        None,
                    );
                }
                Err(e) => return unavailable(e),
            };
            let segs: Option<Vec<String>> = path
                .split('/')
                .skip(1)
                .map(|s| percent_decode(s, false))
                .collect();
            let Some(segs) = segs else {
                return not_found("malformed path", Some(&session.csrf));
            };
            let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
            match (method, segs.as_slice()) {
                (Method::GET | Method::HEAD, [""]) => fleet_page(pool, &session).await,
                (Method::GET | Method::HEAD, ["sites", site]) => {
                    site_page(req.uri().query(), pool, &session, site).await
                }
                (Method::GET | Method::HEAD, ["sites", site, "batches", batch, "cards"]) => {
                    cards_page(req.uri().query(), pool, &session, site, batch).await
                }
                (Method::POST, ["sites", site, rest @ ..]) => {
                    let site = site.to_string();
                    let rest: Vec<String> = rest.iter().map(|s| s.to_string()).collect();
                    write(req, pool, &session, &site, &rest).await
                }
                _ => not_found("no such page", Some(&session.csrf)),
            }
        }
    }
}

async fn session(req: &Request<Incoming>, pool: &Pool) -> Result<Option<Session>, String> {
    let Some(value) = req
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(page_session::cookie_value)
        .map(str::to_string)
    else {
        return Ok(None);
    };
    page_session::lookup(pool, &value)
        .await
        .map_err(|e| e.to_string())
}

/// A form body's fields; 400 for a malformed or unknown field.
async fn form(req: Request<Incoming>, known: &[&str]) -> Result<Vec<(String, String)>, Resp> {
    let bad = |text: String| message(StatusCode::BAD_REQUEST, "Bad form", &text, None);
    let body = match tokio::time::timeout(
        Duration::from_secs(30),
        Limited::new(req.into_body(), MAX_FORM).collect(),
    )
    .await
    {
        Ok(Ok(b)) => b.to_bytes(),
        Ok(Err(_)) => return Err(bad(format!("form over {MAX_FORM} bytes or unreadable"))),
        Err(_) => return Err(bad("form too slow".into())),
    };
    let text = std::str::from_utf8(&body).map_err(|_| bad("form is not UTF-8".into()))?;
    query(Some(text), known).map_err(|e| {
        bad(e
            .body()
            .pointer("/error/message")
            .and_then(Value::as_str)
            .unwrap_or("malformed form")
            .to_string())
    })
}

fn field<'a>(f: &'a [(String, String)], k: &str) -> Option<&'a str> {
    f.iter().find(|(x, _)| x == k).map(|(_, v)| v.as_str())
}

async fn login(req: Request<Incoming>, pool: &Pool, secure: bool) -> Resp {
    let f = match form(req, &["token"]).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let token = field(&f, "token").unwrap_or("").trim().to_string();
    let refuse = |text: &str| html_resp(StatusCode::UNAUTHORIZED, page_views::login(Some(text)));
    if token.is_empty() {
        return refuse("enter your operator token");
    }
    let op = match operator_auth::authenticate(pool, &token).await {
        Ok(Some(op)) => op,
        Ok(None) => return refuse("unknown operator token"),
        Err(e) => return unavailable(e),
    };
    match page_session::create(pool, op.id).await {
        Ok(value) => {
            log::info!("operator {} logged in to the pages", op.name);
            with_cookie(redirect("/"), &page_session::set_cookie(&value, secure))
        }
        Err(e) => unavailable(e),
    }
}

async fn logout(req: Request<Incoming>, pool: &Pool, secure: bool) -> Resp {
    let value = req
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(page_session::cookie_value)
        .map(str::to_string);
    let Some(value) = value else {
        return redirect("/login");
    };
    let session = match page_session::lookup(pool, &value).await {
        Ok(s) => s,
        Err(e) => return unavailable(e),
    };
    let f = match form(req, &["csrf"]).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    if let Some(s) = &session
        && !page_session::csrf_matches(&s.csrf, field(&f, "csrf"))
    {
        return message(
            StatusCode::FORBIDDEN,
            "Refused",
            "missing or wrong CSRF token",
            None,
        );
    }
    if let Err(e) = page_session::delete(pool, &value).await {
        return unavailable(e);
    }
    with_cookie(redirect("/login"), &page_session::clear_cookie(secure))
}

fn now_utc() -> String {
    mikrotik_edge::clock::Timestamp::now().to_rfc3339()
}

async fn fleet_page(pool: &Pool, s: &Session) -> Resp {
    // Two connections at once: the page takes the slower query's time, not
    // the sum (docs/scale.md).
    let (sites, spark) = tokio::join!(fleet::sites(pool), page_queries::online_per_hour(pool));
    let sites = match sites {
        Ok(x) => x,
        Err(e) => return unavailable(e),
    };
    let spark = match spark {
        Ok(x) => x,
        Err(e) => return unavailable(e),
    };
    html_resp(
        StatusCode::OK,
        page_views::fleet(&sites, &spark, &s.csrf, &now_utc()),
    )
}

async fn site_page(q: Option<&str>, pool: &Pool, s: &Session, site: &str) -> Resp {
    let q = match query(q, &["done", "target"]) {
        Ok(q) => q,
        Err(e) => return api_error(&e, &s.csrf),
    };
    let summary = match fleet::site(pool, site).await {
        Ok(Some(x)) => x,
        Ok(None) => return not_found(&format!("no site {site:?}"), Some(&s.csrf)),
        Err(e) => return unavailable(e),
    };
    let loaded = async {
        let sessions = site_lists::sessions(pool, site, true).await?;
        let subs = subscriptions::list(pool, site).await?;
        let alerts = site_lists::alerts(pool, site, true).await?;
        let batches = page_queries::batches(pool, site).await?;
        Ok::<_, ApiError>((sessions, subs, alerts, batches))
    }
    .await;
    let (sessions, subs, alerts, batches) = match loaded {
        // The site went between the queries: as if it never was.
        Ok((Some(a), Some(b), Some(c), d)) => (a, b, c, d),
        Ok(_) => return not_found(&format!("no site {site:?}"), Some(&s.csrf)),
        Err(e) => return api_error(&e, &s.csrf),
    };
    let param = |key: &str| q.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
    let done = page_views::Done::parse(param("done"), param("target"));
    html_resp(
        StatusCode::OK,
        page_views::site(&SiteView {
            summary: &summary,
            sessions: &sessions,
            batches: &batches,
            subscriptions: &subs,
            alerts: &alerts,
            csrf: &s.csrf,
            done,
        }),
    )
}

/// `"24"`, `"1.5"`, `"0.25"` hours → minutes (rounded); None if malformed.
fn hours_to_minutes(h: &str) -> Option<i64> {
    let (int, frac) = h.split_once('.').unwrap_or((h, ""));
    let whole: i64 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let mut frac_min = 0i64;
    // Minutes from the fraction, to 6 digits (exact enough for display).
    let digits: String = frac.chars().take(6).collect();
    if !digits.is_empty() {
        let d: i64 = digits.parse().ok()?;
        let scale = 10i64.pow(digits.len() as u32);
        frac_min = (d * 60 + scale / 2) / scale;
    }
    whole.checked_mul(60)?.checked_add(frac_min)
}

async fn cards_page(q: Option<&str>, pool: &Pool, s: &Session, site: &str, batch: &str) -> Resp {
    let layout = match query(q, &["layout"]) {
        Ok(q) => Layout::parse(
            q.iter()
                .find(|(k, _)| k == "layout")
                .map(|(_, v)| v.as_str()),
        ),
        Err(e) => return api_error(&e, &s.csrf),
    };
    let layout = match layout {
        Ok(l) => l,
        Err(e) => return message(StatusCode::BAD_REQUEST, "Bad layout", &e, Some(&s.csrf)),
    };
    let summary = match fleet::site(pool, site).await {
        Ok(Some(x)) => x,
        Ok(None) => return not_found(&format!("no site {site:?}"), Some(&s.csrf)),
        Err(e) => return unavailable(e),
    };
    let rows = match vouchers::list(pool, site, Some(batch), None).await {
        Ok(Some(rows)) => rows,
        Ok(None) => return not_found(&format!("no site {site:?}"), Some(&s.csrf)),
        Err(e) => return api_error(&e, &s.csrf),
    };
    let cards: Vec<Card> = rows
        .into_iter()
        .filter(|v| v.status != "deleted")
        .map(|v| Card {
            code: v.code,
            password: v.password.unwrap_or_default(),
            price: v.sell,
            valid_minutes: v.valid_hours.as_deref().and_then(hours_to_minutes),
        })
        .collect();
    if cards.is_empty() {
        return not_found(
            &format!("no vouchers in batch {batch:?} at site {site:?}"),
            Some(&s.csrf),
        );
    }
    let name = summary.name.as_deref().unwrap_or(site);
    html_resp(
        StatusCode::OK,
        cards::render(
            name,
            batch,
            &cards,
            summary
                .hotspot_login_url
                .as_deref()
                .filter(|u| !u.is_empty()),
            layout,
        ),
    )
}

/// POST under `/sites/{site}/`: every form carries the session's CSRF
/// token, checked before anything else is read or written.
async fn write(
    req: Request<Incoming>,
    pool: &Pool,
    s: &Session,
    site: &str,
    rest: &[String],
) -> Resp {
    let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
    let known: &[&str] = match rest.as_slice() {
        ["batches"] => &[
            "csrf",
            "count",
            "profile",
            "valid_hours",
            "sell",
            "cost",
            "vendor",
            "prefix",
            "code_length",
            "batch_id",
        ],
        ["vouchers", "delete"] => &["csrf", "code"],
        ["subscriptions", _, "suspend" | "restore"] | ["alerts", _, "ack"] => &["csrf"],
        _ => return not_found("no such form", Some(&s.csrf)),
    };
    let f = match form(req, known).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    if !page_session::csrf_matches(&s.csrf, field(&f, "csrf")) {
        log::warn!("pages: form for site {site:?} refused: missing or wrong CSRF token");
        return message(
            StatusCode::FORBIDDEN,
            "Refused",
            "missing or wrong CSRF token; reload the page and try again",
            Some(&s.csrf),
        );
    }
    let op = Operator {
        id: s.operator_id,
        name: s.operator.clone(),
    };
    // The note after the redirect is one of a fixed set of sentences
    // (page_views::Done), naming the target: no free text in links.
    let back = |done: &str, target: &str| {
        let q = form_urlencoded::Serializer::new(String::new())
            .append_pair("done", done)
            .append_pair("target", target)
            .finish();
        redirect(&format!("/sites/{}?{q}", html::path_segment(site)))
    };
    let result = match rest.as_slice() {
        ["batches"] => {
            let body = batch_json(&f);
            match NewBatch::parse(&body) {
                Err(e) => Err(e),
                Ok(nb) => vouchers::create_batch(pool, &op, site, &nb)
                    .await
                    .map(|b| back("batch", &b.batch_id)),
            }
        }
        ["vouchers", "delete"] => {
            let code = field(&f, "code").unwrap_or("").trim().to_string();
            vouchers::delete(pool, &op, site, &code)
                .await
                .map(|()| back("deleted", &code))
        }
        ["subscriptions", user, act] => {
            let change = if *act == "suspend" {
                Change::Suspend
            } else {
                Change::Restore
            };
            subscriptions::change(pool, &op, site, user, change)
                .await
                .map(|row| back(&row.status, user))
        }
        ["alerts", id, "ack"] => match id.parse::<i64>() {
            Ok(id) => site_lists::ack(pool, &op, site, id)
                .await
                .map(|_| back("acked", &id.to_string())),
            Err(_) => Err(ApiError::NotFound(format!("no alert {id:?}"))),
        },
        _ => Err(ApiError::NotFound("no such form".into())),
    };
    result.unwrap_or_else(|e| api_error(&e, &s.csrf))
}

/// The batch form as the API's JSON body: empty optional fields left out,
/// numbers as numbers, so `NewBatch::parse` checks it exactly as it checks
/// `POST /api/sites/{site}/vouchers`.
fn batch_json(f: &[(String, String)]) -> Value {
    let mut m = Map::new();
    for (k, v) in f {
        let v = v.trim();
        if k == "csrf" || v.is_empty() {
            continue;
        }
        let val = match k.as_str() {
            "count" | "code_length" => v
                .parse::<u64>()
                .map(Value::from)
                .unwrap_or_else(|_| Value::String(v.to_string())),
            _ => Value::String(v.to_string()),
        };
        m.insert(k.clone(), val);
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hours_to_minutes_is_exact_for_common_values() {
        assert_eq!(hours_to_minutes("24"), Some(1440));
        assert_eq!(hours_to_minutes("1.5"), Some(90));
        assert_eq!(hours_to_minutes("0.25"), Some(15));
        assert_eq!(hours_to_minutes("x"), None);
    }

    #[test]
    fn batch_form_becomes_the_api_body() {
        let f = vec![
            ("csrf".to_string(), "t".to_string()),
            ("count".to_string(), "64".to_string()),
            ("sell".to_string(), "5000".to_string()),
            ("cost".to_string(), "".to_string()),
        ];
        let v = batch_json(&f);
        assert_eq!(v, serde_json::json!({"count": 64, "sell": "5000"}));
    }

    #[test]
    fn page_paths() {
        assert!(is_page("/") && is_page("/sites/a") && is_page("/login"));
        assert!(!is_page("/api/sites") && !is_page("/rpc/ingest_batch"));
    }
}
