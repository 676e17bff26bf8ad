//! A RouterOS API server that behaves like a router, for integration tests
//! and the demo (feature `sim`; never linked into the shipped agent).
//!
//! It speaks the wire protocol through [`crate::proto`], so what it accepts
//! and sends is exactly what the agent's codec sees from a real router:
//! plain and pre-6.43 challenge login, `.tag` multiplexing, `/cancel`,
//! `!trap` then `!done`, `!fatal` before closing, `.proplist`, queries, and
//! (optionally) the 7.18+ `!empty` reply. Faults are injected through the
//! [`SimHandle`]: slow replies, a reply cut mid-stream, reboots that refuse
//! connections, a silent router, a session limit, a clock stuck in 1970.
//!
//! ```no_run
//! use mikrotik_edge::sim::{SimOptions, Simulator};
//! let sim = Simulator::start(SimOptions::default())?;
//! println!("API at {}", sim.addr());
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! The server runs on its own thread with a current-thread tokio runtime,
//! so tests can drive it from any runtime, or none. Dropping the handle
//! stops it.

mod activity;
mod commands;
mod listen;
mod query;
mod router;
mod seed;
mod server;
mod tables;
mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;

pub use crate::encoding::hex_colon as fingerprint_hex;
pub use activity::Activity;
pub use router::GmtOffsetStyle;
pub use server::Misbehave;

use router::{Menu, Router};
use server::{ConnCtl, Ctl, Inner, Listeners, Shared, lock};
use tables::Value;

/// One printed item: `(property, value)` pairs in the order the router
/// prints them, `.id` first.
pub type Row = Vec<(Vec<u8>, Vec<u8>)>;

/// How the simulated router is set up.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// API user (its group has the `sensitive` policy, so passwords print).
    pub user: String,
    pub password: String,
    /// Pre-6.43 challenge login: `/login` returns `=ret=<challenge>` and
    /// expects `=response=00<md5 hex>`.
    pub legacy_login: bool,
    /// RouterOS 7.18+: `!empty` before `!done` when a print has no rows.
    pub empty_reply: bool,
    /// Also serve API-SSL with a fresh self-signed certificate.
    pub tls: bool,
    pub identity: String,
    /// As `/system/resource` prints it, e.g. `7.16.2 (stable)`. Versions
    /// before 7.10 print dates as `jan/31/2024 12:00:00`.
    pub version: String,
    pub board_name: String,
    /// API sessions allowed at once (RouterOS default 20); more are
    /// accepted and closed at once.
    pub max_sessions: usize,
    pub seed: SeedData,
    /// Write every reply sentence separately, as a real router's replies
    /// arrive in separate TCP segments (instead of one write per reply).
    pub per_sentence: bool,
    /// Plain API address; port 0 picks a free one.
    pub listen: SocketAddr,
    /// API-SSL address when `tls` is set; port 0 picks a free one.
    pub tls_listen: SocketAddr,
}

impl Default for SimOptions {
    fn default() -> Self {
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        SimOptions {
            user: "admin".to_owned(),
            password: "secret".to_owned(),
            legacy_login: false,
            empty_reply: false,
            tls: false,
            identity: "MikroTik".to_owned(),
            version: "7.16.2 (stable)".to_owned(),
            board_name: "hAP ac^2".to_owned(),
            max_sessions: 20,
            seed: SeedData::default(),
            per_sentence: false,
            listen: any,
            tls_listen: any,
        }
    }
}

/// Generated starting data; all zero by default (profiles always exist:
/// hotspot `default`, `voucher-1h`, `voucher-24h`, `mikhmon-3h` (with
/// Mikhmon's `on-login` header), `staff`;
/// PPP `default`, `default-encryption`, `pppoe-10M`, `pppoe-20M`).
#[derive(Debug, Clone, Default)]
pub struct SeedData {
    /// `VOUCHER_SYSTEM|…` users `WIFI-nnnnnn` (password = name) alternating
    /// `voucher-1h` (with `limit-uptime=1h`) and `voucher-24h`. When
    /// non-zero, 6 more users come along: 3 Mikhmon-style (`mk…`, profile
    /// `mikhmon-3h`, comments `vc-…`, `up-…` and an expiry date) and 3
    /// hand-made (`john`, `guest-lobby` with a Windows-1252 comment,
    /// `printer` disabled and without comment), plus Mikhmon's monitor
    /// scheduler for `mikhmon-3h` and one Mikhmon sales record.
    pub hotspot_users: usize,
    /// `PPPOE_SYSTEM|…` secrets `pppoe-nnnn` alternating `pppoe-10M` and
    /// `pppoe-20M`; when non-zero, plus `office-link` and `tower-2`.
    pub pppoe_secrets: usize,
    /// Logs in this many of the voucher users at start.
    pub hotspot_active: usize,
    /// Connects this many of the PPPoE secrets at start.
    pub ppp_active: usize,
    /// Vouchers `DEMO-EXP-n`, logged in, expiring 60, 90, 120 … seconds
    /// after start (for the demo).
    pub expiring: usize,
}

/// Starts simulators.
pub struct Simulator;

impl Simulator {
    /// Binds the listener(s) and starts serving on a background thread.
    pub fn start(opts: SimOptions) -> std::io::Result<SimHandle> {
        let mut router = Router::new(&opts.identity, &opts.version, &opts.board_name);
        router.empty_reply = opts.empty_reply;
        seed::seed(&mut router, &opts.seed);
        let shared = Arc::new(Shared::new(Inner {
            router,
            user: opts.user.into_bytes(),
            password: opts.password.into_bytes(),
            legacy_login: opts.legacy_login,
            reply_delay: Duration::ZERO,
            silent: false,
            max_sessions: opts.max_sessions,
            drop_next: false,
            command_log: Vec::new(),
            logins: 0,
            per_sentence: opts.per_sentence,
            misbehave: None,
            after_login: None,
            refuse_listen: Vec::new(),
            max_in_flight: 0,
            reply_bytes: 0,
            commands: 0,
            muted_listens: Vec::new(),
            listen_ends: Vec::new(),
        }));

        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let plain = std::net::TcpListener::bind(opts.listen)?;
        plain.set_nonblocking(true)?;
        let addr = plain.local_addr()?;
        let tls = if opts.tls {
            let l = std::net::TcpListener::bind(opts.tls_listen)?;
            l.set_nonblocking(true)?;
            Some((l, tls::make()?))
        } else {
            None
        };
        let (listeners, tls_info) = {
            // `enter` (unlike `block_on`) works even when the caller is
            // itself inside a tokio runtime.
            let _guard = rt.enter();
            let plain = tokio::net::TcpListener::from_std(plain)?;
            match tls {
                None => (Listeners { plain, tls: None }, None),
                Some((l, t)) => {
                    let tls_addr = l.local_addr()?;
                    let l = tokio::net::TcpListener::from_std(l)?;
                    let info = TlsInfo {
                        addr: tls_addr,
                        der: t.der,
                        pem: t.pem,
                        sha256: t.sha256,
                    };
                    let listeners = Listeners {
                        plain,
                        tls: Some((l, t.acceptor)),
                    };
                    (listeners, Some(info))
                }
            }
        };
        let (ctl, ctl_rx) = tokio::sync::mpsc::unbounded_channel();
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("routeros-sim".to_owned())
            .spawn(move || rt.block_on(server::serve(thread_shared, listeners, ctl_rx)))?;
        Ok(SimHandle {
            shared,
            addr,
            tls: tls_info,
            ctl,
            thread: Some(thread),
        })
    }
}

struct TlsInfo {
    addr: SocketAddr,
    der: Vec<u8>,
    pem: String,
    sha256: [u8; 32],
}

/// Controls and observes a running simulator. Dropping it stops the
/// server and closes every connection.
pub struct SimHandle {
    shared: Arc<Shared>,
    addr: SocketAddr,
    tls: Option<TlsInfo>,
    ctl: UnboundedSender<Ctl>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn menu(path: &str) -> Option<Menu> {
    Menu::from_path(path.trim_end_matches('/').as_bytes())
}

impl SimHandle {
    /// The plain API address (`api`, normally port 8728).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The API-SSL address when started with `tls`.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls.as_ref().map(|t| t.addr)
    }

    /// The self-signed certificate (DER) to trust or pin.
    pub fn cert_der(&self) -> Option<Vec<u8>> {
        self.tls.as_ref().map(|t| t.der.clone())
    }

    pub fn cert_pem(&self) -> Option<String> {
        self.tls.as_ref().map(|t| t.pem.clone())
    }

    /// SHA-256 of the certificate DER (its fingerprint).
    pub fn cert_sha256(&self) -> Option<[u8; 32]> {
        self.tls.as_ref().map(|t| t.sha256)
    }

    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        let out = f(&mut lock(&self.shared.inner));
        // Whatever the closure did, open `listen` commands look for changes
        // (a diff of a few rows; nothing is sent when nothing changed).
        self.shared.changed(None);
        out
    }

    // ---- table data ----

    /// Adds a hotspot user as `/ip/hotspot/user/add` would (creating the
    /// profile if needed) and returns its `.id`.
    ///
    /// # Panics
    /// If the name is taken: that is a bug in the test's setup.
    pub fn add_hotspot_user(
        &self,
        name: &str,
        password: &str,
        profile: &str,
        comment: &[u8],
    ) -> String {
        self.add_user(false, name, password, profile, comment)
    }

    /// Adds a PPP secret (service `pppoe`), creating the profile if needed.
    ///
    /// # Panics
    /// If the name is taken.
    pub fn add_ppp_secret(
        &self,
        name: &str,
        password: &str,
        profile: &str,
        comment: &[u8],
    ) -> String {
        self.add_user(true, name, password, profile, comment)
    }

    /// Shared by the two `add_*` helpers: hotspot user or PPP secret.
    fn add_user(
        &self,
        ppp: bool,
        name: &str,
        password: &str,
        profile: &str,
        comment: &[u8],
    ) -> String {
        self.with(|i| {
            let r = &mut i.router;
            let table = if ppp { &r.ppp_secrets } else { &r.hs_users };
            assert!(
                table.by_name(name.as_bytes()).is_none(),
                "sim: {name:?} already exists"
            );
            r.ensure_profile(ppp, profile.as_bytes());
            let mut vals = vec![
                ("name", Value::str(name)),
                ("password", Value::str(password)),
                ("profile", Value::str(profile)),
            ];
            if ppp {
                vals.push(("service", Value::str("pppoe")));
            }
            if !comment.is_empty() {
                vals.push(("comment", Value::str(comment)));
            }
            let table = if ppp {
                &mut r.ppp_secrets
            } else {
                &mut r.hs_users
            };
            tables::format_id(table.insert(vals))
        })
    }

    /// Runs `<path>/add` with `props` as the API would (same checks, same
    /// traps), e.g. a profile with an `on-login` script or a
    /// `/system/scheduler` entry. Returns the new `.id` or the trap message.
    pub fn add_item(&self, path: &str, props: &[(&str, &[u8])]) -> Result<String, String> {
        let mut words = vec![format!("{}/add", path.trim_end_matches('/')).into_bytes()];
        for (k, v) in props {
            words.push([b"=", k.as_bytes(), b"=", v].concat());
        }
        let req = commands::Request::parse(&words)?;
        let reply = self.with(|i| commands::execute(&mut i.router, &req));
        commands::ret_or_trap(&reply)
    }

    /// Runs `<path>/set` on the item named `name` with `props`, as the API
    /// would (a hand edit in WinBox, say). Returns the trap message on
    /// failure.
    pub fn set_item(&self, path: &str, name: &str, props: &[(&str, &[u8])]) -> Result<(), String> {
        let path = path.trim_end_matches('/');
        let id = self
            .find(path, name)
            .and_then(|row| row.into_iter().find(|(k, _)| k == b".id").map(|(_, v)| v))
            .ok_or_else(|| format!("no {name:?} in {path}"))?;
        let mut words = vec![
            format!("{path}/set").into_bytes(),
            [b"=.id=", &id[..]].concat(),
        ];
        for (k, v) in props {
            words.push([b"=", k.as_bytes(), b"=", v].concat());
        }
        let req = commands::Request::parse(&words)?;
        let reply = self.with(|i| commands::execute(&mut i.router, &req));
        commands::ret_or_trap(&reply).map(|_| ())
    }

    /// `/system/clock` `time-zone-name` and the offset it gives (seconds
    /// east of UTC, shown as `gmt-offset` `+07:00`); `date` and `time`
    /// then show local time, as on a router.
    pub fn set_time_zone(&self, name: &str, gmt_offset_secs: i32) {
        self.with(|i| {
            i.router.tz_name = name.to_owned();
            i.router.gmt_offset = gmt_offset_secs;
        });
    }

    /// How `/system/clock` prints `gmt-offset` (`+07:00` by default).
    pub fn set_gmt_offset_style(&self, style: GmtOffsetStyle) {
        self.with(|i| i.router.gmt_offset_style = style);
    }

    /// The router's time (UTC, Unix seconds): what its `/system/clock`
    /// shows, minus its `gmt-offset`.
    pub fn clock_unix(&self) -> i64 {
        self.with(|i| i.router.now_unix())
    }

    /// Every item of a menu (`/ip/hotspot/user`, `/ppp/active`,
    /// `/system/resource`, …) as `print` would show it; empty for an
    /// unknown path.
    pub fn rows(&self, path: &str) -> Vec<Row> {
        let Some(m) = menu(path) else {
            return Vec::new();
        };
        self.with(|i| i.router.print(m))
    }

    /// The item whose `name` (or, in the active menus, `user`) is `name`.
    pub fn find(&self, path: &str, name: &str) -> Option<Row> {
        self.rows(path).into_iter().find(|row| {
            row.iter()
                .any(|(k, v)| (k == b"name" || k == b"user") && v == name.as_bytes())
        })
    }

    // ---- scripted activity ----

    /// A hotspot client logs in; returns the `/ip/hotspot/active` `.id`.
    /// Fails for a missing or disabled user, one at its `limit-uptime`, or
    /// one over the profile's `shared-users`.
    pub fn hotspot_login(&self, user: &str, ip: &str, mac: &str) -> Result<String, String> {
        self.with(|i| i.router.hotspot_login(user.as_bytes(), ip, mac))
            .map(tables::format_id)
    }

    /// Logs out every session of `user`, moving their uptime and counters
    /// into the user entry. Returns whether there was one.
    pub fn hotspot_logout(&self, user: &str) -> bool {
        self.with(|i| i.router.hotspot_logout(user.as_bytes()) > 0)
    }

    /// A PPPoE client connects; returns the `/ppp/active` `.id`.
    pub fn ppp_connect(&self, name: &str, ip: &str, caller_id: &str) -> Result<String, String> {
        self.with(|i| i.router.ppp_connect(name.as_bytes(), ip, caller_id))
            .map(tables::format_id)
    }

    /// The client hangs up; the secret records `last-logged-out`,
    /// `last-caller-id` and `last-disconnect-reason=hung-up`.
    pub fn ppp_disconnect(&self, name: &str) -> bool {
        self.with(|i| i.router.ppp_disconnect(name.as_bytes(), "hung-up") > 0)
    }

    /// Adds bytes to the active hotspot session(s) of `user` (packets grow
    /// too). `/ppp/active` has no counters, so PPP names find nothing.
    pub fn add_traffic(&self, user: &str, bytes_in: u64, bytes_out: u64) -> bool {
        self.with(|i| i.router.add_traffic(user.as_bytes(), bytes_in, bytes_out))
    }

    /// Moves the simulated clock (it does not move by itself): uptimes and
    /// counters of active sessions grow, and hotspot sessions that reach
    /// the user's `limit-uptime` end.
    pub fn advance(&self, d: Duration) {
        self.with(|i| i.router.advance(d));
    }

    /// `/ip/hotspot/user/reset-counters` for one user: its cumulative
    /// `uptime`, `bytes-in` and `bytes-out` go back to zero.
    pub fn hotspot_reset_counters(&self, user: &str) -> bool {
        self.with(|i| {
            let Some(row) = i
                .router
                .hs_users
                .rows
                .iter_mut()
                .find(|r| r.bytes("name") == user.as_bytes())
            else {
                return false;
            };
            for c in [
                "uptime",
                "bytes-in",
                "bytes-out",
                "packets-in",
                "packets-out",
            ] {
                row.reset(c);
            }
            true
        })
    }

    // ---- faults ----

    /// While on, sessions that begin are hidden from `print` and `listen`
    /// of the active menus, as from an agent whose router answered too
    /// slowly: one that also ends while hidden is never seen, but its
    /// uptime and bytes still move into the user's cumulative counters.
    /// Turning it off shows the hidden sessions still running.
    pub fn hide_sessions(&self, on: bool) {
        self.with(|i| i.router.set_hide_sessions(on));
    }

    /// Refuse (`!trap` `no such command`) or allow `listen` on a menu
    /// (`/ip/hotspot/active`, `/ppp/active`, …), like a router without
    /// listen support there. Commands already listening keep going.
    pub fn refuse_listen(&self, path: &str, refuse: bool) {
        let Some(m) = menu(path) else { return };
        self.with(|i| {
            i.refuse_listen.retain(|x| *x != m);
            if refuse {
                i.refuse_listen.push(m);
            }
        });
    }

    /// Ends the `listen` commands open on a menu now, the way a router
    /// ends one (`!trap` interrupted, then `!done`); later ones run.
    pub fn end_listens(&self, path: &str) {
        let Some(m) = menu(path) else { return };
        self.with(|i| match i.listen_ends.iter_mut().find(|(x, _)| *x == m) {
            Some((_, n)) => *n += 1,
            None => i.listen_ends.push((m, 1)),
        });
    }

    /// While on, `listen` commands on a menu stay open but send nothing:
    /// a listen silently broken on the router's side. Changes made
    /// meanwhile are never sent, also after it is turned off.
    pub fn mute_listens(&self, path: &str, on: bool) {
        let Some(m) = menu(path) else { return };
        self.with(|i| {
            i.muted_listens.retain(|x| *x != m);
            if on {
                i.muted_listens.push(m);
            }
        });
    }

    /// The next command's reply (after login) is cut halfway and the
    /// connection closed; once.
    pub fn drop_mid_reply_next(&self) {
        self.with(|i| i.drop_next = true);
    }

    /// Closes every API connection, ends all sessions (counters saved into
    /// the user entries), resets the uptime, and refuses connections for
    /// `refuse_for` before listening on the same port(s) again. Returns
    /// once the listeners and connections are closed.
    pub fn reboot(&self, refuse_for: Duration) {
        let (ack, done) = std::sync::mpsc::channel();
        if self.ctl.send(Ctl::Reboot { refuse_for, ack }).is_ok() {
            let _ = done.recv_timeout(Duration::from_secs(5));
        }
        self.shared.stop_all(&ConnCtl::Close);
        self.with(|i| i.router.reboot());
    }

    /// Every reply (login included) waits this long; commands in flight
    /// can be overtaken and cancelled meanwhile.
    pub fn set_reply_delay(&self, d: Duration) {
        self.with(|i| i.reply_delay = d);
    }

    /// Answer every command after login like a broken router (`None`
    /// restores normal answers for new commands).
    pub fn set_misbehave(&self, how: Option<Misbehave>) {
        self.with(|i| i.misbehave = how);
    }

    /// Append these raw bytes to the next logins' replies, in the same write.
    pub fn set_after_login(&self, bytes: Option<Vec<u8>>) {
        self.with(|i| i.after_login = bytes);
    }

    /// Write each reply sentence separately.
    pub fn set_per_sentence(&self, on: bool) {
        self.with(|i| i.per_sentence = on);
    }

    /// Accept TCP but read and answer nothing (a router filtering us).
    pub fn set_silent(&self, silent: bool) {
        self.with(|i| i.silent = silent);
    }

    pub fn set_max_sessions(&self, n: usize) {
        self.with(|i| i.max_sessions = n);
    }

    /// `/system/clock` and dates read 1970 plus uptime (no RTC, no NTP):
    /// the NTP client then reports `waiting`, and `synchronized` again when
    /// switched off.
    pub fn set_clock_1970(&self, on: bool) {
        self.with(|i| {
            i.router.clock_1970 = on;
            i.router.ntp_synced = !on;
        });
    }

    /// `/system/ntp/client` reports `synchronized` (true) or `waiting`.
    pub fn set_ntp_synced(&self, on: bool) {
        self.with(|i| i.router.ntp_synced = on);
    }

    /// Switches the 7.18+ `!empty` reply on or off.
    pub fn set_empty_reply(&self, on: bool) {
        self.with(|i| i.router.empty_reply = on);
    }

    /// Sends `!fatal <reason>` on every connection and closes them; returns
    /// once they are closed.
    pub fn fatal_all(&self, reason: &str) {
        self.shared.stop_all(&ConnCtl::Fatal(reason.to_owned()));
    }

    // ---- observation ----

    /// Command paths received from logged-in sessions, in arrival order
    /// (`/login` excluded), e.g. `/ip/hotspot/user/print`.
    pub fn command_log(&self) -> Vec<String> {
        self.with(|i| i.command_log.clone())
    }

    /// The most commands a session had in flight at once (counted only
    /// while a reply delay is set: without one every reply is immediate).
    pub fn max_in_flight(&self) -> usize {
        self.with(|i| i.max_in_flight)
    }

    pub fn reset_max_in_flight(&self) {
        self.with(|i| i.max_in_flight = 0);
    }

    /// Reply bytes written to logged-in sessions so far (login replies
    /// excluded), and the commands they received (`/login` and `/quit`
    /// excluded): the router's API work.
    pub fn work(&self) -> (u64, u64) {
        self.with(|i| (i.reply_bytes, i.commands))
    }

    pub fn clear_command_log(&self) {
        self.with(|i| i.command_log.clear());
    }

    /// Open API connections (logged in or not).
    pub fn connections(&self) -> usize {
        self.shared.connections()
    }

    /// Successful logins so far.
    pub fn logins(&self) -> usize {
        self.with(|i| i.logins)
    }

    pub(crate) fn router<T>(&self, f: impl FnOnce(&mut Router) -> T) -> T {
        self.with(|i| f(&mut i.router))
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        let _ = self.ctl.send(Ctl::Shutdown);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
