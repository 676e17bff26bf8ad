//! Schema version 2 → 3. Postcard is not self-describing, so old blobs
//! are decoded with the exact shapes that wrote them, kept here, and
//! rewritten:
//!
//! - a voucher row ([`VoucherProgress`]) gained `provisional` and `mac`
//!   (clock trust, MAC lock);
//! - events: `voucher_activated` gained `provisional`, `mac` and
//!   `estimated`, `usage` gained `unseen`; every queued event is
//!   re-encoded from version 2's [`EventV2`];
//! - the `usage` table and the clock ledger's `meta_bytes` key are new
//!   (absent means empty).

use redb::{ReadableTable, WriteTransaction};
use serde::Deserialize;

use super::StoreError;
use super::file::{EVENTS, VOUCHERS, decode, encode};
use crate::monitor::VoucherProgress;

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
            } => EventKind::VoucherActivatedV3 {
                user,
                batch_id,
                valid_hours,
                first_login_at,
                expires_at,
                provisional: false,
                mac: None,
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
            } => EventKind::UserChangedV4 {
                service,
                user,
                action,
                via,
            }
            .upgrade(),
        };
        Event {
            seq: e.seq,
            at: e.at,
            kind,
        }
    }
}

/// Version 2's voucher row.
#[derive(Deserialize)]
struct VoucherProgressV2 {
    activation: Option<(Timestamp, Timestamp)>,
    expired_for: Option<Timestamp>,
    enforced: bool,
    invalid_reported: bool,
}

pub(super) fn migrate_v2_to_v3(txn: &WriteTransaction) -> Result<(), StoreError> {
    let mut vouchers = txn.open_table(VOUCHERS)?;
    let mut rows = Vec::new();
    for row in vouchers.iter()? {
        let (key, blob) = row?;
        let old: VoucherProgressV2 = decode("voucher (v2)", blob.value())?;
        let new = VoucherProgress {
            activation: old.activation,
            expired_for: old.expired_for,
            enforced: old.enforced,
            invalid_reported: old.invalid_reported,
            provisional: None,
            mac: None,
        };
        rows.push((key.value().to_vec(), encode("voucher", &new)?));
    }
    for (key, blob) in rows {
        vouchers.insert(key.as_slice(), blob.as_slice())?;
    }
    let mut events = txn.open_table(EVENTS)?;
    let mut rewritten = Vec::new();
    for row in events.iter()? {
        let (seq, blob) = row?;
        let old: EventV2 = decode("queued event (version 2)", blob.value())?;
        rewritten.push((seq.value(), encode("event", &Event::from(old))?));
    }
    for (seq, blob) in rewritten {
        events.insert(seq, blob.as_slice())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde::Serialize;

    use super::*;
    use crate::store::Store;
    use crate::store::file::{KEY_SCHEMA, META};

    #[derive(Serialize)]
    struct VoucherV2 {
        activation: Option<(Timestamp, Timestamp)>,
        expired_for: Option<Timestamp>,
        enforced: bool,
        invalid_reported: bool,
    }

    #[derive(Serialize)]
    enum TestKindV2 {
        Login,
        Logout,
        Usage,
        VoucherActivated {
            user: Name,
            batch_id: Name,
            valid_hours: u32,
            first_login_at: Timestamp,
            expires_at: Timestamp,
        },
    }

    #[derive(Serialize)]
    struct TestEventV2 {
        seq: u64,
        at: Timestamp,
        kind: TestKindV2,
    }

    #[test]
    fn version_2_rows_and_events_are_migrated() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("state.redb");
        let t = Timestamp::from_unix(1_706_702_400);
        {
            let store = Store::open(&path).expect("open");
            let txn = store.db.begin_write().expect("begin");
            txn.open_table(META)
                .expect("meta")
                .insert(KEY_SCHEMA, 2)
                .expect("schema");
            let old = VoucherV2 {
                activation: Some((t, t.plus_hours(24))),
                expired_for: None,
                enforced: false,
                invalid_reported: true,
            };
            let blob = postcard::to_allocvec(&old).expect("encode");
            txn.open_table(VOUCHERS)
                .expect("vouchers")
                .insert(&b"v1"[..], blob.as_slice())
                .expect("insert");
            let ev = TestEventV2 {
                seq: 1,
                at: t,
                kind: TestKindV2::VoucherActivated {
                    user: "v1".into(),
                    batch_id: "B1".into(),
                    valid_hours: 24,
                    first_login_at: t,
                    expires_at: t.plus_hours(24),
                },
            };
            let blob = postcard::to_allocvec(&ev).expect("encode");
            txn.open_table(EVENTS)
                .expect("events")
                .insert(1, blob.as_slice())
                .expect("insert");
            txn.commit().expect("commit");
            // Variants before VoucherActivated are unused here; they only
            // keep its index.
            let _ = (TestKindV2::Login, TestKindV2::Logout, TestKindV2::Usage);
        }
        let store = Store::open(&path).expect("migrated");
        let state = store.load_state().expect("state");
        let p = &state.vouchers.get(&Name::from("v1")).expect("tracked");
        assert_eq!(p.activation, Some((t, t.plus_hours(24))));
        assert!(p.invalid_reported && p.provisional.is_none() && p.mac.is_none());
        let queued = store.pending_events(0, 10).expect("pending");
        assert!(matches!(
            &queued[0].kind,
            EventKind::VoucherActivatedV3 {
                provisional: false,
                mac: None,
                valid_hours: 24,
                ..
            }
        ));
    }
}
