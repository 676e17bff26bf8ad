//! Reads only the pages need (the operator API has no endpoint for them):
//! online sessions per hour over the last 24 h for every site, and a site's
//! voucher counts by batch and status.

use std::collections::HashMap;

use deadpool_postgres::Pool;

use crate::db::StoreError;

/// Hours in a sparkline.
pub const HOURS: usize = 24;

/// Sessions online in each of the last 24 hour buckets (the current,
/// partial hour last), per site, in one query for all sites. A session
/// counts in every bucket it overlaps.
pub async fn online_per_hour(pool: &Pool) -> Result<HashMap<String, Vec<i64>>, StoreError> {
    let client = pool.get().await.map_err(StoreError::pool)?;
    let st = client
        .prepare_cached(
            "WITH h AS (
                 SELECT i, date_trunc('hour', now()) - make_interval(hours => 23 - i) AS t0
                   FROM generate_series(0, 23) AS i)
             SELECT x.site_id, h.i, count(*)
               FROM h JOIN sessions x
                 ON x.started_at < h.t0 + interval '1 hour'
                AND coalesce(x.ended_at, 'infinity') > h.t0
              WHERE x.started_at < now()
                AND (x.ended_at IS NULL OR x.ended_at > now() - interval '24 hours')
              GROUP BY 1, 2",
        )
        .await?;
    let mut out: HashMap<String, Vec<i64>> = HashMap::new();
    for r in client.query(&st, &[]).await? {
        let site: String = r.get(0);
        let i: i32 = r.get(1);
        let n: i64 = r.get(2);
        if let Some(slot) = out
            .entry(site)
            .or_insert_with(|| vec![0; HOURS])
            .get_mut(i as usize)
        {
            *slot = n;
        }
    }
    Ok(out)
}

/// One batch's voucher counts by status.
pub struct BatchCounts {
    /// Empty for vouchers without a batch.
    pub batch_id: String,
    pub by_status: Vec<(String, i64)>,
}

/// The site's vouchers counted by batch (newest first) and status.
pub async fn batches(pool: &Pool, site: &str) -> Result<Vec<BatchCounts>, StoreError> {
    let client = pool.get().await.map_err(StoreError::pool)?;
    // Per (batch, status), batches in order of their newest voucher.
    let st = client
        .prepare_cached(
            "SELECT coalesce(batch_id, ''), status, count(*)::bigint,
                    max(max(created_at)) OVER (PARTITION BY batch_id) AS newest
               FROM vouchers WHERE site_id = $1
              GROUP BY batch_id, status
              ORDER BY newest DESC, 1, 2",
        )
        .await?;
    let mut out: Vec<BatchCounts> = Vec::new();
    for r in client.query(&st, &[&site]).await? {
        let batch: String = r.get(0);
        let status: String = r.get(1);
        let n: i64 = r.get(2);
        match out.last_mut() {
            Some(b) if b.batch_id == batch => b.by_status.push((status, n)),
            _ => out.push(BatchCounts {
                batch_id: batch,
                by_status: vec![(status, n)],
            }),
        }
    }
    Ok(out)
}
