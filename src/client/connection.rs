//! One established API session.
//!
//! A driver task owns the socket. Callers hand it commands over a channel;
//! it gives each a numeric `.tag`, writes it, and routes every reply
//! sentence back by tag, so any number of tasks share the one session.
//! The driver also runs the keepalive: after `keepalive` of silence it
//! sends a cheap `/system/identity/print`, and if that probe has no `!done`
//! within `command_timeout` the session is declared dead, however many
//! bytes trickle in meanwhile. A command that times out sends a probe at
//! once, so a stalled router costs the session instead of leaving the
//! agent polling into timeouts.
//!
//! Replies stream: each `!re` is handed to the command's sink as it is
//! decoded ([`Connection::fold`] converts rows in place, [`Connection::stream`]
//! passes them on), so a 10,000-row print never exists whole in memory.

use rustc_hash::FxHashMap as HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::{Instant, sleep, sleep_until, timeout};

use super::{ClientError, RouterConfig, login, router_addr, tls};
use crate::cause::Cause;
use crate::proto::{Attrs, Command, Decoder, ReplyKind};

/// A `!trap` reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trap {
    pub category: Option<u8>,
    pub message: String,
}

/// Everything a command produced up to its `!done`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Response {
    /// One entry per `!re`.
    pub rows: Vec<Attrs>,
    /// Attributes of `!done`, e.g. `=ret=*1A` after an `add`.
    pub done: Attrs,
    /// Every `!trap`, in order (there may be several).
    pub traps: Vec<Trap>,
}

impl Response {
    /// `=ret=` of the `!done`.
    pub fn ret(&self) -> Option<&[u8]> {
        self.done.get("ret")
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// One piece of a reply, as it arrives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    Row(Attrs),
    Trap(Trap),
    /// `!done` and its attributes: the last item of a reply.
    Done(Attrs),
}

/// Where the driver delivers one command's reply.
trait Sink: Send {
    /// A `!re` or `!trap`. False when nobody listens any more.
    fn item(&mut self, item: Item) -> bool;
    /// A `!re` the sink only reads: it is handed back, and the decoder
    /// reuses its buffers for the next row (see [`Decoder::recycle`]).
    fn row(&mut self, row: Attrs) -> (bool, Option<Attrs>) {
        (self.item(Item::Row(row)), None)
    }
    /// The reply ended: `!done` attributes, or why it failed.
    fn finish(self: Box<Self>, result: Result<Attrs, ClientError>);
    /// False once the caller has given up.
    fn is_open(&self) -> bool;
    /// True when rows wait in a queue for another task to read.
    fn queues(&self) -> bool {
        false
    }
    /// True when rows come in bursts (a `print`), so reads are worth
    /// coalescing (see [`READ_COALESCE`]); false for a follow (`listen`),
    /// whose rows are sparse and wanted at once.
    fn bulk(&self) -> bool {
        true
    }
}

/// A fold's result: the accumulated value, `!done` attributes and traps.
#[derive(Debug)]
pub struct Folded<T> {
    pub value: T,
    pub done: Attrs,
    pub traps: Vec<Trap>,
}

struct FoldSink<T, F> {
    value: Option<T>,
    f: F,
    traps: Vec<Trap>,
    reply: Option<oneshot::Sender<Result<Folded<T>, ClientError>>>,
}

impl<T: Send, F: FnMut(&mut T, &Attrs) + Send> Sink for FoldSink<T, F> {
    fn row(&mut self, row: Attrs) -> (bool, Option<Attrs>) {
        if let Some(v) = self.value.as_mut() {
            (self.f)(v, &row);
        }
        (self.is_open(), Some(row))
    }

    fn item(&mut self, item: Item) -> bool {
        match item {
            Item::Row(row) => {
                self.row(row);
            }
            Item::Trap(t) => self.traps.push(t),
            Item::Done(_) => {}
        }
        self.is_open()
    }

    fn finish(mut self: Box<Self>, result: Result<Attrs, ClientError>) {
        let (Some(reply), Some(value)) = (self.reply.take(), self.value.take()) else {
            return;
        };
        let _ = reply.send(result.map(|done| Folded {
            value,
            done,
            traps: std::mem::take(&mut self.traps),
        }));
    }

    fn is_open(&self) -> bool {
        self.reply.as_ref().is_some_and(|r| !r.is_closed())
    }
}

struct StreamSink {
    tx: mpsc::UnboundedSender<Result<Item, ClientError>>,
    /// Items sent and not yet read, and how many may wait.
    unread: Arc<AtomicUsize>,
    limit: Option<usize>,
    path: String,
    /// Rows the reader is done with ([`ReplyStream::recycle`]).
    spare: Arc<Mutex<Vec<Attrs>>>,
}

/// Rows a stream's reader may hand back for reuse: enough for what one
/// socket read decodes (the reader runs between reads), at a few hundred
/// bytes per row.
const SPARE_ROWS: usize = 2 * YIELD_AFTER_ROWS;

/// How many rows the driver queues for stream readers before it lets them
/// run (see [`Driver::drain_replies`]).
const YIELD_AFTER_ROWS: usize = 128;

impl Sink for StreamSink {
    fn row(&mut self, row: Attrs) -> (bool, Option<Attrs>) {
        let open = self.item(Item::Row(row));
        // A row handed back becomes the decoder's buffer for the next one:
        // musl's malloc unmaps emptied memory at once, so a row allocated
        // and freed per sentence cost an mmap and a munmap every few rows.
        let back = self.spare.lock().ok().and_then(|mut s| s.pop());
        (open, back)
    }

    fn item(&mut self, item: Item) -> bool {
        if let Some(limit) = self.limit
            && self.unread.load(Ordering::Relaxed) >= limit
        {
            // A router flooding a listen faster than it is read: stop it
            // (returning false cancels the command) instead of queueing
            // without bound; the reader learns why.
            let _ = self.tx.send(Err(ClientError::Behind {
                command: std::mem::take(&mut self.path),
                unread: limit,
            }));
            return false;
        }
        self.unread.fetch_add(1, Ordering::Relaxed);
        self.tx.send(Ok(item)).is_ok()
    }

    fn finish(self: Box<Self>, result: Result<Attrs, ClientError>) {
        let _ = self.tx.send(result.map(Item::Done));
    }

    fn is_open(&self) -> bool {
        !self.tx.is_closed()
    }

    fn queues(&self) -> bool {
        true
    }

    /// Bounded streams are follows (`listen`, `print follow`); unbounded
    /// ones are prints read as they arrive (`api`).
    fn bulk(&self) -> bool {
        self.limit.is_none()
    }
}

enum Msg {
    Run {
        tag: u64,
        cmd: Command,
        sink: Box<dyn Sink>,
        /// Reply size cap; `None` for endless streams (`listen`, `follow`).
        cap: Option<u64>,
    },
    Cancel {
        tag: u64,
    },
    /// Send `/quit` and end the session.
    Quit,
}

/// A handle to one logged-in session. Cheap to clone; the session ends
/// when the router closes it or the last handle is dropped.
#[derive(Clone)]
pub struct Connection {
    tx: mpsc::UnboundedSender<Msg>,
    next_tag: Arc<AtomicU64>,
    command_timeout: Duration,
    max_reply_bytes: u64,
    closed: watch::Receiver<Option<ClientError>>,
}

impl Connection {
    /// Connects, optionally wraps in TLS, logs in and starts the driver.
    pub async fn open(cfg: &RouterConfig) -> Result<Connection, ClientError> {
        let addr = router_addr(cfg);
        let tcp = match timeout(cfg.connect_timeout, TcpStream::connect(&addr)).await {
            Err(_) => {
                return Err(ClientError::ConnectTimeout {
                    addr,
                    after: cfg.connect_timeout,
                });
            }
            Ok(Err(e)) => {
                return Err(ClientError::Connect {
                    addr,
                    reason: Cause::with(describe_io(&e), e),
                });
            }
            Ok(Ok(s)) => s,
        };
        // Commands are small and latency matters more than packet count.
        let _ = tcp.set_nodelay(true);
        let mut stream: Box<dyn Io> = match &cfg.tls {
            None => Box::new(tcp),
            Some(tls_cfg) => {
                // Read per connect (so a replaced CA file takes effect), on a
                // blocking thread: never file I/O on the runtime thread.
                let for_read = tls_cfg.clone();
                let ca_pem = tokio::task::spawn_blocking(move || tls::read_ca_file(&for_read))
                    .await
                    .map_err(|e| {
                        ClientError::Tls(Cause::with(format!("CA file reader failed: {e}"), e))
                    })??;
                let connector = tokio_rustls::TlsConnector::from(tls::client_config(
                    tls_cfg,
                    ca_pem.as_deref(),
                )?);
                let name = tls::server_name(&cfg.host)?;
                match timeout(cfg.connect_timeout, connector.connect(name, tcp)).await {
                    Err(_) => {
                        return Err(ClientError::ConnectTimeout {
                            addr,
                            after: cfg.connect_timeout,
                        });
                    }
                    Ok(Err(e)) => return Err(tls::handshake_error(e)),
                    Ok(Ok(s)) => Box::new(s),
                }
            }
        };
        let mut decoder = Decoder::with_limits(cfg.max_word_bytes, cfg.max_sentence_bytes);
        match timeout(
            cfg.command_timeout,
            login::login(&mut stream, &mut decoder, &cfg.user, cfg.password.expose()),
        )
        .await
        {
            Err(_) => return Err(ClientError::LoginTimeout(cfg.command_timeout)),
            Ok(result) => result?,
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let (closed_tx, closed) = watch::channel(None);
        let driver = Driver {
            stream,
            decoder,
            rx,
            pending: HashMap::default(),
            keepalive: cfg.keepalive,
            command_timeout: cfg.command_timeout,
            probe: None,
            last_rx: Instant::now(),
            read_buf: Vec::new(),
            quitting: false,
            queued: 0,
        };
        tokio::spawn(async move {
            let reason = driver.run().await;
            log::debug!("API session ended: {reason}");
            let _ = closed_tx.send(Some(reason));
        });
        Ok(Connection {
            tx,
            next_tag: Arc::new(AtomicU64::new(1)),
            command_timeout: cfg.command_timeout,
            max_reply_bytes: cfg.max_reply_bytes,
            closed,
        })
    }

    /// Runs a command and folds each `!re` into `init` as it arrives, so
    /// the rows never exist together in their wire form. The whole reply is
    /// bounded by the command timeout and `max_reply_bytes`. A trap is not
    /// an error here; it is in [`Folded::traps`].
    pub async fn fold<T, F>(&self, cmd: Command, init: T, f: F) -> Result<Folded<T>, ClientError>
    where
        T: Send + 'static,
        F: FnMut(&mut T, &Attrs) + Send + 'static,
    {
        let path = String::from_utf8_lossy(cmd.path()).into_owned();
        let (reply, rx) = oneshot::channel();
        let sink = FoldSink {
            value: Some(init),
            f,
            traps: Vec::new(),
            reply: Some(reply),
        };
        let tag = self.submit(cmd, Box::new(sink), Some(self.max_reply_bytes))?;
        // If the caller gives up (timeout, or its future is dropped), tell
        // the router to stop working on it.
        let guard = CancelOnDrop {
            tx: self.tx.clone(),
            tag,
        };
        let result = match timeout(self.command_timeout, rx).await {
            Err(_) => Err(ClientError::Timeout {
                command: path,
                after: self.command_timeout,
            }),
            Ok(Err(_)) => Err(self.closed_reason()),
            Ok(Ok(result)) => {
                std::mem::forget(guard);
                return result;
            }
        };
        drop(guard);
        result
    }

    /// Runs a command and hands each reply item over as it arrives, with
    /// no timeout and no size cap: for `listen` and `print follow`, which
    /// never end by themselves. Dropping the stream cancels the command.
    pub fn stream(&self, cmd: Command) -> Result<ReplyStream, ClientError> {
        self.stream_with(cmd, None)
    }

    /// Like [`stream`](Self::stream), but when `max_unread` items wait
    /// unread the command is cancelled and the stream ends with
    /// [`ClientError::Behind`]: memory stays bounded whatever the router
    /// sends.
    pub fn stream_bounded(
        &self,
        cmd: Command,
        max_unread: usize,
    ) -> Result<ReplyStream, ClientError> {
        self.stream_with(cmd, Some(max_unread))
    }

    fn stream_with(&self, cmd: Command, limit: Option<usize>) -> Result<ReplyStream, ClientError> {
        let (tx, rx) = mpsc::unbounded_channel();
        let unread = Arc::new(AtomicUsize::new(0));
        let spare = Arc::new(Mutex::new(Vec::new()));
        let sink = StreamSink {
            tx,
            unread: Arc::clone(&unread),
            limit,
            path: String::from_utf8_lossy(cmd.path()).into_owned(),
            spare: Arc::clone(&spare),
        };
        let tag = self.submit(cmd, Box::new(sink), None)?;
        Ok(ReplyStream {
            rx,
            unread,
            spare,
            _cancel: CancelOnDrop {
                tx: self.tx.clone(),
                tag,
            },
        })
    }

    fn submit(
        &self,
        cmd: Command,
        sink: Box<dyn Sink>,
        cap: Option<u64>,
    ) -> Result<u64, ClientError> {
        if let Some(reason) = self.closed.borrow().clone() {
            return Err(reason);
        }
        let tag = self.next_tag.fetch_add(1, Ordering::Relaxed);
        self.tx
            .send(Msg::Run {
                tag,
                cmd,
                sink,
                cap,
            })
            .map_err(|_| self.closed_reason())?;
        Ok(tag)
    }

    /// Runs a command and collects its rows, `!done` attributes and
    /// traps. For small replies; use [`fold`](Self::fold) for lists.
    pub async fn execute_raw(&self, cmd: Command) -> Result<Response, ClientError> {
        let folded = self
            .fold(cmd, Vec::new(), |rows: &mut Vec<Attrs>, row| {
                rows.push(row.clone())
            })
            .await?;
        Ok(Response {
            rows: folded.value,
            done: folded.done,
            traps: folded.traps,
        })
    }

    /// Like [`execute_raw`](Self::execute_raw), but a `!trap` is an error.
    pub async fn execute(&self, cmd: Command) -> Result<Response, ClientError> {
        let path = String::from_utf8_lossy(cmd.path()).into_owned();
        let response = self.execute_raw(cmd).await?;
        match response.traps.first() {
            None => Ok(response),
            Some(trap) => Err(ClientError::Trap {
                command: path,
                category: trap.category,
                message: trap.message.clone(),
            }),
        }
    }

    /// Sends `/quit` and waits (at most `limit`) until the session ended.
    pub async fn quit(&self, limit: Duration) {
        if self.tx.send(Msg::Quit).is_ok() {
            let _ = timeout(limit, self.closed()).await;
        }
    }

    pub fn is_closed(&self) -> bool {
        self.closed.borrow().is_some() || self.tx.is_closed()
    }

    /// Resolves when the session ends, with the reason.
    pub async fn closed(&self) -> ClientError {
        let mut rx = self.closed.clone();
        match rx.wait_for(Option::is_some).await {
            Ok(reason) => reason
                .clone()
                .unwrap_or_else(|| ClientError::ConnectionLost("closed".into())),
            Err(_) => ClientError::ConnectionLost("closed".into()),
        }
    }

    fn closed_reason(&self) -> ClientError {
        self.closed
            .borrow()
            .clone()
            .unwrap_or_else(|| ClientError::ConnectionLost("session closed".into()))
    }
}

/// The items of a streamed reply; see [`Connection::stream`].
pub struct ReplyStream {
    rx: mpsc::UnboundedReceiver<Result<Item, ClientError>>,
    unread: Arc<AtomicUsize>,
    spare: Arc<Mutex<Vec<Attrs>>>,
    _cancel: CancelOnDrop,
}

impl ReplyStream {
    /// The next item; `None` after `!done` or an error was delivered.
    pub async fn next(&mut self) -> Option<Result<Item, ClientError>> {
        let item = self.rx.recv().await;
        if matches!(item, Some(Ok(_))) {
            self.unread.fetch_sub(1, Ordering::Relaxed);
        }
        item
    }

    /// The next item if one has already arrived.
    pub fn try_next(&mut self) -> Option<Result<Item, ClientError>> {
        let item = self.rx.try_recv().ok();
        if matches!(item, Some(Ok(_))) {
            self.unread.fetch_sub(1, Ordering::Relaxed);
        }
        item
    }

    /// Hands a row read from this stream back, for the next row's
    /// buffers. Optional; a long print reads fastest when each row comes
    /// back once handled.
    pub fn recycle(&self, row: Attrs) {
        if let Ok(mut spare) = self.spare.lock()
            && spare.len() < SPARE_ROWS
        {
            spare.push(row);
        }
    }
}

struct CancelOnDrop {
    tx: mpsc::UnboundedSender<Msg>,
    tag: u64,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        let _ = self.tx.send(Msg::Cancel { tag: self.tag });
    }
}

fn describe_io(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
        _ => e.to_string(),
    }
}

struct Pending {
    sink: Box<dyn Sink>,
    /// For error messages.
    path: String,
    /// Bytes of reply received so far, and the cap.
    received: u64,
    cap: Option<u64>,
}

/// Tag of the keepalive probe; callers' tags count up from 1 and never reach it.
const PROBE_TAG: u64 = u64::MAX;

struct Driver {
    stream: Box<dyn Io>,
    decoder: Decoder,
    rx: mpsc::UnboundedReceiver<Msg>,
    /// By tag, looked up per row: Fx hashing, not SipHash (a handful of
    /// entries under tags we chose).
    pending: HashMap<u64, Pending>,
    keepalive: Duration,
    command_timeout: Duration,
    /// When the outstanding keepalive probe was sent.
    probe: Option<Instant>,
    last_rx: Instant,
    read_buf: Vec<u8>,
    /// `/quit` was sent; the router's `!fatal` and close are expected.
    quitting: bool,
    /// Rows queued for stream readers since the driver last yielded.
    queued: usize,
}

/// After a read that was short (the socket had no more) but brought rows,
/// the driver waits this long before reading again. A router streaming a
/// long reply sends it a segment (or, on a fast link, a sentence) at a
/// time, and a reader faster than the sender would otherwise wake, poll and
/// read once per sentence: 10,000 rows cost 10,000 wake-ups instead of a few
/// dozen reads of what gathered meanwhile. A row of a quiet `listen` is
/// handled at once: follows do not count (see [`Sink::bulk`]), so a burst
/// of them (one per router write the agent makes) costs no waits.
const READ_COALESCE: Duration = Duration::from_millis(1);

impl Driver {
    async fn run(mut self) -> ClientError {
        let reason = self.serve().await;
        for (_, p) in self.pending.drain() {
            p.sink.finish(Err(reason.clone()));
        }
        reason
    }

    async fn serve(&mut self) -> ClientError {
        self.read_buf = vec![0u8; 16 * 1024];
        // Bytes that came in the same segment as the login reply are
        // already in the decoder: decode them now, not at the next read.
        if let Err(e) = self.drain_replies().await {
            return e;
        }
        loop {
            let deadline = match self.probe {
                None => self.last_rx + self.keepalive,
                // From when the probe was sent, not from the last byte: a
                // router trickling a byte a second must not keep a dead
                // session alive.
                Some(sent) => sent + self.command_timeout,
            };
            tokio::select! {
                msg = self.rx.recv() => {
                    let Some(msg) = msg else {
                        // Every handle is gone: say goodbye politely.
                        let _ = self.write(&Command::new("/quit"), None).await;
                        return ClientError::ConnectionLost("closed by the agent".into());
                    };
                    if let Err(e) = self.handle_msg(msg).await {
                        return e;
                    }
                }
                read = self.stream.read(&mut self.read_buf) => {
                    let n = match read {
                        Ok(0) if self.quitting => return ClientError::ConnectionLost("closed by the agent".into()),
                        Ok(0) => return ClientError::ConnectionLost("router closed the connection".into()),
                        Ok(n) => n,
                        Err(e) => return ClientError::ConnectionLost(Cause::of(e)),
                    };
                    self.last_rx = Instant::now();
                    self.decoder.feed(&self.read_buf[..n]);
                    match self.drain_replies().await {
                        Err(e) => return e,
                        Ok(rows) if rows > 0 && n < self.read_buf.len() => {
                            sleep(READ_COALESCE).await;
                        }
                        Ok(_) => {}
                    }
                }
                _ = sleep_until(deadline) => {
                    if self.probe.is_some() {
                        return ClientError::Timeout {
                            command: "keepalive /system/identity/print".into(),
                            after: self.command_timeout,
                        };
                    }
                    if let Err(e) = self.send_probe().await {
                        return e;
                    }
                }
            }
        }
    }

    async fn handle_msg(&mut self, msg: Msg) -> Result<(), ClientError> {
        match msg {
            Msg::Quit => {
                // RouterOS answers `/quit` with `!fatal` and closes; wait for
                // that (the caller bounds the wait), so the router has seen
                // the goodbye before the agent exits.
                self.write(&Command::new("/quit"), None).await?;
                self.quitting = true;
            }
            Msg::Run {
                tag,
                cmd,
                sink,
                cap,
            } => {
                if !sink.is_open() {
                    return Ok(());
                }
                self.write(&cmd, Some(tag)).await?;
                let path = String::from_utf8_lossy(cmd.path()).into_owned();
                self.pending.insert(
                    tag,
                    Pending {
                        sink,
                        path,
                        received: 0,
                        cap,
                    },
                );
            }
            Msg::Cancel { tag } => {
                if self.pending.remove(&tag).is_some() {
                    self.cancel(tag).await?;
                }
            }
        }
        Ok(())
    }

    /// Asks the router to stop a command whose caller is gone.
    async fn cancel(&mut self, tag: u64) -> Result<(), ClientError> {
        let cancel = Command::new("/cancel").attr("tag", tag.to_string());
        self.write(&cancel, Some(PROBE_TAG - 1)).await?;
        // A command that got no answer may mean a dead session: check now
        // rather than at the next idle keepalive.
        if self.probe.is_none() {
            self.send_probe().await?;
        }
        Ok(())
    }

    async fn send_probe(&mut self) -> Result<(), ClientError> {
        self.probe = Some(Instant::now());
        let probe = Command::new("/system/identity/print");
        self.write(&probe, Some(PROBE_TAG)).await
    }

    async fn write(&mut self, cmd: &Command, tag: Option<u64>) -> Result<(), ClientError> {
        let mut out = Vec::new();
        let tag = tag.map(|t| t.to_string());
        cmd.encode(tag.as_deref().map(str::as_bytes), &mut out)?;
        self.stream
            .write_all(&out)
            .await
            .map_err(|e| ClientError::ConnectionLost(Cause::of(e)))?;
        self.stream
            .flush()
            .await
            .map_err(|e| ClientError::ConnectionLost(Cause::of(e)))
    }

    /// Handles every reply the decoder holds; returns how many `!re` rows
    /// of bulk replies (see [`Sink::bulk`]) were delivered.
    async fn drain_replies(&mut self) -> Result<u64, ClientError> {
        let mut rows = 0;
        while let Some((reply, size)) = self.decoder.next_reply()? {
            let size = size as u64;
            if reply.kind == ReplyKind::Fatal {
                let reason =
                    String::from_utf8_lossy(reply.fatal_reason().unwrap_or(b"")).into_owned();
                if self.quitting {
                    return Err(ClientError::ConnectionLost("closed by the agent".into()));
                }
                return Err(ClientError::Fatal(reason));
            }
            let Some(tag) = reply.tag().and_then(crate::name::parse_decimal) else {
                log::debug!("ignoring untagged {} reply", reply.kind.as_str());
                continue;
            };
            if tag == PROBE_TAG {
                if reply.kind == ReplyKind::Done {
                    self.probe = None;
                }
                continue;
            }
            // Replies to cancelled commands (and to /cancel itself) land here.
            let Some(pending) = self.pending.get_mut(&tag) else {
                continue;
            };
            pending.received += size;
            if pending.cap.is_some_and(|cap| pending.received > cap) {
                if let Some(p) = self.pending.remove(&tag) {
                    let cap = p.cap.unwrap_or_default();
                    p.sink.finish(Err(ClientError::ReplyTooLarge {
                        command: p.path,
                        cap,
                    }));
                }
                self.cancel(tag).await?;
                continue;
            }
            let open = match reply.kind {
                ReplyKind::Re => {
                    self.queued += usize::from(pending.sink.queues());
                    rows += u64::from(pending.sink.bulk());
                    let (open, back) = pending.sink.row(reply.attrs);
                    if let Some(attrs) = back {
                        self.decoder.recycle(attrs);
                    }
                    open
                }
                ReplyKind::Trap => {
                    let category = reply.category();
                    let message =
                        String::from_utf8_lossy(reply.message().unwrap_or(b"")).into_owned();
                    pending.sink.item(Item::Trap(Trap { category, message }))
                }
                ReplyKind::Empty | ReplyKind::Fatal => true,
                ReplyKind::Done => {
                    if let Some(done) = self.pending.remove(&tag) {
                        done.sink.finish(Ok(reply.attrs));
                    }
                    continue;
                }
            };
            if !open {
                // The caller dropped its stream: stop the command.
                self.pending.remove(&tag);
                self.cancel(tag).await?;
            }
        }
        if self.queued >= YIELD_AFTER_ROWS {
            // Let stream readers take what was queued: on the one runtime
            // thread the driver would otherwise decode thousands of rows
            // (until its I/O budget ran out) ahead of the reader, holding
            // them all, with none handed back in time for reuse. Not after
            // every read: rows trickling in would then cost a task switch
            // and a socket poll each.
            self.queued = 0;
            tokio::task::yield_now().await;
        }
        Ok(rows)
    }
}
