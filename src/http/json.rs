//! Response bodies: the JSON documents built from the [`View`], and the
//! response and error helpers every route uses.
//!
//! Field names follow the design's user API (camelCase). Router text is
//! raw bytes: a name that is not UTF-8 is sent lossily with the exact
//! bytes beside it as `X_b64`, as in events.

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};
use serde_json::{Map, Value, json};

use crate::status::View;
use std::time::Duration;

use crate::clock::Timestamp;
use crate::duration::format_duration;
use crate::event::Service;
use crate::name::Name;
use crate::store::OutboxStats;

pub(crate) type Resp = Response<Full<Bytes>>;

pub(crate) fn body(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Resp {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // Live data: a cached copy would show users who left long ago.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

pub(crate) fn json(status: StatusCode, v: &Value) -> Resp {
    body(status, "application/json", v.to_string())
}

/// `{"error": message}` with `status`.
pub(crate) fn error(status: StatusCode, message: &str) -> Resp {
    json(status, &json!({ "error": message }))
}

/// An error response not built yet: small enough to travel in `Result`s.
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    pub(crate) fn response(&self) -> Resp {
        let mut r = error(self.status, &self.message);
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        r
    }
}

pub(crate) fn ts(t: Option<Timestamp>) -> Value {
    t.map_or(Value::Null, |t| t.to_rfc3339().into())
}

fn text(map: &mut Map<String, Value>, key: &str, name: &Name) {
    name.json_into(map, key);
}

/// `GET /api/mikrotik/users/active`: the sessions of the last poll.
pub(crate) fn active_users(view: &View, filter: Option<Service>) -> Value {
    let mut sessions: Vec<_> = view
        .state
        .sessions
        .values()
        .filter(|s| filter.is_none_or(|f| s.service == f))
        .collect();
    sessions.sort_by(|a, b| (a.user.as_bytes(), a.service).cmp(&(b.user.as_bytes(), b.service)));
    let users: Vec<Value> = sessions
        .into_iter()
        .map(|s| {
            let mut m = Map::new();
            text(&mut m, "username", &s.user);
            m.insert("type".into(), s.service.as_str().into());
            m.insert(
                "ipAddress".into(),
                s.address.map_or(Value::Null, |a| a.to_string().into()),
            );
            match s.service {
                Service::Hotspot => {
                    m.insert(
                        "macAddress".into(),
                        s.mac.map_or(Value::Null, |a| a.to_string().into()),
                    );
                }
                Service::Pppoe => text(&mut m, "callerId", &s.caller_id),
            }
            // The design's shape: a RouterOS duration string; the number
            // beside it for programs.
            m.insert(
                "uptime".into(),
                format_duration(Duration::from_secs(s.counters.uptime_secs)).into(),
            );
            m.insert("uptimeSecs".into(), s.counters.uptime_secs.into());
            m.insert("bytesIn".into(), s.counters.bytes_in.into());
            m.insert("bytesOut".into(), s.counters.bytes_out.into());
            text(&mut m, "profile", &s.profile);
            Value::Object(m)
        })
        .collect();
    json!({ "users": users })
}

/// The router's uptime in seconds, from its boot time by our clock.
fn router_uptime_secs(view: &View, now: Timestamp) -> Option<u64> {
    view.router
        .as_ref()
        .and_then(|r| r.boot)
        .map(|b| now.secs_since(b).max(0) as u64)
}

fn router_uptime(view: &View, now: Timestamp) -> Value {
    router_uptime_secs(view, now).map_or(Value::Null, Value::from)
}

/// The design's `uptime` of the summary: `15 days`, `3 hours`, `5 minutes`.
fn uptime_words(secs: u64) -> String {
    let (n, unit) = match secs {
        s if s >= 86_400 => (s / 86_400, "day"),
        s if s >= 3_600 => (s / 3_600, "hour"),
        s if s >= 60 => (s / 60, "minute"),
        s => (s, "second"),
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

/// `GET /api/mikrotik/stats/summary`.
pub(crate) fn summary(view: &View, now: Timestamp) -> Value {
    let (mut bytes_in, mut bytes_out) = (0u64, 0u64);
    // Online = the sessions of managed users, exactly those that
    // `users/active` lists (and the status page counts).
    let (mut hotspot, mut pppoe) = (0usize, 0usize);
    for s in view.state.sessions.values() {
        bytes_in = bytes_in.saturating_add(s.counters.bytes_in.unwrap_or(0));
        bytes_out = bytes_out.saturating_add(s.counters.bytes_out.unwrap_or(0));
        match s.service {
            Service::Hotspot => hotspot += 1,
            Service::Pppoe => pppoe += 1,
        }
    }
    let u = &view.users;
    let uptime = router_uptime_secs(view, now);
    json!({
        "totalHotspotUsers": u.hotspot_users,
        "totalPPPoEUsers": u.ppp_secrets,
        "activeHotspotUsers": hotspot,
        "activePPPoEUsers": pppoe,
        "routerActiveHotspot": u.hotspot_active,
        "routerActivePPPoE": u.ppp_active,
        "totalBytesIn": bytes_in,
        "totalBytesOut": bytes_out,
        "uptime": uptime.map(uptime_words),
        "uptimeSecs": uptime,
    })
}

fn router_info(view: &View) -> Value {
    match &view.router {
        None => Value::Null,
        Some(r) => {
            let mut m = Map::new();
            text(&mut m, "identity", &r.identity);
            text(&mut m, "board", &r.board);
            text(&mut m, "version", &r.version);
            Value::Object(m)
        }
    }
}

fn outbox(view: &View, stats: Option<&OutboxStats>) -> Value {
    json!({
        "pending": stats.map(|s| s.pending),
        "oldestAt": ts(stats.and_then(|s| s.oldest_at)),
        "lastUploadAt": ts(view.uplink.last_upload_at),
        "lastError": view.uplink.last_error,
        "uploaded": view.uplink.uploaded,
    })
}

/// `GET /api/mikrotik/monitoring/status`. `lastSync` is the last poll that
/// read the router successfully, `lastPoll` the last attempt.
pub(crate) fn status(view: &View, stats: Option<&OutboxStats>, now: Timestamp) -> Value {
    // One API connection, always (RouterOS allows 20 sessions in all):
    // the design's pool fields with this agent's values.
    let connections = u32::from(view.router_connected);
    json!({
        "isMonitoring": view.router_connected && view.last_poll.is_some(),
        "activeConnections": connections,
        "connectionPool": {"active": connections, "idle": 0, "max": 1},
        "lastSync": ts(view.last_poll),
        "lastPoll": ts(view.last_poll_attempt),
        "routerConnected": view.router_connected,
        "reconnectAttempts": view.reconnects,
        "router": router_info(view),
        "routerUptime": router_uptime(view, now),
        "outbox": outbox(view, stats),
        "site": view.site_id,
        "startedAt": view.started_at.to_rfc3339(),
        "polls": view.polls,
        "pollFailures": view.poll_failures,
        "lastPollMs": view.last_poll_ms,
        "lastPollError": view.last_poll_error,
        "lastRouterError": view.last_router_error,
        "clock": clock(view),
    })
}

/// Clock trust as of the last poll: `null` before the first one.
fn clock(view: &View) -> Value {
    match &view.clock {
        None => Value::Null,
        Some(c) => json!({
            "trusted": c.trusted,
            "source": c.source.as_str(),
            "skewSecs": c.skew_secs,
            "now": c.best_now.to_rfc3339(),
        }),
    }
}

/// `GET /healthz`: the process answers, so it is up; the body says how
/// the router and the uplink are doing. Only a dead state file (the agent
/// can no longer record anything) makes it 503.
pub(crate) fn health(view: &View, stats: Result<&OutboxStats, String>) -> (StatusCode, Value) {
    let (code, status, pending, store) = match stats {
        Ok(s) => (StatusCode::OK, "ok", Some(s.pending), Value::from("ok")),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            None,
            e.into(),
        ),
    };
    let v = json!({
        "status": status,
        "router": {
            "connected": view.router_connected,
            "lastPoll": ts(view.last_poll),
            "lastError": view.last_router_error,
        },
        "uplink": {
            "lastUploadAt": ts(view.uplink.last_upload_at),
            "lastError": view.uplink.last_error,
            "pending": pending,
        },
        "store": store,
    });
    (code, v)
}
