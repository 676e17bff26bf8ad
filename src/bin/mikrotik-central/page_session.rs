//! Page logins: a session cookie for an operator who gave a token once, and
//! the session's CSRF token that every page form must carry. Sessions live
//! in `operator_sessions` (only the sha256 of the cookie value is stored).

use deadpool_postgres::Pool;
use mikrotik_edge::encoding::hex;

use crate::db::token_hash;

/// Name of the session cookie.
pub const COOKIE: &str = "mc_session";
/// A page login lasts this long.
pub const TTL_SECS: i64 = 12 * 3600;

/// A logged-in operator's session.
pub struct Session {
    pub operator_id: i64,
    pub operator: String,
    /// The value page forms carry in their hidden `csrf` field.
    pub csrf: String,
}

#[derive(Debug)]
pub enum SessionError {
    /// The system random generator failed.
    Random,
    /// The database could not be reached or answered with an error.
    Db(String),
}

impl std::fmt::Display for SessionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SessionError::Random => f.write_str("no system randomness"),
            SessionError::Db(e) => write!(f, "session store: {e}"),
        }
    }
}

/// 32 bytes from the system CSPRNG, hex.
pub fn random_secret() -> Result<String, SessionError> {
    let mut bytes = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .map_err(|_| SessionError::Random)?;
    Ok(hex(&bytes))
}

/// Starts a session for the operator; returns the cookie value.
pub async fn create(pool: &Pool, operator_id: i64) -> Result<String, SessionError> {
    let value = random_secret()?;
    let csrf = random_secret()?;
    let client = pool
        .get()
        .await
        .map_err(|e| SessionError::Db(e.to_string()))?;
    // Expired sessions go when new ones come: no timer task needed.
    client
        .execute(
            "DELETE FROM operator_sessions WHERE expires_at < now()",
            &[],
        )
        .await
        .map_err(|e| SessionError::Db(crate::db::db_message(&e)))?;
    client
        .execute(
            "INSERT INTO operator_sessions (session_hash, operator_id, csrf, expires_at) \
             VALUES ($1, $2, $3, now() + make_interval(secs => $4::bigint))",
            &[&token_hash(&value), &operator_id, &csrf, &TTL_SECS],
        )
        .await
        .map_err(|e| SessionError::Db(crate::db::db_message(&e)))?;
    Ok(value)
}

/// The live session for a cookie value, if any.
pub async fn lookup(pool: &Pool, value: &str) -> Result<Option<Session>, SessionError> {
    let client = pool
        .get()
        .await
        .map_err(|e| SessionError::Db(e.to_string()))?;
    let row = client
        .query_opt(
            "SELECT s.operator_id, o.name, s.csrf FROM operator_sessions s \
             JOIN operators o ON o.id = s.operator_id AND NOT o.disabled \
             WHERE s.session_hash = $1 AND s.expires_at > now()",
            &[&token_hash(value)],
        )
        .await
        .map_err(|e| SessionError::Db(crate::db::db_message(&e)))?;
    Ok(row.map(|r| Session {
        operator_id: r.get(0),
        operator: r.get(1),
        csrf: r.get(2),
    }))
}

/// Ends the session for a cookie value (logout).
pub async fn delete(pool: &Pool, value: &str) -> Result<(), SessionError> {
    let client = pool
        .get()
        .await
        .map_err(|e| SessionError::Db(e.to_string()))?;
    client
        .execute(
            "DELETE FROM operator_sessions WHERE session_hash = $1",
            &[&token_hash(value)],
        )
        .await
        .map_err(|e| SessionError::Db(crate::db::db_message(&e)))?;
    Ok(())
}

/// The session cookie's value from a `Cookie` header.
pub fn cookie_value(header: &str) -> Option<&str> {
    header.split(';').find_map(|kv| {
        let (k, v) = kv.trim().split_once('=')?;
        (k == COOKIE && !v.is_empty()).then_some(v)
    })
}

/// `Set-Cookie` for a new session; `Secure` when served over TLS.
pub fn set_cookie(value: &str, secure: bool) -> String {
    format!(
        "{COOKIE}={value}; Path=/; Max-Age={TTL_SECS}; HttpOnly; SameSite=Strict{}",
        if secure { "; Secure" } else { "" }
    )
}

/// `Set-Cookie` that removes the session cookie.
pub fn clear_cookie(secure: bool) -> String {
    format!(
        "{COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict{}",
        if secure { "; Secure" } else { "" }
    )
}

/// Whether a form's CSRF value is the session's, compared in constant time.
pub fn csrf_matches(session: &str, form: Option<&str>) -> bool {
    let Some(form) = form else { return false };
    let (a, b) = (session.as_bytes(), form.as_bytes());
    a.len() == b.len() && !a.is_empty() && a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_session_cookie_among_others() {
        assert_eq!(cookie_value("a=1; mc_session=abc; b=2"), Some("abc"));
        assert_eq!(cookie_value("mc_sessionx=abc"), None);
        assert_eq!(cookie_value("mc_session="), None);
    }

    #[test]
    fn cookie_flags() {
        let c = set_cookie("v", false);
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict"));
        assert!(!c.contains("Secure"));
        assert!(set_cookie("v", true).ends_with("; Secure"));
        assert!(clear_cookie(true).contains("Max-Age=0"));
    }

    #[test]
    fn csrf_compare() {
        assert!(csrf_matches("abc", Some("abc")));
        assert!(!csrf_matches("abc", Some("abd")));
        assert!(!csrf_matches("abc", Some("ab")));
        assert!(!csrf_matches("abc", None));
        assert!(!csrf_matches("", Some("")));
    }

    #[test]
    fn secrets_are_random_hex() {
        let (a, b) = (random_secret().unwrap(), random_secret().unwrap());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
    }
}
