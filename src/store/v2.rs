//! Schema version 2 → 3: clock trust and MAC lock changed two stored
//! shapes (postcard is not self-describing, so old blobs must be decoded
//! with the old shapes, kept here, and rewritten):
//!
//! - a voucher row ([`VoucherProgress`]) gained `provisional` and `mac`;
//! - the `voucher_activated` event gained `provisional` and `mac`. Every
//!   other queued event decodes unchanged (new variants went at the end).
//!
//! The clock ledger is a new `meta_bytes` key: absent means a new ledger.

use redb::{ReadableTable, WriteTransaction};
use serde::Deserialize;

use super::StoreError;
use super::file::{EVENTS, VOUCHERS, decode, encode};
use crate::clock::Timestamp;
use crate::event::{Event, EventKind};
use crate::monitor::VoucherProgress;
use crate::name::Name;

/// Version 2's voucher row.
#[derive(Deserialize)]
struct VoucherProgressV2 {
    activation: Option<(Timestamp, Timestamp)>,
    expired_for: Option<Timestamp>,
    enforced: bool,
    invalid_reported: bool,
}

/// Version 2's `Event` holding a `VoucherActivated`, field by field:
/// postcard writes the variant index as a varint, as it does a `u32`.
#[derive(Deserialize)]
struct ActivatedEventV2 {
    seq: u64,
    at: Timestamp,
    variant: u32,
    user: Name,
    batch_id: Name,
    valid_hours: u32,
    first_login_at: Timestamp,
    expires_at: Timestamp,
}

/// Position of `VoucherActivated` in [`EventKind`] (unchanged since v2).
const ACTIVATED_VARIANT: u32 = 3;

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
        // Only activations changed shape; the rest decode as they are.
        if decode::<Event>("queued event", blob.value()).is_ok() {
            continue;
        }
        let old: ActivatedEventV2 = decode("queued event (v2)", blob.value())?;
        if old.variant != ACTIVATED_VARIANT {
            return Err(StoreError::Corrupt {
                what: "queued event (v2)",
                reason: format!("variant {} does not decode", old.variant),
            });
        }
        let event = Event {
            seq: old.seq,
            at: old.at,
            kind: EventKind::VoucherActivated {
                user: old.user,
                batch_id: old.batch_id,
                valid_hours: old.valid_hours,
                first_login_at: old.first_login_at,
                expires_at: old.expires_at,
                provisional: false,
                mac: None,
            },
        };
        rewritten.push((seq.value(), encode("event", &event)?));
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
    enum KindV2 {
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
    struct EventV2 {
        seq: u64,
        at: Timestamp,
        kind: KindV2,
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
            let ev = EventV2 {
                seq: 1,
                at: t,
                kind: KindV2::VoucherActivated {
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
            let _ = (KindV2::Login, KindV2::Logout, KindV2::Usage);
        }
        let store = Store::open(&path).expect("migrated");
        let state = store.load_state().expect("state");
        let p = &state.vouchers[&Name::from("v1")];
        assert_eq!(p.activation, Some((t, t.plus_hours(24))));
        assert!(p.invalid_reported && p.provisional.is_none() && p.mac.is_none());
        let queued = store.pending_events(0, 10).expect("pending");
        assert!(matches!(
            &queued[0].kind,
            EventKind::VoucherActivated {
                provisional: false,
                mac: None,
                valid_hours: 24,
                ..
            }
        ));
    }
}
