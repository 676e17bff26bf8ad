//! Request bodies: reading a JSON body within limits, and afterwards
//! draining whatever the handler left unread.
//!
//! hyper keeps a connection alive after a response only if the request
//! body was consumed; if the rest of it has not arrived yet, it closes the
//! connection after the response, without saying so. A client that then
//! sends its next request on that connection writes into a closed socket.
//! So every request body is drained (bounded in size and time) before the
//! answer goes out, and when that is not possible the answer carries
//! `Connection: close`.

use std::time::Duration;

use http_body_util::BodyExt;
use hyper::HeaderMap;
use hyper::StatusCode;
use hyper::body::Incoming;
use hyper::header;
use serde_json::Value;

use super::json::ApiError;
use super::{BODY_TIMEOUT, MAX_BODY};

/// Largest body still read (and dropped) after an answer that did not
/// need it; a larger one gets `Connection: close` instead.
pub(crate) const DRAIN_LIMIT: u64 = 1024 * 1024;
/// How long that reading may take.
pub(crate) const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// One request's body and how much of it has been read.
pub(crate) struct Body {
    inner: Incoming,
    declared: Option<u64>,
    read: u64,
    /// The whole body has been read.
    done: bool,
    /// A read failed or was cut short by a timeout: where the next request
    /// starts is unknown, so the connection must close.
    broken: bool,
}

enum ReadFail {
    TooLarge,
    Io,
}

impl Body {
    pub(crate) fn new(inner: Incoming, headers: &HeaderMap) -> Body {
        Body {
            inner,
            declared: declared_length(headers),
            read: 0,
            done: false,
            broken: false,
        }
    }

    /// Reads the body as JSON: at most [`MAX_BODY`] bytes (413), within
    /// [`BODY_TIMEOUT`] (408), `application/json` only (415), parsed
    /// (400). `Ok(None)` when there is no body; `required` makes that a 400.
    pub(crate) async fn json(
        &mut self,
        headers: &HeaderMap,
        required: bool,
    ) -> Result<Option<Value>, ApiError> {
        if self.declared.is_some_and(|n| n > MAX_BODY as u64) {
            // Not read here: `finish` drains a modest one so the client
            // sees the 413 instead of a reset mid-send.
            return Err(too_large());
        }
        let is_json = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
        let may_have_body = self.declared.is_some_and(|n| n > 0)
            || (self.declared.is_none() && headers.contains_key(header::TRANSFER_ENCODING));
        let none = || {
            if required {
                Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "a JSON body is required",
                ))
            } else {
                Ok(None)
            }
        };
        if !may_have_body {
            return none();
        }
        if self.declared.is_some() && !is_json {
            return Err(unsupported());
        }
        let bytes = match tokio::time::timeout(BODY_TIMEOUT, self.collect(MAX_BODY)).await {
            Err(_) => {
                self.broken = true;
                return Err(ApiError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    "request body not received in time",
                ));
            }
            Ok(Err(ReadFail::TooLarge)) => return Err(too_large()),
            Ok(Err(ReadFail::Io)) => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "cannot read the body",
                ));
            }
            Ok(Ok(b)) => b,
        };
        // A chunked body may turn out empty (some clients send an empty
        // POST that way): that is no body, whatever its declared type.
        if bytes.is_empty() {
            return none();
        }
        if !is_json {
            return Err(unsupported());
        }
        match serde_json::from_slice(&bytes) {
            Ok(v) => Ok(Some(v)),
            // serde_json's message names line and column, never the content.
            Err(e) => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("malformed JSON: {e}"),
            )),
        }
    }

    /// Reads up to `limit` bytes; on `TooLarge` the rest stays unread
    /// (for [`finish`](Self::finish)).
    async fn collect(&mut self, limit: usize) -> Result<Vec<u8>, ReadFail> {
        let mut out = Vec::new();
        while let Some(frame) = self.inner.frame().await {
            let Ok(frame) = frame else {
                self.broken = true;
                return Err(ReadFail::Io);
            };
            if let Ok(data) = frame.into_data() {
                self.read += data.len() as u64;
                if out.len() + data.len() > limit {
                    return Err(ReadFail::TooLarge);
                }
                out.extend_from_slice(&data);
            }
        }
        self.done = true;
        Ok(out)
    }

    /// Reads and drops what is left of the body, so the connection can
    /// serve the next request. `false` when that is not possible (too
    /// large, too slow, broken): the answer must then close the connection.
    pub(crate) async fn finish(&mut self) -> bool {
        use hyper::body::Body as _;
        if self.done || self.inner.is_end_stream() {
            return true;
        }
        if self.broken || self.declared.is_some_and(|n| n > DRAIN_LIMIT) {
            return false;
        }
        let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
            while let Some(frame) = self.inner.frame().await {
                let Ok(frame) = frame else {
                    return false;
                };
                if let Ok(data) = frame.into_data() {
                    self.read += data.len() as u64;
                    if self.read > DRAIN_LIMIT {
                        return false;
                    }
                }
            }
            true
        })
        .await;
        matches!(drained, Ok(true))
    }
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
}

fn unsupported() -> ApiError {
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "the body must be application/json",
    )
}

fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("the body is larger than {MAX_BODY} bytes"),
    )
}
