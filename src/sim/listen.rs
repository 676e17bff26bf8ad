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

use std::sync::Arc;

use tokio::sync::mpsc::UnboundedSender;

use super::commands::{Request, Words, re, select};
use super::router::Menu;
use super::server::{Out, Shared, lock, send_replies};
use super::tables::format_id;

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

/// Ids of rows in `now` that are new or changed since `last`, and ids of
/// rows gone; both lists are in id order (as tables keep their rows).
fn diff(last: &[(u32, u64)], now: &[(u32, u64)]) -> (Vec<u32>, Vec<u32>) {
    let (mut changed, mut dead) = (Vec::new(), Vec::new());
    let (mut i, mut j) = (0, 0);
    while i < last.len() || j < now.len() {
        match (last.get(i), now.get(j)) {
            (Some(a), Some(b)) if a.0 == b.0 => {
                if a.1 != b.1 {
                    changed.push(b.0);
                }
                i += 1;
                j += 1;
            }
            (Some(a), Some(b)) if a.0 < b.0 => {
                dead.push(a.0);
                i += 1;
            }
            (_, Some(b)) => {
                changed.push(b.0);
                j += 1;
            }
            (Some(a), None) => {
                dead.push(a.0);
                i += 1;
            }
            (None, None) => break,
        }
    }
    (changed, dead)
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
    let revisions = |inner: &super::server::Inner| {
        let mut revs = inner.router.revisions(menu);
        // Tables keep id order; sorted anyway so the diff can rely on it.
        revs.sort_unstable();
        revs
    };
    let end_of = |inner: &super::server::Inner| {
        inner
            .listen_ends
            .iter()
            .find(|(m, _)| *m == menu)
            .map_or(0, |(_, n)| *n)
    };
    let (mut last, started) = {
        let inner = lock(&shared.inner);
        (revisions(&inner), end_of(&inner))
    };
    while changes.changed().await.is_ok() {
        // Revisions, not printed rows, are compared: a change to one of
        // 10,000 users prints one row, not 10,000.
        let (now, printed, dead) = {
            let inner = lock(&shared.inner);
            if end_of(&inner) != started {
                drop(inner);
                let interrupted = vec![
                    b"!trap".to_vec(),
                    b"=category=2".to_vec(),
                    b"=message=interrupted".to_vec(),
                ];
                let done = vec![b"!done".to_vec()];
                send_replies(&shared, &out, &[interrupted, done], req.tag.as_deref());
                return;
            }
            let now = revisions(&inner);
            if inner.muted_listens.contains(&menu) {
                // Silently broken: the changes are lost, not delayed.
                drop(inner);
                last = now;
                continue;
            }
            let (changed, dead) = diff(&last, &now);
            let printed = inner.router.print_ids(menu, &changed);
            (now, printed, dead)
        };
        let mut replies: Vec<Words> = Vec::new();
        for id in dead {
            replies.push(vec![
                b"!re".to_vec(),
                [b"=.id=".as_slice(), format_id(id).as_bytes()].concat(),
                b"=.dead=yes".to_vec(),
            ]);
        }
        for row in &printed {
            replies.push(match &props {
                None => re(row),
                Some(p) => {
                    let p: Vec<&[u8]> = p.iter().map(Vec::as_slice).collect();
                    re(&select(row, &p))
                }
            });
        }
        last = now;
        if !replies.is_empty() {
            send_replies(&shared, &out, &replies, req.tag.as_deref());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::diff;

    #[test]
    fn diff_finds_new_changed_and_gone_rows() {
        let last = [(1, 10), (2, 20), (4, 40), (6, 60)];
        let now = [(2, 21), (3, 30), (4, 40), (7, 70)];
        assert_eq!(diff(&last, &now), (vec![2, 3, 7], vec![1, 6]));
        assert_eq!(diff(&[], &now), (vec![2, 3, 4, 7], vec![]));
        assert_eq!(diff(&last, &[]), (vec![], vec![1, 2, 4, 6]));
        assert_eq!(diff(&last, &last), (vec![], vec![]));
    }
}
