//! PostgreSQL side of the gateway: the pool, token hashes, the site calls.

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use mikrotik_edge::encoding::hex;
use tokio_postgres::NoTls;
use tokio_postgres::error::SqlState;

/// The schema, built in for `load-schema`.
pub const SCHEMA: &str = include_str!("../../../scripts/central/schema.sql");

/// The functions the gateway exposes to sites, with their arguments.
pub enum Rpc {
    IngestBatch {
        site_id: String,
        batch: serde_json::Value,
    },
    SiteDesiredState {
        site_id: String,
    },
    /// The counter agents poll (a bigint, as JSON a bare number).
    SiteDesiredVersion {
        site_id: String,
    },
}

#[derive(Debug)]
pub enum CallError {
    /// No site has this token.
    Unauthorized,
    /// No connection to the database (down, pool exhausted, timeout).
    Unavailable(String),
    /// The database answered with an error.
    Db(tokio_postgres::Error),
}

impl From<tokio_postgres::Error> for CallError {
    fn from(e: tokio_postgres::Error) -> Self {
        if e.as_db_error().is_none() {
            // I/O, closed connection, ...: the database is unreachable.
            CallError::Unavailable(e.to_string())
        } else {
            CallError::Db(e)
        }
    }
}

/// A query's failure, for the operator API and pages.
#[derive(Debug)]
pub enum StoreError {
    /// No connection to the database (down, pool exhausted, timeout).
    Unavailable(String),
    /// The database answered with an error.
    Db(tokio_postgres::Error),
}

impl StoreError {
    pub fn pool(e: deadpool_postgres::PoolError) -> Self {
        StoreError::Unavailable(e.to_string())
    }
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        if e.as_db_error().is_none() {
            StoreError::Unavailable(e.to_string())
        } else {
            StoreError::Db(e)
        }
    }
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Unavailable(e) => write!(f, "database unavailable: {e}"),
            StoreError::Db(e) => write!(f, "database error: {}", db_message(e)),
        }
    }
}

fn pg_config(url: &str) -> Result<tokio_postgres::Config, String> {
    let mut cfg: tokio_postgres::Config = url
        .parse()
        .map_err(|e| format!("invalid database URL: {e}"))?;
    if cfg.get_connect_timeout().is_none() {
        cfg.connect_timeout(Duration::from_secs(5));
    }
    if cfg.get_application_name().is_none() {
        cfg.application_name("mikrotik-central");
    }
    Ok(cfg)
}

/// A lazy pool: no connection is made until the first request, so the
/// gateway starts (and answers /healthz with 503) while the database is down.
/// `wait` bounds the time a request queues for a connection: under
/// overload it gets 503 + Retry-After quickly instead of piling up.
pub fn pool(url: &str, size: usize, wait: Duration) -> Result<Pool, String> {
    let mgr = Manager::from_config(
        pg_config(url)?,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(mgr)
        .max_size(size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(wait))
        .create_timeout(Some(Duration::from_secs(5)))
        .recycle_timeout(Some(Duration::from_secs(5)))
        .build()
        .map_err(|e| format!("cannot build the connection pool: {e}"))
}

/// sha256 hex of a token, as stored in `sites.token_hash`.
pub fn token_hash(token: &str) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, token.as_bytes()).as_ref())
}

/// Looks the token up, sets `request.jwt.claims` to its site for this
/// transaction only, and calls the function. Returns the site the token
/// belongs to and the function's JSON result as text.
pub async fn call(pool: &Pool, token: &str, rpc: &Rpc) -> Result<(String, String), CallError> {
    let mut client = pool
        .get()
        .await
        .map_err(|e| CallError::Unavailable(e.to_string()))?;
    let tx = client.transaction().await?;
    let lookup = tx
        .prepare_cached("SELECT site_id FROM sites WHERE token_hash = $1")
        .await?;
    let Some(row) = tx.query_opt(&lookup, &[&token_hash(token)]).await? else {
        return Err(CallError::Unauthorized);
    };
    let site: String = row.get(0);
    let claims = serde_json::json!({ "site_id": site }).to_string();
    tx.execute(
        "SELECT set_config('request.jwt.claims', $1, true)",
        &[&claims],
    )
    .await?;
    let out: String = match rpc {
        Rpc::IngestBatch { site_id, batch } => {
            let st = tx
                .prepare_cached("SELECT ingest_batch($1::text, $2::json)::text")
                .await?;
            tx.query_one(&st, &[site_id, batch]).await?.get(0)
        }
        Rpc::SiteDesiredState { site_id } => {
            let st = tx
                .prepare_cached("SELECT site_desired_state($1::text)::text")
                .await?;
            tx.query_one(&st, &[site_id]).await?.get(0)
        }
        Rpc::SiteDesiredVersion { site_id } => {
            let st = tx
                .prepare_cached("SELECT site_desired_version($1::text)::text")
                .await?;
            tx.query_one(&st, &[site_id]).await?.get(0)
        }
    };
    tx.commit().await?;
    Ok((site, out))
}

/// Creates the coming months' partitions (edge_maintain_partitions);
/// returns how many it created.
pub async fn maintain_partitions(pool: &Pool) -> Result<i64, String> {
    let client = pool.get().await.map_err(|e| e.to_string())?;
    let row = client
        .query_one("SELECT count(*) FROM edge_maintain_partitions()", &[])
        .await
        .map_err(|e| db_message(&e))?;
    Ok(row.get(0))
}

/// Retention: drops the partitions older than `keep_months`; returns
/// what was dropped.
pub async fn prune(url: &str, keep_months: i32) -> Result<Vec<String>, String> {
    let client = connect(url).await?;
    let rows = client
        .query(
            "SELECT * FROM edge_drop_partitions_older_than($1)",
            &[&keep_months],
        )
        .await
        .map_err(|e| format!("cannot prune: {}", db_message(&e)))?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// The site's time zone, when the site exists (`FOR SHARE`: it is not
/// removed while the caller's transaction writes for it).
pub async fn site_timezone<C: tokio_postgres::GenericClient>(
    c: &C,
    site: &str,
) -> Result<Option<String>, tokio_postgres::Error> {
    let row = c
        .query_opt(
            "SELECT timezone FROM sites WHERE site_id = $1 FOR SHARE",
            &[&site],
        )
        .await?;
    Ok(row.map(|r| r.get(0)))
}

/// `SELECT 1` on a pooled connection.
pub async fn ping(pool: &Pool) -> Result<(), String> {
    let client = pool.get().await.map_err(|e| e.to_string())?;
    client
        .simple_query("SELECT 1")
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// HTTP status for a database error: 403 for another site's rows (42501),
/// 400 for bad input (class 22, e.g. 22023), 503 for transient conditions
/// the agent should retry, 500 otherwise.
pub fn status_for(e: &tokio_postgres::Error) -> u16 {
    let Some(code) = e.code() else {
        return 503;
    };
    let c = code.code();
    if *code == SqlState::INSUFFICIENT_PRIVILEGE {
        403
    } else if c.starts_with("22") {
        400
    } else if c.starts_with("08")
        || c.starts_with("53")
        || c.starts_with("57")
        || *code == SqlState::T_R_SERIALIZATION_FAILURE
        || *code == SqlState::T_R_DEADLOCK_DETECTED
    {
        503
    } else {
        500
    }
}

pub async fn connect(url: &str) -> Result<tokio_postgres::Client, String> {
    let (client, conn) = pg_config(url)?
        .connect(NoTls)
        .await
        .map_err(|e| format!("cannot connect to the database: {e}"))?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            log::warn!("database connection: {e}");
        }
    });
    Ok(client)
}

/// 32 random bytes as hex: a new site or operator token.
pub fn new_token() -> Result<String, String> {
    let mut bytes = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .map_err(|_| "no system randomness".to_string())?;
    Ok(hex(&bytes))
}

/// Creates the site or rotates its token; returns the new token.
pub async fn add_site(url: &str, site: &str) -> Result<String, String> {
    let token = new_token()?;
    let client = connect(url).await?;
    client
        .execute(
            "INSERT INTO sites (site_id, token_hash) VALUES ($1, $2) \
             ON CONFLICT (site_id) DO UPDATE SET token_hash = EXCLUDED.token_hash",
            &[&site, &token_hash(&token)],
        )
        .await
        .map_err(|e| format!("cannot store the site: {}", db_message(&e)))?;
    Ok(token)
}

/// Site settings for `set-site`; `None` leaves a setting as it is.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SiteSettings {
    pub name: Option<String>,
    pub timezone: Option<String>,
    pub hotspot_login_url: Option<String>,
}

/// Updates an existing site's settings (an empty value clears the name or
/// URL; the time zone must be one PostgreSQL knows).
pub async fn set_site(url: &str, site: &str, s: &SiteSettings) -> Result<(), String> {
    let client = connect(url).await?;
    if let Some(tz) = &s.timezone {
        let ok: bool = client
            .query_one("SELECT _edge_valid_tz($1)", &[tz])
            .await
            .map_err(|e| format!("cannot check the time zone: {}", db_message(&e)))?
            .get(0);
        if !ok {
            return Err(format!(
                "--timezone: unknown time zone {tz:?} (use an IANA name such as Asia/Jakarta)"
            ));
        }
    }
    let n = client
        .execute(
            "UPDATE sites SET                name = CASE WHEN $2 THEN nullif($3, '') ELSE name END,                timezone = coalesce($4, timezone),                hotspot_login_url = CASE WHEN $5 THEN nullif($6, '') ELSE hotspot_login_url END              WHERE site_id = $1",
            &[
                &site,
                &s.name.is_some(),
                &s.name.clone().unwrap_or_default(),
                &s.timezone,
                &s.hotspot_login_url.is_some(),
                &s.hotspot_login_url.clone().unwrap_or_default(),
            ],
        )
        .await
        .map_err(|e| format!("cannot update the site: {}", db_message(&e)))?;
    if n == 0 {
        return Err(format!("no site {site:?} (create it with add-site)"));
    }
    Ok(())
}

pub async fn load_schema(url: &str) -> Result<(), String> {
    let client = connect(url).await?;
    client
        .batch_execute(SCHEMA)
        .await
        .map_err(|e| format!("cannot load the schema: {}", db_message(&e)))
}

/// The server's message for a database error, else the error itself.
pub fn db_message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => db.message().to_string(),
        None => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn token_hash_is_sha256_hex() {
        assert_eq!(
            super::token_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
