//! What an operator API call (or a page's write) can fail with, and how it
//! is answered: `{"error": {"code", "message", "field"}}` with a 4xx for
//! anything the caller can fix, 503 when the database is away, and 500
//! (logged, message withheld) only for the server's own faults.

use hyper::StatusCode;
use serde_json::{Value, json};

use crate::db::{self, StoreError};

#[derive(Debug)]
pub enum ApiError {
    /// A request field is missing or unusable (400).
    Invalid {
        field: String,
        message: String,
    },
    /// The request as a whole is unusable: malformed JSON, not an object (400).
    BadRequest(String),
    /// No or an unknown operator token (401).
    Unauthorized(&'static str),
    /// No such site, voucher, subscription or alert (404).
    NotFound(String),
    /// The write clashes with what exists (409), naming the field.
    Conflict {
        field: String,
        message: String,
    },
    MethodNotAllowed(&'static str),
    /// The body is over the limit (413).
    TooLarge(usize),
    Store(StoreError),
}

impl ApiError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Invalid { .. } | ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Store(StoreError::Unavailable(_)) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Store(StoreError::Db(e)) => match db::status_for(e) {
                503 => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            },
        }
    }

    /// The error's JSON body. Database details are logged, never sent.
    pub fn body(&self) -> Value {
        let (code, message, field) = match self {
            ApiError::Invalid { field, message } => {
                ("invalid_field", message.clone(), Some(field.as_str()))
            }
            ApiError::BadRequest(m) => ("bad_request", m.clone(), None),
            ApiError::Unauthorized(m) => ("unauthorized", m.to_string(), None),
            ApiError::NotFound(m) => ("not_found", m.clone(), None),
            ApiError::Conflict { field, message } => {
                ("conflict", message.clone(), Some(field.as_str()))
            }
            ApiError::MethodNotAllowed(allow) => (
                "method_not_allowed",
                format!("method not allowed (allowed: {allow})"),
                None,
            ),
            ApiError::TooLarge(max) => {
                ("too_large", format!("request body over {max} bytes"), None)
            }
            ApiError::Store(e) => {
                if self.status() == StatusCode::SERVICE_UNAVAILABLE {
                    log::warn!("operator API: {e}");
                    ("unavailable", "database unavailable".to_string(), None)
                } else {
                    log::error!("operator API: {e}");
                    ("internal", "internal error".to_string(), None)
                }
            }
        };
        json!({"error": {"code": code, "message": message, "field": field}})
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::Store(e)
    }
}

impl From<tokio_postgres::Error> for ApiError {
    fn from(e: tokio_postgres::Error) -> Self {
        ApiError::Store(e.into())
    }
}

impl From<deadpool_postgres::PoolError> for ApiError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        ApiError::Store(StoreError::pool(e))
    }
}
