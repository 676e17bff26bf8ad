//! One established API session.
//!
//! A driver task owns the socket. Callers hand it commands over a channel;
//! it gives each a numeric `.tag`, writes it, and routes every reply
//! sentence back by tag, so any number of tasks share the one session.
//! The driver also runs the keepalive: after `keepalive` of silence it
//! sends a cheap `/system/identity/print`, and if the router then says
//! nothing at all for `command_timeout`, the session is declared dead.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::{Instant, sleep_until, timeout};

use super::{ClientError, RouterConfig, login, router_addr, tls};
use crate::proto::{Attrs, Command, Decoder, Reply, ReplyKind};

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

enum Msg {
    Run {
        tag: u64,
        cmd: Command,
        reply: oneshot::Sender<Result<Response, ClientError>>,
    },
    Cancel {
        tag: u64,
    },
}

/// A handle to one logged-in session. Cheap to clone; the session ends
/// when the router closes it or the last handle is dropped.
#[derive(Clone)]
pub struct Connection {
    tx: mpsc::UnboundedSender<Msg>,
    next_tag: Arc<AtomicU64>,
    command_timeout: Duration,
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
                    reason: describe_io(&e),
                });
            }
            Ok(Ok(s)) => s,
        };
        // Commands are small and latency matters more than packet count.
        let _ = tcp.set_nodelay(true);
        let mut stream: Box<dyn Io> = match &cfg.tls {
            None => Box::new(tcp),
            Some(tls_cfg) => {
                let connector = tokio_rustls::TlsConnector::from(tls::client_config(tls_cfg)?);
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
        let mut decoder = Decoder::new(cfg.max_word_bytes);
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
            pending: HashMap::new(),
            keepalive: cfg.keepalive,
            command_timeout: cfg.command_timeout,
            probe: None,
            last_rx: Instant::now(),
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
            closed,
        })
    }

    /// Runs a command and returns its rows, `!done` attributes and traps.
    /// A trap is not an error here (the `api` CLI prints them).
    pub async fn execute_raw(&self, cmd: Command) -> Result<Response, ClientError> {
        if let Some(reason) = self.closed.borrow().clone() {
            return Err(reason);
        }
        let tag = self.next_tag.fetch_add(1, Ordering::Relaxed);
        let path = String::from_utf8_lossy(cmd.path()).into_owned();
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Msg::Run { tag, cmd, reply })
            .map_err(|_| self.closed_reason())?;
        // If the caller gives up (timeout, or its future is dropped), tell
        // the router to stop working on it.
        let guard = CancelOnDrop { tx: &self.tx, tag };
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

struct CancelOnDrop<'a> {
    tx: &'a mpsc::UnboundedSender<Msg>,
    tag: u64,
}

impl Drop for CancelOnDrop<'_> {
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
    reply: oneshot::Sender<Result<Response, ClientError>>,
    response: Response,
}

/// Tag of the keepalive probe; callers' tags count up from 1 and never reach it.
const PROBE_TAG: u64 = u64::MAX;

struct Driver {
    stream: Box<dyn Io>,
    decoder: Decoder,
    rx: mpsc::UnboundedReceiver<Msg>,
    pending: HashMap<u64, Pending>,
    keepalive: Duration,
    command_timeout: Duration,
    /// When the outstanding keepalive probe was sent.
    probe: Option<Instant>,
    last_rx: Instant,
}

impl Driver {
    async fn run(mut self) -> ClientError {
        let reason = self.serve().await;
        for (_, p) in self.pending.drain() {
            let _ = p.reply.send(Err(reason.clone()));
        }
        reason
    }

    async fn serve(&mut self) -> ClientError {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let deadline = match self.probe {
                None => self.last_rx + self.keepalive,
                Some(sent) => sent.max(self.last_rx) + self.command_timeout,
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
                read = self.stream.read(&mut buf) => {
                    let n = match read {
                        Ok(0) => return ClientError::ConnectionLost("router closed the connection".into()),
                        Ok(n) => n,
                        Err(e) => return ClientError::ConnectionLost(e.to_string()),
                    };
                    self.last_rx = Instant::now();
                    self.decoder.feed(&buf[..n]);
                    if let Err(e) = self.drain_replies() {
                        return e;
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
            Msg::Run { tag, cmd, reply } => {
                if reply.is_closed() {
                    return Ok(());
                }
                self.write(&cmd, Some(tag)).await?;
                self.pending.insert(
                    tag,
                    Pending {
                        reply,
                        response: Response::default(),
                    },
                );
            }
            Msg::Cancel { tag } => {
                if self.pending.remove(&tag).is_some() {
                    let cancel = Command::new("/cancel").attr("tag", tag.to_string());
                    self.write(&cancel, Some(PROBE_TAG - 1)).await?;
                    // A command that got no answer may mean a dead session:
                    // check now rather than at the next idle keepalive.
                    if self.probe.is_none() {
                        self.send_probe().await?;
                    }
                }
            }
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
            .map_err(|e| ClientError::ConnectionLost(e.to_string()))?;
        self.stream
            .flush()
            .await
            .map_err(|e| ClientError::ConnectionLost(e.to_string()))
    }

    fn drain_replies(&mut self) -> Result<(), ClientError> {
        while let Some(sentence) = self.decoder.next_sentence()? {
            let reply = Reply::parse(sentence)?;
            if reply.kind == ReplyKind::Fatal {
                let reason =
                    String::from_utf8_lossy(reply.fatal_reason().unwrap_or(b"")).into_owned();
                return Err(ClientError::Fatal(reason));
            }
            let Some(tag) = reply
                .tag
                .as_deref()
                .and_then(|t| std::str::from_utf8(t).ok())
                .and_then(|t| t.parse::<u64>().ok())
            else {
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
            match reply.kind {
                ReplyKind::Re => pending.response.rows.push(reply.attrs),
                ReplyKind::Trap => {
                    let category = reply.category();
                    let message =
                        String::from_utf8_lossy(reply.message().unwrap_or(b"")).into_owned();
                    pending.response.traps.push(Trap { category, message });
                }
                ReplyKind::Empty | ReplyKind::Fatal => {}
                ReplyKind::Done => {
                    if let Some(mut done) = self.pending.remove(&tag) {
                        done.response.done = reply.attrs;
                        let _ = done.reply.send(Ok(done.response));
                    }
                }
            }
        }
        Ok(())
    }
}
