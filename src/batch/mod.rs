//! `mikrotik-edge create-batch FILE.csv`: many vouchers or PPPoE secrets
//! created over the one connection.
//!
//! - csv.rs: the file format, validated as a whole before anything is sent.
//! - runner.rs: bounded in-flight commands over `.tag` (shared with the
//!   full sync).
//! - report.rs: the created users reported to central at once.
//! - create.rs: the command: skip names the router already has, create the
//!   rest, progress, summary and the failures CSV.

pub mod create;
pub mod csv;
pub mod report;
pub mod runner;
