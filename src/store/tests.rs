use std::path::PathBuf;
use std::sync::Arc;

use redb::{ReadableDatabase, TableDefinition};

use super::file::{EVENTS, KEY_SCHEMA, META, SESSIONS};
use super::*;
use crate::clock::Timestamp;
use crate::event::{Event, EventKind, RouterState, Service, SessionRef};
use crate::monitor::{Counters, MonitorState, TrackedSession, VoucherProgress};
use crate::name::{Id, Mac, Name};

fn ts(secs: i64) -> Timestamp {
    Timestamp::from_unix(secs)
}

fn router(reason: &str) -> EventKind {
    EventKind::Router {
        state: RouterState::Connected,
        reason: reason.into(),
    }
}

fn events(n: usize) -> Vec<(Timestamp, EventKind)> {
    (0..n)
        .map(|i| (ts(i as i64), router(&format!("e{i}"))))
        .collect()
}

fn seqs(events: &[Event]) -> Vec<u64> {
    events.iter().map(|e| e.seq).collect()
}

fn session(id: u64, user: &[u8]) -> TrackedSession {
    TrackedSession {
        service: Service::Hotspot,
        user: Name::new(user),
        active_id: Id(id),
        session_id: Name::empty(),
        address: Some("10.5.50.7".parse().unwrap()),
        mac: Mac::parse(b"AA:BB:CC:DD:EE:FF"),
        caller_id: Name::empty(),
        profile: Name::new("voucher-1d"),
        counters: Counters {
            uptime_secs: 3_600,
            bytes_in: Some(1 << 40),
            bytes_out: None,
        },
        last_report: ts(1_700_000_000),
    }
}

fn sample_state() -> MonitorState {
    let mut s = MonitorState::default();
    for (id, user) in [
        (0x1a, &b"v-abc"[..]),
        (0x1b, b"caf\xe9"),
        (0x1c, b"caf\xe8"),
    ] {
        let t = session(id, user);
        s.sessions.insert((t.service, t.active_id), t);
    }
    s.vouchers.insert(
        Name::new("v-abc"),
        VoucherProgress {
            activation: Some((ts(1_700_000_000), ts(1_700_086_400))),
            ..Default::default()
        },
    );
    s.vouchers.insert(
        Name::new(b"caf\xe9"),
        VoucherProgress {
            expired_for: Some(ts(-5)),
            enforced: true,
            ..Default::default()
        },
    );
    // A provisional, MAC-locked activation with its monotonic anchor.
    s.vouchers.insert(
        Name::new("v-1970"),
        VoucherProgress {
            activation: Some((ts(120), ts(86_520))),
            provisional: Some(crate::monitor::Provisional {
                anchor: 600,
                first_login_at: ts(120),
                corrected: false,
            }),
            mac: crate::name::Mac::parse(b"AA:BB:CC:00:00:01"),
            ..Default::default()
        },
    );
    s.clock = crate::monitor::ClockLedger {
        started: true,
        elapsed_secs: 900,
        mono_secs: 1_234,
        trusted_at: Some((ts(1_700_000_000), 300)),
        reported: Some((true, crate::event::ClockSource::RouterNtp, Some(-3))),
    };
    s.flagged_manual
        .insert((Service::Pppoe, Name::new(b"bob\xff")));
    s.router_boot = Some(ts(-86_400));
    s.started = true;
    s
}

fn tmp() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    // A missing subdirectory checks that open() creates it.
    let path = dir.path().join("sub").join("state.redb");
    (dir, path)
}

fn put_raw<K: redb::Key + 'static>(
    store: &Store,
    def: TableDefinition<K, &[u8]>,
    key: K::SelfType<'_>,
    bytes: &[u8],
) {
    let txn = store.db.begin_write().expect("begin");
    txn.open_table(def)
        .expect("table")
        .insert(key, bytes)
        .expect("insert");
    txn.commit().expect("commit");
}

#[test]
fn new_file_has_schema_stream_and_defaults() {
    let (_dir, path) = tmp();
    let store = Store::open(&path).expect("open");
    let txn = store.db.begin_read().expect("read");
    let meta = txn.open_table(META).expect("meta");
    let v = meta.get(KEY_SCHEMA).expect("get").map(|g| g.value());
    assert_eq!(v, Some(u64::from(SCHEMA_VERSION)));
    assert_eq!(SCHEMA_VERSION, 3);
    assert_eq!(store.load_state().expect("state"), MonitorState::default());
    assert_eq!(store.last_seq().expect("seq"), 0);
    assert_eq!(store.queued_events().expect("queued"), 0);
    assert!(store.pending_events(0, 10).expect("pending").is_empty());
    let stream = store.stream();
    assert_ne!(stream.0, [0; 16]);
    drop(txn);
    drop(store);
    // Kept across reopen.
    assert_eq!(Store::open(&path).expect("reopen").stream(), stream);
}

#[test]
fn commit_numbers_events_and_continues() {
    let (_dir, path) = tmp();
    let store = Store::open(&path).expect("open");
    let first = store.commit(&StateDelta::default(), events(3)).expect("c1");
    assert_eq!(seqs(&first), [1, 2, 3]);
    assert_eq!(first[1].kind, router("e1"));
    assert_eq!(first[2].at, ts(2));
    let second = store.append_events(events(2)).expect("c2");
    assert_eq!(seqs(&second), [4, 5]);
    assert_eq!(store.last_seq().expect("seq"), 5);
}

#[test]
fn commit_at_stores_and_numbers_what_commit_would() {
    let (_d, path) = tmp();
    let store = Store::open(&path).expect("open");
    assert_eq!(
        store
            .commit_at(&StateDelta::default(), ts(5), &[])
            .expect("c0"),
        0
    );
    store.commit(&StateDelta::default(), events(2)).expect("c1");
    let kinds: Vec<EventKind> = events(3).into_iter().map(|(_, k)| k).collect();
    let first = store
        .commit_at(&StateDelta::default(), ts(9), &kinds)
        .expect("c2");
    assert_eq!(first, 3);
    let stored = store.pending_events(0, 100).expect("pending");
    assert_eq!(seqs(&stored), [1, 2, 3, 4, 5]);
    let expected: Vec<Event> = kinds
        .into_iter()
        .zip(3..)
        .map(|(kind, seq)| Event {
            seq,
            at: ts(9),
            kind,
        })
        .collect();
    assert_eq!(stored[2..], expected[..]);
    // The borrowed form is the same bytes, so either decodes as the other.
    let e = &expected[0];
    assert_eq!(
        postcard::to_allocvec(&e.as_ref()).unwrap(),
        postcard::to_allocvec(e).unwrap()
    );
}

#[test]
fn state_round_trips_row_by_row_across_reopen() {
    let (_dir, path) = tmp();
    let state = sample_state();
    {
        let store = Store::open(&path).expect("open");
        store
            .commit(&StateDelta::full(&Arc::new(state.clone())), vec![])
            .expect("commit");
    }
    let store = Store::open(&path).expect("reopen");
    let loaded = store.load_state().expect("load");
    assert_eq!(loaded, state);
    // Names that differ only in a non-UTF-8 byte stay two entries.
    assert_eq!(loaded.sessions.len(), 3);
    // Each name is one allocation, as in a running agent: a session's
    // user is its voucher's key, and every session's profile is one.
    let session_of = |id| loaded.sessions.get(&(Service::Hotspot, Id(id))).unwrap();
    let voucher_key = loaded
        .vouchers
        .iter()
        .find(|(k, _)| *k == "v-abc")
        .unwrap()
        .0;
    assert!(session_of(0x1a).user.same_allocation(voucher_key));
    assert!(
        session_of(0x1b)
            .profile
            .same_allocation(&session_of(0x1c).profile)
    );
    assert!(
        !session_of(0x1b)
            .user
            .same_allocation(&session_of(0x1c).user)
    );

    // Remove one session and one voucher, unflag: only those rows change.
    let mut next = state.clone();
    next.sessions.remove(&(Service::Hotspot, Id(0x1b)));
    next.vouchers.remove(&Name::new("v-abc"));
    next.flagged_manual.clear();
    next.router_boot = None;
    next.clock.elapsed_secs += 300;
    let delta = StateDelta::between(&state, &Arc::new(next.clone()));
    assert!(delta.clock);
    assert_eq!(delta.sessions_put, vec![]);
    assert_eq!(delta.sessions_del, vec![(Service::Hotspot, Id(0x1b))]);
    assert_eq!(delta.vouchers_del, vec![Name::new("v-abc")]);
    assert_eq!(delta.router_boot, Some(None));
    store.commit(&delta, vec![]).expect("commit");
    drop(store);
    let store = Store::open(&path).expect("reopen");
    assert_eq!(store.load_state().expect("load"), next);
}

#[test]
fn counters_alone_write_nothing_and_a_quiet_commit_leaves_the_file_untouched() {
    let (_dir, path) = tmp();
    let state = sample_state();
    let store = Store::open(&path).expect("open");
    store
        .commit(&StateDelta::full(&Arc::new(state.clone())), vec![])
        .expect("commit");
    let mut next = state.clone();
    for s in next.sessions.values_mut() {
        s.counters.uptime_secs += 30;
        s.counters.bytes_in = Some(1);
    }
    let delta = StateDelta::between(&state, &Arc::new(next.clone()));
    assert!(delta.is_empty(), "{delta:?}");
    let before = std::fs::read(&path).expect("read");
    assert!(store.commit(&delta, vec![]).expect("commit").is_empty());
    assert_eq!(std::fs::read(&path).expect("read"), before);
    // A usage report moves `last_report`: that session's row is written.
    let key = (Service::Hotspot, Id(0x1a));
    if let Some(s) = next.sessions.get_mut(&key) {
        s.last_report = ts(1_700_000_300);
    }
    let delta = StateDelta::between(&state, &Arc::new(next.clone()));
    assert_eq!(delta.sessions_put.len(), 1);
    assert_eq!(
        delta.sessions().next().map(|s| s.counters.uptime_secs),
        Some(3_630)
    );
}

#[test]
fn ack_deletes_and_seq_is_never_reused_across_reopen() {
    let (_dir, path) = tmp();
    {
        let store = Store::open(&path).expect("open");
        store.append_events(events(4)).expect("append");
        assert_eq!(store.ack_events(3).expect("ack"), 3);
        assert_eq!(seqs(&store.pending_events(0, 10).expect("p")), [4]);
        assert_eq!(store.ack_events(4).expect("ack"), 1);
        assert_eq!(store.queued_events().expect("q"), 0);
    }
    let store = Store::open(&path).expect("reopen");
    assert_eq!(seqs(&store.append_events(events(1)).expect("a")), [5]);
    assert_eq!(
        seqs(&store.pending_events(0, 10).expect("p")),
        [5],
        "acked events stay gone"
    );
    assert_eq!(
        store.oldest_event().expect("oldest").map(|e| e.seq),
        Some(5)
    );
}

#[test]
fn pending_events_pages_in_seq_order() {
    let (_dir, path) = tmp();
    let store = Store::open(&path).expect("open");
    store.append_events(events(7)).expect("append");
    assert_eq!(seqs(&store.pending_events(0, 3).expect("p")), [1, 2, 3]);
    assert_eq!(seqs(&store.pending_events(3, 3).expect("p")), [4, 5, 6]);
    assert_eq!(seqs(&store.pending_events(6, 3).expect("p")), [7]);
    assert!(store.pending_events(7, 3).expect("p").is_empty());
    assert!(store.pending_events(0, 0).expect("p").is_empty());
}

#[test]
fn empty_file_is_initialised_with_a_new_stream() {
    let (_dir, path) = tmp();
    let first = {
        let store = Store::open(&path).expect("open");
        store.append_events(events(3)).expect("append");
        store.stream()
    };
    // An operator's `> state.redb`, or a power cut on a fresh SD card.
    std::fs::write(&path, b"").expect("truncate");
    let store = Store::open(&path).expect("open empty");
    assert_ne!(
        store.stream(),
        first,
        "a lost file must not reuse its stream"
    );
    assert_eq!(store.last_seq().expect("seq"), 0);
    assert!(!store.load_state().expect("state").started);
    assert_eq!(seqs(&store.append_events(events(1)).expect("a")), [1]);
}

/// A file whose creation was cut short (the process killed after redb
/// sized it, or after it wrote the header but before the magic number) is
/// initialised like an empty one; a file with any page past the header, or
/// with a magic number, is never taken for one.
#[test]
fn file_killed_while_being_created_is_initialised_like_an_empty_one() {
    let real = {
        let (_dir, path) = tmp();
        Store::open(&path)
            .expect("open")
            .append_events(events(3))
            .expect("append");
        std::fs::read(&path).expect("read")
    };
    // Sized by redb, nothing written yet; then a header without its magic.
    let mut header_only = vec![0u8; 70 * 1024];
    header_only[9..512].copy_from_slice(&real[9..512]);
    for (what, bytes) in [
        ("zeros", vec![0u8; 70 * 1024]),
        ("short", vec![0u8; 5]),
        ("header without magic", header_only),
    ] {
        let (_dir, path) = tmp();
        std::fs::create_dir_all(path.parent().unwrap()).expect("mkdir");
        std::fs::write(&path, &bytes).expect("write");
        assert!(
            file::never_finished(&path, bytes.len() as u64).unwrap(),
            "{what}"
        );
        let store = Store::open(&path).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(store.last_seq().expect("seq"), 0, "{what}");
        assert_eq!(
            seqs(&store.append_events(events(1)).expect("a")),
            [1],
            "{what}"
        );
        drop(store);
        assert!(Store::open(&path).is_ok(), "{what}: reopen");
    }
    // Committed pages behind a damaged magic number: refused, not wiped.
    let (_dir, path) = tmp();
    std::fs::create_dir_all(path.parent().unwrap()).expect("mkdir");
    let mut damaged = real.clone();
    damaged[..9].fill(0);
    std::fs::write(&path, &damaged).expect("write");
    assert!(!file::never_finished(&path, damaged.len() as u64).unwrap());
    assert!(Store::open(&path).is_err());
    assert_eq!(
        std::fs::read(&path).expect("read"),
        damaged,
        "left as it was"
    );
    // Not redb's at all (an operator's wrong path): left alone.
    std::fs::write(&path, b"[router]\nhost = \"10.0.0.1\"\n").expect("write");
    assert!(Store::open(&path).is_err());
    assert_eq!(
        std::fs::read(&path).expect("read"),
        b"[router]\nhost = \"10.0.0.1\"\n"
    );
}

#[test]
fn newer_schema_is_refused_and_older_is_not_misread() {
    for (version, newer) in [(SCHEMA_VERSION + 1, true), (1, false)] {
        let (_dir, path) = tmp();
        {
            let store = Store::open(&path).expect("open");
            let txn = store.db.begin_write().expect("begin");
            txn.open_table(META)
                .expect("meta")
                .insert(KEY_SCHEMA, u64::from(version))
                .expect("insert");
            txn.commit().expect("commit");
        }
        let err = Store::open(&path).expect_err("must refuse");
        if newer {
            assert!(matches!(err, StoreError::SchemaTooNew { found, .. } if found == version));
        } else {
            assert!(matches!(err, StoreError::Migrate { from: 1, .. }), "{err}");
            assert!(err.to_string().contains("move the file aside"), "{err}");
        }
    }
}

#[test]
fn corrupt_rows_are_errors_not_panics() {
    let (_dir, path) = tmp();
    let store = Store::open(&path).expect("open");
    put_raw(&store, SESSIONS, &[0u8; 9][..], b"\xff\xff\xff");
    let err = store.load_state().expect_err("corrupt");
    assert!(
        matches!(
            err,
            StoreError::Corrupt {
                what: "session",
                ..
            }
        ),
        "{err}"
    );
    put_raw(&store, EVENTS, 1, b"\x05");
    let err = store.pending_events(0, 10).expect_err("corrupt");
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    assert!(!err.is_disk_full());
}

#[test]
fn second_open_reports_file_in_use() {
    let (_dir, path) = tmp();
    let _store = Store::open(&path).expect("open");
    let err = Store::open(&path).expect_err("in use");
    assert!(matches!(err, StoreError::InUse { .. }), "{err}");
    assert!(err.to_string().contains("in use by another process"));
}

#[test]
fn not_a_redb_file_is_an_open_error_keeping_its_cause() {
    let (_dir, path) = tmp();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, b"this is not a database, just some text").unwrap();
    let err = Store::open(&path).expect_err("not redb");
    assert!(matches!(err, StoreError::Open { .. }), "{err}");
    assert!(std::error::Error::source(&err).is_some());
    assert!(err.to_string().contains(&path.display().to_string()));
}

#[test]
fn disk_full_is_told_apart() {
    let full = StoreError::Storage(redb::StorageError::Io(std::io::Error::from_raw_os_error(
        28,
    )));
    assert!(full.is_disk_full());
    assert!(full.to_string().contains("disk full"), "{full}");
    let other = StoreError::Storage(redb::StorageError::Io(std::io::Error::other("x")));
    assert!(!other.is_disk_full());
}

#[test]
fn store_thread_serves_commits_in_order() {
    let (_dir, path) = tmp();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (handle, thread, state) = StoreHandle::open(&path, "test").await.expect("open");
        assert_eq!(state, MonitorState::default());
        let next = sample_state();
        let a = handle
            .commit(StateDelta::full(&Arc::new(next.clone())), events(2))
            .await
            .expect("commit");
        // What the agent goes back to when a commit fails after its step
        // updated the state in place.
        assert_eq!(handle.load_state().await.expect("load"), next);
        let b = handle.append(events(1)).await.expect("append");
        assert_eq!((a.first_seq, a.count, b.first_seq, b.count), (1, 2, 3, 1));
        let stats = handle.stats().await.expect("stats");
        assert_eq!((stats.pending, stats.last_seq), (3, 3));
        assert_eq!(stats.oldest_at, Some(ts(0)));
        assert_eq!(seqs(&handle.pending(1, 10).await.expect("p")), [2, 3]);
        assert_eq!(handle.ack(2).await.expect("ack"), 2);
        let stream = handle.stream();
        drop(handle);
        thread.join().await;
        // The thread released the file: it opens again, state intact.
        let store = Store::open(&path).expect("reopen");
        assert_eq!(store.stream(), stream);
        assert_eq!(store.load_state().expect("load"), next);
        assert_eq!(store.queued_events().expect("q"), 1);
    });
}

#[test]
fn store_thread_reports_open_errors() {
    let (_dir, path) = tmp();
    let _held = Store::open(&path).expect("open");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let err = rt
        .block_on(StoreHandle::open(&path, "test"))
        .err()
        .expect("in use");
    assert!(matches!(err, StoreError::InUse { .. }), "{err}");
}

fn usage(id: u64, bytes: u64) -> EventKind {
    EventKind::Usage {
        session: crate::event::SessionRef {
            service: Service::Hotspot,
            user: Name::new(format!("u{id}")),
            active_id: Id(id),
            session_id: Name::empty(),
        },
        bytes_in: Some(bytes),
        bytes_out: Some(bytes),
        uptime_secs: bytes,
        unseen: false,
    }
}

#[test]
fn ack_records_acked_through_and_keeps_the_byte_count() {
    let (_dir, path) = tmp();
    let store = Store::open(&path).unwrap();
    assert_eq!(store.acked_through().unwrap(), 0);
    assert_eq!(store.outbox_bytes().unwrap(), 0);
    store.append_events(events(10)).unwrap();
    let full = store.outbox_bytes().unwrap();
    assert!(full > 0);
    assert_eq!(store.ack_events(4).unwrap(), 4);
    assert_eq!(store.acked_through().unwrap(), 4);
    let after = store.outbox_bytes().unwrap();
    assert!(after < full && after > 0);
    // Never backwards.
    assert_eq!(store.ack_events(2).unwrap(), 0);
    assert_eq!(store.acked_through().unwrap(), 4);
    assert_eq!(store.ack_events(10).unwrap(), 6);
    assert_eq!(store.outbox_bytes().unwrap(), 0);
    drop(store);
    let store = Store::open(&path).unwrap();
    assert_eq!(store.acked_through().unwrap(), 10);
}

#[test]
fn over_the_cap_usage_is_compacted_first() {
    let (_dir, path) = tmp();
    let store = Store::open(&path).unwrap();
    // Two sessions, 20 usage events each, and a few others.
    let mut evs = events(3);
    for i in 0..20 {
        evs.push((ts(100 + i), usage(1, i as u64)));
        evs.push((ts(100 + i), usage(2, i as u64)));
    }
    store.append_events(evs).unwrap();
    let bytes = store.outbox_bytes().unwrap();
    assert!(store.enforce_outbox_cap(bytes, 0).unwrap().is_none());
    let report = store.enforce_outbox_cap(bytes - 1, 0).unwrap().unwrap();
    assert_eq!(report.compacted, 38);
    assert!(report.dropped.is_none(), "{report:?}");
    let left = store.pending_events(0, 100).unwrap();
    // The three others and the newest usage of each session.
    assert_eq!(seqs(&left), [1, 2, 3, 42, 43]);
    assert_eq!(store.outbox_bytes().unwrap(), report.bytes_after);
}

#[test]
fn still_over_the_cap_the_oldest_are_dropped_and_recorded() {
    let (_dir, path) = tmp();
    let store = Store::open(&path).unwrap();
    store.append_events(events(100)).unwrap();
    let bytes = store.outbox_bytes().unwrap();
    // Protect the first 5 (maybe sent already).
    let report = store.enforce_outbox_cap(bytes / 2, 5).unwrap().unwrap();
    let dropped = report.dropped.clone().expect("dropped event");
    let EventKind::Dropped {
        from_seq,
        to_seq,
        count,
    } = dropped.kind
    else {
        panic!("{dropped:?}")
    };
    assert_eq!(from_seq, 6);
    assert_eq!(count, to_seq - 5);
    assert_eq!(dropped.seq, 101);
    let left = seqs(&store.pending_events(0, 1000).unwrap());
    assert_eq!(&left[..5], [1, 2, 3, 4, 5]);
    assert_eq!(left[5], to_seq + 1);
    assert_eq!(*left.last().unwrap(), 101);
    assert!(report.bytes_after <= bytes / 2, "{report:?}");
    let real: u64 = {
        let txn = store.db.begin_read().unwrap();
        let t = txn.open_table(EVENTS).unwrap();
        redb::ReadableTable::iter(&t)
            .unwrap()
            .map(|r| r.unwrap().1.value().len() as u64)
            .sum()
    };
    assert_eq!(real, store.outbox_bytes().unwrap());
}

fn alert(name: &str) -> EventKind {
    EventKind::Alert {
        name: name.into(),
        message: "m".into(),
    }
}

/// With a cap set, every commit keeps the outbox under it (plus at most
/// the event just appended), alerts survive every drop, and one `dropped`
/// record covers the whole outage.
#[test]
fn the_cap_holds_at_every_commit_and_spares_alerts() {
    let (_dir, path) = tmp();
    let store = Store::open(&path).unwrap();
    let cap = 4_000;
    store.set_outbox_cap(cap, 0);
    let mut largest = 0u64;
    for i in 0..300u64 {
        let kind = match i {
            10 => alert("outbox_full"),
            150 => EventKind::Quarantined {
                seqs: vec![3],
                reason: "r".into(),
            },
            _ => router(&format!("event number {i}")),
        };
        let committed = store.commit(&StateDelta::default(), vec![(ts(i as i64), kind)]);
        let e = committed.unwrap();
        largest = largest.max(e[0].as_ref().to_json("s", store.stream()).to_string().len() as u64);
        let bytes = store.outbox_bytes().unwrap();
        assert!(bytes <= cap + 64, "commit {i}: outbox at {bytes} bytes");
    }
    let left = store.pending_events(0, 10_000).unwrap();
    let kinds: Vec<&str> = left.iter().map(|e| e.kind.name()).collect();
    assert!(
        left.iter()
            .any(|e| matches!(&e.kind, EventKind::Alert { name, .. } if name == "outbox_full")),
        "{kinds:?}"
    );
    assert!(kinds.contains(&"event_quarantined"), "{kinds:?}");
    let dropped: Vec<_> = left
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::Dropped {
                from_seq,
                to_seq,
                count,
            } => Some((from_seq, to_seq, count)),
            _ => None,
        })
        .collect();
    assert_eq!(dropped.len(), 1, "one record per outage: {kinds:?}");
    let (from, to, count) = dropped[0];
    assert_eq!(from, 1);
    // Everything not left (and not a folded record) is counted.
    let routers_left = left.iter().filter(|e| e.kind.name() == "router").count() as u64;
    assert!(
        to < 302 && count + routers_left == 298,
        "{dropped:?}, {routers_left} left"
    );
    let report = store.take_cap_report().expect("report");
    assert!(report.dropped.is_some());
    assert!(store.take_cap_report().is_none());
}

/// Two deltas in a row make one: each key written or deleted as the later
/// state has it.
#[test]
fn deltas_merge_by_the_later_state() {
    let mut a = MonitorState::default();
    a.sessions
        .insert((Service::Hotspot, Id(1)), session(1, b"u1"));
    let a = Arc::new(a);
    let d1 = StateDelta::between(&MonitorState::default(), &a);
    let mut b = (*a).clone();
    b.sessions.remove(&(Service::Hotspot, Id(1)));
    b.sessions
        .insert((Service::Hotspot, Id(2)), session(2, b"u2"));
    b.started = true;
    let b = Arc::new(b);
    let d2 = StateDelta::between(&a, &b);
    let merged = d1.then(d2);
    assert_eq!(merged.sessions_put, [(Service::Hotspot, Id(2))]);
    assert_eq!(merged.sessions_del, [(Service::Hotspot, Id(1))]);
    assert_eq!(merged.started, Some(true));
    let (_dir, path) = tmp();
    let store = Store::open(&path).unwrap();
    store.commit(&merged, Vec::new()).unwrap();
    let loaded = store.load_state().unwrap();
    assert_eq!(loaded.sessions.len(), 1);
    assert!(loaded.started);
}

/// A version 2 file: its queued `usage` and `voucher_activated` events come
/// back with `unseen`/`estimated` false, the others unchanged, and the
/// new `usage` table is there.
#[test]
fn version_2_events_are_migrated() {
    use super::v2::{EventV2, KindV2};
    let (_dir, path) = tmp();
    let sref = SessionRef {
        service: Service::Hotspot,
        user: "v".into(),
        active_id: Id(1),
        session_id: Name::empty(),
    };
    let at = Timestamp::from_unix(1_700_000_000);
    let old = [
        KindV2::Usage {
            session: sref.clone(),
            bytes_in: Some(1),
            bytes_out: Some(2),
            uptime_secs: 3,
        },
        KindV2::VoucherActivated {
            user: "v".into(),
            batch_id: "B".into(),
            valid_hours: 24,
            first_login_at: at,
            expires_at: at.plus_hours(24),
        },
        KindV2::Router {
            state: RouterState::Connected,
            reason: String::new(),
        },
    ];
    {
        let store = Store::open(&path).expect("open");
        let txn = store.db.begin_write().expect("begin");
        {
            let mut meta = txn.open_table(META).expect("meta");
            meta.insert(KEY_SCHEMA, 2).expect("schema");
            meta.insert("last_seq", 3).expect("seq");
            let mut events = txn.open_table(EVENTS).expect("events");
            for (i, kind) in old.into_iter().enumerate() {
                let seq = i as u64 + 1;
                let blob = postcard::to_allocvec(&EventV2 { seq, at, kind }).expect("encode");
                events.insert(seq, blob.as_slice()).expect("insert");
            }
        }
        txn.delete_table(TableDefinition::<&[u8], &[u8]>::new("usage"))
            .expect("drop usage");
        txn.commit().expect("commit");
    }
    let store = Store::open(&path).expect("migrated");
    let kinds: Vec<EventKind> = store
        .pending_events(0, 10)
        .expect("pending")
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds,
        vec![
            EventKind::Usage {
                session: sref,
                bytes_in: Some(1),
                bytes_out: Some(2),
                uptime_secs: 3,
                unseen: false,
            },
            // Kept in schema 3's shape; rendered as today's (`upgrade`).
            EventKind::VoucherActivatedV3 {
                user: "v".into(),
                batch_id: "B".into(),
                valid_hours: 24,
                first_login_at: at,
                expires_at: at.plus_hours(24),
                provisional: false,
                mac: None,
                estimated: false,
            },
            EventKind::Router {
                state: RouterState::Connected,
                reason: String::new(),
            },
        ]
    );
    assert!(store.load_state().expect("state").usage.is_empty());
}
