//! The kernel's clocks, read through libc: `CLOCK_BOOTTIME` and the NTP
//! state (`adjtimex`), for the agent's clock trust
//! ([`crate::agent::clock`]). With [`crate::shared_bytes`], the only
//! module allowed `unsafe` (each call's safety argument beside it).
#![allow(unsafe_code)]

use std::time::Instant;

/// Monotonic seconds including suspend (`CLOCK_BOOTTIME`): since the host
/// booted, so it keeps counting across agent restarts. Elsewhere, seconds
/// since the agent started (the ledger then counts each restart as a
/// monotonic reset, which keeps it a lower bound).
pub fn mono_secs() -> u64 {
    #[cfg(target_os = "linux")]
    {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec for the call.
        if unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) } == 0 {
            return u64::try_from(ts.tv_sec).unwrap_or(0);
        }
    }
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_secs()
}

/// The kernel's view of its clock (`adjtimex` in read-only mode): `true`
/// when an NTP daemon (chrony, systemd-timesyncd, ntpd) has synchronised
/// it, `false` when `STA_UNSYNC` is set. A syscall without I/O, cheap
/// enough for the runtime thread.
pub fn kernel_synced() -> Option<bool> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: an all-zero timex is valid; modes 0 only reads.
        let mut tx: libc::timex = unsafe { std::mem::zeroed() };
        // SAFETY: `tx` is a valid, writable timex for the call.
        let state = unsafe { libc::adjtimex(&mut tx) };
        if state < 0 {
            return None;
        }
        Some(state != libc::TIME_ERROR && tx.status & libc::STA_UNSYNC == 0)
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}
