//! `central-load`: many sites at once against `mikrotik-central`, speaking
//! the agent's upload contract (the agent's own `ingest_body`: one stream
//! per site, seq/prev chains, retries after 503 + Retry-After, the same
//! batch sent twice now and then). Creates its sites (token hashes straight
//! into `sites`), runs for `--secs`, prints events/s stored, batch latency
//! (p50/p99, first send to ack), 503s, and then checks exactly once in the
//! database: every seq stored once, `stored_through` at the last seq, one
//! `user_activity_log` row per login/logout sent. Exit 1 when a check fails.
//! Built with the `central` feature; a bench tool, never in the agent.
//!
//!   central-load --database-url URL --gateway 127.0.0.1:8091,127.0.0.1:8092 \
//!                --sites 1000 --batch 100 --interval-ms 5000 --secs 60
//!
//! `--interval-ms 0` is the burst mode: every site sends its next batch as
//! soon as the last one is acked.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::{Duration, Instant};

use mikrotik_edge::clock::Timestamp;
use mikrotik_edge::encoding::hex;
use mikrotik_edge::event::{Event, EventKind, LogoutReason, Service, SessionRef, StreamId};
use mikrotik_edge::name::{Id, Mac, Name};
use mikrotik_edge::uplink::ingest_body;
use mikrotik_edge::valid_hours::ValidHours;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Users per site (each online or not).
const USERS: u64 = 300;
/// How long after the run's end a batch is still retried.
const GIVE_UP_AFTER: Duration = Duration::from_secs(30);

struct Opts {
    database_url: String,
    gateways: Vec<SocketAddr>,
    sites: usize,
    batch: usize,
    interval: Duration,
    secs: u64,
    /// Every Nth batch of a site is sent a second time (a retried upload).
    dup_every: u64,
}

fn parse_opts() -> Result<Opts, String> {
    let mut o = Opts {
        database_url: String::new(),
        gateways: Vec::new(),
        sites: 1000,
        batch: 100,
        interval: Duration::from_secs(5),
        secs: 60,
        dup_every: 50,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut it = argv.iter();
    while let Some(k) = it.next() {
        let v = it.next().ok_or_else(|| format!("{k} needs a value"))?;
        let num = |v: &str| {
            v.parse::<u64>()
                .map_err(|_| format!("{k}: expected a number, got {v:?}"))
        };
        match k.as_str() {
            "--database-url" => o.database_url = v.clone(),
            "--gateway" => {
                for a in v.split(',') {
                    o.gateways.push(
                        a.parse()
                            .map_err(|_| format!("--gateway: bad address {a:?}"))?,
                    );
                }
            }
            "--sites" => o.sites = num(v)? as usize,
            "--batch" => o.batch = num(v)? as usize,
            "--interval-ms" => o.interval = Duration::from_millis(num(v)?),
            "--secs" => o.secs = num(v)?,
            "--dup-every" => o.dup_every = num(v)?,
            _ => return Err(format!("unknown option {k}")),
        }
    }
    if o.database_url.is_empty() || o.gateways.is_empty() || o.sites == 0 || o.batch == 0 {
        return Err(
            "usage: central-load --database-url URL --gateway ADDR[,ADDR..] \
                    [--sites 1000] [--batch 100] [--interval-ms 5000] [--secs 60] [--dup-every 50]"
                .into(),
        );
    }
    Ok(o)
}

/// A tiny xorshift: reproducible mixes without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// One site's users and what happens to them: logins (a voucher's first
/// login also activates it), interim usage, logouts.
struct SiteMix {
    rng: Rng,
    /// Per user: the open session's active id (0 = offline) and uptime.
    online: Vec<(u64, u64)>,
    activated: Vec<bool>,
    next_active: u64,
    seq: u64,
    logins_logouts: u64,
}

impl SiteMix {
    fn new(seed: u64) -> Self {
        SiteMix {
            rng: Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1),
            online: vec![(0, 0); USERS as usize],
            activated: vec![false; USERS as usize],
            next_active: 1,
            seq: 0,
            logins_logouts: 0,
        }
    }

    fn batch(&mut self, n: usize) -> Vec<Event> {
        let mut out = Vec::with_capacity(n + 1);
        let at = Timestamp::now();
        while out.len() < n {
            let u = self.rng.below(USERS);
            let pppoe = u.is_multiple_of(5);
            let session = |active: u64| SessionRef {
                service: if pppoe {
                    Service::Pppoe
                } else {
                    Service::Hotspot
                },
                user: Name::new(format!("{}{u:05}", if pppoe { "cust-" } else { "V" })),
                active_id: Id(active),
                session_id: Name::empty(),
            };
            let (active, uptime) = self.online[u as usize];
            let kind = if active == 0 {
                let active = self.next_active;
                self.next_active += 1;
                self.online[u as usize] = (active, 0);
                self.logins_logouts += 1;
                if !pppoe && !self.activated[u as usize] {
                    self.activated[u as usize] = true;
                    self.seq += 1;
                    out.push(Event {
                        seq: self.seq,
                        at,
                        kind: EventKind::VoucherActivated {
                            user: session(active).user,
                            batch_id: Name::new("LOAD-1"),
                            valid_hours: ValidHours::from_hours(24),
                            first_login_at: at,
                            expires_at: at.plus_secs(86_400),
                            provisional: false,
                            mac: None,
                            estimated: false,
                            comment: Name::new(
                                "VOUCHER_SYSTEM|LOAD-1|5000|4000|24|v1|2026-01-01|load||",
                            ),
                        },
                    });
                }
                EventKind::Login {
                    session: session(active),
                    address: Some(std::net::IpAddr::from([10, 5, (u >> 8) as u8, u as u8])),
                    mac: Mac::parse(b"AA:BB:CC:00:10:01"),
                    caller_id: Name::empty(),
                    login_by: Name::new("http-chap"),
                    profile: Name::new("voucher-1d"),
                    seen_at_start: false,
                }
            } else if self.rng.below(4) > 0 {
                let uptime = uptime + 60;
                self.online[u as usize] = (active, uptime);
                EventKind::Usage {
                    session: session(active),
                    bytes_in: (!pppoe).then_some(uptime * 12_345),
                    bytes_out: (!pppoe).then_some(uptime * 54_321),
                    uptime_secs: uptime,
                    unseen: false,
                }
            } else {
                self.online[u as usize] = (0, 0);
                self.logins_logouts += 1;
                EventKind::Logout {
                    session: session(active),
                    reason: LogoutReason::Gone,
                    bytes_in: (!pppoe).then_some(uptime * 12_345),
                    bytes_out: (!pppoe).then_some(uptime * 54_321),
                    uptime_secs: uptime,
                }
            };
            self.seq += 1;
            out.push(Event {
                seq: self.seq,
                at,
                kind,
            });
        }
        out
    }
}

/// One keep-alive HTTP/1.1 connection to a gateway.
struct Conn {
    r: BufReader<TcpStream>,
}

struct Reply {
    status: u16,
    retry_after: Option<u64>,
    body: Vec<u8>,
}

impl Conn {
    async fn open(addr: SocketAddr) -> std::io::Result<Conn> {
        let s = TcpStream::connect(addr).await?;
        s.set_nodelay(true)?;
        Ok(Conn {
            r: BufReader::new(s),
        })
    }

    async fn post(&mut self, token: &str, body: &[u8]) -> std::io::Result<Reply> {
        let head = format!(
            "POST /rpc/ingest_batch HTTP/1.1\r\nHost: central\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let w = self.r.get_mut();
        w.write_all(head.as_bytes()).await?;
        w.write_all(body).await?;
        let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_string());
        let mut line = String::new();
        self.r.read_line(&mut line).await?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("no status line"))?;
        let (mut len, mut retry_after) = (0usize, None);
        loop {
            line.clear();
            if self.r.read_line(&mut line).await? == 0 {
                return Err(bad("closed in headers"));
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().map_err(|_| bad("content-length"))?;
                } else if k.eq_ignore_ascii_case("retry-after") {
                    retry_after = v.trim().parse().ok();
                }
            }
        }
        let mut body = vec![0; len];
        self.r.read_exact(&mut body).await?;
        Ok(Reply {
            status,
            retry_after,
            body,
        })
    }
}

#[derive(Default)]
struct Stats {
    events: u64,
    batches: u64,
    latencies_us: Vec<u64>,
    unavailable: u64,
    errors: u64,
    dup_ok: u64,
    /// Sites that stopped retrying a batch after the run (overload).
    gave_up: u64,
    first_error: Option<String>,
}

impl Stats {
    fn error(&mut self, message: String) {
        self.errors += 1;
        self.first_error.get_or_insert(message);
    }
}

struct Site {
    id: String,
    token: String,
    stream: StreamId,
}

/// Sends one site's batches until `until`; returns its mix and the last
/// acked seq (for the check).
async fn run_site(
    site: Rc<Site>,
    idx: usize,
    opts: Rc<Opts>,
    stats: Rc<RefCell<Stats>>,
    start: Instant,
    until: Instant,
) -> (SiteMix, u64) {
    let mut mix = SiteMix::new(idx as u64 + 1);
    let addr = opts.gateways[idx % opts.gateways.len()];
    let mut conn: Option<Conn> = None;
    let mut acked = 0u64;
    // Spread the sites over one interval, as real agents are.
    let offset = opts.interval.mul_f64(idx as f64 / opts.sites as f64);
    let mut next = start + offset;
    let mut n = 0u64;
    while Instant::now() < until {
        if !opts.interval.is_zero() {
            tokio::time::sleep_until(next.into()).await;
            next += opts.interval;
            if Instant::now() >= until {
                break;
            }
        }
        let events = mix.batch(opts.batch);
        let last = events.last().map_or(acked, |e| e.seq);
        let body = match ingest_body(&site.id, site.stream, acked, &events) {
            Ok(b) => b,
            Err(e) => {
                stats.borrow_mut().error(e.to_string());
                break;
            }
        };
        n += 1;
        let sends = if opts.dup_every > 0 && n.is_multiple_of(opts.dup_every) {
            2
        } else {
            1
        };
        let t0 = Instant::now();
        let mut done = 0;
        while done < sends {
            // Overload past the end: stop retrying; the check then allows
            // this batch to be stored or not (never twice).
            if Instant::now() > until + GIVE_UP_AFTER {
                stats.borrow_mut().gave_up += 1;
                return (mix, acked);
            }
            if conn.is_none() {
                match Conn::open(addr).await {
                    Ok(c) => conn = Some(c),
                    Err(e) => {
                        stats.borrow_mut().error(format!("connect {addr}: {e}"));
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                }
            }
            let Some(c) = conn.as_mut() else { continue };
            match c.post(&site.token, &body).await {
                Ok(r) if r.status == 200 => {
                    let stored = serde_json::from_slice::<serde_json::Value>(&r.body)
                        .ok()
                        .and_then(|v| v["stored_through"].as_u64());
                    let mut s = stats.borrow_mut();
                    if stored != Some(last) {
                        s.error(format!(
                            "{}: stored_through {stored:?}, expected {last}",
                            site.id
                        ));
                    }
                    if done == 0 {
                        s.events += events.len() as u64;
                        s.batches += 1;
                        s.latencies_us.push(t0.elapsed().as_micros() as u64);
                    } else {
                        s.dup_ok += 1;
                    }
                    done += 1;
                }
                Ok(r) if r.status == 503 => {
                    stats.borrow_mut().unavailable += 1;
                    let wait = r.retry_after.unwrap_or(1).clamp(1, 30);
                    tokio::time::sleep(Duration::from_secs(wait)).await;
                }
                Ok(r) => {
                    stats.borrow_mut().error(format!(
                        "{}: HTTP {}: {}",
                        site.id,
                        r.status,
                        String::from_utf8_lossy(&r.body)
                    ));
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(e) => {
                    conn = None;
                    stats.borrow_mut().error(format!("{}: {e}", site.id));
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
        acked = last;
    }
    (mix, acked)
}

fn pct(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)] as f64 / 1000.0
}

async fn run(opts: Opts) -> Result<bool, String> {
    let (db, conn) = tokio_postgres::connect(&opts.database_url, tokio_postgres::NoTls)
        .await
        .map_err(|e| format!("database: {e}"))?;
    tokio::task::spawn_local(async move {
        let _ = conn.await;
    });
    let run_id = format!("{:x}", Timestamp::now().unix() % 0xff_ffff);
    let mut sites = Vec::with_capacity(opts.sites);
    for i in 0..opts.sites {
        let mut stream = [0u8; 16];
        stream[..8].copy_from_slice(&(i as u64).to_be_bytes());
        stream[8..].copy_from_slice(&Timestamp::now().unix().to_be_bytes());
        sites.push(Rc::new(Site {
            id: format!("load-{run_id}-{i:04}"),
            token: format!("load-{run_id}-{i}-token"),
            stream: StreamId(stream),
        }));
    }
    let ids: Vec<String> = sites.iter().map(|s| s.id.clone()).collect();
    let hashes: Vec<String> = sites
        .iter()
        .map(|s| hex(ring::digest::digest(&ring::digest::SHA256, s.token.as_bytes()).as_ref()))
        .collect();
    db.execute(
        "INSERT INTO sites (site_id, token_hash) SELECT * FROM unnest($1::text[], $2::text[])",
        &[&ids, &hashes],
    )
    .await
    .map_err(|e| format!("creating sites: {e}"))?;

    let opts = Rc::new(opts);
    let stats = Rc::new(RefCell::new(Stats::default()));
    let start = Instant::now();
    let until = start + Duration::from_secs(opts.secs);
    let mut tasks = Vec::new();
    for (i, s) in sites.iter().enumerate() {
        tasks.push(tokio::task::spawn_local(run_site(
            s.clone(),
            i,
            opts.clone(),
            stats.clone(),
            start,
            until,
        )));
    }
    let mut mixes = Vec::new();
    for t in tasks {
        mixes.push(t.await.map_err(|e| e.to_string())?);
    }
    let elapsed = start.elapsed().as_secs_f64();
    let mut s = stats.take();
    s.latencies_us.sort_unstable();
    println!(
        "sites {} gateways {} batch {} interval {} ms: {} events in {} batches in {:.1} s = {:.0} events/s stored; \
         batch latency p50 {:.0} ms p99 {:.0} ms max {:.0} ms; 503: {}; other errors: {}; duplicate sends acked: {}; sites that gave up a batch {} s after the end: {}",
        opts.sites,
        opts.gateways.len(),
        opts.batch,
        opts.interval.as_millis(),
        s.events,
        s.batches,
        elapsed,
        s.events as f64 / elapsed,
        pct(&s.latencies_us, 0.5),
        pct(&s.latencies_us, 0.99),
        pct(&s.latencies_us, 1.0),
        s.unavailable,
        s.errors,
        s.dup_ok,
        GIVE_UP_AFTER.as_secs(),
        s.gave_up
    );
    if let Some(e) = &s.first_error {
        println!("first error: {e}");
    }

    // Exactly once, per site: what was acked is stored once, in a chain.
    let expected: Vec<i64> = mixes.iter().map(|(m, _)| m.seq as i64).collect();
    let acked: Vec<i64> = mixes.iter().map(|(_, a)| *a as i64).collect();
    let activity: Vec<i64> = mixes.iter().map(|(m, _)| m.logins_logouts as i64).collect();
    let bad = db
        .query(
            "WITH x AS (SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[]) \
                        AS x(site_id, last, acts, acked)), \
             e AS (SELECT site_id, count(*) AS n, count(DISTINCT seq) AS d, max(seq) AS m \
                     FROM agent_events WHERE site_id = ANY($1) GROUP BY site_id), \
             s AS (SELECT site_id, max(stored_through) AS through FROM agent_streams \
                    WHERE site_id = ANY($1) GROUP BY site_id), \
             a AS (SELECT site_id, count(*) AS n FROM user_activity_log \
                    WHERE site_id = ANY($1) GROUP BY site_id) \
             SELECT x.site_id, x.last, coalesce(e.n, 0), coalesce(e.d, 0), coalesce(s.through, 0), \
                    x.acts, coalesce(a.n, 0) \
               FROM x LEFT JOIN e USING (site_id) LEFT JOIN s USING (site_id) LEFT JOIN a USING (site_id) \
              WHERE coalesce(e.n, 0) <> coalesce(e.d, 0) OR coalesce(e.n, 0) <> coalesce(s.through, 0) \
                 OR coalesce(s.through, 0) NOT BETWEEN x.acked AND x.last \
                 OR (coalesce(s.through, 0) = x.last AND coalesce(a.n, 0) <> x.acts)",
            &[&ids, &expected, &activity, &acked],
        )
        .await
        .map_err(|e| format!("checking: {e}"))?;
    let total: i64 = expected.iter().sum();
    if bad.is_empty() {
        println!(
            "exactly once: OK ({total} events sent over {} sites: each seq stored once, stored_through \
             = the last seq acked (or sent), one activity row per login/logout)",
            opts.sites
        );
    } else {
        for r in bad.iter().take(5) {
            let site: String = r.get(0);
            let [last, n, d, through, acts, got] = [1, 2, 3, 4, 5, 6].map(|i| r.get::<_, i64>(i));
            println!(
                "exactly once FAILED for {site}: sent up to seq {last}, stored {n} rows ({d} distinct), \
                 stored_through {through}; activity rows {got}, expected {acts}"
            );
        }
        println!(
            "exactly once: FAILED for {} of {} sites",
            bad.len(),
            opts.sites
        );
    }
    Ok(bad.is_empty() && s.errors == 0)
}

fn main() -> ExitCode {
    let opts = match parse_opts() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("central-load: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("central-load: {e}");
            return ExitCode::FAILURE;
        }
    };
    let local = tokio::task::LocalSet::new();
    match local.block_on(&rt, run(opts)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("central-load: {e}");
            ExitCode::FAILURE
        }
    }
}
