//! Operator accounts: `add-operator` issues a token, the operator API and
//! pages look it up. Operators live in their own table (`operators`), so a
//! site token never passes here and an operator token never passes the
//! site lookup of `/rpc/*` (see `db::call`).

use deadpool_postgres::Pool;

use crate::db::{self, StoreError};

/// An authenticated, enabled operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator {
    pub id: i64,
    pub name: String,
}

/// Operator names: what `operator_audit.operator` and the `created_by`
/// field of comments hold (no `|`, no spaces).
pub fn valid_name(name: &str) -> bool {
    crate::args::valid_site(name)
}

/// The operator whose token this is, if any and not disabled. The lookup
/// is by the token's sha256 (an index probe on a hash, so the time taken
/// says nothing about how close a guess was).
pub async fn authenticate(pool: &Pool, bearer_token: &str) -> Result<Option<Operator>, StoreError> {
    let client = pool.get().await.map_err(StoreError::pool)?;
    let st = client
        .prepare_cached("SELECT id, name FROM operators WHERE token_hash = $1 AND NOT disabled")
        .await?;
    let row = client
        .query_opt(&st, &[&db::token_hash(bearer_token)])
        .await?;
    Ok(row.map(|r| Operator {
        id: r.get(0),
        name: r.get(1),
    }))
}

/// Creates the operator or rotates its token (and enables it); returns
/// the new token, shown once.
pub async fn add_operator(url: &str, name: &str) -> Result<String, String> {
    let token = db::new_token()?;
    let client = db::connect(url).await?;
    client
        .execute(
            "INSERT INTO operators (name, token_hash) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET token_hash = EXCLUDED.token_hash, disabled = false",
            &[&name, &db::token_hash(&token)],
        )
        .await
        .map_err(|e| format!("cannot store the operator: {}", db::db_message(&e)))?;
    Ok(token)
}
