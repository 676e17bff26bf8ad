//! A poll's list reads, one function per list, each folding its rows into
//! typed rows as its sentences arrive ([`super::rows`]); the driver runs
//! the ones a poll needs concurrently over the one session.

use std::time::Instant;

use super::counter_rows::CounterRows;
use super::rows::{
    HOTSPOT_ACTIVE_PROPS, HOTSPOT_USER_PROPS, PPP_ACTIVE_PROPS, PPP_SECRET_PROPS,
    PPPOE_IFACE_PROPS, PppoeCounters, SessionRows, UserRows, ValueWarning,
};
use super::user_table::UserTable;
use crate::client::{ClientError, Folded, Router, Trap};
use crate::commands::{active, count, print, users as user_menu};
use crate::event::Service;
use crate::monitor::SessionRow;
use crate::name_cache::NameCache;

/// A user list as this poll has it: read in full, or kept from before.
pub(super) struct UsersRead {
    pub table: UserTable,
    pub traps: Vec<Trap>,
    pub warnings: Vec<ValueWarning>,
}

/// A user list, read in full when `due` (see [`super::user_table`]);
/// otherwise the copy kept current by its listen stands in.
pub(super) async fn users(
    router: &Router,
    service: Service,
    mut table: UserTable,
    due: bool,
    now: Instant,
) -> Result<UsersRead, ClientError> {
    if !due {
        return Ok(UsersRead {
            table,
            traps: Vec::new(),
            warnings: Vec::new(),
        });
    }
    // The old rows go before the new ones come (one copy at a time); their
    // vector's memory is reused, not page-faulted in afresh, and their
    // names are reused by the read.
    let names = table.name_cache();
    table.rows.clear();
    let rows = std::mem::take(&mut table.rows);
    let props = match service {
        Service::Hotspot => HOTSPOT_USER_PROPS,
        Service::Pppoe => PPP_SECRET_PROPS,
    };
    let mut f = router
        .fold(
            print(user_menu(service), props),
            UserRows::reusing(service, names, rows),
            UserRows::push,
        )
        .await?;
    if f.traps.is_empty() {
        table.read(std::mem::take(&mut f.value.rows), now);
    } else {
        // A refused read is not an empty list: the poll fails, and the
        // next one reads again.
        table.read_failed();
    }
    Ok(UsersRead {
        table,
        traps: f.traps,
        warnings: std::mem::take(&mut f.value.warnings),
    })
}

/// An active list in full, reusing the last read's names and vector.
pub(super) async fn sessions(
    router: &Router,
    service: Service,
    (names, rows): (NameCache, Vec<SessionRow>),
) -> Result<Folded<SessionRows>, ClientError> {
    let props = match service {
        Service::Hotspot => HOTSPOT_ACTIVE_PROPS,
        Service::Pppoe => PPP_ACTIVE_PROPS,
    };
    router
        .fold(
            print(active(service), props),
            SessionRows::reusing(service, names, rows),
            SessionRows::push,
        )
        .await
}

/// An active list's counters only ([`super::counter_rows`]).
pub(super) async fn counters(
    router: &Router,
    service: Service,
) -> Result<Folded<CounterRows>, ClientError> {
    router
        .fold(
            print(active(service), CounterRows::props(service)),
            CounterRows::new(service),
            CounterRows::push,
        )
        .await
}

/// PPPoE byte counters, which live on the sessions' dynamic interfaces.
pub(super) async fn pppoe_counters(router: &Router) -> Result<Folded<PppoeCounters>, ClientError> {
    router
        .fold(
            print("/interface", PPPOE_IFACE_PROPS).query("type=pppoe-in"),
            PppoeCounters::new(),
            PppoeCounters::push,
        )
        .await
}

/// The number of rows on each active list (hotspot, PPP): `count-only`,
/// a few dozen bytes where a full read is hundreds of kilobytes.
pub(super) async fn active_counts(router: &Router) -> Result<[u64; 2], ClientError> {
    let one = |service| async move {
        let path = active(service);
        let r = router.execute(count(path)).await?;
        r.done
            .get("ret")
            .and_then(crate::name::parse_decimal)
            .ok_or_else(|| ClientError::Trap {
                command: format!("{path}/print count-only"),
                category: None,
                message: "no count in the reply".to_owned(),
            })
    };
    let (hotspot, ppp) = tokio::join!(one(Service::Hotspot), one(Service::Pppoe));
    Ok([hotspot?, ppp?])
}
