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
/// counts in every bucket it overlaps. One pass over the sessions: each
/// adds +1 at its first bucket and -1 after its last, and a running sum
/// per site gives the count at each bucket where it changes (three times
/// faster than joining 24 buckets against the sessions). The sessions
/// come from two indexes, not a scan of every stored session: the open
/// ones (`sessions_open_started_idx`) and those ended in the window
/// (`sessions_ended_idx`), counted by (site, first bucket, last bucket)
/// before the +1/-1 pass; docs/scale.md has the plan at 10 million.
pub async fn online_per_hour(pool: &Pool) -> Result<HashMap<String, Vec<i64>>, StoreError> {
    let client = pool.get().await.map_err(StoreError::pool)?;
    let st = client
        .prepare_cached(
            // t0 (the first bucket's start) is written out, not joined from
            // a CTE: the join per row cost more than the rest of the query.
            "SELECT site_id, i, (sum(sum(delta)) OVER (PARTITION BY site_id ORDER BY i))::bigint
               FROM (SELECT site_id, first, last, count(*) AS n
                       FROM (SELECT x.site_id,
                                    greatest(0, floor(date_part('epoch', x.started_at
                                        - (date_trunc('hour', now()) - interval '23 hours')) / 3600))::int AS first,
                                    least(23, ceil(date_part('epoch', coalesce(x.ended_at, now())
                                        - (date_trunc('hour', now()) - interval '23 hours')) / 3600)::int - 1) AS last
                               FROM (SELECT site_id, started_at, ended_at FROM sessions
                                      WHERE ended_at IS NULL
                                     UNION ALL
                                     SELECT site_id, started_at, ended_at FROM sessions
                                      WHERE ended_at > date_trunc('hour', now()) - interval '23 hours') x
                              WHERE x.started_at < now()) s
                      GROUP BY 1, 2, 3) e,
                    LATERAL (VALUES (e.first, e.n), (e.last + 1, -e.n)) AS v(i, delta)
              WHERE e.last >= e.first AND v.i <= 23
              GROUP BY site_id, i",
        )
        .await?;
    let mut changes: HashMap<String, Vec<(i32, i64)>> = HashMap::new();
    for r in client.query(&st, &[]).await? {
        changes
            .entry(r.get(0))
            .or_default()
            .push((r.get(1), r.get(2)));
    }
    Ok(changes
        .into_iter()
        .map(|(site, mut c)| {
            c.sort_unstable();
            (site, fill(&c))
        })
        .collect())
}

/// Hourly counts from (bucket, count from this bucket on) change points,
/// sorted by bucket: each bucket holds the last change at or before it.
fn fill(changes: &[(i32, i64)]) -> Vec<i64> {
    let mut out = vec![0; HOURS];
    let mut next = changes.iter().peekable();
    let mut value = 0;
    for (i, slot) in out.iter_mut().enumerate() {
        while let Some((_, v)) = next.next_if(|(b, _)| usize::try_from(*b).is_ok_and(|b| b <= i)) {
            value = *v;
        }
        *slot = value;
    }
    out
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

#[cfg(test)]
mod tests {
    #[test]
    fn fill_carries_each_change_forward() {
        let v = super::fill(&[(2, 1), (5, 3), (6, 0), (23, 2)]);
        assert_eq!(&v[..8], &[0, 0, 1, 1, 1, 3, 0, 0]);
        assert_eq!((v[22], v[23], v.len()), (0, 2, 24));
        assert_eq!(super::fill(&[]), vec![0; 24]);
    }
}
