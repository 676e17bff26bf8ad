//! What to do after a failed call: pure, so every case is a unit test.

use std::time::Duration;

use super::UplinkError;

/// The uploader's reaction to one failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reaction {
    /// Transient (timeouts, no connection, 5xx, 408, 429): retry with
    /// exponential backoff; no alert.
    Retry,
    /// The central side refuses us; retrying at once would only repeat it.
    /// Wait the full backoff cap between tries and raise `alert` once per
    /// distinct failure.
    Rejected { alert: &'static str },
}

pub fn classify(e: &UplinkError) -> Reaction {
    match e {
        UplinkError::Timeout
        | UplinkError::Connect(_)
        | UplinkError::Transport(_)
        | UplinkError::Closed => Reaction::Retry,
        UplinkError::Status { code, .. } => match *code {
            408 | 429 | 500..=599 => Reaction::Retry,
            401 | 403 => Reaction::Rejected {
                alert: "token_rejected",
            },
            _ => Reaction::Rejected {
                alert: "upload_rejected",
            },
        },
        // A 2xx we cannot read: most likely a proxy or a wrong URL answering;
        // an operator has to look.
        UplinkError::BadReply(_) => Reaction::Rejected {
            alert: "upload_rejected",
        },
    }
}

/// First retry delay; doubles up to the configured cap.
pub fn backoff_base(cap: Duration) -> Duration {
    Duration::from_secs(1).min(cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16) -> UplinkError {
        UplinkError::Status {
            code,
            message: String::new(),
        }
    }

    #[test]
    fn transient_failures_are_retried() {
        for e in [
            UplinkError::Timeout,
            UplinkError::Connect("connection refused".into()),
            UplinkError::Transport("connection reset".into()),
            status(500),
            status(502),
            status(503),
            status(408),
            status(429),
        ] {
            assert_eq!(classify(&e), Reaction::Retry, "{e}");
        }
    }

    #[test]
    fn refusals_raise_alerts() {
        for code in [401, 403] {
            assert_eq!(
                classify(&status(code)),
                Reaction::Rejected {
                    alert: "token_rejected"
                }
            );
        }
        for code in [400, 404, 405, 413, 422] {
            assert_eq!(
                classify(&status(code)),
                Reaction::Rejected {
                    alert: "upload_rejected"
                }
            );
        }
        assert_eq!(
            classify(&UplinkError::BadReply("x".into())),
            Reaction::Rejected {
                alert: "upload_rejected"
            }
        );
    }

    #[test]
    fn only_certain_failures_count_as_nothing_stored() {
        assert!(UplinkError::Connect("refused".into()).nothing_stored());
        assert!(status(401).nothing_stored());
        assert!(status(400).nothing_stored());
        assert!(!status(408).nothing_stored());
        assert!(!status(502).nothing_stored());
        assert!(!status(504).nothing_stored());
        assert!(!UplinkError::Timeout.nothing_stored());
        assert!(!UplinkError::Transport("reset".into()).nothing_stored());
    }

    #[test]
    fn base_never_exceeds_cap() {
        assert_eq!(
            backoff_base(Duration::from_secs(60)),
            Duration::from_secs(1)
        );
        assert_eq!(
            backoff_base(Duration::from_millis(300)),
            Duration::from_millis(300)
        );
    }
}
