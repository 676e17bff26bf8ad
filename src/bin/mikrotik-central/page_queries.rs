//! Reads only the pages need (the operator API has no endpoint for them):
//! online sessions per hour over the last 24 h for every site, and a site's
//! voucher counts by batch and status.

use std::collections::HashMap;

use deadpool_postgres::Pool;

use crate::db::StoreError;

/// Hours in a sparkline.
pub const HOURS: usize = 24;

/// Sessions online in each of the last 24 hour buckets (UTC hours, the
/// current, partial hour last), per site, in one query for all sites. A
/// session counts in every bucket it overlaps: started before the bucket's
/// end (and before now), ended after its start or still open. Read from
/// the `site_session_hours` rollup that triggers on `sessions` keep
/// (schema.sql): per site, the count before the window (one folded row
/// and the hours before it) and a running sum of starts minus ends over
/// the window's hours, at most about 50 rows per site instead of every
/// session of the last day. Two small corrections read `sessions` itself:
/// sessions started this hour but after now (an agent clock ahead) do not
/// count yet, and when now is exactly on the hour the open ones are not
/// online in it. docs/scale.md has the plan at 10 million sessions.
pub async fn online_per_hour(pool: &Pool) -> Result<HashMap<String, Vec<i64>>, StoreError> {
    let client = pool.get().await.map_err(StoreError::pool)?;
    let st = client
        .prepare_cached(
            // t0 (the first bucket's start) is written out rather than
            // joined from a CTE so that now() prunes the partitions.
            "SELECT site_id, i, (sum(sum(n)) OVER (PARTITION BY site_id ORDER BY i))::bigint
               FROM (SELECT site_id,
                            CASE WHEN hour < date_trunc('hour', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
                                             - interval '23 hours' THEN -1
                                 ELSE (date_part('epoch', hour - (date_trunc('hour', now() AT TIME ZONE 'UTC')
                                          AT TIME ZONE 'UTC' - interval '23 hours')) / 3600)::int END AS i,
                            started - ended AS n
                       FROM site_session_hours
                      WHERE hour <= date_trunc('hour', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
                     UNION ALL
                     SELECT site_id, 23, -count(*) FROM sessions
                      WHERE started_at >= now()
                        AND started_at < date_trunc('hour', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
                                         + interval '1 hour'
                        AND (ended_at IS NULL
                             OR ended_at > date_trunc('hour', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')
                      GROUP BY site_id
                     UNION ALL
                     SELECT site_id, 23, -count(*) FROM sessions
                      WHERE ended_at IS NULL AND started_at < now()
                        AND now() = date_trunc('hour', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
                      GROUP BY site_id) x
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
/// sorted by bucket (-1: before the window): each bucket holds the last
/// change at or before it.
fn fill(changes: &[(i32, i64)]) -> Vec<i64> {
    let mut out = vec![0; HOURS];
    let mut next = changes.iter().peekable();
    let mut value = 0;
    for (i, slot) in (0i32..).zip(out.iter_mut()) {
        while let Some((_, v)) = next.next_if(|(b, _)| *b <= i) {
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
        let before = super::fill(&[(-1, 4), (1, 5)]);
        assert_eq!(&before[..3], &[4, 5, 5]);
        assert_eq!((v[22], v[23], v.len()), (0, 2, 24));
        assert_eq!(super::fill(&[]), vec![0; 24]);
    }
}
