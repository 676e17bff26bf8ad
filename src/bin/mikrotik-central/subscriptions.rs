//! PPPoE subscriptions through the operator API: create, suspend,
//! restore, list. The agent's sync creates the secret with the row's
//! comment, disables it when suspended (kicking its session) and enables
//! it when restored.

use deadpool_postgres::Pool;
use mikrotik_edge::comment::{Comment, SystemComment};
use serde::Serialize;
use serde_json::json;

use crate::api_error::ApiError;
use crate::api_input::NewSubscription;
use crate::audit;
use crate::db;
use crate::operator_auth::Operator;
use crate::vouchers::no_site;

/// What `suspend` and `restore` set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Suspend,
    Restore,
}

impl Change {
    fn status(self) -> &'static str {
        match self {
            Change::Suspend => "suspended",
            Change::Restore => "active",
        }
    }

    fn action(self) -> &'static str {
        match self {
            Change::Suspend => "subscriptions.suspend",
            Change::Restore => "subscriptions.restore",
        }
    }
}

/// `PPPOE_SYSTEM||sell|cost|customer|subscription|date|by`.
pub fn comment(req: &NewSubscription, created_date: &str, created_by: &str) -> String {
    fn money(m: &Option<crate::api_input::Money>) -> &str {
        m.as_ref().map_or("", |m| m.as_str())
    }
    let c = SystemComment::new_pppoe(
        b"",
        money(&req.sell).as_bytes(),
        money(&req.cost).as_bytes(),
        req.customer_id.as_bytes(),
        req.subscription_id.as_bytes(),
        created_date.as_bytes(),
        created_by.as_bytes(),
    );
    String::from_utf8_lossy(&Comment::System(c).to_bytes()).into_owned()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SubscriptionRow {
    pub pppoe_username: String,
    pub profile_name: Option<String>,
    pub status: String,
    pub comment: Option<String>,
    pub sell: Option<String>,
    pub cost: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// Creates the subscription (`active`); a username in use is a conflict
/// unless its row was deleted, which this one then replaces.
pub async fn create(
    pool: &Pool,
    op: &Operator,
    site: &str,
    req: &NewSubscription,
) -> Result<SubscriptionRow, ApiError> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let Some(row) = tx
        .query_opt(
            "SELECT to_char(now() AT TIME ZONE timezone, 'YYYY-MM-DD') \
               FROM sites WHERE site_id = $1 FOR SHARE",
            &[&site],
        )
        .await?
    else {
        return Err(no_site(site));
    };
    let date: String = row.get(0);
    let existing: Option<String> = tx
        .query_opt(
            "SELECT status FROM subscriptions WHERE site_id = $1 AND pppoe_username = $2 FOR UPDATE",
            &[&site, &req.pppoe_username],
        )
        .await?
        .map(|r| r.get(0));
    if existing.as_deref().is_some_and(|s| s != "deleted") {
        return Err(ApiError::Conflict {
            field: "pppoe_username".into(),
            message: format!(
                "pppoe_username {:?}: a subscription already exists at site {site:?}",
                req.pppoe_username
            ),
        });
    }
    let comment = comment(req, &date, &op.name);
    let sell = req.sell.as_ref().map(|m| m.as_str());
    let cost = req.cost.as_ref().map(|m| m.as_str());
    let row = tx
        .query_one(
            "INSERT INTO subscriptions AS s (site_id, pppoe_username, password, profile_name, \
                                             status, comment, sell, cost) \
             VALUES ($1, $2, $3, $4, 'active', $5, $6::text::numeric, $7::text::numeric) \
             ON CONFLICT (site_id, pppoe_username) DO UPDATE \
                SET password = EXCLUDED.password, profile_name = EXCLUDED.profile_name, \
                    status = 'active', comment = EXCLUDED.comment, sell = EXCLUDED.sell, \
                    cost = EXCLUDED.cost, intent_at = now(), updated_at = now() \
             RETURNING pppoe_username, profile_name, status, comment, sell::text, cost::text, \
                       _edge_utc(created_at), _edge_utc(updated_at)",
            &[
                &site,
                &req.pppoe_username,
                &req.password,
                &req.profile_name,
                &comment,
                &sell,
                &cost,
            ],
        )
        .await?;
    audit::record(
        &tx,
        op,
        site,
        "subscriptions.create",
        &req.pppoe_username,
        &json!({
            "profile_name": req.profile_name, "customer_id": req.customer_id,
            "subscription_id": req.subscription_id, "sell": sell, "cost": cost,
        }),
    )
    .await?;
    tx.commit().await?;
    Ok(from_row(&row))
}

fn from_row(r: &tokio_postgres::Row) -> SubscriptionRow {
    SubscriptionRow {
        pppoe_username: r.get(0),
        profile_name: r.get(1),
        status: r.get(2),
        comment: r.get(3),
        sell: r.get(4),
        cost: r.get(5),
        created_at: r.get(6),
        updated_at: r.get(7),
    }
}

const COLUMNS: &str = "pppoe_username, profile_name, status, comment, sell::text, cost::text, \
                       _edge_utc(created_at), _edge_utc(updated_at)";

/// Suspends or restores; a subscription already so changes nothing.
pub async fn change(
    pool: &Pool,
    op: &Operator,
    site: &str,
    username: &str,
    change: Change,
) -> Result<SubscriptionRow, ApiError> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    if db::site_timezone(&*tx, site).await?.is_none() {
        return Err(no_site(site));
    }
    let before: Option<String> = tx
        .query_opt(
            "SELECT status FROM subscriptions \
              WHERE site_id = $1 AND pppoe_username = $2 FOR UPDATE",
            &[&site, &username],
        )
        .await?
        .map(|r| r.get(0));
    match before.as_deref() {
        None | Some("deleted") => {
            return Err(ApiError::NotFound(format!(
                "no subscription {username:?} at site {site:?}"
            )));
        }
        Some(s) if s == change.status() => {}
        Some(_) => {
            tx.execute(
                "UPDATE subscriptions SET status = $3, updated_at = now() \
                  WHERE site_id = $1 AND pppoe_username = $2",
                &[&site, &username, &change.status()],
            )
            .await?;
            audit::record(
                &tx,
                op,
                site,
                change.action(),
                username,
                &json!({"previous_status": before}),
            )
            .await?;
        }
    }
    let row = tx
        .query_one(
            &format!(
                "SELECT {COLUMNS} FROM subscriptions WHERE site_id = $1 AND pppoe_username = $2"
            ),
            &[&site, &username],
        )
        .await?;
    tx.commit().await?;
    Ok(from_row(&row))
}

/// The site's subscriptions by username; `None` when there is no such site.
pub async fn list(pool: &Pool, site: &str) -> Result<Option<Vec<SubscriptionRow>>, ApiError> {
    let client = pool.get().await?;
    if db::site_timezone(&**client, site).await?.is_none() {
        return Ok(None);
    }
    let rows = client
        .query(
            &format!(
                "SELECT {COLUMNS} FROM subscriptions WHERE site_id = $1 ORDER BY pppoe_username"
            ),
            &[&site],
        )
        .await?;
    Ok(Some(rows.iter().map(from_row).collect()))
}
