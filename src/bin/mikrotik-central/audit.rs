//! `operator_audit`: one row per write made by an operator, in the write's
//! own transaction (no write without its row, no row without its write).

use serde_json::Value;

use crate::operator_auth::Operator;

pub async fn record(
    tx: &tokio_postgres::Transaction<'_>,
    op: &Operator,
    site: &str,
    action: &str,
    target: &str,
    detail: &Value,
) -> Result<(), tokio_postgres::Error> {
    tx.execute(
        "INSERT INTO operator_audit (operator, site_id, action, target, detail) \
         VALUES ($1, $2, $3, $4, $5)",
        &[&op.name, &site, &action, &target, detail],
    )
    .await?;
    Ok(())
}
