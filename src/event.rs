//! Events: what the agent saw happen, queued durably for upload.
//!
//! Every event gets a per-site sequence number when it is committed to the
//! state file (see [`crate::store`]), so the central API can de-duplicate a
//! batch that was uploaded twice, and a timestamp from the agent's clock.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::clock::Timestamp;
use crate::name::{Id, Mac, Name};
use crate::password::Password;
use crate::valid_hours::ValidHours;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Service {
    Hotspot,
    Pppoe,
}

impl Service {
    pub fn as_str(self) -> &'static str {
        match self {
            Service::Hotspot => "hotspot",
            Service::Pppoe => "pppoe",
        }
    }
}

/// Why a session ended, as far as the agent can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LogoutReason {
    /// Gone from the active list between two polls.
    Gone,
    /// The same user has a new session (new `.id`, new session id, or the
    /// uptime went backwards): the old one ended.
    Relogin,
    /// The router's uptime went backwards: it rebooted and every session
    /// it had ended with it.
    RouterReboot,
    /// Kicked by the agent (voucher expired).
    Kicked,
}

impl LogoutReason {
    pub fn as_str(self) -> &'static str {
        match self {
            LogoutReason::Gone => "gone",
            LogoutReason::Relogin => "relogin",
            LogoutReason::RouterReboot => "router_reboot",
            LogoutReason::Kicked => "kicked",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExpiredAction {
    Disable,
    Remove,
}

impl ExpiredAction {
    pub fn as_str(self) -> &'static str {
        match self {
            ExpiredAction::Disable => "disable",
            ExpiredAction::Remove => "remove",
        }
    }
}

/// What happened to a user or secret changed at the agent's request
/// (`user_changed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum UserAction {
    Created,
    Deleted,
    Disabled,
    Enabled,
}

/// Who asked the agent for a change: the local user API (`http`),
/// reconciliation (`sync`) or `create-batch` (`batch`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Via {
    Http,
    Sync,
    Batch,
}

/// What happened to a subscription's PPP secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SubscriptionAction {
    Suspended,
    Restored,
    Created,
}

/// How a suspension is applied to a PPP secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SuspendMode {
    /// Disable the secret (and kick its session).
    Disable,
    /// Move it to the isolation profile (and kick its session), so the
    /// customer reaches a payment-notice page.
    Isolir,
}

/// `as_str` and `parse` (its inverse) for a closed set of words, and
/// comparison with its word.
macro_rules! words {
    ($ty:ident { $($v:ident => $w:literal),* $(,)? }) => {
        impl $ty {
            pub fn as_str(self) -> &'static str {
                match self {
                    $($ty::$v => $w,)*
                }
            }

            /// The word as [`Self::as_str`] spells it; `None` for others.
            pub fn parse(s: &str) -> Option<$ty> {
                match s {
                    $($w => Some($ty::$v),)*
                    _ => None,
                }
            }
        }

        impl PartialEq<str> for $ty {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }
    };
}

words!(UserAction {
    Created => "created",
    Deleted => "deleted",
    Disabled => "disabled",
    Enabled => "enabled",
});
words!(Via {
    Http => "http",
    Sync => "sync",
    Batch => "batch",
});
words!(SubscriptionAction {
    Suspended => "suspended",
    Restored => "restored",
    Created => "created",
});
words!(SuspendMode {
    Disable => "disable",
    Isolir => "isolir",
});

/// Where the agent's trusted time comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ClockSource {
    /// The kernel says its clock is NTP-synchronised (`adjtimex`).
    Kernel,
    /// The router's NTP client is synchronised; its `/system/clock` is used.
    RouterNtp,
    /// The `Date` header of the central server.
    Central,
    /// Nothing trustworthy: the wall clock is a guess.
    None,
}

impl ClockSource {
    pub fn as_str(self) -> &'static str {
        match self {
            ClockSource::Kernel => "kernel",
            ClockSource::RouterNtp => "router_ntp",
            ClockSource::Central => "central",
            ClockSource::None => "none",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RouterState {
    Connected,
    Disconnected,
    Error,
}

impl RouterState {
    pub fn as_str(self) -> &'static str {
        match self {
            RouterState::Connected => "connected",
            RouterState::Disconnected => "disconnected",
            RouterState::Error => "error",
        }
    }
}

/// Identifies one session on the router: the `.id` of its active entry,
/// plus the PPP `session-id` where there is one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRef {
    pub service: Service,
    pub user: Name,
    pub active_id: Id,
    pub session_id: Name,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventKind {
    Login {
        session: SessionRef,
        address: Option<IpAddr>,
        /// Hotspot: the client MAC. PPPoE: `None` (see `caller_id`).
        mac: Option<Mac>,
        /// PPPoE: the caller-id (usually the client MAC). Hotspot: empty.
        caller_id: Name,
        /// Hotspot `login-by` (cookie, http-chap, mac, ...); PPP: the service.
        login_by: Name,
        profile: Name,
        /// The session was already online when this state file started (a
        /// new install, or a lost state file): the central side merges it
        /// with a session it may already have open instead of opening a
        /// second one.
        seen_at_start: bool,
    },
    Logout {
        session: SessionRef,
        reason: LogoutReason,
        /// Final counters, as last seen. PPPoE active entries carry no byte
        /// counters in RouterOS, so these are `None` there.
        bytes_in: Option<u64>,
        bytes_out: Option<u64>,
        uptime_secs: u64,
    },
    /// Interim update for a long session, like a RADIUS interim update.
    Usage {
        session: SessionRef,
        bytes_in: Option<u64>,
        bytes_out: Option<u64>,
        uptime_secs: u64,
        /// Usage of sessions the agent never saw (they began and ended
        /// between two looks at the router): the growth of the hotspot
        /// user's cumulative counters beyond what seen sessions account
        /// for. `session.active_id` is then `*0` and the counters are the
        /// difference.
        unseen: bool,
    },
    /// Schema 3's `voucher_activated` (whole hours, no comment): decoded
    /// from old state files only, never emitted (see [`EventKind::upgrade`]).
    #[doc(hidden)]
    VoucherActivatedV3 {
        user: Name,
        batch_id: Name,
        valid_hours: u32,
        first_login_at: Timestamp,
        expires_at: Timestamp,
        provisional: bool,
        mac: Option<Mac>,
        estimated: bool,
    },
    VoucherExpired {
        user: Name,
        batch_id: Name,
        expires_at: Timestamp,
        action: ExpiredAction,
    },
    /// A voucher whose comment the agent cannot trust (a hand-edited,
    /// unparsable `first_login_at`): left alone, reported once.
    VoucherInvalid {
        user: Name,
        reason: String,
        comment: Name,
    },
    /// A user with a comment but no `_SYSTEM` marker: made by hand or by
    /// another tool. Reported once per user.
    ManualUser {
        service: Service,
        user: Name,
        profile: Name,
        comment: Name,
    },
    Router {
        state: RouterState,
        reason: String,
    },
    /// Something an operator should be told about (the design's WhatsApp
    /// alerts): `name` is stable (`mikrotik_connection_failed`, ...).
    Alert {
        name: String,
        message: String,
    },
    /// The outbox overflowed and these events were dropped unsent.
    Dropped {
        from_seq: u64,
        to_seq: u64,
        count: u64,
    },
    /// Schema 4's `user_changed` (words as strings): old state files only
    /// (see [`EventKind::upgrade`]). Postcard numbers variants by position,
    /// so old shapes keep theirs and new ones go at the end.
    #[doc(hidden)]
    UserChangedV4 {
        service: Service,
        user: Name,
        action: String,
        via: String,
    },
    /// Schema 3's `voucher_corrected`: old state files only.
    #[doc(hidden)]
    VoucherCorrectedV3 {
        user: Name,
        batch_id: Name,
        valid_hours: u32,
        first_login_at: Timestamp,
        expires_at: Timestamp,
        provisional_first_login_at: Timestamp,
    },
    /// The agent's trust in its clock changed (or its skew moved).
    Clock {
        trusted: bool,
        source: ClockSource,
        /// Agent wall clock minus the reference clock, when there is one.
        skew_secs: Option<i64>,
    },
    /// A hotspot user profile or PPP profile matching the managed pattern,
    /// new or changed since last reported (reconciliation).
    Profile {
        service: Service,
        name: Name,
        rate_limit: Name,
        session_timeout: Name,
        /// Hotspot `shared-users`; `None` for PPP profiles.
        shared_users: Option<Name>,
    },
    /// Schema 3's `user_adopted` (no password): old state files only.
    #[doc(hidden)]
    UserAdoptedV3 {
        service: Service,
        user: Name,
        profile: Name,
        comment: Name,
        batch_id: Name,
        valid_hours: Option<u32>,
        first_login_at: Option<Timestamp>,
        expires_at: Option<Timestamp>,
    },
    /// Schema 4's `subscription` (words as strings): old state files only.
    #[doc(hidden)]
    SubscriptionV4 {
        user: Name,
        action: String,
        mode: String,
        profile: Name,
    },
    /// Schema 3's `user_created` (no password, comment): old state files only.
    #[doc(hidden)]
    UserCreatedV3 {
        service: Service,
        user: Name,
        profile: Name,
        via: String,
    },
    /// A desired user the router refused to create (duplicate name,
    /// unknown profile); reported once per distinct reason.
    CreateFailed {
        service: Service,
        user: Name,
        profile: Name,
        reason: String,
    },
    // Variants from here on are new in schema 4 (postcard numbers variants
    // by position: new ones go at the end, old state files still decode).
    VoucherActivated {
        user: Name,
        batch_id: Name,
        valid_hours: ValidHours,
        first_login_at: Timestamp,
        expires_at: Timestamp,
        /// Stamped on a wall clock the agent did not trust: `first_login_at`
        /// is its best estimate, and a `voucher_corrected` follows once a
        /// trusted time arrives.
        provisional: bool,
        /// The MAC the voucher was locked to (MAC lock), if any.
        mac: Option<Mac>,
        /// The first login was not seen: `first_login_at` is estimated
        /// (now minus the user's cumulative uptime).
        estimated: bool,
        /// The comment as written with the activation stamps, so the
        /// central side can recreate the voucher with the same term.
        comment: Name,
    },
    /// A provisional activation re-stamped on a trusted clock:
    /// `first_login_at` = trusted now minus the monotonic time elapsed
    /// since the activation. Replaces the provisional times.
    VoucherCorrected {
        user: Name,
        batch_id: Name,
        valid_hours: ValidHours,
        first_login_at: Timestamp,
        expires_at: Timestamp,
        /// The provisional `first_login_at` this replaces.
        provisional_first_login_at: Timestamp,
        /// The comment as rewritten.
        comment: Name,
    },
    /// A router user with our `_SYSTEM` comment the desired state lacks:
    /// left in place and reported once so the central side takes it over,
    /// with what it needs to recreate it.
    UserAdopted {
        service: Service,
        user: Name,
        profile: Name,
        comment: Name,
        batch_id: Name,
        valid_hours: Option<ValidHours>,
        first_login_at: Option<Timestamp>,
        expires_at: Option<Timestamp>,
        /// Known when the API user's group has the `sensitive` policy.
        password: Password,
        disabled: bool,
    },
    /// Schema 4's `user_created` (`via` as a string): old state files only.
    #[doc(hidden)]
    UserCreatedV4 {
        service: Service,
        user: Name,
        profile: Name,
        comment: Name,
        password: Password,
        via: String,
        disabled: bool,
    },
    /// A desired user missing on the router that the agent will not
    /// recreate (its password is unknown centrally): reported once.
    RecreateBlocked {
        service: Service,
        user: Name,
        reason: String,
    },
    /// Queued events the central side refused as malformed, moved out of
    /// the outbox into the state file's quarantine (`mikrotik-edge
    /// quarantine list|resend`) so the queue behind them moves on.
    Quarantined {
        seqs: Vec<u64>,
        /// The central side's refusal, as it answered.
        reason: String,
    },
    // Variants from here on are new in schema 5: closed sets as enums.
    /// A user or secret changed on the router at the agent's request.
    UserChanged {
        service: Service,
        user: Name,
        action: UserAction,
        /// Who asked: `http` (the local endpoint).
        via: Via,
    },
    /// A subscription's PPP secret was suspended, restored or created.
    Subscription {
        user: Name,
        action: SubscriptionAction,
        /// How suspensions are applied (suspensions and restores).
        mode: SuspendMode,
        profile: Name,
    },
    /// A user created on the router by the agent: by reconciliation
    /// (`sync`), the local user API (`http`) or `create-batch` (`batch`).
    UserCreated {
        service: Service,
        user: Name,
        profile: Name,
        comment: Name,
        password: Password,
        via: Via,
        /// A PPP secret created suspended.
        disabled: bool,
    },
}

impl EventKind {
    /// A schema 3 event in today's shape (the same facts; what schema 3
    /// did not record is empty). Others unchanged.
    pub fn upgrade(self) -> EventKind {
        match self {
            EventKind::VoucherActivatedV3 {
                user,
                batch_id,
                valid_hours,
                first_login_at,
                expires_at,
                provisional,
                mac,
                estimated,
            } => EventKind::VoucherActivated {
                user,
                batch_id,
                valid_hours: ValidHours::from_hours(valid_hours),
                first_login_at,
                expires_at,
                provisional,
                mac,
                estimated,
                comment: Name::default(),
            },
            EventKind::VoucherCorrectedV3 {
                user,
                batch_id,
                valid_hours,
                first_login_at,
                expires_at,
                provisional_first_login_at,
            } => EventKind::VoucherCorrected {
                user,
                batch_id,
                valid_hours: ValidHours::from_hours(valid_hours),
                first_login_at,
                expires_at,
                provisional_first_login_at,
                comment: Name::default(),
            },
            EventKind::UserAdoptedV3 {
                service,
                user,
                profile,
                comment,
                batch_id,
                valid_hours,
                first_login_at,
                expires_at,
            } => EventKind::UserAdopted {
                service,
                user,
                profile,
                comment,
                batch_id,
                valid_hours: valid_hours.map(ValidHours::from_hours),
                first_login_at,
                expires_at,
                password: Password::default(),
                disabled: false,
            },
            EventKind::UserCreatedV3 {
                service,
                user,
                profile,
                via,
            } => EventKind::UserCreatedV4 {
                service,
                user,
                profile,
                comment: Name::default(),
                password: Password::default(),
                via,
                disabled: false,
            }
            .upgrade(),
            // Schema 4's words, parsed once. A word the agent never wrote
            // (none is known) keeps the old shape, which renders the same.
            EventKind::UserChangedV4 {
                service,
                user,
                action,
                via,
            } => match (UserAction::parse(&action), Via::parse(&via)) {
                (Some(action), Some(via)) => EventKind::UserChanged {
                    service,
                    user,
                    action,
                    via,
                },
                _ => EventKind::UserChangedV4 {
                    service,
                    user,
                    action,
                    via,
                },
            },
            EventKind::SubscriptionV4 {
                user,
                action,
                mode,
                profile,
            } => match (
                SubscriptionAction::parse(&action),
                SuspendMode::parse(&mode),
            ) {
                (Some(action), Some(mode)) => EventKind::Subscription {
                    user,
                    action,
                    mode,
                    profile,
                },
                _ => EventKind::SubscriptionV4 {
                    user,
                    action,
                    mode,
                    profile,
                },
            },
            EventKind::UserCreatedV4 {
                service,
                user,
                profile,
                comment,
                password,
                via,
                disabled,
            } => match Via::parse(&via) {
                Some(via) => EventKind::UserCreated {
                    service,
                    user,
                    profile,
                    comment,
                    password,
                    via,
                    disabled,
                },
                None => EventKind::UserCreatedV4 {
                    service,
                    user,
                    profile,
                    comment,
                    password,
                    via,
                    disabled,
                },
            },
            other => other,
        }
    }

    /// Events that explain a gap or a fault to the central side: never
    /// compacted, dropped or quarantined, so the reason for a gap arrives.
    pub fn is_alert(&self) -> bool {
        matches!(
            self,
            EventKind::Alert { .. } | EventKind::Dropped { .. } | EventKind::Quarantined { .. }
        )
    }

    /// The stable name used in JSON and in the README.
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::Login { .. } => "login",
            EventKind::Logout { .. } => "logout",
            EventKind::Usage { .. } => "usage",
            EventKind::VoucherActivated { .. } | EventKind::VoucherActivatedV3 { .. } => {
                "voucher_activated"
            }
            EventKind::VoucherExpired { .. } => "voucher_expired",
            EventKind::VoucherInvalid { .. } => "voucher_invalid",
            EventKind::ManualUser { .. } => "manual_user",
            EventKind::Router { .. } => "router",
            EventKind::Alert { .. } => "alert",
            EventKind::Dropped { .. } => "dropped",
            EventKind::UserChanged { .. } | EventKind::UserChangedV4 { .. } => "user_changed",
            EventKind::VoucherCorrected { .. } | EventKind::VoucherCorrectedV3 { .. } => {
                "voucher_corrected"
            }
            EventKind::Clock { .. } => "clock",
            EventKind::Profile { .. } => "profile",
            EventKind::UserAdopted { .. } | EventKind::UserAdoptedV3 { .. } => "user_adopted",
            EventKind::Subscription { .. } | EventKind::SubscriptionV4 { .. } => "subscription",
            EventKind::UserCreated { .. }
            | EventKind::UserCreatedV3 { .. }
            | EventKind::UserCreatedV4 { .. } => "user_created",
            EventKind::RecreateBlocked { .. } => "recreate_blocked",
            EventKind::CreateFailed { .. } => "create_failed",
            EventKind::Quarantined { .. } => "event_quarantined",
        }
    }
}

/// The random id of one state file, carried in every event: a lost or
/// recreated state file starts a new stream, so `(site, stream, seq)` is
/// never reused.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StreamId(pub [u8; 16]);

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// An event as committed: numbered and timestamped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub seq: u64,
    pub at: Timestamp,
    pub kind: EventKind,
}

/// An event being committed, its kind borrowed: encodes to the same bytes
/// as [`Event`] (same fields, same order), so a commit need not hold its
/// events twice (a first cycle at a busy site has thousands).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct EventRef<'a> {
    pub seq: u64,
    pub at: Timestamp,
    pub kind: &'a EventKind,
}

type JsonMap = serde_json::Map<String, Value>;

impl Event {
    pub fn as_ref(&self) -> EventRef<'_> {
        EventRef {
            seq: self.seq,
            at: self.at,
            kind: &self.kind,
        }
    }

    /// See [`EventRef::to_json`].
    pub fn to_json(&self, site: &str, stream: StreamId) -> Value {
        self.as_ref().to_json(site, stream)
    }

    /// See [`EventRef::to_log_json`].
    pub fn to_log_json(&self, site: &str, stream: StreamId) -> Value {
        self.as_ref().to_log_json(site, stream)
    }
}

impl EventRef<'_> {
    /// [`EventRef::to_json`] for a log line: passwords masked.
    pub fn to_log_json(&self, site: &str, stream: StreamId) -> Value {
        mask_passwords(self.to_json(site, stream))
    }

    /// The flat JSON form used by logs, the CLI and the upload API:
    /// `{"stream":"…","seq":1,"at":"…","site":"…","type":"login",…fields}`.
    /// Router text fields carry `X_b64` beside `X` when not UTF-8.
    pub fn to_json(&self, site: &str, stream: StreamId) -> Value {
        let mut m = JsonMap::new();
        m.insert("stream".into(), stream.to_string().into());
        m.insert("seq".into(), self.seq.into());
        m.insert("at".into(), self.at.to_rfc3339().into());
        m.insert("site".into(), site.into());
        m.insert("type".into(), self.kind.name().into());
        let put = |m: &mut JsonMap, k: &str, v: Value| {
            m.insert(k.to_owned(), v);
        };
        let upgraded;
        let kind = match self.kind {
            EventKind::VoucherActivatedV3 { .. }
            | EventKind::VoucherCorrectedV3 { .. }
            | EventKind::UserAdoptedV3 { .. }
            | EventKind::UserCreatedV3 { .. }
            | EventKind::UserChangedV4 { .. }
            | EventKind::SubscriptionV4 { .. }
            | EventKind::UserCreatedV4 { .. } => {
                upgraded = self.kind.clone().upgrade();
                &upgraded
            }
            k => k,
        };
        match kind {
            EventKind::VoucherActivatedV3 { .. }
            | EventKind::VoucherCorrectedV3 { .. }
            | EventKind::UserAdoptedV3 { .. }
            | EventKind::UserCreatedV3 { .. } => {}
            // Words no enum knows (none is): rendered as stored.
            EventKind::UserChangedV4 {
                service,
                user,
                action,
                via,
            } => {
                put(&mut m, "service", service.as_str().into());
                user.json_into(&mut m, "user");
                put(&mut m, "action", action.as_str().into());
                put(&mut m, "via", via.as_str().into());
            }
            EventKind::SubscriptionV4 {
                user,
                action,
                mode,
                profile,
            } => {
                put(&mut m, "service", "pppoe".into());
                user.json_into(&mut m, "user");
                put(&mut m, "action", action.as_str().into());
                put(&mut m, "mode", mode.as_str().into());
                profile.json_into(&mut m, "profile");
            }
            EventKind::UserCreatedV4 {
                service,
                user,
                profile,
                comment,
                password,
                via,
                disabled,
            } => {
                put(&mut m, "service", service.as_str().into());
                user.json_into(&mut m, "user");
                profile.json_into(&mut m, "profile");
                comment.json_into(&mut m, "comment");
                password_json(&mut m, password);
                put(&mut m, "via", via.as_str().into());
                put(&mut m, "disabled", (*disabled).into());
            }
            EventKind::Login {
                session,
                address,
                mac,
                caller_id,
                login_by,
                profile,
                seen_at_start,
            } => {
                session_json(&mut m, session);
                put(&mut m, "address", opt_text(address));
                put(&mut m, "mac", opt_text(mac));
                caller_id.json_into(&mut m, "caller_id");
                login_by.json_into(&mut m, "login_by");
                profile.json_into(&mut m, "profile");
                put(&mut m, "seen_at_start", (*seen_at_start).into());
            }
            EventKind::Logout {
                session,
                reason,
                bytes_in,
                bytes_out,
                uptime_secs,
            } => {
                session_json(&mut m, session);
                put(&mut m, "reason", reason.as_str().into());
                put(&mut m, "bytes_in", (*bytes_in).into());
                put(&mut m, "bytes_out", (*bytes_out).into());
                put(&mut m, "uptime_secs", (*uptime_secs).into());
            }
            EventKind::Usage {
                session,
                bytes_in,
                bytes_out,
                uptime_secs,
                unseen,
            } => {
                session_json(&mut m, session);
                put(&mut m, "bytes_in", (*bytes_in).into());
                put(&mut m, "bytes_out", (*bytes_out).into());
                put(&mut m, "uptime_secs", (*uptime_secs).into());
                put(&mut m, "unseen", (*unseen).into());
            }
            EventKind::VoucherActivated {
                user,
                batch_id,
                valid_hours,
                first_login_at,
                expires_at,
                provisional,
                mac,
                estimated,
                comment,
            } => {
                put(&mut m, "service", "hotspot".into());
                user.json_into(&mut m, "user");
                batch_id.json_into(&mut m, "batch_id");
                put(&mut m, "valid_hours", valid_hours.to_json());
                comment.json_into(&mut m, "comment");
                put(&mut m, "first_login_at", first_login_at.to_rfc3339().into());
                put(&mut m, "expires_at", expires_at.to_rfc3339().into());
                put(&mut m, "provisional", (*provisional).into());
                put(&mut m, "mac", opt_text(mac));
                put(&mut m, "estimated", (*estimated).into());
            }
            EventKind::VoucherCorrected {
                user,
                batch_id,
                valid_hours,
                first_login_at,
                expires_at,
                provisional_first_login_at,
                comment,
            } => {
                put(&mut m, "service", "hotspot".into());
                user.json_into(&mut m, "user");
                batch_id.json_into(&mut m, "batch_id");
                put(&mut m, "valid_hours", valid_hours.to_json());
                comment.json_into(&mut m, "comment");
                put(&mut m, "first_login_at", first_login_at.to_rfc3339().into());
                put(&mut m, "expires_at", expires_at.to_rfc3339().into());
                put(
                    &mut m,
                    "provisional_first_login_at",
                    provisional_first_login_at.to_rfc3339().into(),
                );
            }
            EventKind::Clock {
                trusted,
                source,
                skew_secs,
            } => {
                put(&mut m, "trusted", (*trusted).into());
                put(&mut m, "source", source.as_str().into());
                put(&mut m, "skew_secs", (*skew_secs).into());
            }
            EventKind::VoucherExpired {
                user,
                batch_id,
                expires_at,
                action,
            } => {
                put(&mut m, "service", "hotspot".into());
                user.json_into(&mut m, "user");
                batch_id.json_into(&mut m, "batch_id");
                put(&mut m, "expires_at", expires_at.to_rfc3339().into());
                put(&mut m, "action", action.as_str().into());
            }
            EventKind::VoucherInvalid {
                user,
                reason,
                comment,
            } => {
                put(&mut m, "service", "hotspot".into());
                user.json_into(&mut m, "user");
                put(&mut m, "reason", reason.as_str().into());
                comment.json_into(&mut m, "comment");
            }
            EventKind::ManualUser {
                service,
                user,
                profile,
                comment,
            } => {
                put(&mut m, "service", service.as_str().into());
                user.json_into(&mut m, "user");
                profile.json_into(&mut m, "profile");
                comment.json_into(&mut m, "comment");
            }
            EventKind::Router { state, reason } => {
                put(&mut m, "state", state.as_str().into());
                put(&mut m, "reason", reason.as_str().into());
            }
            EventKind::Alert { name, message } => {
                put(&mut m, "name", name.as_str().into());
                put(&mut m, "message", message.as_str().into());
            }
            EventKind::Dropped {
                from_seq,
                to_seq,
                count,
            } => {
                put(&mut m, "from_seq", (*from_seq).into());
                put(&mut m, "to_seq", (*to_seq).into());
                put(&mut m, "count", (*count).into());
            }
            EventKind::UserChanged {
                service,
                user,
                action,
                via,
            } => {
                put(&mut m, "service", service.as_str().into());
                user.json_into(&mut m, "user");
                put(&mut m, "action", action.as_str().into());
                put(&mut m, "via", via.as_str().into());
            }
            EventKind::Profile {
                service,
                name,
                rate_limit,
                session_timeout,
                shared_users,
            } => {
                put(&mut m, "service", service.as_str().into());
                name.json_into(&mut m, "name");
                rate_limit.json_into(&mut m, "rate_limit");
                session_timeout.json_into(&mut m, "session_timeout");
                match shared_users {
                    Some(n) => n.json_into(&mut m, "shared_users"),
                    None => put(&mut m, "shared_users", Value::Null),
                }
            }
            EventKind::UserAdopted {
                service,
                user,
                profile,
                comment,
                batch_id,
                valid_hours,
                first_login_at,
                expires_at,
                password,
                disabled,
            } => {
                put(&mut m, "service", service.as_str().into());
                user.json_into(&mut m, "user");
                profile.json_into(&mut m, "profile");
                comment.json_into(&mut m, "comment");
                batch_id.json_into(&mut m, "batch_id");
                put(
                    &mut m,
                    "valid_hours",
                    valid_hours.map_or(Value::Null, ValidHours::to_json),
                );
                put(&mut m, "first_login_at", opt_time(first_login_at));
                put(&mut m, "expires_at", opt_time(expires_at));
                password_json(&mut m, password);
                put(&mut m, "disabled", (*disabled).into());
            }
            EventKind::Subscription {
                user,
                action,
                mode,
                profile,
            } => {
                put(&mut m, "service", "pppoe".into());
                user.json_into(&mut m, "user");
                put(&mut m, "action", action.as_str().into());
                put(&mut m, "mode", mode.as_str().into());
                profile.json_into(&mut m, "profile");
            }
            EventKind::UserCreated {
                service,
                user,
                profile,
                comment,
                password,
                via,
                disabled,
            } => {
                put(&mut m, "service", service.as_str().into());
                user.json_into(&mut m, "user");
                profile.json_into(&mut m, "profile");
                comment.json_into(&mut m, "comment");
                password_json(&mut m, password);
                put(&mut m, "via", via.as_str().into());
                put(&mut m, "disabled", (*disabled).into());
            }
            EventKind::RecreateBlocked {
                service,
                user,
                reason,
            } => {
                put(&mut m, "service", service.as_str().into());
                user.json_into(&mut m, "user");
                put(&mut m, "reason", reason.as_str().into());
            }
            EventKind::CreateFailed {
                service,
                user,
                profile,
                reason,
            } => {
                put(&mut m, "service", service.as_str().into());
                user.json_into(&mut m, "user");
                profile.json_into(&mut m, "profile");
                put(&mut m, "reason", reason.as_str().into());
            }
            EventKind::Quarantined { seqs, reason } => {
                put(&mut m, "seqs", seqs.clone().into());
                put(&mut m, "count", seqs.len().into());
                put(&mut m, "reason", reason.as_str().into());
            }
        }
        nul_free(&mut m);
        Value::Object(m)
    }
}

/// `password` (and `password_b64` for bytes that are not UTF-8), or null.
fn password_json(m: &mut JsonMap, p: &Password) {
    match &p.0 {
        Some(p) => p.json_into(m, "password"),
        None => {
            m.insert("password".into(), Value::Null);
        }
    }
}

/// Replaces every password in an event's JSON by `***`: log lines carry
/// the event, never its password.
pub fn mask_passwords(mut v: Value) -> Value {
    if let Value::Object(m) = &mut v {
        for key in ["password", "password_b64"] {
            if let Some(p) = m.get_mut(key)
                && !p.is_null()
            {
                *p = "***".into();
            }
        }
    }
    v
}

/// PostgreSQL cannot store U+0000 in `text` or `jsonb`, and RouterOS
/// passes it through (a comment, a trap message): a text field holding it
/// becomes lossy (U+FFFD) with the exact bytes in `X_b64`, like non-UTF-8
/// text. Names already did this in [`Name::json_into`]; this covers the
/// plain `String` fields.
fn nul_free(m: &mut JsonMap) {
    // Keys are this file's names; only values can hold NUL.
    if !m
        .values()
        .any(|v| v.as_str().is_some_and(|s| s.as_bytes().contains(&0)))
    {
        return;
    }
    let dirty: Vec<String> = m
        .iter()
        .filter(|(k, v)| k.contains('\0') || v.as_str().is_some_and(|s| s.contains('\0')))
        .map(|(k, _)| k.clone())
        .collect();
    for key in dirty {
        let Some(value) = m.remove(&key) else {
            continue;
        };
        let key = key.replace('\0', "\u{fffd}");
        if let Value::String(s) = &value {
            if !m.contains_key(&format!("{key}_b64")) {
                m.insert(
                    format!("{key}_b64"),
                    crate::encoding::base64(s.as_bytes()).into(),
                );
            }
            m.insert(key, s.replace('\0', "\u{fffd}").into());
        } else {
            m.insert(key, value);
        }
    }
}

fn opt_text<T: fmt::Display>(v: &Option<T>) -> Value {
    v.as_ref().map_or(Value::Null, |v| v.to_string().into())
}

fn opt_time(t: &Option<Timestamp>) -> Value {
    t.map_or(Value::Null, |t| t.to_rfc3339().into())
}

fn session_json(m: &mut JsonMap, s: &SessionRef) {
    m.insert("service".into(), s.service.as_str().into());
    s.user.json_into(m, "user");
    m.insert("active_id".into(), s.active_id.to_string().into());
    s.session_id.json_into(m, "session_id");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Schema 4 stored `user_changed`, `subscription` and `user_created`
    /// with their words as strings, at positions 10, 15 and 21 of the
    /// enum (postcard numbers variants by position). Those positions keep
    /// the old shapes (`…V4`), so an event encoded before decodes, and it
    /// renders the same JSON as the new shape with the same facts.
    #[test]
    fn schema_4_word_events_decode_and_render_as_the_enum_ones() {
        let user = Name::new(b"u1");
        let cases = [
            (
                10,
                EventKind::UserChangedV4 {
                    service: Service::Pppoe,
                    user: user.clone(),
                    action: "disabled".into(),
                    via: "http".into(),
                },
                EventKind::UserChanged {
                    service: Service::Pppoe,
                    user: user.clone(),
                    action: UserAction::Disabled,
                    via: Via::Http,
                },
            ),
            (
                15,
                EventKind::SubscriptionV4 {
                    user: user.clone(),
                    action: "suspended".into(),
                    mode: "isolir".into(),
                    profile: Name::new(b"isolir"),
                },
                EventKind::Subscription {
                    user: user.clone(),
                    action: SubscriptionAction::Suspended,
                    mode: SuspendMode::Isolir,
                    profile: Name::new(b"isolir"),
                },
            ),
            (
                21,
                EventKind::UserCreatedV4 {
                    service: Service::Hotspot,
                    user: user.clone(),
                    profile: Name::new(b"1h"),
                    comment: Name::new(b"c"),
                    password: Password(Some(Name::new(b"pw"))),
                    via: "batch".into(),
                    disabled: false,
                },
                EventKind::UserCreated {
                    service: Service::Hotspot,
                    user: user.clone(),
                    profile: Name::new(b"1h"),
                    comment: Name::new(b"c"),
                    password: Password(Some(Name::new(b"pw"))),
                    via: Via::Batch,
                    disabled: false,
                },
            ),
        ];
        let stream = StreamId([7; 16]);
        for (position, old, new) in cases {
            let event = |kind| Event {
                seq: 3,
                at: Timestamp::from_unix(1_700_000_000),
                kind,
            };
            let bytes = postcard::to_stdvec(&event(old.clone())).unwrap();
            let kind_bytes = postcard::to_stdvec(&old).unwrap();
            assert_eq!(kind_bytes[0], position, "{old:?}");
            let back: Event = postcard::from_bytes(&bytes).unwrap();
            assert_eq!(back.kind, old);
            assert_eq!(back.kind.clone().upgrade(), new);
            let json = back.to_json("site", stream);
            assert_eq!(json, event(new.clone()).to_json("site", stream));
            assert_eq!(
                json["via"].as_str().is_some(),
                !matches!(new, EventKind::Subscription { .. })
            );
            // The new shapes sit after every old one.
            assert!(postcard::to_stdvec(&new).unwrap()[0] > 23, "{new:?}");
        }
        // A word no enum knows keeps the old shape and renders as stored.
        let odd = EventKind::UserChangedV4 {
            service: Service::Hotspot,
            user,
            action: "renamed".into(),
            via: "ssh".into(),
        };
        assert_eq!(odd.clone().upgrade(), odd);
        let json = Event {
            seq: 1,
            at: Timestamp::from_unix(0),
            kind: odd,
        }
        .to_json("site", stream);
        assert_eq!(
            (json["action"].as_str(), json["via"].as_str()),
            (Some("renamed"), Some("ssh"))
        );
        assert_eq!(json["type"], "user_changed");
    }

    #[test]
    fn nul_in_plain_text_fields_becomes_lossy_plus_b64() {
        let e = Event {
            seq: 1,
            at: Timestamp::from_unix(1_700_000_000),
            kind: EventKind::Router {
                state: RouterState::Error,
                reason: "trap: a\0b".into(),
            },
        };
        let v = e.to_json("site-a", StreamId([1; 16]));
        assert_eq!(v["reason"], "trap: a\u{fffd}b");
        assert_eq!(v["reason_b64"], crate::encoding::base64(b"trap: a\0b"));
        assert!(!v.to_string().contains("\\u0000"), "{v}");
    }

    #[test]
    fn quarantined_names_its_seqs() {
        let e = Event {
            seq: 9,
            at: Timestamp::from_unix(1_700_000_000),
            kind: EventKind::Quarantined {
                seqs: vec![4, 7],
                reason: "HTTP 400: bad".into(),
            },
        };
        let v = e.to_json("site-a", StreamId([1; 16]));
        assert_eq!(v["type"], "event_quarantined");
        assert_eq!(v["seqs"], serde_json::json!([4, 7]));
        assert_eq!(v["count"], 2);
        assert!(e.kind.is_alert());
    }
}
