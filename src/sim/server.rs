//! The network side: listeners, one task per API session, login, `.tag`
//! multiplexing with `/cancel`, and the injected faults.
//!
//! Each connection has a reader loop (decode, dispatch) and a writer task
//! fed through a channel, so delayed replies from several in-flight
//! commands can interleave the way they do on a real router.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use md5::{Digest, Md5};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};
use tokio::sync::watch;
use tokio::task::AbortHandle;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

use super::commands::{Request, Words, done, execute, trap};
use super::listen;
use super::router::{Menu, Router};
use crate::encoding::hex;
use crate::proto::{Decoder, Sentence, encode_sentence};

/// Locks a mutex, shrugging off poisoning: a panicking test thread must not
/// take the whole simulator down with it.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Everything the handle and the connections share.
pub(crate) struct Shared {
    pub(crate) inner: Mutex<Inner>,
    conns: Mutex<HashMap<u64, UnboundedSender<ConnCtl>>>,
    next_conn: AtomicU64,
    /// Per listenable menu, bumped after its data may have changed, so the
    /// open `listen` commands on it look for changes (see [`listen`]). Per
    /// menu because a diff prints the whole menu: thousands of comment
    /// writes must not each re-print thousands of active sessions.
    pub(crate) changes: Vec<(Menu, watch::Sender<u64>)>,
}

pub(crate) struct Inner {
    pub(crate) router: Router,
    pub(crate) user: Vec<u8>,
    pub(crate) password: Vec<u8>,
    pub(crate) legacy_login: bool,
    pub(crate) reply_delay: Duration,
    pub(crate) silent: bool,
    pub(crate) max_sessions: usize,
    pub(crate) drop_next: bool,
    pub(crate) command_log: Vec<String>,
    pub(crate) logins: usize,
    /// Write each reply sentence separately (its own write and flush), as
    /// a real router's replies arrive in separate TCP segments.
    pub(crate) per_sentence: bool,
    /// Answer commands after login like a broken router would.
    pub(crate) misbehave: Option<Misbehave>,
    /// Raw bytes appended to the login reply, in the same write.
    pub(crate) after_login: Option<Vec<u8>>,
    /// Menus whose `listen` is refused with `no such command`, as on a
    /// router (or menu) without listen support.
    pub(crate) refuse_listen: Vec<Menu>,
    /// The most commands one session had waiting for their (delayed)
    /// reply at once: how many a client kept in flight.
    pub(crate) max_in_flight: usize,
    /// Reply bytes written to logged-in sessions (login replies
    /// excluded): the router's side of the API work.
    pub(crate) reply_bytes: u64,
    /// Commands received from logged-in sessions (`/login` and `/quit`
    /// excluded).
    pub(crate) commands: u64,
    /// Menus whose open `listen` commands stay open but send nothing, as
    /// a listen silently broken on the router's side.
    pub(crate) muted_listens: Vec<Menu>,
    /// Per menu, bumped to end the `listen` commands open on it (each
    /// gets `!trap` interrupted and `!done`, as on a router that ends it).
    pub(crate) listen_ends: Vec<(Menu, u64)>,
}

/// Ways a broken or hostile router answers commands after login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Misbehave {
    /// Each reply dribbles out one word per interval and never ends.
    Trickle(Duration),
    /// Every command gets `!re` rows forever.
    EndlessRows,
    /// A sentence of one-byte words that is never terminated.
    UnterminatedSentence,
}

impl Shared {
    pub(crate) fn new(inner: Inner) -> Shared {
        Shared {
            inner: Mutex::new(inner),
            conns: Mutex::new(HashMap::new()),
            next_conn: AtomicU64::new(1),
            changes: listen::MENUS
                .iter()
                .map(|&m| (m, watch::channel(0).0))
                .collect(),
        }
    }

    /// Wakes the open `listen` commands on `menu` (all when `None`) to
    /// look for changes.
    pub(crate) fn changed(&self, menu: Option<Menu>) {
        for (m, tx) in &self.changes {
            if menu.is_none_or(|x| x == *m) {
                tx.send_modify(|n| *n = n.wrapping_add(1));
            }
        }
    }

    pub(crate) fn connections(&self) -> usize {
        lock(&self.conns).len()
    }

    /// Tells every open connection to stop, then waits (bounded) until
    /// they have all gone, so callers can rely on the sockets being closed.
    pub(crate) fn stop_all(&self, how: &ConnCtl) {
        for tx in lock(&self.conns).values() {
            let _ = tx.send(how.clone());
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(3);
        while self.connections() > 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// Orders from the handle to one connection.
#[derive(Debug, Clone)]
pub(crate) enum ConnCtl {
    /// `!fatal <reason>`, then close.
    Fatal(String),
    /// Close without a word, as a rebooting router does.
    Close,
}

/// Orders from the handle to the accept loop.
pub(crate) enum Ctl {
    /// Close the listeners now (acknowledged), listen again after a while.
    Reboot {
        refuse_for: Duration,
        ack: std::sync::mpsc::Sender<()>,
    },
    Shutdown,
}

pub(crate) struct Listeners {
    pub(crate) plain: TcpListener,
    pub(crate) tls: Option<(TcpListener, TlsAcceptor)>,
}

async fn accept(l: Option<&TcpListener>) -> io::Result<(TcpStream, SocketAddr)> {
    match l {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The accept loop; runs until `Ctl::Shutdown` or the handle is dropped.
pub(crate) async fn serve(
    shared: Arc<Shared>,
    listeners: Listeners,
    mut ctl: UnboundedReceiver<Ctl>,
) {
    let plain_addr = listeners.plain.local_addr().ok();
    let tls_addr = listeners
        .tls
        .as_ref()
        .and_then(|(l, _)| l.local_addr().ok());
    let acceptor = listeners.tls.as_ref().map(|(_, a)| a.clone());
    let mut plain = Some(listeners.plain);
    let mut tls = listeners.tls.map(|(l, _)| l);
    let mut reopen: Option<Instant> = None;
    loop {
        tokio::select! {
            msg = ctl.recv() => match msg {
                None | Some(Ctl::Shutdown) => break,
                Some(Ctl::Reboot { refuse_for, ack }) => {
                    // Dropping the listeners makes new connections fail
                    // with "connection refused" until we bind again.
                    plain = None;
                    tls = None;
                    reopen = Some(Instant::now() + refuse_for);
                    let _ = ack.send(());
                }
            },
            res = accept(plain.as_ref()) => match res {
                Ok((stream, _)) => admit(&shared, stream, None),
                Err(e) => accept_error(e).await,
            },
            res = accept(tls.as_ref()) => match res {
                Ok((stream, _)) => admit(&shared, stream, acceptor.clone()),
                Err(e) => accept_error(e).await,
            },
            () = sleep_until(reopen) => {
                let mut ok = true;
                if plain.is_none() && let Some(addr) = plain_addr {
                    plain = TcpListener::bind(addr).await.ok();
                    ok &= plain.is_some();
                }
                if tls.is_none() && let Some(addr) = tls_addr {
                    tls = TcpListener::bind(addr).await.ok();
                    ok &= tls.is_some();
                }
                // The port may be briefly taken; try again shortly.
                reopen = if ok { None } else { Some(Instant::now() + Duration::from_millis(50)) };
            }
        }
    }
}

async fn accept_error(e: io::Error) {
    log::warn!("routeros-sim: accept failed: {e}");
    // Typically out of file descriptors: back off instead of spinning.
    tokio::time::sleep(Duration::from_millis(20)).await;
}

/// Registers and spawns a connection, or closes it at once when the
/// session limit is reached (RouterOS accepts, then drops it).
fn admit(shared: &Arc<Shared>, stream: TcpStream, tls: Option<TlsAcceptor>) {
    let max = lock(&shared.inner).max_sessions;
    let (tx, rx) = mpsc::unbounded_channel();
    let id = shared.next_conn.fetch_add(1, Ordering::Relaxed);
    {
        let mut conns = lock(&shared.conns);
        if conns.len() >= max {
            drop(stream);
            return;
        }
        conns.insert(id, tx);
    }
    let _ = stream.set_nodelay(true);
    let shared = Arc::clone(shared);
    tokio::spawn(async move {
        let _registered = Registered {
            shared: Arc::clone(&shared),
            id,
        };
        match tls {
            None => session(stream, shared, rx).await,
            Some(acceptor) => {
                let mut rx = rx;
                tokio::select! {
                    res = acceptor.accept(stream) => match res {
                        Ok(s) => session(s, shared, rx).await,
                        Err(e) => log::debug!("routeros-sim: TLS handshake failed: {e}"),
                    },
                    _ = rx.recv() => {}
                }
            }
        }
    });
}

/// Removes the connection from the registry however its task ends.
struct Registered {
    shared: Arc<Shared>,
    id: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        lock(&self.shared.conns).remove(&self.id);
    }
}

/// What the writer task is asked to do.
pub(crate) enum Out {
    Data(Vec<u8>),
    /// Write these bytes (part of a reply), then drop the connection.
    Cut(Vec<u8>),
    /// Flush and close.
    Close,
}

async fn writer<W: AsyncWrite + Unpin>(mut w: W, mut rx: UnboundedReceiver<Out>) {
    while let Some(out) = rx.recv().await {
        let (bytes, last) = match out {
            Out::Data(b) => (b, false),
            Out::Cut(b) => (b, true),
            Out::Close => (Vec::new(), true),
        };
        if w.write_all(&bytes).await.is_err() || w.flush().await.is_err() {
            return;
        }
        if last {
            break;
        }
    }
    let _ = w.shutdown().await;
}

fn encode(replies: &[Words], tag: Option<&[u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for words in replies {
        let mut words = words.clone();
        if let Some(tag) = tag {
            words.push([b".tag=".as_slice(), tag].concat());
        }
        // Only a word over 4 GiB fails to encode; the simulator makes none.
        if let Err(e) = encode_sentence(&words, &mut out) {
            log::error!("routeros-sim: cannot encode a reply: {e}");
        }
    }
    out
}

/// A command waiting out the reply delay, cancellable by `/cancel`.
struct Pending {
    seq: u64,
    tag: Option<Vec<u8>>,
    abort: AbortHandle,
}

#[derive(PartialEq, Eq)]
enum Flow {
    Continue,
    Close,
}

struct Session {
    shared: Arc<Shared>,
    out: UnboundedSender<Out>,
    logged_in: bool,
    /// The challenge of a pre-6.43 login in progress.
    challenge: Option<[u8; 16]>,
    pending: Arc<Mutex<Vec<Pending>>>,
    seq: u64,
}

async fn session<S>(stream: S, shared: Arc<Shared>, mut ctl: UnboundedReceiver<ConnCtl>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut rd, wr) = tokio::io::split(stream);
    let (out, out_rx) = mpsc::unbounded_channel();
    let mut writer_task = tokio::spawn(writer(wr, out_rx));
    let mut s = Session {
        shared,
        out,
        logged_in: false,
        challenge: None,
        pending: Arc::new(Mutex::new(Vec::new())),
        seq: 0,
    };
    let mut dec = Decoder::default();
    let mut buf = vec![0u8; 16 * 1024];
    let mut writer_done = false;
    'conn: loop {
        tokio::select! {
            n = rd.read(&mut buf) => {
                let n = match n {
                    Ok(0) | Err(_) => break 'conn,
                    Ok(n) => n,
                };
                dec.feed(&buf[..n]);
                loop {
                    match dec.next_sentence() {
                        Ok(None) => break,
                        Ok(Some(sentence)) => {
                            if s.handle(sentence).await == Flow::Close {
                                break 'conn;
                            }
                        }
                        Err(e) => {
                            if !s.silent() {
                                s.fatal(&e.to_string());
                            }
                            break 'conn;
                        }
                    }
                }
            }
            msg = ctl.recv() => {
                match msg {
                    Some(ConnCtl::Fatal(reason)) => s.fatal(&reason),
                    Some(ConnCtl::Close) | None => {
                        let _ = s.out.send(Out::Close);
                    }
                }
                break 'conn;
            }
            _ = &mut writer_task => {
                writer_done = true;
                break 'conn;
            }
        }
    }
    for p in lock(&s.pending).drain(..) {
        p.abort.abort();
    }
    // Dropping our sender lets the writer finish once the farewell is out.
    drop(s);
    if !writer_done {
        let _ = tokio::time::timeout(Duration::from_secs(2), writer_task).await;
    }
}

impl Session {
    fn silent(&self) -> bool {
        lock(&self.shared.inner).silent
    }

    fn send(&self, replies: &[Words], tag: Option<&[u8]>) {
        send_replies(&self.shared, &self.out, replies, tag);
    }

    /// `!fatal <reason>` (a bare word, never tagged), then close.
    fn fatal(&self, reason: &str) {
        let words = vec![b"!fatal".to_vec(), reason.as_bytes().to_vec()];
        self.send(&[words], None);
        let _ = self.out.send(Out::Close);
    }

    async fn handle(&mut self, sentence: Sentence) -> Flow {
        if self.silent() {
            // A filtered source: the router reads nothing and answers nothing.
            return Flow::Continue;
        }
        let req = match Request::parse(&sentence.into_words()) {
            Ok(r) => r,
            Err(e) => {
                self.fatal(&format!("malformed sentence: {e}"));
                return Flow::Close;
            }
        };
        if self.logged_in && req.path != b"/login" {
            let path = String::from_utf8_lossy(&req.path).into_owned();
            let mut inner = lock(&self.shared.inner);
            inner.command_log.push(path);
            // Ending the session is no work asked of the router.
            if req.path != b"/quit" {
                inner.commands += 1;
            }
        }
        match req.path.as_slice() {
            b"/quit" => {
                self.fatal("session terminated on request");
                Flow::Close
            }
            b"/login" => {
                let delay = lock(&self.shared.inner).reply_delay;
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                self.login(&req);
                Flow::Continue
            }
            _ if !self.logged_in => {
                self.fatal("not logged in");
                Flow::Close
            }
            b"/cancel" => {
                self.cancel(&req);
                Flow::Continue
            }
            _ => {
                self.dispatch(req);
                Flow::Continue
            }
        }
    }

    fn login(&mut self, req: &Request) {
        let tag = req.tag.as_deref();
        let (ok, challenge_reply) = {
            let inner = lock(&self.shared.inner);
            let name_ok = req.attr("name") == Some(inner.user.as_slice());
            if inner.legacy_login {
                match (req.attr("response"), self.challenge.take()) {
                    // Pre-6.43: first `/login` only fetches a challenge.
                    (None, _) => (false, true),
                    (Some(resp), Some(ch)) => {
                        let want = legacy_response(&inner.password, &ch);
                        (name_ok && resp.eq_ignore_ascii_case(want.as_bytes()), false)
                    }
                    (Some(_), None) => (false, false),
                }
            } else {
                let pw_ok = req.attr("password") == Some(inner.password.as_slice());
                (name_ok && pw_ok, false)
            }
        };
        if challenge_reply {
            let ch = random16();
            self.challenge = Some(ch);
            let ret = format!("=ret={}", hex(&ch)).into_bytes();
            self.send(&[vec![b"!done".to_vec(), ret]], tag);
        } else if ok {
            self.logged_in = true;
            let trailer = {
                let mut inner = lock(&self.shared.inner);
                inner.logins += 1;
                inner.after_login.clone()
            };
            let mut bytes = encode(&[done()], tag);
            bytes.extend(trailer.unwrap_or_default());
            let _ = self.out.send(Out::Data(bytes));
        } else {
            self.send(&trap("invalid user name or password (6)"), tag);
        }
    }

    /// Runs a command now, or after the reply delay in its own task so that
    /// `/cancel` can interrupt it and other commands can overtake it.
    fn dispatch(&mut self, req: Request) {
        if let Some(how) = lock(&self.shared.inner).misbehave {
            tokio::spawn(misbehave(how, self.out.clone(), req.tag.clone()));
            return;
        }
        if req.path.ends_with(b"/listen") {
            self.listen(req);
            return;
        }
        let delay = lock(&self.shared.inner).reply_delay;
        if delay.is_zero() {
            respond(&self.shared, &self.out, &req);
            return;
        }
        self.seq += 1;
        let seq = self.seq;
        let tag = req.tag.clone();
        let shared = Arc::clone(&self.shared);
        let out = self.out.clone();
        let pending = Arc::clone(&self.pending);
        // Held across spawn + push so the task cannot finish unregistered.
        let mut list = lock(&self.pending);
        let task = tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let mut list = lock(&pending);
            // Whoever removes the entry owns the reply: us or `/cancel`.
            if let Some(i) = list.iter().position(|p| p.seq == seq) {
                list.remove(i);
                respond(&shared, &out, &req);
            }
        });
        list.push(Pending {
            seq,
            tag,
            abort: task.abort_handle(),
        });
        let waiting = list.len();
        // Never hold both locks: the reply tasks take `pending`, then `inner`.
        drop(list);
        let mut inner = lock(&self.shared.inner);
        inner.max_in_flight = inner.max_in_flight.max(waiting);
    }

    /// `<menu>/listen`: runs until cancelled (or the session ends), sending
    /// a `!re` per change; registered like a delayed command so that
    /// `/cancel` ends it the RouterOS way (`!trap` interrupted, `!done`).
    fn listen(&mut self, req: Request) {
        let tag = req.tag.clone();
        let menu = listen::menu_of(&req.path)
            .filter(|m| !lock(&self.shared.inner).refuse_listen.contains(m));
        let Some(menu) = menu else {
            self.send(&trap("no such command"), tag.as_deref());
            return;
        };
        self.seq += 1;
        let seq = self.seq;
        let shared = Arc::clone(&self.shared);
        let out = self.out.clone();
        let mut list = lock(&self.pending);
        let task = tokio::spawn(listen::run(shared, out, menu, req));
        list.push(Pending {
            seq,
            tag,
            abort: task.abort_handle(),
        });
    }

    /// `/cancel [=tag=X]`: the interrupted command gets a category-2 trap,
    /// `/cancel` its `!done`, then the interrupted command its `!done`.
    fn cancel(&mut self, req: &Request) {
        let target = req.attr("tag");
        let cancelled: Vec<Pending> = {
            let mut list = lock(&self.pending);
            let (hit, keep): (Vec<Pending>, Vec<Pending>) = list
                .drain(..)
                .partition(|p| target.is_none() || p.tag.as_deref() == target);
            *list = keep;
            hit
        };
        let interrupted = vec![
            b"!trap".to_vec(),
            b"=category=2".to_vec(),
            b"=message=interrupted".to_vec(),
        ];
        for p in &cancelled {
            p.abort.abort();
            self.send(std::slice::from_ref(&interrupted), p.tag.as_deref());
        }
        self.send(&[done()], req.tag.as_deref());
        for p in &cancelled {
            self.send(&[done()], p.tag.as_deref());
        }
    }
}

/// Queues replies for the writer: one write for all, or one per sentence.
pub(crate) fn send_replies(
    shared: &Shared,
    out: &UnboundedSender<Out>,
    replies: &[Words],
    tag: Option<&[u8]>,
) {
    let mut written = 0u64;
    let per_sentence = lock(&shared.inner).per_sentence;
    if per_sentence {
        for r in replies {
            let bytes = encode(std::slice::from_ref(r), tag);
            written += bytes.len() as u64;
            let _ = out.send(Out::Data(bytes));
        }
    } else {
        let bytes = encode(replies, tag);
        written += bytes.len() as u64;
        let _ = out.send(Out::Data(bytes));
    }
    let mut inner = lock(&shared.inner);
    inner.reply_bytes = inner.reply_bytes.saturating_add(written);
}

/// Plays a broken router for one command until the connection is gone.
async fn misbehave(how: Misbehave, out: UnboundedSender<Out>, tag: Option<Vec<u8>>) {
    let tag_word = tag.map(|t| [b".tag=".as_slice(), &t].concat());
    let word = |w: &[u8]| {
        let mut b = Vec::new();
        crate::proto::encode_length(w.len() as u32, &mut b);
        b.extend_from_slice(w);
        b
    };
    match how {
        Misbehave::Trickle(every) => {
            let mut words = vec![word(b"!re")];
            if let Some(t) = &tag_word {
                words.push(word(t));
            }
            let mut n = 0u64;
            loop {
                let next = words
                    .get(n as usize)
                    .cloned()
                    .unwrap_or_else(|| word(format!("=k{n}=v").as_bytes()));
                if out.send(Out::Data(next)).is_err() {
                    return;
                }
                n += 1;
                tokio::time::sleep(every).await;
            }
        }
        Misbehave::EndlessRows => {
            let mut row = vec![b"!re".to_vec(), b"=name=endless".to_vec()];
            if let Some(t) = &tag_word {
                row.push(t.clone());
            }
            let mut chunk = Vec::new();
            for _ in 0..200 {
                let _ = encode_sentence(&row, &mut chunk);
            }
            loop {
                if out.send(Out::Data(chunk.clone())).is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        Misbehave::UnterminatedSentence => {
            if out.send(Out::Data(word(b"!re"))).is_err() {
                return;
            }
            let tiny: Vec<u8> = std::iter::repeat_n([1u8, b'x'], 4096).flatten().collect();
            loop {
                if out.send(Out::Data(tiny.clone())).is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    }
}

/// Executes a command and queues its reply; honours `drop_mid_reply_next`.
fn respond(shared: &Shared, out: &UnboundedSender<Out>, req: &Request) {
    let (replies, cut) = {
        let mut inner = lock(&shared.inner);
        let cut = std::mem::take(&mut inner.drop_next);
        (execute(&mut inner.router, req), cut)
    };
    if !listen::is_read_only(&req.path) {
        for menu in listen::touched(&req.path) {
            shared.changed(Some(menu));
        }
    }
    if !cut {
        send_replies(shared, out, &replies, req.tag.as_deref());
        return;
    }
    let bytes = encode(&replies, req.tag.as_deref());
    let msg = if cut {
        Out::Cut(bytes[..bytes.len() / 2].to_vec())
    } else {
        Out::Data(bytes)
    };
    let _ = out.send(msg);
}

/// `00` + hex MD5(0x00, password, challenge): the pre-6.43 login response.
pub(crate) fn legacy_response(password: &[u8], challenge: &[u8]) -> String {
    let mut h = Md5::new();
    h.update([0u8]);
    h.update(password);
    h.update(challenge);
    format!("00{}", hex(&h.finalize()))
}

/// 16 random bytes from the ring provider's CSPRNG, with a time-based
/// fallback that is good enough for a simulator's login challenge.
pub(crate) fn random16() -> [u8; 16] {
    let mut buf = [0u8; 16];
    let rng = rustls::crypto::ring::default_provider().secure_random;
    if rng.fill(&mut buf).is_err() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        buf = t.to_le_bytes();
    }
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The response for a known challenge, checked against an independent
    /// MD5 of the same bytes (RFC 1321 implementation in the md-5 crate).
    #[test]
    fn legacy_response_shape() {
        let challenge = [0x11u8; 16];
        let r = legacy_response(b"secret", &challenge);
        assert_eq!(r.len(), 34);
        assert!(r.starts_with("00"));
        let mut input = vec![0u8];
        input.extend_from_slice(b"secret");
        input.extend_from_slice(&challenge);
        assert_eq!(&r[2..], hex(&Md5::digest(&input)));
        // RFC 1321 vector, to pin the hash itself.
        assert_eq!(
            hex(&Md5::digest(b"abc")),
            "900150983cd24fb0d6963f7d28e17f72"
        );
    }

    #[test]
    fn random_challenges_differ() {
        assert_ne!(random16(), random16());
    }

    #[test]
    fn encode_adds_tag_to_every_sentence() {
        let bytes = encode(&trap("x"), Some(b"7"));
        let mut dec = Decoder::default();
        dec.feed(&bytes);
        let mut n = 0;
        while let Ok(Some(s)) = dec.next_sentence() {
            assert_eq!(s.words().last(), Some(&b".tag=7"[..]));
            n += 1;
        }
        assert_eq!(n, 2);
    }
}
