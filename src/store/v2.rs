//! Schema version 2's event shape, kept only to migrate old outboxes:
//! postcard is not self-describing, so a blob is decoded with the exact
//! type that wrote it. Version 3 added `unseen` to `usage` and `estimated`
//! to `voucher_activated`; every other variant is unchanged.

use serde::Deserialize;

use crate::clock::Timestamp;
use crate::event::{
    Event, EventKind, ExpiredAction, LogoutReason, RouterState, Service, SessionRef,
};
use crate::name::{Mac, Name};

#[derive(Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
pub(super) struct EventV2 {
    pub(super) seq: u64,
    pub(super) at: Timestamp,
    pub(super) kind: KindV2,
}

/// Variant order matters (postcard numbers variants by position).
#[derive(Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
pub(super) enum KindV2 {
    Login {
        session: SessionRef,
        address: Option<std::net::IpAddr>,
        mac: Option<Mac>,
        caller_id: Name,
        login_by: Name,
        profile: Name,
        seen_at_start: bool,
    },
    Logout {
        session: SessionRef,
        reason: LogoutReason,
        bytes_in: Option<u64>,
        bytes_out: Option<u64>,
        uptime_secs: u64,
    },
    Usage {
        session: SessionRef,
        bytes_in: Option<u64>,
        bytes_out: Option<u64>,
        uptime_secs: u64,
    },
    VoucherActivated {
        user: Name,
        batch_id: Name,
        valid_hours: u32,
        first_login_at: Timestamp,
        expires_at: Timestamp,
    },
    VoucherExpired {
        user: Name,
        batch_id: Name,
        expires_at: Timestamp,
        action: ExpiredAction,
    },
    VoucherInvalid {
        user: Name,
        reason: String,
        comment: Name,
    },
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
    Alert {
        name: String,
        message: String,
    },
    Dropped {
        from_seq: u64,
        to_seq: u64,
        count: u64,
    },
    UserChanged {
        service: Service,
        user: Name,
        action: String,
        via: String,
    },
}

impl From<EventV2> for Event {
    fn from(e: EventV2) -> Event {
        use KindV2 as K;
        let kind = match e.kind {
            K::Login {
                session,
                address,
                mac,
                caller_id,
                login_by,
                profile,
                seen_at_start,
            } => EventKind::Login {
                session,
                address,
                mac,
                caller_id,
                login_by,
                profile,
                seen_at_start,
            },
            K::Logout {
                session,
                reason,
                bytes_in,
                bytes_out,
                uptime_secs,
            } => EventKind::Logout {
                session,
                reason,
                bytes_in,
                bytes_out,
                uptime_secs,
            },
            K::Usage {
                session,
                bytes_in,
                bytes_out,
                uptime_secs,
            } => EventKind::Usage {
                session,
                bytes_in,
                bytes_out,
                uptime_secs,
                unseen: false,
            },
            K::VoucherActivated {
                user,
                batch_id,
                valid_hours,
                first_login_at,
                expires_at,
            } => EventKind::VoucherActivated {
                user,
                batch_id,
                valid_hours,
                first_login_at,
                expires_at,
                estimated: false,
            },
            K::VoucherExpired {
                user,
                batch_id,
                expires_at,
                action,
            } => EventKind::VoucherExpired {
                user,
                batch_id,
                expires_at,
                action,
            },
            K::VoucherInvalid {
                user,
                reason,
                comment,
            } => EventKind::VoucherInvalid {
                user,
                reason,
                comment,
            },
            K::ManualUser {
                service,
                user,
                profile,
                comment,
            } => EventKind::ManualUser {
                service,
                user,
                profile,
                comment,
            },
            K::Router { state, reason } => EventKind::Router { state, reason },
            K::Alert { name, message } => EventKind::Alert { name, message },
            K::Dropped {
                from_seq,
                to_seq,
                count,
            } => EventKind::Dropped {
                from_seq,
                to_seq,
                count,
            },
            K::UserChanged {
                service,
                user,
                action,
                via,
            } => EventKind::UserChanged {
                service,
                user,
                action,
                via,
            },
        };
        Event {
            seq: e.seq,
            at: e.at,
            kind,
        }
    }
}
