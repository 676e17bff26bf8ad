//! An immutable, reference-counted byte string behind a one-word pointer.
//!
//! Why not `Arc<[u8]>`: its pointer is two words (address and length), and
//! the agent holds about ten names per managed user (rows, sessions, usage
//! and voucher keys, events). Keeping the length in the allocation, next
//! to the count, makes every name field half the size: about a megabyte
//! less at 10,000 users, where the whole agent aims at under ten.
//!
//! The unsafe code is confined to this file and follows `Arc`'s: the count
//! is atomic (names cross to the store thread inside events), a clone is a
//! relaxed increment, and the last drop frees after an acquire fence. The
//! tests below also run under Miri
//! (`cargo +nightly miri test --lib --no-default-features shared_bytes`).
#![allow(unsafe_code)]

use std::alloc::{self, Layout};
use std::ops::Deref;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering, fence};

/// What precedes the bytes in the allocation.
#[repr(C)]
struct Header {
    count: AtomicUsize,
    len: usize,
}

const HEADER: usize = std::mem::size_of::<Header>();

/// Bytes shared by count, one pointer wide (`Option<SharedBytes>` too).
pub struct SharedBytes {
    ptr: NonNull<Header>,
}

// SAFETY: the bytes are never written after construction and the count is
// atomic, exactly as for `Arc<[u8]>`, which is `Send` and `Sync`.
unsafe impl Send for SharedBytes {}
unsafe impl Sync for SharedBytes {}

/// The allocation's layout for `len` bytes. A slice that exists is at most
/// `isize::MAX` bytes, so this cannot overflow for any `len` passed here
/// except by a bug, which aborts rather than corrupting memory.
fn layout(len: usize) -> Layout {
    match Layout::from_size_align(HEADER.saturating_add(len), std::mem::align_of::<Header>()) {
        Ok(l) => l,
        Err(_) => std::process::abort(),
    }
}

impl SharedBytes {
    pub fn new(bytes: &[u8]) -> SharedBytes {
        let layout = layout(bytes.len());
        // SAFETY: the layout is never zero-sized (it holds the header).
        let raw = unsafe { alloc::alloc(layout) }.cast::<Header>();
        let Some(ptr) = NonNull::new(raw) else {
            alloc::handle_alloc_error(layout)
        };
        // SAFETY: `raw` is a fresh allocation of `HEADER + len` bytes,
        // aligned for `Header`; the bytes go right after the header.
        unsafe {
            raw.write(Header {
                count: AtomicUsize::new(1),
                len: bytes.len(),
            });
            std::ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                raw.cast::<u8>().add(HEADER),
                bytes.len(),
            );
        }
        SharedBytes { ptr }
    }

    fn header(&self) -> &Header {
        // SAFETY: the header lives as long as any handle to it.
        unsafe { self.ptr.as_ref() }
    }

    /// The same allocation (not only equal bytes).
    #[inline(always)]
    pub fn ptr_eq(&self, other: &SharedBytes) -> bool {
        self.ptr == other.ptr
    }

    /// How many handles share these bytes (as `Arc::strong_count`: exact
    /// when no other thread clones or drops one at the same moment).
    pub fn count(&self) -> usize {
        self.header().count.load(Ordering::Relaxed)
    }
}

impl Deref for SharedBytes {
    type Target = [u8];

    #[inline(always)]
    fn deref(&self) -> &[u8] {
        // SAFETY: `len` initialised bytes follow the header and are never
        // written again.
        unsafe {
            std::slice::from_raw_parts(
                self.ptr.as_ptr().cast::<u8>().add(HEADER),
                self.header().len,
            )
        }
    }
}

impl Clone for SharedBytes {
    fn clone(&self) -> SharedBytes {
        // Relaxed as in `Arc::clone`: a new handle can only be made from an
        // existing one, which keeps the allocation alive.
        let old = self.header().count.fetch_add(1, Ordering::Relaxed);
        // As `Arc`: a count that could wrap (leaked handles) aborts.
        if old > isize::MAX as usize {
            std::process::abort();
        }
        SharedBytes { ptr: self.ptr }
    }
}

impl Drop for SharedBytes {
    fn drop(&mut self) {
        if self.header().count.fetch_sub(1, Ordering::Release) != 1 {
            return;
        }
        // Every other handle's use happens before the free.
        fence(Ordering::Acquire);
        let len = self.header().len;
        // SAFETY: this was the last handle; the allocation was made with
        // this layout in `new`.
        unsafe { alloc::dealloc(self.ptr.as_ptr().cast::<u8>(), layout(len)) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_any_bytes_including_none() {
        for bytes in [&b""[..], b"a", b"caf\xE9", &[0u8; 1000][..], &[0xFF; 7][..]] {
            let s = SharedBytes::new(bytes);
            assert_eq!(&*s, bytes);
            assert_eq!(&*s.clone(), bytes);
        }
    }

    #[test]
    fn is_one_pointer_wide_and_an_option_costs_nothing() {
        assert_eq!(
            std::mem::size_of::<SharedBytes>(),
            std::mem::size_of::<usize>()
        );
        assert_eq!(
            std::mem::size_of::<Option<SharedBytes>>(),
            std::mem::size_of::<usize>()
        );
    }

    #[test]
    fn clones_share_and_count_and_the_last_drop_frees() {
        let a = SharedBytes::new(b"vc123");
        assert_eq!(a.count(), 1);
        let b = a.clone();
        assert!(a.ptr_eq(&b));
        assert_eq!(a.count(), 2);
        let c = SharedBytes::new(b"vc123");
        assert!(!a.ptr_eq(&c), "equal bytes, another allocation");
        drop(b);
        assert_eq!(a.count(), 1);
        assert_eq!(&*a, b"vc123");
    }

    #[test]
    fn handles_cross_threads_and_drop_there() {
        let a = SharedBytes::new(b"shared across threads");
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let mine = a.clone();
                std::thread::spawn(move || {
                    let more: Vec<_> = (0..1000).map(|_| mine.clone()).collect();
                    more.iter().all(|m| &**m == b"shared across threads")
                })
            })
            .collect();
        for h in handles {
            assert!(h.join().expect("thread"));
        }
        assert_eq!(a.count(), 1);
    }
}
