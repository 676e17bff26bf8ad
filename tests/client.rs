//! The async client against the simulator over real TCP and TLS.

mod common;

use std::time::Duration;

use common::*;
use mikrotik_edge::client::{ClientError, Connection, ConnectionEvent, Item, Router};
use mikrotik_edge::config::TlsConfig;
use mikrotik_edge::proto::Command;
use mikrotik_edge::sim::Misbehave;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn concurrent_commands_share_one_tagged_session() {
    let sim = sim();
    for i in 0..30 {
        sim.add_hotspot_user(&format!("u{i}"), "pw", "voucher-1h", b"");
    }
    rt().block_on(async {
        let conn = Connection::open(&router_config(&sim)).await.unwrap();
        sim.set_reply_delay(Duration::from_millis(30));
        let mut tasks = Vec::new();
        for i in 0..20 {
            let conn = conn.clone();
            tasks.push(tokio::spawn(async move {
                let name = format!("u{i}");
                let r = conn
                    .execute(
                        Command::new("/ip/hotspot/user/print")
                            .query(format!("name={name}"))
                            .proplist(&["name"]),
                    )
                    .await
                    .unwrap();
                assert_eq!(r.rows.len(), 1);
                assert_eq!(r.rows[0].get("name"), Some(name.as_bytes()));
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
    assert_eq!(sim.logins(), 1, "one session for all commands");
}

#[test]
fn legacy_challenge_login() {
    let sim = sim_with(|o| o.legacy_login = true);
    rt().block_on(async {
        let conn = Connection::open(&router_config(&sim)).await.unwrap();
        let r = conn
            .execute(Command::new("/system/identity/print"))
            .await
            .unwrap();
        assert_eq!(r.rows.len(), 1);
    });
}

#[test]
fn wrong_password_is_reported_without_the_password() {
    let sim = sim();
    let mut cfg = router_config(&sim);
    cfg.password = mikrotik_edge::config::Secret::new("wrong-Secret-42");
    let err = rt().block_on(Connection::open(&cfg)).err().unwrap();
    assert!(matches!(err, ClientError::BadCredentials { .. }), "{err:?}");
    let text = format!("{err} {err:?}");
    assert!(text.contains("bad credentials"), "{text}");
    assert!(!text.contains("wrong-Secret-42"), "{text}");
}

#[test]
fn trap_is_an_error_and_the_session_survives() {
    let sim = sim();
    rt().block_on(async {
        let conn = Connection::open(&router_config(&sim)).await.unwrap();
        let err = conn
            .execute(Command::new("/ip/hotspot/user/remove").attr(".id", "*99"))
            .await
            .unwrap_err();
        match &err {
            ClientError::Trap { message, .. } => assert_eq!(message, "no such item"),
            other => panic!("{other:?}"),
        }
        let err = conn
            .execute(Command::new("/no/such/menu/print"))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("no such command"), "{err}");
        let added = conn
            .execute(
                Command::new("/ip/hotspot/user/add")
                    .attr("name", "x")
                    .attr("password", "y")
                    .attr("profile", "default"),
            )
            .await
            .unwrap();
        assert!(added.ret().is_some_and(|r| r.starts_with(b"*")));
    });
}

#[test]
fn non_utf8_comment_round_trips_exactly() {
    let sim = sim();
    let comment: &[u8] = b"VOUCHER_SYSTEM|B\xe91|5000|3000|24|\xff\xfe|";
    rt().block_on(async {
        let conn = Connection::open(&router_config(&sim)).await.unwrap();
        let id = conn
            .execute(
                Command::new("/ip/hotspot/user/add")
                    .attr("name", "v1")
                    .attr("profile", "voucher-1h")
                    .attr("comment", comment),
            )
            .await
            .unwrap()
            .ret()
            .unwrap()
            .to_vec();
        let r = conn
            .execute(
                Command::new("/ip/hotspot/user/print")
                    .query(b"name=v1")
                    .proplist(&[".id", "comment"]),
            )
            .await
            .unwrap();
        assert_eq!(r.rows[0].get(".id"), Some(id.as_slice()));
        assert_eq!(r.rows[0].get("comment"), Some(comment));
    });
}

#[test]
fn empty_reply_of_7_18_is_zero_rows() {
    let sim = sim_with(|o| o.empty_reply = true);
    rt().block_on(async {
        let conn = Connection::open(&router_config(&sim)).await.unwrap();
        let r = conn
            .execute(Command::new("/ppp/active/print"))
            .await
            .unwrap();
        assert!(r.rows.is_empty());
        assert!(r.traps.is_empty());
    });
}

#[test]
fn slow_command_times_out_and_is_cancelled() {
    let sim = sim();
    let mut cfg = router_config(&sim);
    cfg.command_timeout = Duration::from_millis(300);
    rt().block_on(async {
        let conn = Connection::open(&cfg).await.unwrap();
        sim.set_reply_delay(Duration::from_millis(1500));
        let err = conn
            .execute(Command::new("/ip/hotspot/user/print"))
            .await
            .unwrap_err();
        assert!(matches!(err, ClientError::Timeout { .. }), "{err:?}");
        assert!(err.to_string().starts_with("timeout"), "{err}");
        sim.set_reply_delay(Duration::ZERO);
        // The timed-out command is cancelled on the router.
        assert!(wait_async(|| sim.command_log().iter().any(|c| c == "/cancel")).await);
    });
}

async fn wait_async(mut cond: impl FnMut() -> bool) -> bool {
    for _ in 0..(100 * slow_factor()) {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[test]
fn silent_router_gives_a_login_timeout() {
    let sim = sim();
    sim.set_silent(true);
    let mut cfg = router_config(&sim);
    cfg.command_timeout = Duration::from_millis(300);
    let err = rt().block_on(Connection::open(&cfg)).err().unwrap();
    assert!(matches!(err, ClientError::LoginTimeout(_)), "{err:?}");
    assert_eq!(err.kind(), "timeout");
}

#[test]
fn refused_connection_is_reported() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let sim = sim();
    let mut cfg = router_config(&sim);
    cfg.port = port;
    let err = rt().block_on(Connection::open(&cfg)).err().unwrap();
    assert!(err.to_string().contains("connection refused"), "{err}");
    assert_eq!(err.kind(), "refused");
}

#[test]
fn fatal_ends_the_session_with_its_reason() {
    let sim = sim();
    rt().block_on(async {
        let conn = Connection::open(&router_config(&sim)).await.unwrap();
        sim.fatal_all("out of memory");
        let reason = tokio::time::timeout(Duration::from_secs(5), conn.closed())
            .await
            .unwrap();
        assert_eq!(reason, ClientError::Fatal("out of memory".into()));
        let err = conn
            .execute(Command::new("/system/identity/print"))
            .await
            .unwrap_err();
        assert_eq!(err, ClientError::Fatal("out of memory".into()));
    });
}

#[test]
fn keepalive_detects_a_router_that_went_silent() {
    let sim = sim();
    let mut cfg = router_config(&sim);
    cfg.keepalive = Duration::from_millis(200);
    cfg.command_timeout = Duration::from_millis(300);
    rt().block_on(async {
        let conn = Connection::open(&cfg).await.unwrap();
        sim.set_silent(true);
        let reason = tokio::time::timeout(Duration::from_secs(5), conn.closed())
            .await
            .unwrap();
        assert!(matches!(reason, ClientError::Timeout { .. }), "{reason:?}");
    });
}

#[test]
fn router_reconnects_after_reboot_with_backoff() {
    let sim = sim();
    rt().block_on(async {
        let (router, mut events) = Router::start(router_config(&sim));
        assert!(router.wait_connected(Duration::from_secs(5)).await);
        assert_eq!(events.recv().await, Some(ConnectionEvent::Connected));

        sim.reboot(Duration::from_millis(800));
        let ev = tokio::time::timeout(Duration::from_secs(5), events.recv())
            .await
            .unwrap()
            .unwrap();
        assert!(matches!(ev, ConnectionEvent::Disconnected { .. }), "{ev:?}");
        // While the router is down, commands fail at once instead of hanging.
        let started = std::time::Instant::now();
        let err = router
            .execute(Command::new("/system/identity/print"))
            .await
            .unwrap_err();
        assert!(matches!(err, ClientError::NotConnected { .. }), "{err:?}");
        assert!(started.elapsed() < Duration::from_millis(100));
        // Refused at least once, then connected again.
        let mut saw_refused = false;
        loop {
            let ev = tokio::time::timeout(Duration::from_secs(5), events.recv())
                .await
                .unwrap()
                .unwrap();
            match ev {
                ConnectionEvent::Error { kind, .. } => saw_refused |= kind == "refused",
                ConnectionEvent::Connected => break,
                other => panic!("{other:?}"),
            }
        }
        assert!(saw_refused);
        router
            .execute(Command::new("/system/identity/print"))
            .await
            .unwrap();
        router.shutdown();
    });
}

#[test]
fn dropped_mid_reply_is_a_lost_connection_then_reconnect() {
    let sim = sim();
    for i in 0..50 {
        sim.add_hotspot_user(
            &format!("u{i}"),
            "pw",
            "voucher-1h",
            b"VOUCHER_SYSTEM|B|1|1|1",
        );
    }
    rt().block_on(async {
        let (router, mut events) = Router::start(router_config(&sim));
        assert!(router.wait_connected(Duration::from_secs(5)).await);
        assert_eq!(events.recv().await, Some(ConnectionEvent::Connected));
        sim.drop_mid_reply_next();
        let err = router
            .execute(Command::new("/ip/hotspot/user/print"))
            .await
            .unwrap_err();
        assert!(matches!(err, ClientError::ConnectionLost(_)), "{err:?}");
        let ev = events.recv().await.unwrap();
        assert!(matches!(ev, ConnectionEvent::Disconnected { .. }), "{ev:?}");
        assert!(router.wait_connected(Duration::from_secs(5)).await);
        let r = router
            .execute(Command::new("/ip/hotspot/user/print"))
            .await
            .unwrap();
        assert_eq!(r.rows.len(), 50);
        router.shutdown();
    });
}

#[test]
fn max_sessions_reached_is_an_error_not_a_hang() {
    let sim = sim();
    sim.set_max_sessions(0);
    let err = rt()
        .block_on(Connection::open(&router_config(&sim)))
        .err()
        .unwrap();
    assert!(matches!(err, ClientError::ConnectionLost(_)), "{err:?}");
}

fn tls_config(
    sim: &mikrotik_edge::sim::SimHandle,
    tls: TlsConfig,
) -> mikrotik_edge::config::RouterConfig {
    let mut cfg = router_config(sim);
    cfg.port = sim.tls_addr().unwrap().port();
    cfg.tls = Some(tls);
    cfg
}

#[test]
fn tls_with_pinned_fingerprint() {
    let sim = sim_with(|o| o.tls = true);
    let cfg = tls_config(
        &sim,
        TlsConfig {
            cert_sha256: sim.cert_sha256(),
            ca_file: None,
        },
    );
    rt().block_on(async {
        let conn = Connection::open(&cfg).await.unwrap();
        conn.execute(Command::new("/system/identity/print"))
            .await
            .unwrap();
    });
}

#[test]
fn tls_with_wrong_pin_is_a_certificate_error() {
    let sim = sim_with(|o| o.tls = true);
    let cfg = tls_config(
        &sim,
        TlsConfig {
            cert_sha256: Some([0xAB; 32]),
            ca_file: None,
        },
    );
    let err = rt().block_on(Connection::open(&cfg)).err().unwrap();
    assert!(matches!(err, ClientError::Certificate(_)), "{err:?}");
    assert!(
        err.to_string()
            .contains("does not match the pinned fingerprint"),
        "{err}"
    );
}

#[test]
fn tls_with_ca_file() {
    let sim = sim_with(|o| o.tls = true);
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("router.pem");
    std::fs::write(&ca, sim.cert_pem().unwrap()).unwrap();
    let cfg = tls_config(
        &sim,
        TlsConfig {
            ca_file: Some(ca),
            cert_sha256: None,
        },
    );
    rt().block_on(async {
        let conn = Connection::open(&cfg).await.unwrap();
        conn.execute(Command::new("/system/identity/print"))
            .await
            .unwrap();
    });
}

#[test]
fn tls_self_signed_without_trust_is_rejected() {
    let sim = sim_with(|o| o.tls = true);
    let cfg = tls_config(&sim, TlsConfig::default());
    let err = rt().block_on(Connection::open(&cfg)).err().unwrap();
    assert!(matches!(err, ClientError::Certificate(_)), "{err:?}");
    assert!(err.to_string().contains("certificate"), "{err}");
}

#[test]
fn tls_ca_file_with_another_routers_certificate_is_rejected() {
    let sim = sim_with(|o| o.tls = true);
    let other = sim_with(|o| o.tls = true);
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("other.pem");
    std::fs::write(&ca, other.cert_pem().unwrap()).unwrap();
    let cfg = tls_config(
        &sim,
        TlsConfig {
            ca_file: Some(ca),
            cert_sha256: None,
        },
    );
    let err = rt().block_on(Connection::open(&cfg)).err().unwrap();
    assert!(matches!(err, ClientError::Certificate(_)), "{err:?}");
}

#[test]
fn tls_ca_file_that_is_endless_is_a_clear_error() {
    let sim = sim_with(|o| o.tls = true);
    let cfg = tls_config(
        &sim,
        TlsConfig {
            ca_file: Some("/dev/zero".into()),
            cert_sha256: None,
        },
    );
    let err = rt().block_on(Connection::open(&cfg)).err().unwrap();
    // Refused before a byte is read: a CA file must be a regular file.
    assert!(err.to_string().contains("not a regular file"), "{err}");
}

/// Rows stream into a fold; with each sentence in its own TCP segment
/// the result is the same as with whole replies.
#[test]
fn fold_streams_rows_sentence_by_sentence() {
    let sim = sim_with(|o| {
        o.per_sentence = true;
        o.seed.hotspot_users = 500;
    });
    rt().block_on(async {
        let conn = Connection::open(&router_config(&sim)).await.unwrap();
        let folded = conn
            .fold(
                Command::new("/ip/hotspot/user/print").proplist(&["name"]),
                0usize,
                |n, row| {
                    assert!(row.get("name").is_some());
                    *n += 1
                },
            )
            .await
            .unwrap();
        assert_eq!(folded.value, sim.rows("/ip/hotspot/user").len());
        assert!(folded.value >= 500);
        assert!(folded.traps.is_empty());
    });
}

/// A long print read through a bounded stream, every row handed back for
/// reuse as soon as it is read: each row carries exactly its own fields
/// (nothing left over from the row whose buffers it reuses), none is lost,
/// and rows taken with `try_next` count as read (the bound is far below
/// the row count, so miscounting would end the stream with `Behind`).
#[test]
fn streamed_rows_handed_back_carry_nothing_over() {
    let sim = sim_with(|o| {
        o.per_sentence = true;
        o.seed.hotspot_users = 2000;
    });
    // Rows of different lengths, so a reused buffer is sometimes larger.
    sim.add_hotspot_user("short", "pw", "voucher-1h", b"");
    sim.add_hotspot_user(&"long".repeat(40), "pw", "voucher-1h", &[b'x'; 300]);
    rt().block_on(async {
        let conn = Connection::open(&router_config(&sim)).await.unwrap();
        let print = || Command::new("/ip/hotspot/user/print").proplist(&[".id", "name", "comment"]);
        let want: Vec<Vec<(Vec<u8>, Vec<u8>)>> = conn
            .execute(print())
            .await
            .unwrap()
            .rows
            .iter()
            .map(|r| r.iter().map(|(k, v)| (k.to_vec(), v.to_vec())).collect())
            .collect();
        assert!(want.len() > 2000);

        let mut stream = conn.stream_bounded(print(), 500).unwrap();
        let mut got = Vec::new();
        let mut from_try_next = 0;
        loop {
            let item = match stream.try_next() {
                Some(item) => {
                    from_try_next += 1;
                    item
                }
                None => stream.next().await.expect("stream ended without !done"),
            };
            match item.unwrap() {
                Item::Row(row) => {
                    got.push(
                        row.iter()
                            .map(|(k, v)| (k.to_vec(), v.to_vec()))
                            .collect::<Vec<_>>(),
                    );
                    stream.recycle(row);
                }
                Item::Done(_) => break,
                Item::Trap(t) => panic!("trap: {t:?}"),
            }
        }
        assert_eq!(got, want);
        assert!(
            from_try_next > 500,
            "most rows were taken with try_next ({from_try_next})"
        );
    });
}

#[test]
fn trickling_router_costs_the_session() {
    let sim = sim();
    let mut cfg = router_config(&sim);
    cfg.command_timeout = Duration::from_millis(400);
    cfg.keepalive = Duration::from_secs(60);
    rt().block_on(async {
        let conn = Connection::open(&cfg).await.unwrap();
        sim.set_misbehave(Some(Misbehave::Trickle(Duration::from_millis(50))));
        let err = conn
            .execute(Command::new("/ip/hotspot/user/print"))
            .await
            .unwrap_err();
        assert!(matches!(err, ClientError::Timeout { .. }), "{err:?}");
        // The probe sent after the timeout never completes, however many
        // bytes trickle in: the session is declared dead.
        let reason = tokio::time::timeout(
            Duration::from_secs(3 * u64::from(slow_factor())),
            conn.closed(),
        )
        .await
        .expect("a trickling router must not keep the session alive");
        assert!(matches!(reason, ClientError::Timeout { .. }), "{reason:?}");
    });
}

#[test]
fn endless_rows_hit_the_reply_cap_and_cancel() {
    let sim = sim();
    let mut cfg = router_config(&sim);
    cfg.max_reply_bytes = 256 * 1024;
    cfg.command_timeout = Duration::from_secs(10);
    rt().block_on(async {
        let conn = Connection::open(&cfg).await.unwrap();
        sim.set_misbehave(Some(Misbehave::EndlessRows));
        let started = std::time::Instant::now();
        let err = conn
            .fold(Command::new("/ip/hotspot/user/print"), 0u64, |n, _| *n += 1)
            .await
            .unwrap_err();
        assert!(matches!(err, ClientError::ReplyTooLarge { .. }), "{err:?}");
        assert!(err.to_string().contains("262144-byte"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5 * u64::from(slow_factor())));
        assert!(wait_async(|| sim.command_log().iter().any(|c| c == "/cancel")).await);
    });
}

#[test]
fn unterminated_sentence_hits_the_sentence_cap() {
    let sim = sim();
    let mut cfg = router_config(&sim);
    cfg.max_word_bytes = 4096;
    cfg.max_sentence_bytes = 64 * 1024;
    rt().block_on(async {
        let conn = Connection::open(&cfg).await.unwrap();
        sim.set_misbehave(Some(Misbehave::UnterminatedSentence));
        let err = conn
            .execute(Command::new("/ip/hotspot/user/print"))
            .await
            .unwrap_err();
        assert!(matches!(err, ClientError::Protocol(_)), "{err:?}");
        assert!(err.to_string().contains("65536-byte"), "{err}");
        assert!(conn.is_closed());
    });
}

#[test]
fn malformed_bytes_in_the_login_segment_fail_at_once() {
    let sim = sim();
    sim.set_after_login(Some(vec![0xF8]));
    let mut cfg = router_config(&sim);
    cfg.command_timeout = Duration::from_secs(30);
    rt().block_on(async {
        let conn = Connection::open(&cfg).await.unwrap();
        let reason = tokio::time::timeout(
            Duration::from_secs(2 * u64::from(slow_factor())),
            conn.closed(),
        )
        .await
        .expect("decoded at once, not at the next read or a timeout");
        assert!(matches!(reason, ClientError::Protocol(_)), "{reason:?}");
    });
}
