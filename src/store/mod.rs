//! The state file: one redb database holding what the agent must not forget
//! across restarts, and the thread that owns it.
//!
//! - file.rs: [`Store`], the synchronous redb layer (tables, schema version,
//!   stream id, event numbering).
//! - delta.rs: [`StateDelta`], what changed between two monitor states, so a
//!   cycle writes only changed rows and a quiet cycle writes nothing.
//! - thread.rs: [`StoreHandle`], the async face: a dedicated thread owns the
//!   database and serves requests over a bounded channel, so no commit (and
//!   its fsync, slow on an SD card) ever runs on the runtime thread. One
//!   writer keeps event order equal to cause order.
//! - backlog.rs: the writes held in memory while the disk is full.
//! - server.rs: the thread's side of each request, and the full disk's
//!   fallback to memory.
//! - outbox.rs: the outbox cap (compaction of `usage`, then `dropped`),
//!   enforced in every commit that appends events.
//! - quarantine.rs: the `quarantine` table (events the central side
//!   refused as malformed, for `mikrotik-edge quarantine list|resend`).
//! - sync.rs: the `sync` table (last desired state, reconcile state).
//! - error.rs: [`StoreError`], keeping redb's and the OS's causes.
//! - v2.rs: the migration from schema version 2 (old shapes kept there).

mod backlog;
mod delta;
mod error;
mod file;
mod outbox;
mod quarantine;
mod server;
mod sync;
#[cfg(test)]
mod tests;
mod thread;
mod v2;

pub use delta::StateDelta;
pub use error::StoreError;
pub use file::{MikhmonImportRecord, SCHEMA_VERSION, Store};
pub use outbox::CapReport;
pub use quarantine::Quarantined;
pub use sync::{KEY_DESIRED, KEY_INTENTS, KEY_RECONCILE};
pub use thread::{Committed, OutboxStats, StoreHandle, StoreThread};
