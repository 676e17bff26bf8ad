//! The simulator over real sockets, driven with the crate's own codec the
//! way a client would.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use md5::{Digest, Md5};
use mikrotik_edge::encoding::{hex, unhex};
use mikrotik_edge::proto::{Decoder, Reply, ReplyKind, encode_sentence};
use mikrotik_edge::sim::{SeedData, SimHandle, SimOptions, Simulator};

const TIMEOUT: Duration = Duration::from_secs(5);

struct Client<S: Read + Write> {
    s: S,
    dec: Decoder,
}

fn connect(addr: SocketAddr) -> Client<TcpStream> {
    let s = match TcpStream::connect(addr) {
        Ok(s) => s,
        Err(e) => panic!("connect {addr}: {e}"),
    };
    s.set_read_timeout(Some(TIMEOUT)).ok();
    Client {
        s,
        dec: Decoder::default(),
    }
}

impl<S: Read + Write> Client<S> {
    fn send(&mut self, words: &[&str]) {
        let mut out = Vec::new();
        encode_sentence(words, &mut out).ok();
        self.send_raw(&out);
    }

    fn send_raw(&mut self, bytes: &[u8]) {
        if let Err(e) = self.s.write_all(bytes).and_then(|()| self.s.flush()) {
            panic!("write: {e}");
        }
    }

    /// The next reply sentence; `Err` on EOF, reset or timeout.
    fn try_recv(&mut self) -> io::Result<Reply> {
        let mut buf = [0u8; 4096];
        loop {
            match self.dec.next_sentence() {
                Ok(Some(s)) => return Reply::parse(s).map_err(io::Error::other),
                Ok(None) => {}
                Err(e) => return Err(io::Error::other(e)),
            }
            let n = self.s.read(&mut buf)?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            self.dec.feed(&buf[..n]);
        }
    }

    fn recv(&mut self) -> Reply {
        match self.try_recv() {
            Ok(r) => r,
            Err(e) => panic!("recv: {e}"),
        }
    }

    /// Sends a command and collects replies up to `!done` (or `!fatal`).
    fn call(&mut self, words: &[&str]) -> Vec<Reply> {
        self.send(words);
        let mut replies = Vec::new();
        loop {
            let r = self.recv();
            let last = matches!(r.kind, ReplyKind::Done | ReplyKind::Fatal);
            replies.push(r);
            if last {
                return replies;
            }
        }
    }

    fn login(&mut self, user: &str, password: &str) {
        let r = self.call(&[
            "/login",
            &format!("=name={user}"),
            &format!("=password={password}"),
        ]);
        assert_eq!(kinds(&r), [ReplyKind::Done], "{r:?}");
    }

    /// True when the server closed the connection (EOF or reset).
    fn closed(&mut self) -> bool {
        loop {
            match self.try_recv() {
                Ok(_) => continue,
                Err(e) => {
                    return matches!(
                        e.kind(),
                        io::ErrorKind::UnexpectedEof
                            | io::ErrorKind::ConnectionReset
                            | io::ErrorKind::ConnectionAborted
                    );
                }
            }
        }
    }
}

fn kinds(replies: &[Reply]) -> Vec<ReplyKind> {
    replies.iter().map(|r| r.kind).collect()
}

fn text(v: Option<&[u8]>) -> String {
    String::from_utf8_lossy(v.unwrap_or(b"<none>")).into_owned()
}

fn start(opts: SimOptions) -> SimHandle {
    match Simulator::start(opts) {
        Ok(s) => s,
        Err(e) => panic!("start: {e}"),
    }
}

fn logged_in(sim: &SimHandle) -> Client<TcpStream> {
    let mut c = connect(sim.addr());
    c.login("admin", "secret");
    c
}

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + TIMEOUT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn plain_login_and_print() {
    let sim = start(SimOptions::default());
    let mut c = connect(sim.addr());
    c.login("admin", "secret");
    assert_eq!(sim.logins(), 1);
    let r = c.call(&["/system/resource/print"]);
    assert_eq!(kinds(&r), [ReplyKind::Re, ReplyKind::Done]);
    assert_eq!(text(r[0].attrs.get("version")), "7.16.2 (stable)");
    assert_eq!(text(r[0].attrs.get("uptime")), "0s");
    let r = c.call(&["/system/identity/print"]);
    assert_eq!(text(r[0].attrs.get("name")), "MikroTik");
    assert_eq!(sim.connections(), 1);
    assert_eq!(
        sim.command_log(),
        ["/system/resource/print", "/system/identity/print"]
    );
    sim.clear_command_log();
    assert!(sim.command_log().is_empty());
}

#[test]
fn wrong_password_traps_then_done_and_stays_open() {
    let sim = start(SimOptions::default());
    let mut c = connect(sim.addr());
    let r = c.call(&["/login", "=name=admin", "=password=nope"]);
    assert_eq!(kinds(&r), [ReplyKind::Trap, ReplyKind::Done]);
    assert_eq!(text(r[0].message()), "invalid user name or password (6)");
    assert_eq!(sim.logins(), 0);
    c.login("admin", "secret");
    assert_eq!(sim.logins(), 1);
}

#[test]
fn command_before_login_is_fatal() {
    let sim = start(SimOptions::default());
    let mut c = connect(sim.addr());
    let r = c.call(&["/ip/hotspot/user/print"]);
    assert_eq!(kinds(&r), [ReplyKind::Fatal]);
    assert_eq!(text(r[0].fatal_reason()), "not logged in");
    assert!(c.closed());
}

#[test]
fn legacy_challenge_login() {
    let sim = start(SimOptions {
        legacy_login: true,
        ..SimOptions::default()
    });
    let mut c = connect(sim.addr());
    // A modern client's first attempt just gets the challenge.
    let r = c.call(&["/login", "=name=admin", "=password=secret"]);
    assert_eq!(kinds(&r), [ReplyKind::Done]);
    let challenge = text(r[0].attrs.get("ret"));
    assert_eq!(challenge.len(), 32);
    assert!(challenge.bytes().all(|b| b.is_ascii_hexdigit()));

    let response = |password: &str, challenge: &str| {
        let mut h = Md5::new();
        h.update([0u8]);
        h.update(password.as_bytes());
        h.update(unhex(challenge.as_bytes()).unwrap());
        format!("00{}", hex(&h.finalize()))
    };
    let bad = c.call(&[
        "/login",
        "=name=admin",
        &format!("=response={}", response("wrong", &challenge)),
    ]);
    assert_eq!(kinds(&bad), [ReplyKind::Trap, ReplyKind::Done]);

    // A challenge is good for one attempt: fetch a fresh one.
    let r = c.call(&["/login"]);
    let challenge = text(r[0].attrs.get("ret"));
    let ok = c.call(&[
        "/login",
        "=name=admin",
        &format!("=response={}", response("secret", &challenge)),
    ]);
    assert_eq!(kinds(&ok), [ReplyKind::Done], "{ok:?}");
    assert_eq!(sim.logins(), 1);
    let r = c.call(&["/system/identity/print"]);
    assert_eq!(kinds(&r), [ReplyKind::Re, ReplyKind::Done]);
}

#[test]
fn tagged_commands_run_concurrently_with_slow_replies() {
    let sim = start(SimOptions {
        seed: SeedData {
            hotspot_users: 4,
            ..SeedData::default()
        },
        ..SimOptions::default()
    });
    let mut c = logged_in(&sim);
    let delay = Duration::from_millis(300);
    sim.set_reply_delay(delay);
    let t0 = Instant::now();
    c.send(&["/ip/hotspot/user/print", ".tag=users"]);
    c.send(&["/system/identity/print", ".tag=id"]);
    c.send(&["/system/resource/print", ".tag=res"]);
    let (mut users, mut done) = (0, Vec::new());
    while done.len() < 3 {
        let r = c.recv();
        let tag = text(r.tag());
        match r.kind {
            ReplyKind::Re if tag == "users" => users += 1,
            ReplyKind::Re => assert!(tag == "id" || tag == "res", "{tag}"),
            ReplyKind::Done => done.push(tag),
            other => panic!("unexpected {other:?}"),
        }
    }
    let elapsed = t0.elapsed();
    assert_eq!(users, 10);
    done.sort();
    assert_eq!(done, ["id", "res", "users"]);
    assert!(elapsed >= delay, "{elapsed:?}");
    // All three waited out the delay at the same time: one after the other
    // would take three times as long.
    assert!(elapsed < delay * 5 / 2, "{elapsed:?}");

    // Untagged commands get untagged replies.
    sim.set_reply_delay(Duration::ZERO);
    let r = c.call(&["/system/identity/print"]);
    assert!(r.iter().all(|r| r.tag().is_none()));
}

#[test]
fn cancel_interrupts_a_pending_command() {
    let sim = start(SimOptions::default());
    let mut c = logged_in(&sim);
    sim.set_reply_delay(Duration::from_millis(400));
    let sent = Instant::now();
    c.send(&["/ip/hotspot/user/add", "=name=late", ".tag=slow"]);
    c.send(&["/cancel", "=tag=slow", ".tag=c"]);
    let r: Vec<Reply> = (0..3).map(|_| c.recv()).collect();
    assert_eq!(
        kinds(&r),
        [ReplyKind::Trap, ReplyKind::Done, ReplyKind::Done]
    );
    assert_eq!(text(r[0].tag()), "slow");
    assert_eq!(r[0].category(), Some(2));
    assert_eq!(text(r[0].message()), "interrupted");
    assert_eq!(text(r[1].tag()), "c");
    assert_eq!(text(r[2].tag()), "slow");
    // The interrupted command never ran, and nothing more comes for it:
    // round trips until well past its reply delay each get only their own
    // reply (a late `slow` one would arrive first on this connection).
    sim.set_reply_delay(Duration::ZERO);
    loop {
        let r = c.call(&["/ip/hotspot/user/print", "=count-only=", ".tag=n"]);
        assert_eq!(kinds(&r), [ReplyKind::Done]);
        assert_eq!(text(r[0].tag()), "n");
        assert_eq!(text(r[0].attrs.get("ret")), "0");
        if sent.elapsed() > Duration::from_millis(600) {
            break;
        }
        // Paced round trips, not a wait for something to settle.
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(sim.find("/ip/hotspot/user", "late").is_none());
    // Cancelling something already finished is harmless.
    let r = c.call(&["/cancel", "=tag=n"]);
    assert_eq!(kinds(&r), [ReplyKind::Done]);
}

#[test]
fn quit_is_fatal_and_closes() {
    let sim = start(SimOptions::default());
    let mut c = logged_in(&sim);
    let r = c.call(&["/quit"]);
    assert_eq!(kinds(&r), [ReplyKind::Fatal]);
    assert_eq!(text(r[0].fatal_reason()), "session terminated on request");
    assert!(c.closed());
    wait_until("connection to close", || sim.connections() == 0);
}

#[test]
fn unknown_commands_trap_then_done() {
    let sim = start(SimOptions::default());
    let mut c = logged_in(&sim);
    let r = c.call(&["/ip/hotspot/user/frobnicate", ".tag=1"]);
    assert_eq!(kinds(&r), [ReplyKind::Trap, ReplyKind::Done]);
    assert_eq!(text(r[0].message()), "no such command");
    assert!(r.iter().all(|r| r.tag() == Some(b"1")));
    let r = c.call(&["/interface/wireless/print"]);
    assert_eq!(text(r[0].message()), "no such command prefix");
    let r = c.call(&["/ip/hotspot/user/set", "=.id=*99", "=comment=x"]);
    assert_eq!(text(r[0].message()), "no such item");
    // The session is still usable after traps.
    let r = c.call(&["/system/identity/print"]);
    assert_eq!(kinds(&r), [ReplyKind::Re, ReplyKind::Done]);
}

#[test]
fn add_returns_ret_and_duplicates_trap() {
    let sim = start(SimOptions::default());
    let mut c = logged_in(&sim);
    let add = [
        "/ip/hotspot/user/add",
        "=name=WIFI-123456",
        "=password=WIFI-123456",
        "=profile=voucher-1h",
        "=comment=VOUCHER_SYSTEM|BATCH-001|15000|10000|24",
    ];
    let r = c.call(&add);
    assert_eq!(kinds(&r), [ReplyKind::Done]);
    assert_eq!(text(r[0].attrs.get("ret")), "*1");
    let r = c.call(&add);
    assert_eq!(kinds(&r), [ReplyKind::Trap, ReplyKind::Done]);
    assert_eq!(
        text(r[0].message()),
        "failure: already have user with this name"
    );
    let r = c.call(&["/ip/hotspot/user/add", "=name=x", "=colour=red"]);
    assert_eq!(text(r[0].message()), "unknown parameter");
    let secret = ["/ppp/secret/add", "=name=p1", "=profile=pppoe-10M"];
    assert_eq!(text(c.call(&secret)[0].attrs.get("ret")), "*1");
    assert_eq!(
        text(c.call(&secret)[0].message()),
        "failure: secret with the same name already exists"
    );
    // Handle-side helpers see the same data.
    let row = sim.find("/ip/hotspot/user", "WIFI-123456");
    let comment = row.and_then(|r| r.into_iter().find(|(k, _)| k == b"comment"));
    assert_eq!(
        comment.map(|(_, v)| v),
        Some(b"VOUCHER_SYSTEM|BATCH-001|15000|10000|24".to_vec())
    );
    assert_eq!(sim.add_hotspot_user("h", "p", "voucher-24h", b""), "*2");
}

#[test]
fn print_with_proplist_queries_and_count() {
    let sim = start(SimOptions {
        seed: SeedData {
            hotspot_users: 10,
            ..SeedData::default()
        },
        ..SimOptions::default()
    });
    let mut c = logged_in(&sim);
    let r = c.call(&[
        "/ip/hotspot/user/print",
        "?profile=voucher-1h",
        ".proplist=.id,name,profile",
    ]);
    assert_eq!(r.len(), 6);
    for row in &r[..5] {
        assert_eq!(row.kind, ReplyKind::Re);
        let keys: Vec<&[u8]> = row.attrs.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, [&b".id"[..], b"name", b"profile"]);
        assert_eq!(text(row.attrs.get("profile")), "voucher-1h");
    }
    let r = c.call(&[
        "/ip/hotspot/user/print",
        "=count-only=",
        "?profile=voucher-1h",
    ]);
    assert_eq!(kinds(&r), [ReplyKind::Done]);
    assert_eq!(text(r[0].attrs.get("ret")), "5");
    // Neither voucher profile: Mikhmon and hand-made users (docs' `#|!`).
    let r = c.call(&[
        "/ip/hotspot/user/print",
        "?profile=voucher-1h",
        "?profile=voucher-24h",
        "?#|!",
        "=.proplist=name",
    ]);
    let names: Vec<String> = r
        .iter()
        .filter(|r| r.kind == ReplyKind::Re)
        .map(|r| text(r.attrs.get("name")))
        .collect();
    assert_eq!(
        names,
        [
            "mk4821",
            "mk7730",
            "mk1094",
            "john",
            "guest-lobby",
            "printer"
        ]
    );
    // `?-comment` and a literal (not glob) match.
    let r = c.call(&["/ip/hotspot/user/print", "?-comment", ".proplist=name"]);
    assert_eq!(text(r[0].attrs.get("name")), "printer");
    let r = c.call(&[
        "/ip/hotspot/user/print",
        "=count-only=",
        "?profile=voucher*",
    ]);
    assert_eq!(text(r[0].attrs.get("ret")), "0");
    // Non-UTF-8 comments come through byte for byte.
    let r = c.call(&["/ip/hotspot/user/print", "?name=guest-lobby"]);
    assert_eq!(
        r[0].attrs.get("comment"),
        Some(&b"Caf\xe9 lobby \x96 ask front desk"[..])
    );
}

#[test]
fn empty_reply_only_when_enabled() {
    let sim = start(SimOptions::default());
    let mut c = logged_in(&sim);
    let r = c.call(&["/ppp/active/print"]);
    assert_eq!(kinds(&r), [ReplyKind::Done]);
    sim.set_empty_reply(true);
    let r = c.call(&["/ppp/active/print", ".tag=e"]);
    assert_eq!(kinds(&r), [ReplyKind::Empty, ReplyKind::Done]);
    assert!(r.iter().all(|r| r.tag() == Some(b"e")));

    let sim = start(SimOptions {
        empty_reply: true,
        ..SimOptions::default()
    });
    let mut c = logged_in(&sim);
    let r = c.call(&["/ip/hotspot/active/print"]);
    assert_eq!(kinds(&r), [ReplyKind::Empty, ReplyKind::Done]);
}

#[test]
fn sessions_and_counters_over_the_api() {
    let sim = start(SimOptions::default());
    sim.add_hotspot_user("v1", "v1", "voucher-1h", b"VOUCHER_SYSTEM|B|1|1|1");
    sim.add_ppp_secret("p1", "pw", "pppoe-10M", b"");
    assert!(
        sim.hotspot_login("ghost", "10.5.50.9", "02:00:00:00:00:09")
            .is_err()
    );
    let id = sim.hotspot_login("v1", "10.5.50.2", "02:00:00:00:00:01");
    assert_eq!(id.as_deref(), Ok("*1"));
    assert!(
        sim.ppp_connect("p1", "10.10.0.2", "04:00:00:00:00:01")
            .is_ok()
    );
    sim.advance(Duration::from_secs(125));
    assert!(sim.add_traffic("v1", 1_000, 50_000));
    let mut c = logged_in(&sim);
    let r = c.call(&["/ip/hotspot/active/print"]);
    assert_eq!(text(r[0].attrs.get("user")), "v1");
    assert_eq!(text(r[0].attrs.get("uptime")), "2m5s");
    let bytes_out: u64 = text(r[0].attrs.get("bytes-out")).parse().unwrap_or(0);
    assert!(bytes_out > 50_000);
    let r = c.call(&["/ppp/active/print"]);
    assert_eq!(text(r[0].attrs.get("uptime")), "2m5s");
    assert!(r[0].attrs.get("bytes-in").is_none());
    // Kicking from the API moves the counters into the user entry.
    let r = c.call(&["/ip/hotspot/active/remove", "=.id=*1"]);
    assert_eq!(kinds(&r), [ReplyKind::Done]);
    let r = c.call(&[
        "/ip/hotspot/user/print",
        "?name=v1",
        ".proplist=uptime,bytes-out",
    ]);
    assert_eq!(text(r[0].attrs.get("uptime")), "2m5s");
    assert_eq!(text(r[0].attrs.get("bytes-out")), bytes_out.to_string());
    assert!(sim.ppp_disconnect("p1"));
    let r = c.call(&["/ppp/secret/print", "?name=p1"]);
    assert_eq!(text(r[0].attrs.get("last-caller-id")), "04:00:00:00:00:01");
    assert_eq!(text(r[0].attrs.get("last-disconnect-reason")), "hung-up");
    sim.set_clock_1970(true);
    let r = c.call(&["/system/clock/print"]);
    assert_eq!(text(r[0].attrs.get("date")), "1970-01-01");
}

#[test]
fn reboot_refuses_then_accepts() {
    let sim = start(SimOptions::default());
    sim.add_hotspot_user("v1", "v1", "voucher-1h", b"");
    assert!(
        sim.hotspot_login("v1", "10.5.50.2", "02:00:00:00:00:01")
            .is_ok()
    );
    sim.advance(Duration::from_secs(60));
    let mut c = logged_in(&sim);
    let refuse = Duration::from_millis(300);
    let t0 = Instant::now();
    sim.reboot(refuse);
    assert!(c.closed());
    assert_eq!(sim.connections(), 0);
    let err = TcpStream::connect(sim.addr()).map(|_| ());
    assert_eq!(
        err.map_err(|e| e.kind()),
        Err(io::ErrorKind::ConnectionRefused)
    );
    assert!(sim.rows("/ip/hotspot/active").is_empty());
    let user = sim.find("/ip/hotspot/user", "v1").unwrap_or_default();
    assert!(user.contains(&(b"uptime".to_vec(), b"1m".to_vec())));
    let mut back = None;
    while back.is_none() {
        assert!(t0.elapsed() < TIMEOUT, "never came back");
        back = TcpStream::connect(sim.addr()).ok();
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(t0.elapsed() >= refuse);
    drop(back);
    let mut c = logged_in(&sim);
    let r = c.call(&["/system/resource/print", ".proplist=uptime"]);
    assert_eq!(text(r[0].attrs.get("uptime")), "0s");
}

#[test]
fn max_sessions_accepts_then_closes_extra_connections() {
    let sim = start(SimOptions::default());
    sim.set_max_sessions(2);
    let a = logged_in(&sim);
    let _b = logged_in(&sim);
    let mut extra = connect(sim.addr());
    assert!(extra.closed());
    assert_eq!(sim.connections(), 2);
    drop(a);
    wait_until("a slot to free up", || sim.connections() == 1);
    let _c = logged_in(&sim);
    assert_eq!(sim.logins(), 3);
}

#[test]
fn drop_mid_reply_cuts_once() {
    let sim = start(SimOptions {
        seed: SeedData {
            hotspot_users: 30,
            ..SeedData::default()
        },
        ..SimOptions::default()
    });
    let mut c = logged_in(&sim);
    sim.drop_mid_reply_next();
    c.send(&["/ip/hotspot/user/print"]);
    let mut rows = 0;
    let err = loop {
        match c.try_recv() {
            Ok(r) => {
                assert_eq!(r.kind, ReplyKind::Re, "a cut reply never completes");
                rows += 1;
            }
            Err(e) => break e,
        }
    };
    assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    assert!(rows > 0 && rows < 36, "{rows} rows");
    let mut c = logged_in(&sim);
    let r = c.call(&["/ip/hotspot/user/print"]);
    assert_eq!(r.len(), 37);
}

#[test]
fn malformed_frames_are_fatal() {
    let sim = start(SimOptions::default());
    let mut c = logged_in(&sim);
    // A 3-byte word, then a control byte where the next length should be.
    c.send_raw(&[0x03, b'/', b'q', b'u', 0xF8]);
    let r = c.recv();
    assert_eq!(r.kind, ReplyKind::Fatal);
    assert!(text(r.fatal_reason()).contains("malformed"), "{r:?}");
    assert!(c.closed());

    // A sentence that does not start with a command word.
    let mut c = connect(sim.addr());
    let r = c.call(&["=name=admin"]);
    assert_eq!(kinds(&r), [ReplyKind::Fatal]);
    assert!(text(r[0].fatal_reason()).contains("malformed"));
    assert!(c.closed());
}

#[test]
fn silent_router_and_fatal_all() {
    let sim = start(SimOptions::default());
    let mut a = logged_in(&sim);
    sim.set_silent(true);
    let mut s = connect(sim.addr());
    s.s.set_read_timeout(Some(Duration::from_millis(200))).ok();
    s.send(&["/login", "=name=admin", "=password=secret"]);
    let err = s.try_recv().map(|_| ()).map_err(|e| e.kind());
    assert!(
        matches!(
            err,
            Err(io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
        ),
        "{err:?}"
    );
    sim.set_silent(false);
    sim.fatal_all("router shutting down");
    let r = a.recv();
    assert_eq!(r.kind, ReplyKind::Fatal);
    assert_eq!(text(r.fatal_reason()), "router shutting down");
    assert!(a.closed());
    assert_eq!(sim.connections(), 0);
}

#[test]
fn api_ssl_with_the_sims_certificate() {
    let sim = start(SimOptions {
        tls: true,
        ..SimOptions::default()
    });
    let (Some(addr), Some(der), Some(pem), Some(sha)) = (
        sim.tls_addr(),
        sim.cert_der(),
        sim.cert_pem(),
        sim.cert_sha256(),
    ) else {
        panic!("TLS info missing");
    };
    assert!(pem.contains("BEGIN CERTIFICATE"));
    assert_ne!(sha, [0u8; 32]);
    let mut roots = rustls::RootCertStore::empty();
    if let Err(e) = roots.add(rustls::pki_types::CertificateDer::from(der)) {
        panic!("add root: {e}");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = match rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
    {
        Ok(b) => b.with_root_certificates(roots).with_no_client_auth(),
        Err(e) => panic!("config: {e}"),
    };
    let name = match rustls::pki_types::ServerName::try_from("localhost") {
        Ok(n) => n,
        Err(e) => panic!("name: {e}"),
    };
    let conn = match rustls::ClientConnection::new(Arc::new(config), name) {
        Ok(c) => c,
        Err(e) => panic!("client: {e}"),
    };
    let tcp = match TcpStream::connect(addr) {
        Ok(s) => s,
        Err(e) => panic!("connect: {e}"),
    };
    tcp.set_read_timeout(Some(TIMEOUT)).ok();
    let mut c = Client {
        s: rustls::StreamOwned::new(conn, tcp),
        dec: Decoder::default(),
    };
    // Like a router's `/certificate add … ; sign`: the certificate is a CA
    // (key-cert-sign), which plain web PKI refuses as a server certificate.
    let mut out = Vec::new();
    encode_sentence(&["/login", "=name=admin", "=password=secret"], &mut out).ok();
    let err =
        c.s.write_all(&out)
            .and_then(|()| c.s.flush())
            .expect_err("plain webpki must refuse a CA certificate as end entity");
    assert!(err.to_string().contains("CaUsedAsEndEntity"), "{err}");
    // The agent's client trusts it from a CA file holding that certificate.
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = dir.path().join("router.pem");
    std::fs::write(&ca, &pem).expect("write pem");
    let mut cfg = mikrotik_edge::config::RouterConfig::new("localhost", "admin");
    cfg.port = addr.port();
    cfg.password = mikrotik_edge::config::Secret::new("secret");
    cfg.tls = Some(mikrotik_edge::config::TlsConfig {
        ca_file: Some(ca),
        cert_sha256: None,
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let conn = mikrotik_edge::client::Connection::open(&cfg)
            .await
            .expect("TLS login with the CA file");
        let r = conn
            .execute(mikrotik_edge::proto::Command::new("/system/identity/print"))
            .await
            .expect("identity");
        assert_eq!(r.rows.len(), 1);
    });
    // The plain port keeps working alongside.
    let _plain = logged_in(&sim);
    assert!(sim.connections() >= 1);
}

#[test]
fn handle_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<SimHandle>();
}

/// Started, used and dropped from inside a tokio runtime, with tokio I/O.
#[test]
fn works_from_inside_a_tokio_runtime() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => panic!("runtime: {e}"),
    };
    rt.block_on(async {
        let sim = start(SimOptions::default());
        let mut s = match tokio::net::TcpStream::connect(sim.addr()).await {
            Ok(s) => s,
            Err(e) => panic!("connect: {e}"),
        };
        let mut out = Vec::new();
        encode_sentence(
            &["/login", "=name=admin", "=password=secret", ".tag=a"],
            &mut out,
        )
        .ok();
        s.write_all(&out).await.ok();
        let mut dec = Decoder::default();
        let mut buf = [0u8; 512];
        let reply = loop {
            if let Ok(Some(sentence)) = dec.next_sentence() {
                break Reply::parse(sentence);
            }
            let n = tokio::time::timeout(TIMEOUT, s.read(&mut buf)).await;
            match n {
                Ok(Ok(n)) if n > 0 => dec.feed(&buf[..n]),
                other => panic!("read: {other:?}"),
            }
        };
        let reply = reply.ok();
        assert_eq!(reply.as_ref().map(|r| r.kind), Some(ReplyKind::Done));
        assert_eq!(
            reply.and_then(|r| r.tag().map(<[u8]>::to_vec)),
            Some(b"a".to_vec())
        );
        // Blocking handle calls are brief and fine on a runtime thread.
        sim.reboot(Duration::from_millis(50));
        assert_eq!(sim.connections(), 0);
    });
}

#[test]
fn listen_sends_changes_dead_rows_and_ends_on_cancel() {
    let sim = start(SimOptions::default());
    sim.add_hotspot_user("v1", "v1", "voucher-1h", b"");
    sim.add_ppp_secret("p1", "pw", "pppoe-10M", b"");
    let mut c = logged_in(&sim);
    c.send(&[
        "/ip/hotspot/active/listen",
        "=.proplist=.id,user,address",
        ".tag=h",
    ]);
    c.send(&["/ppp/active/listen", ".tag=p"]);
    // Listen reports changes only: nothing for the (empty) current list,
    // and a print in between is answered at once.
    let r = c.call(&["/system/identity/print", ".tag=i"]);
    assert_eq!(kinds(&r), [ReplyKind::Re, ReplyKind::Done]);
    let id = sim.hotspot_login("v1", "10.5.50.2", "02:00:00:00:00:01");
    assert_eq!(id.as_deref(), Ok("*1"));
    let r = c.recv();
    assert_eq!(r.kind, ReplyKind::Re);
    assert_eq!(text(r.tag()), "h");
    assert_eq!(text(r.attrs.get(".id")), "*1");
    assert_eq!(text(r.attrs.get("user")), "v1");
    assert!(r.attrs.get("mac-address").is_none(), "proplist honoured");
    // Counters moving are not changes.
    sim.advance(Duration::from_secs(30));
    assert!(
        sim.ppp_connect("p1", "10.10.0.2", "04:00:00:00:00:01")
            .is_ok()
    );
    let r = c.recv();
    assert_eq!(text(r.tag()), "p");
    assert_eq!(text(r.attrs.get("name")), "p1");
    assert!(sim.hotspot_logout("v1"));
    let r = c.recv();
    assert_eq!(text(r.tag()), "h");
    assert_eq!(text(r.attrs.get(".id")), "*1");
    assert_eq!(text(r.attrs.get(".dead")), "yes");
    // `/cancel`: trap interrupted, the cancel's done, the listen's done.
    c.send(&["/cancel", "=tag=h", ".tag=c"]);
    let r: Vec<Reply> = (0..3).map(|_| c.recv()).collect();
    assert_eq!(
        kinds(&r),
        [ReplyKind::Trap, ReplyKind::Done, ReplyKind::Done]
    );
    assert_eq!(text(r[0].tag()), "h");
    assert_eq!(r[0].category(), Some(2));
    assert_eq!(text(r[0].message()), "interrupted");
    assert_eq!(text(r[2].tag()), "h");
    // The cancelled listen is quiet; the other still reports.
    assert!(
        sim.hotspot_login("v1", "10.5.50.2", "02:00:00:00:00:01")
            .is_ok()
    );
    assert!(sim.ppp_disconnect("p1"));
    let r = c.recv();
    assert_eq!(text(r.tag()), "p");
    assert_eq!(text(r.attrs.get(".dead")), "yes");
}

#[test]
fn listen_can_be_refused_and_sessions_hidden() {
    let sim = start(SimOptions::default());
    sim.add_hotspot_user("v1", "v1", "voucher-1h", b"");
    sim.refuse_listen("/ppp/active", true);
    let mut c = logged_in(&sim);
    let r = c.call(&["/ppp/active/listen", ".tag=p"]);
    assert_eq!(kinds(&r), [ReplyKind::Trap, ReplyKind::Done]);
    assert_eq!(text(r[0].message()), "no such command");
    c.send(&["/ip/hotspot/active/listen", ".tag=h"]);
    // A session that begins and ends while hidden is never shown, but
    // the user's cumulative counters grow.
    sim.hide_sessions(true);
    assert!(
        sim.hotspot_login("v1", "10.5.50.2", "02:00:00:00:00:01")
            .is_ok()
    );
    let r = c.call(&["/ip/hotspot/active/print", ".tag=a"]);
    assert_eq!(kinds(&r), [ReplyKind::Done]);
    sim.advance(Duration::from_secs(90));
    assert!(sim.hotspot_logout("v1"));
    sim.hide_sessions(false);
    let r = c.call(&["/ip/hotspot/user/print", "?name=v1", ".tag=u"]);
    assert_eq!(text(r[0].attrs.get("uptime")), "1m30s");
    // The next visible login is the first thing the listen reports.
    assert!(
        sim.hotspot_login("v1", "10.5.50.2", "02:00:00:00:00:01")
            .is_ok()
    );
    let r = c.recv();
    assert_eq!(text(r.tag()), "h");
    assert_eq!(text(r.attrs.get(".id")), "*2");
    assert!(sim.hotspot_reset_counters("v1"));
    let r = c.call(&["/ip/hotspot/user/print", "?name=v1", ".tag=u"]);
    assert_eq!(text(r[0].attrs.get("uptime")), "0s");
}
