use std::fmt;
use std::path::PathBuf;

use crate::cause::Cause;

/// Why a state file operation failed. Each variant keeps its cause, so a
/// full disk (an I/O error of kind `StorageFull` inside
/// [`StoreError::Storage`]) is never reported like a damaged file
/// ([`StoreError::Corrupt`]).
#[derive(Debug)]
pub enum StoreError {
    /// The file could not be created or opened as a redb database.
    Open {
        path: PathBuf,
        source: redb::DatabaseError,
    },
    /// The directory could not be created, or the file inspected.
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Another process (or another `Store` in this one) holds the file's lock.
    InUse {
        path: PathBuf,
    },
    /// redb failed while reading or writing: I/O error, disk full, or
    /// damage redb itself detected.
    Storage(redb::StorageError),
    Transaction(redb::TransactionError),
    Table(redb::TableError),
    Commit(redb::CommitError),
    /// A stored value does not decode.
    ///
    /// The agent must not discard the file by itself: it may hold events not
    /// yet uploaded. The driver logs this and refuses to start, asking the
    /// operator to move the file aside (and keep it for inspection).
    Corrupt {
        what: &'static str,
        /// The decoder's error underneath, when there is one (`source()`).
        reason: Cause,
    },
    /// A value could not be encoded (should not happen for our types).
    Encode {
        what: &'static str,
        reason: String,
    },
    /// The file was written by a newer release; refusing it keeps that
    /// release's data intact for a later upgrade.
    SchemaTooNew {
        found: u32,
        supported: u32,
    },
    /// The file has an older schema that this build cannot migrate.
    Migrate {
        from: u32,
        reason: String,
    },
    /// The store thread is gone (it panicked or was shut down).
    Closed,
    /// The state file could not be opened for lack of space: the store
    /// thread runs from memory until it can (reads find nothing there).
    NotOpen {
        path: PathBuf,
    },
}

impl StoreError {
    /// True when the disk is full: worth a distinct log line and alert, and
    /// retrying later may succeed.
    pub fn is_disk_full(&self) -> bool {
        let io = match self {
            StoreError::Storage(redb::StorageError::Io(e)) => e,
            StoreError::Commit(redb::CommitError::Storage(redb::StorageError::Io(e))) => e,
            StoreError::Transaction(redb::TransactionError::Storage(redb::StorageError::Io(e))) => {
                e
            }
            StoreError::Io { source, .. } => source,
            StoreError::Open {
                source: redb::DatabaseError::Storage(redb::StorageError::Io(e)),
                ..
            } => e,
            StoreError::NotOpen { .. } => return true,
            _ => return false,
        };
        io.kind() == std::io::ErrorKind::StorageFull || io.raw_os_error() == Some(28)
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Open { path, source } => {
                write!(f, "state file {}: {source}", path.display())
            }
            StoreError::Io { path, source } => {
                write!(f, "state file {}: {source}", path.display())
            }
            StoreError::InUse { path } => write!(
                f,
                "state file {} is in use by another process (is another mikrotik-edge running?)",
                path.display()
            ),
            StoreError::Storage(e) if self.is_disk_full() => {
                write!(f, "state file: disk full: {e}")
            }
            StoreError::Storage(e) => write!(f, "state file: {e}"),
            StoreError::Transaction(e) => write!(f, "state file: {e}"),
            StoreError::Table(e) => write!(f, "state file: {e}"),
            StoreError::Commit(e) if self.is_disk_full() => {
                write!(f, "state file: disk full: {e}")
            }
            StoreError::Commit(e) => write!(f, "state file: {e}"),
            StoreError::Corrupt { what, reason } => {
                write!(f, "state file: {what} is corrupt: {reason}")
            }
            StoreError::Encode { what, reason } => {
                write!(f, "state file: cannot encode {what}: {reason}")
            }
            StoreError::SchemaTooNew { found, supported } => write!(
                f,
                "state file: schema version {found} is newer than this mikrotik-edge supports \
                 ({supported}); it was written by a newer release"
            ),
            StoreError::Migrate { from, reason } => {
                write!(
                    f,
                    "state file: cannot migrate from schema version {from}: {reason}"
                )
            }
            StoreError::Closed => write!(f, "state file: the store thread has stopped"),
            StoreError::NotOpen { path } => write!(
                f,
                "state file {}: not open (disk full): running from memory",
                path.display()
            ),
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StoreError::Open { source, .. } => Some(source),
            StoreError::Io { source, .. } => Some(source),
            StoreError::Storage(e) => Some(e),
            StoreError::Transaction(e) => Some(e),
            StoreError::Table(e) => Some(e),
            StoreError::Commit(e) => Some(e),
            StoreError::Corrupt { reason, .. } => reason.source(),
            _ => None,
        }
    }
}

impl From<redb::TransactionError> for StoreError {
    fn from(err: redb::TransactionError) -> Self {
        StoreError::Transaction(err)
    }
}

impl From<redb::TableError> for StoreError {
    fn from(err: redb::TableError) -> Self {
        StoreError::Table(err)
    }
}

impl From<redb::StorageError> for StoreError {
    fn from(err: redb::StorageError) -> Self {
        StoreError::Storage(err)
    }
}

impl From<redb::CommitError> for StoreError {
    fn from(err: redb::CommitError) -> Self {
        StoreError::Commit(err)
    }
}
