//! A failure's text with its typed cause, when there is one: errors that
//! must stay `Clone` (a client error fans out to every waiting command) and
//! comparable keep the source behind an `Arc`, so `source()` can hand it
//! on (an `io::Error`'s kind, a rustls alert) while `Display` shows the
//! same text as before.

use std::error::Error;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

#[derive(Clone)]
pub struct Cause {
    text: String,
    source: Option<Arc<dyn Error + Send + Sync + 'static>>,
}

impl Cause {
    /// Text only: nothing typed underneath.
    pub fn new(text: impl Into<String>) -> Cause {
        Cause {
            text: text.into(),
            source: None,
        }
    }

    /// The error's own text, and the error kept as the cause.
    pub fn of(err: impl Error + Send + Sync + 'static) -> Cause {
        Cause {
            text: err.to_string(),
            source: Some(Arc::new(err)),
        }
    }

    /// `text` shown, `err` kept as the cause.
    pub fn with(text: impl Into<String>, err: impl Error + Send + Sync + 'static) -> Cause {
        Cause {
            text: text.into(),
            source: Some(Arc::new(err)),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The typed cause, if any.
    pub fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn Error + 'static))
    }

    /// The cause as an I/O error, when it is one.
    pub fn io(&self) -> Option<&std::io::Error> {
        self.source.as_deref()?.downcast_ref()
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// As the text alone would print, so `{:?}` of an error reads as before.
impl fmt::Debug for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.text, f)
    }
}

/// By text: two failures that read the same are the same failure.
impl PartialEq for Cause {
    fn eq(&self, other: &Cause) -> bool {
        self.text == other.text
    }
}

impl Eq for Cause {}

impl Deref for Cause {
    type Target = str;
    fn deref(&self) -> &str {
        &self.text
    }
}

impl From<String> for Cause {
    fn from(text: String) -> Cause {
        Cause::new(text)
    }
}

impl From<&str> for Cause {
    fn from(text: &str) -> Cause {
        Cause::new(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_io_error_and_shows_the_same_text() {
        let e = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset by peer");
        let c = Cause::of(e);
        assert_eq!(c.to_string(), "reset by peer");
        assert_eq!(
            c.io().map(std::io::Error::kind),
            Some(std::io::ErrorKind::ConnectionReset)
        );
        assert!(c.source().is_some());
        assert_eq!(c.clone(), Cause::new("reset by peer"));
        assert!(Cause::from("closed").source().is_none());
        assert_eq!(format!("{:?}", Cause::new("x")), "\"x\"");
    }

    #[test]
    fn errors_hand_on_their_typed_cause() {
        let io = std::io::Error::new(std::io::ErrorKind::BrokenPipe, "broken pipe");
        let e = crate::client::ClientError::ConnectionLost(Cause::of(io));
        assert_eq!(e.to_string(), "connection lost: broken pipe");
        let source = Error::source(&e).expect("source");
        let io = source.downcast_ref::<std::io::Error>().expect("io::Error");
        assert_eq!(io.kind(), std::io::ErrorKind::BrokenPipe);
        let bad = postcard::from_bytes::<u32>(&[]).unwrap_err();
        let e = crate::store::StoreError::Corrupt {
            what: "event",
            reason: Cause::of(bad),
        };
        assert!(Error::source(&e).is_some_and(|s| s.is::<postcard::Error>()));
    }
}
