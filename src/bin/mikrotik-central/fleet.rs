//! The fleet: one summary per site (`GET /api/sites`, the fleet page).
//! "Today" is the site's own day, in its time zone (`sites.timezone`, set
//! with `set-site`); revenue is the exact `numeric` sum of `sell` over the
//! vouchers whose activation (`first_login_at`) falls on that day, each
//! voucher counted once.

use deadpool_postgres::Pool;
use serde::Serialize;

use crate::db::StoreError;

/// Uploaded within this long: `online`.
pub const ONLINE_SECS: i64 = 120;
/// Not uploaded for longer than this: `offline` (between the two: `stale`).
pub const OFFLINE_SECS: i64 = 900;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SiteSummary {
    pub site_id: String,
    /// Display name (`set-site --name`), if set.
    pub name: Option<String>,
    pub timezone: String,
    pub hotspot_login_url: Option<String>,
    /// RFC 3339, UTC.
    pub last_upload: Option<String>,
    /// `online`, `stale` or `offline`.
    pub status: String,
    /// From the agent's last `router` event; `None` before any.
    pub router_connected: Option<bool>,
    pub active_sessions: i64,
    pub vouchers_activated_today: i64,
    /// Exact decimal text (`"15000.5"`): money is never a float.
    pub revenue_today: String,
    pub open_alerts: i64,
    /// The site's date "today" is (`YYYY-MM-DD`).
    pub today: String,
}

const QUERY: &str = "
SELECT s.site_id, s.name, s.timezone, s.hotspot_login_url, _edge_utc(s.last_upload_at),
       CASE WHEN s.last_upload_at >= now() - make_interval(secs => $2) THEN 'online'
            WHEN s.last_upload_at >= now() - make_interval(secs => $3) THEN 'stale'
            ELSE 'offline' END,
       (SELECT c.event = 'connect' FROM mikrotik_connection_log c
         WHERE c.site_id = s.site_id ORDER BY c.created_at DESC, c.id DESC LIMIT 1),
       (SELECT count(*) FROM sessions x WHERE x.site_id = s.site_id AND x.ended_at IS NULL),
       d.n, coalesce(d.revenue, 0)::text,
       (SELECT count(*) FROM alerts a WHERE a.site_id = s.site_id AND a.acked_at IS NULL),
       to_char(now() AT TIME ZONE s.timezone, 'YYYY-MM-DD')
  FROM sites s
  CROSS JOIN LATERAL (
      SELECT date_trunc('day', now() AT TIME ZONE s.timezone) AS local_midnight) m
  CROSS JOIN LATERAL (
      SELECT count(*) AS n, sum(v.sell) AS revenue FROM vouchers v
       WHERE v.site_id = s.site_id
         AND v.first_login_at >= (m.local_midnight AT TIME ZONE s.timezone)
         AND v.first_login_at < ((m.local_midnight + interval '1 day') AT TIME ZONE s.timezone)) d
 WHERE $1::text IS NULL OR s.site_id = $1
 ORDER BY s.site_id";

async fn query(pool: &Pool, site: Option<&str>) -> Result<Vec<SiteSummary>, StoreError> {
    let client = pool.get().await.map_err(StoreError::pool)?;
    let st = client.prepare_cached(QUERY).await?;
    let rows = client
        .query(&st, &[&site, &(ONLINE_SECS as f64), &(OFFLINE_SECS as f64)])
        .await?;
    Ok(rows
        .iter()
        .map(|r| SiteSummary {
            site_id: r.get(0),
            name: r.get(1),
            timezone: r.get(2),
            hotspot_login_url: r.get(3),
            last_upload: r.get(4),
            status: r.get(5),
            router_connected: r.get(6),
            active_sessions: r.get(7),
            vouchers_activated_today: r.get(8),
            revenue_today: r.get(9),
            open_alerts: r.get(10),
            today: r.get(11),
        })
        .collect())
}

/// Every site, by `site_id`.
pub async fn sites(pool: &Pool) -> Result<Vec<SiteSummary>, StoreError> {
    query(pool, None).await
}

/// One site; `None` when there is no such site.
pub async fn site(pool: &Pool, site_id: &str) -> Result<Option<SiteSummary>, StoreError> {
    Ok(query(pool, Some(site_id)).await?.into_iter().next())
}
