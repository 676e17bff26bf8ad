//! Migration from Mikhmon (`mikrotik-edge import-mikhmon`).
//!
//! Mikhmon keeps its voucher metadata on the router: per profile in the
//! header of the `on-login` script ([`profile`]), per user in the comment
//! ([`comment`]), and the expiry of used users as a date in the router's
//! local time ([`tz`]). [`plan`] turns those into `VOUCHER_SYSTEM|…`
//! comments (pure); [`csv`] is the export file that makes it undoable;
//! [`import`] reads and writes the router.

pub mod comment;
pub mod csv;
pub mod import;
pub mod plan;
pub mod profile;
pub mod tz;
