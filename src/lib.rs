//! mikrotik-edge: a site agent for MikroTik hotspot and PPPoE operators.
//!
//! A tour of the modules, bottom up:
//!
//! - [`proto`]: the RouterOS API wire format as a sans-IO codec. Bytes in,
//!   sentences out; no sockets, so every edge case is a unit test.
//! - [`commands`]: the RouterOS command vocabulary: menu paths and one
//!   builder per command, used by every writer and list read.
//! - [`client`]: one long-lived connection to one router (TCP or API-SSL),
//!   multiplexed with `.tag`, with login, timeouts, keepalive and reconnect.
//! - [`config`] and [`cli`]: TOML file plus environment, and the command line.
//! - [`duration`], [`clock`], [`gmt_offset`], [`comment`]: RouterOS value
//!   formats (durations, dates and the HTTP `Date`, the `gmt-offset` in all
//!   its forms) and the `VOUCHER_SYSTEM|…` / `PPPOE_SYSTEM|…` comment
//!   metadata.
//! - [`name`]: typed row values: names as raw bytes (RouterOS is not UTF-8
//!   clean, and two names differing in one byte are two users), `.id`s, MACs.
//! - [`shared_bytes`]: the one-word shared byte string behind `Name`.
//! - [`name_cache`]: one allocation per name across reads and the loaded
//!   state.
//!   The crate denies `unsafe` code; this module and [`kernel_clock`]
//!   (the libc calls for `CLOCK_BOOTTIME` and `adjtimex`) are the only
//!   ones allowed it.
//! - [`cause`]: a failure's text with its typed cause, for errors that
//!   must stay `Clone`.
//! - [`encoding`]: base64 and hex, one codec each.
//! - [`files`]: bounded reads of config, secret and certificate files.
//! - [`valid_hours`]: a voucher's validity, fractional hours kept to the
//!   minute; [`password`]: a password that never prints.
//! - [`redact`]: URLs as logs and errors may show them (no credentials,
//!   secret paths or query tokens).
//! - [`api_json`]: how `mikrotik-edge api` prints rows (lossless JSON).
//! - [`monitor`]: pure logic. Snapshots (or one listen change) and `now` in, events
//!   and router actions out.
//! - [`event`] and [`store`]: the event model and the redb state file, owned
//!   by its own thread so no commit blocks the runtime.
//! - [`status`], [`kicks`], [`intent_channel`], [`central_date`],
//!   [`template`]: plain data and shared handles that the agent and what it
//!   starts (`http`, `uplink`) all use: the published view and control
//!   requests, the agent's own kicks, the user API's intent channel, the
//!   central `Date` reading, the webhook body template. Leaves, so no
//!   top-level module imports another in a cycle (`tests/layout.rs`).
//! - [`http`]: the local HTTP endpoint (status page, user API, health,
//!   metrics), answering from the agent's published view.
//! - [`agent`]: the driver that does the I/O for `mikrotik-edge run`: row
//!   parsing, action encoding, the published view, signals.
//! - [`mikhmon`]: `import-mikhmon`, the migration from Mikhmon's comments
//!   and profile scripts to ours.
//! - [`batch`]: `create-batch`, many users over the one connection with a
//!   bounded number of commands in flight.
//! - [`uplink`]: the upload of the outbox to the central side, the outbox
//!   cap and alerts (events plus an optional webhook).
//! - [`reconcile`]: full sync, pure (with local operator intents held as
//!   overrides until central shows them): desired state and router lists in,
//!   actions and events out (driver: `agent::sync`).
//! - `sim` (feature `sim`): a RouterOS API simulator for tests and the demo.

#![deny(unsafe_code)]

pub mod agent;
pub mod api_json;
pub mod batch;
pub mod cause;
pub mod central_date;
pub mod cli;
pub mod client;
pub mod clock;
pub mod commands;
pub mod comment;
pub mod config;
pub mod duration;
pub mod encoding;
pub mod event;
pub mod files;
pub mod gmt_offset;
pub mod http;
pub mod intent_channel;
pub mod kernel_clock;
pub mod kicks;
pub mod logging;
pub mod mikhmon;
pub mod monitor;
pub mod name;
pub mod name_cache;
pub mod password;
pub mod proto;
pub mod reconcile;
pub mod redact;
pub mod shared_bytes;
#[cfg(feature = "sim")]
pub mod sim;
pub mod status;
pub mod store;
pub mod template;
pub mod uplink;
pub mod valid_hours;
