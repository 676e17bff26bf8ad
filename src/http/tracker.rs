//! Which connection to close when all slots are taken: the one idle (or
//! stuck sending its headers) longest, among those that may be closed
//! without losing a request.
//!
//! A connection whose client has not sent a byte yet is spared for
//! [`FRESH_GRACE`]: in a burst, its request is usually already in the
//! kernel's buffer, unread, and closing the socket then would reset it
//! and lose that request without an answer. A connection that has sent
//! something and is now waiting (keep-alive idle, or a slow client still
//! sending headers) may be closed at once.

use std::collections::BTreeMap;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Notify;

/// How long a connection that has sent nothing is protected from eviction.
pub(super) const FRESH_GRACE: Duration = Duration::from_secs(1);

/// One connection's place in the eviction order.
pub(super) struct Slot {
    pub(super) evict: Notify,
    /// Its key in [`Tracker`]'s idle map while idle.
    key: Mutex<Option<u64>>,
    connected: Instant,
    /// The client has sent at least one byte that was read.
    heard: AtomicBool,
}

impl Slot {
    pub(super) fn new() -> Slot {
        Slot {
            evict: Notify::new(),
            key: Mutex::new(None),
            connected: Instant::now(),
            heard: AtomicBool::new(false),
        }
    }

    fn evictable(&self) -> bool {
        self.heard.load(Ordering::Relaxed) || self.connected.elapsed() >= FRESH_GRACE
    }
}

/// Connections not currently inside a request handler (waiting for
/// headers, or idle between keep-alive requests), oldest first.
#[derive(Default)]
pub(super) struct Tracker {
    inner: Mutex<TrackerInner>,
}

#[derive(Default)]
struct TrackerInner {
    next: u64,
    idle: BTreeMap<u64, Arc<Slot>>,
}

impl Tracker {
    pub(super) fn idle(&self, slot: &Arc<Slot>) {
        let mut t = lock(&self.inner);
        let key = t.next;
        t.next += 1;
        t.idle.insert(key, slot.clone());
        let old = lock(&slot.key).replace(key);
        if let Some(old) = old {
            t.idle.remove(&old);
        }
    }

    pub(super) fn busy(&self, slot: &Slot) {
        // Take the key first: never hold both locks in this order.
        let key = lock(&slot.key).take();
        if let Some(key) = key {
            lock(&self.inner).idle.remove(&key);
        }
    }

    /// Closes the longest-idle connection that may be closed, if any.
    pub(super) fn evict_oldest(&self) {
        let oldest = {
            let mut t = lock(&self.inner);
            let key = t.idle.iter().find(|(_, s)| s.evictable()).map(|(k, _)| *k);
            key.and_then(|k| t.idle.remove(&k))
        };
        if let Some(slot) = oldest {
            lock(&slot.key).take();
            // `notify_one` keeps the wake-up if the task is not waiting yet.
            slot.evict.notify_one();
        }
    }
}

/// The connection's stream, noting in its [`Slot`] when the client was
/// first heard from.
pub(super) struct Tracked {
    inner: TcpStream,
    slot: Arc<Slot>,
}

impl Tracked {
    pub(super) fn new(inner: TcpStream, slot: Arc<Slot>) -> Tracked {
        Tracked { inner, slot }
    }
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.slot.heard.store(true, Ordering::Relaxed);
        }
        r
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Poisoning only means another task panicked mid-update of a plain value.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
