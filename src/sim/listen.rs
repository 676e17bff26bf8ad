//! `<menu>/listen`: the RouterOS way of following a menu. Nothing is sent
//! at start (listen reports changes, not the current list); then one `!re`
//! per added or changed item with its properties, and `=.id=…` `=.dead=yes`
//! per removed one, until `/cancel` (handled with the other cancellable
//! commands in `server`) or the end of the session.
//!
//! Changes are found by diffing the menu each time its data may have
//! changed ([`Shared::changed`]), so every way the simulator mutates a
//! table (API commands, test helpers, the clock) is covered without a
//! hook in each. Live counters (uptime, bytes, …) are not changes, as on a
//! router, where they would otherwise flood every listener every second.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::mpsc::UnboundedSender;

use super::commands::{Request, Words, re, select};
use super::router::Menu;
use super::server::{Out, Shared, lock, send_replies};
use super::tables::Printed;

/// Properties that move on their own; a change in them alone is not sent.
const LIVE: &[&[u8]] = &[
    b"uptime",
    b"idle-time",
    b"session-time-left",
    b"bytes-in",
    b"bytes-out",
    b"packets-in",
    b"packets-out",
    b"last-seen",
];

/// The menus `listen` is supported on.
pub(crate) const MENUS: [Menu; 4] = [
    Menu::HotspotActive,
    Menu::PppActive,
    Menu::HotspotUser,
    Menu::PppSecret,
];

/// The menu a `…/listen` path follows, when the simulator supports it.
pub(crate) fn menu_of(path: &[u8]) -> Option<Menu> {
    let menu_path = path.strip_suffix(b"/listen")?;
    Menu::from_path(menu_path).filter(|m| MENUS.contains(m))
}

/// The listenable menus a (writing) command can change: its own, and for
/// a session removed its user's counters.
pub(crate) fn touched(path: &[u8]) -> Vec<Menu> {
    let split = path.iter().rposition(|&b| b == b'/').unwrap_or(0);
    match Menu::from_path(&path[..split]) {
        Some(Menu::HotspotActive) => vec![Menu::HotspotActive, Menu::HotspotUser],
        Some(Menu::PppActive) => vec![Menu::PppActive, Menu::PppSecret],
        Some(m) if MENUS.contains(&m) => vec![m],
        _ => Vec::new(),
    }
}

/// Commands that cannot change anything: no need to wake the listeners.
pub(crate) fn is_read_only(path: &[u8]) -> bool {
    [b"/print".as_slice(), b"/get", b"/getall"]
        .iter()
        .any(|s| path.ends_with(s))
}

fn snapshot(shared: &Shared, menu: Menu) -> BTreeMap<Vec<u8>, Printed> {
    lock(&shared.inner)
        .router
        .print(menu)
        .into_iter()
        .map(|row| {
            let id = row.first().map(|(_, v)| v.clone()).unwrap_or_default();
            (id, row)
        })
        .collect()
}

fn stable(row: &Printed) -> impl Iterator<Item = &(Vec<u8>, Vec<u8>)> {
    row.iter().filter(|(k, _)| !LIVE.contains(&k.as_slice()))
}

/// Follows `menu` for one `listen` command until aborted.
pub(crate) async fn run(shared: Arc<Shared>, out: UnboundedSender<Out>, menu: Menu, req: Request) {
    // `.proplist=` as an API word or as `=.proplist=`, as `print` takes it.
    let proplist = req.proplist.as_deref().or(req.attr(".proplist"));
    let props: Option<Vec<Vec<u8>>> = proplist.map(|p| {
        p.split(|&b| b == b',')
            .map(|s| s.trim_ascii().to_vec())
            .filter(|s| !s.is_empty())
            .collect()
    });
    let Some(mut changes) = shared
        .changes
        .iter()
        .find(|(m, _)| *m == menu)
        .map(|(_, tx)| tx.subscribe())
    else {
        return;
    };
    let mut last = snapshot(&shared, menu);
    while changes.changed().await.is_ok() {
        let now = snapshot(&shared, menu);
        let mut replies: Vec<Words> = Vec::new();
        for id in last.keys().filter(|id| !now.contains_key(*id)) {
            replies.push(vec![
                b"!re".to_vec(),
                [b"=.id=".as_slice(), id].concat(),
                b"=.dead=yes".to_vec(),
            ]);
        }
        for (id, row) in &now {
            let same = last.get(id).is_some_and(|old| stable(old).eq(stable(row)));
            if !same {
                replies.push(match &props {
                    None => re(row),
                    Some(p) => {
                        let p: Vec<&[u8]> = p.iter().map(Vec::as_slice).collect();
                        re(&select(row, &p))
                    }
                });
            }
        }
        last = now;
        if !replies.is_empty() {
            send_replies(&shared, &out, &replies, req.tag.as_deref());
        }
    }
}
