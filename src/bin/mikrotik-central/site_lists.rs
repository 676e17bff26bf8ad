//! A site's sessions and alerts (operator API, site page), and
//! acknowledging an alert.

use deadpool_postgres::Pool;
use serde::Serialize;
use serde_json::{Value, json};

use crate::api_error::ApiError;
use crate::audit;
use crate::db;
use crate::operator_auth::Operator;
use crate::vouchers::no_site;

/// Most rows one listing returns (newest first).
pub const MAX_LIST: i64 = 5_000;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionRow {
    pub id: i64,
    pub service: String,
    pub username: String,
    pub address: Option<String>,
    pub mac_address: Option<String>,
    pub started_at: Option<String>,
    pub ended_at: Option<String>,
    pub bytes_in: Option<i64>,
    pub bytes_out: Option<i64>,
    pub uptime_secs: Option<i64>,
    pub end_reason: Option<String>,
}

/// Sessions, newest first: only the open ones when `active`.
pub async fn sessions(
    pool: &Pool,
    site: &str,
    active: bool,
) -> Result<Option<Vec<SessionRow>>, ApiError> {
    let client = pool.get().await?;
    if db::site_timezone(&**client, site).await?.is_none() {
        return Ok(None);
    }
    let st = client
        .prepare_cached(
            "SELECT id, service, username, host(address), mac_address, _edge_utc(started_at), \
                    _edge_utc(ended_at), bytes_in, bytes_out, uptime_secs, end_reason \
               FROM sessions WHERE site_id = $1 AND (NOT $2 OR ended_at IS NULL) \
              ORDER BY started_at DESC NULLS LAST, id DESC LIMIT $3",
        )
        .await?;
    let rows = client.query(&st, &[&site, &active, &MAX_LIST]).await?;
    Ok(Some(
        rows.iter()
            .map(|r| SessionRow {
                id: r.get(0),
                service: r.get(1),
                username: r.get(2),
                address: r.get(3),
                mac_address: r.get(4),
                started_at: r.get(5),
                ended_at: r.get(6),
                bytes_in: r.get(7),
                bytes_out: r.get(8),
                uptime_secs: r.get(9),
                end_reason: r.get(10),
            })
            .collect(),
    ))
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertRow {
    pub id: i64,
    pub name: String,
    pub message: Option<String>,
    pub at: String,
    pub acked_at: Option<String>,
    pub acked_by: Option<String>,
    pub data: Option<Value>,
}

const ALERT_COLUMNS: &str = "id, name, message, _edge_utc(at), _edge_utc(acked_at), acked_by, data";

fn alert(r: &tokio_postgres::Row) -> AlertRow {
    AlertRow {
        id: r.get(0),
        name: r.get(1),
        message: r.get(2),
        at: r.get(3),
        acked_at: r.get(4),
        acked_by: r.get(5),
        data: r.get(6),
    }
}

/// Alerts, newest first: only the unacknowledged ones when `open`.
pub async fn alerts(
    pool: &Pool,
    site: &str,
    open: bool,
) -> Result<Option<Vec<AlertRow>>, ApiError> {
    let client = pool.get().await?;
    if db::site_timezone(&**client, site).await?.is_none() {
        return Ok(None);
    }
    let rows = client
        .query(
            &format!(
                "SELECT {ALERT_COLUMNS} FROM alerts \
                  WHERE site_id = $1 AND (NOT $2 OR acked_at IS NULL) \
                  ORDER BY at DESC, id DESC LIMIT $3"
            ),
            &[&site, &open, &MAX_LIST],
        )
        .await?;
    Ok(Some(rows.iter().map(alert).collect()))
}

/// Acknowledges the alert (once: a second ack keeps the first's time and
/// operator).
pub async fn ack(pool: &Pool, op: &Operator, site: &str, id: i64) -> Result<AlertRow, ApiError> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    if db::site_timezone(&*tx, site).await?.is_none() {
        return Err(no_site(site));
    }
    let updated = tx
        .execute(
            "UPDATE alerts SET acked_at = now(), acked_by = $3 \
              WHERE site_id = $1 AND id = $2 AND acked_at IS NULL",
            &[&site, &id, &op.name],
        )
        .await?;
    if updated > 0 {
        audit::record(&tx, op, site, "alerts.ack", &id.to_string(), &json!({})).await?;
    }
    let Some(row) = tx
        .query_opt(
            &format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE site_id = $1 AND id = $2"),
            &[&site, &id],
        )
        .await?
    else {
        return Err(ApiError::NotFound(format!(
            "no alert {id} at site {site:?}"
        )));
    };
    tx.commit().await?;
    Ok(alert(&row))
}
