//! Vouchers through the operator API: create a batch (codes from
//! [`crate::voucher_codes`], rows `created` with the comment the agent
//! writes on the router), list, delete.
//!
//! A created row is in `site_desired_state` at once; the agent's sync
//! creates the hotspot user with exactly `mikrotik_comment`. A deleted row
//! (`status = 'deleted'`) is removed from the router and its session kicked
//! at the agent's next sync.

use std::collections::HashSet;

use deadpool_postgres::Pool;
use mikrotik_edge::comment::SystemComment;
use serde::Serialize;
use serde_json::json;

use crate::api_error::ApiError;
use crate::api_input::NewBatch;
use crate::audit;
use crate::db;
use crate::operator_auth::Operator;
use crate::voucher_codes::random_text;

/// Rounds of drawing new codes for those already taken at the site.
const DRAW_ROUNDS: usize = 20;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CreatedVoucher {
    pub code: String,
    pub password: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CreatedBatch {
    pub batch_id: String,
    /// The comment every voucher of the batch carries on the router.
    pub comment: String,
    pub vouchers: Vec<CreatedVoucher>,
}

/// The voucher comment (`VOUCHER_SYSTEM|batch|sell|cost|hours|vendor|date|by||`),
/// built by the same code as the agent's `create-batch`.
pub fn comment(req: &NewBatch, batch_id: &str, created_date: &str, created_by: &str) -> String {
    let c = SystemComment::new_voucher(
        batch_id.as_bytes(),
        req.sell.as_str().as_bytes(),
        req.cost.as_ref().map_or("", |m| m.as_str()).as_bytes(),
        req.valid_hours.to_string().as_bytes(),
        req.vendor.as_bytes(),
        created_date.as_bytes(),
        created_by.as_bytes(),
    );
    // Every field came from a `String`: the bytes are UTF-8.
    String::from_utf8_lossy(&mikrotik_edge::comment::Comment::System(c).to_bytes()).into_owned()
}

/// Creates `req.count` vouchers in one transaction, with its audit row.
pub async fn create_batch(
    pool: &Pool,
    op: &Operator,
    site: &str,
    req: &NewBatch,
) -> Result<CreatedBatch, ApiError> {
    let rng = ring::rand::SystemRandom::new();
    let random = |n| random_text(&rng, n).map_err(|_| no_randomness());
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let Some(row) = tx
        .query_opt(
            "SELECT to_char(now() AT TIME ZONE timezone, 'YYYY-MM-DD'), \
                    to_char(now() AT TIME ZONE timezone, 'YYYYMMDD') \
               FROM sites WHERE site_id = $1 FOR SHARE",
            &[&site],
        )
        .await?
    else {
        return Err(no_site(site));
    };
    let (created_date, ymd): (String, String) = (row.get(0), row.get(1));
    let batch_id = match &req.batch_id {
        Some(b) => b.clone(),
        None => format!("B{ymd}-{}", random(6)?),
    };
    let comment = comment(req, &batch_id, &created_date, &op.name);
    let insert = tx
        .prepare_cached(
            "INSERT INTO vouchers (site_id, code, password, profile_name, batch_id, valid_hours, \
                                   status, mikrotik_comment, sell, cost) \
             SELECT $1, t.code, t.password, $4, $5, $6::text::numeric, 'created', $7, \
                    $8::text::numeric, $9::text::numeric \
               FROM unnest($2::text[], $3::text[]) AS t(code, password) \
             ON CONFLICT (site_id, code) DO NOTHING RETURNING code",
        )
        .await?;
    let hours = req.valid_hours.to_string();
    let cost = req.cost.as_ref().map(|m| m.as_str().to_string());
    let mut made: Vec<CreatedVoucher> = Vec::with_capacity(req.count as usize);
    let mut drawn: HashSet<String> = HashSet::with_capacity(req.count as usize);
    for _ in 0..DRAW_ROUNDS {
        let need = req.count as usize - made.len();
        if need == 0 {
            break;
        }
        let mut codes = Vec::with_capacity(need);
        let mut passwords = Vec::with_capacity(need);
        while codes.len() < need {
            let code = format!("{}{}", req.prefix, random(req.code_length)?);
            // A code drawn before (kept or taken at the site) is not tried again.
            if drawn.insert(code.clone()) {
                codes.push(code);
                passwords.push(random(req.code_length)?);
            }
        }
        let rows = tx
            .query(
                &insert,
                &[
                    &site,
                    &codes,
                    &passwords,
                    &req.profile,
                    &batch_id,
                    &hours,
                    &comment,
                    &req.sell.as_str(),
                    &cost,
                ],
            )
            .await?;
        let inserted: HashSet<String> = rows.iter().map(|r| r.get(0)).collect();
        for (code, password) in codes.into_iter().zip(passwords) {
            if inserted.contains(&code) {
                made.push(CreatedVoucher { code, password });
            }
        }
    }
    if made.len() < req.count as usize {
        return Err(ApiError::Conflict {
            field: "code_length".into(),
            message: "could not draw enough unused codes: use a longer code_length or prefix"
                .into(),
        });
    }
    audit::record(
        &tx,
        op,
        site,
        "vouchers.create",
        &batch_id,
        &json!({
            "count": req.count, "profile": req.profile, "valid_hours": hours,
            "sell": req.sell.as_str(), "cost": cost, "vendor": req.vendor,
            "prefix": req.prefix, "code_length": req.code_length,
        }),
    )
    .await?;
    tx.commit().await?;
    Ok(CreatedBatch {
        batch_id,
        comment,
        vouchers: made,
    })
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VoucherRow {
    pub code: String,
    /// The voucher password (the product: printed on its card).
    pub password: Option<String>,
    pub profile: Option<String>,
    pub batch_id: Option<String>,
    /// Hours, exact decimal text.
    pub valid_hours: Option<String>,
    pub status: String,
    /// Exact decimal text.
    pub sell: Option<String>,
    pub cost: Option<String>,
    pub comment: Option<String>,
    pub first_login_at: Option<String>,
    pub expires_at: Option<String>,
    pub mac_address: Option<String>,
    pub created_at: String,
}

/// The statuses a voucher row can have.
pub const STATUSES: [&str; 5] = ["created", "active", "expired", "migrated", "deleted"];

/// Most rows one listing returns.
pub const MAX_LIST: i64 = 20_000;

/// The site's vouchers, oldest first, filtered by batch and status;
/// `None` when there is no such site.
pub async fn list(
    pool: &Pool,
    site: &str,
    batch_id: Option<&str>,
    status: Option<&str>,
) -> Result<Option<Vec<VoucherRow>>, ApiError> {
    let client = pool.get().await?;
    if db::site_timezone(&**client, site).await?.is_none() {
        return Ok(None);
    }
    let st = client
        .prepare_cached(
            "SELECT code, password, profile_name, batch_id, valid_hours::text, status, \
                    sell::text, cost::text, mikrotik_comment, _edge_utc(first_login_at), \
                    _edge_utc(expires_at), mac_address, _edge_utc(created_at) \
               FROM vouchers \
              WHERE site_id = $1 AND ($2::text IS NULL OR batch_id = $2) \
                AND ($3::text IS NULL OR status = $3) \
              ORDER BY created_at, id LIMIT $4",
        )
        .await?;
    let rows = client
        .query(&st, &[&site, &batch_id, &status, &MAX_LIST])
        .await?;
    Ok(Some(
        rows.iter()
            .map(|r| VoucherRow {
                code: r.get(0),
                password: r.get(1),
                profile: r.get(2),
                batch_id: r.get(3),
                valid_hours: r.get(4),
                status: r.get(5),
                sell: r.get(6),
                cost: r.get(7),
                comment: r.get(8),
                first_login_at: r.get(9),
                expires_at: r.get(10),
                mac_address: r.get(11),
                created_at: r.get(12),
            })
            .collect(),
    ))
}

/// Marks the voucher `deleted` (the agent removes it from the router and
/// kicks its session). Deleting a deleted voucher changes nothing.
pub async fn delete(pool: &Pool, op: &Operator, site: &str, code: &str) -> Result<(), ApiError> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    if db::site_timezone(&*tx, site).await?.is_none() {
        return Err(no_site(site));
    }
    let before: Option<String> = tx
        .query_opt(
            "SELECT status FROM vouchers WHERE site_id = $1 AND code = $2 FOR UPDATE",
            &[&site, &code],
        )
        .await?
        .map(|r| r.get(0));
    match before.as_deref() {
        None => {
            return Err(ApiError::NotFound(format!(
                "no voucher {code:?} at site {site:?}"
            )));
        }
        Some("deleted") => return Ok(()),
        Some(_) => {}
    }
    tx.execute(
        "UPDATE vouchers SET status = 'deleted', updated_at = now() \
          WHERE site_id = $1 AND code = $2",
        &[&site, &code],
    )
    .await?;
    audit::record(
        &tx,
        op,
        site,
        "vouchers.delete",
        code,
        &json!({"previous_status": before}),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

pub fn no_site(site: &str) -> ApiError {
    ApiError::NotFound(format!("no site {site:?}"))
}

fn no_randomness() -> ApiError {
    ApiError::Store(crate::db::StoreError::Unavailable(
        "no system randomness".into(),
    ))
}
