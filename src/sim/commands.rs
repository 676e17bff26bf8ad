//! Executes one API command against the router model and returns the reply
//! sentences (without `.tag`, which the connection adds). Pure: no I/O, no
//! login or `/cancel` (those are connection state, see `server`).

use super::query::Query;
use super::router::{MENUS, Menu, Router};
use super::tables::{Printed, Table, Value, format_id};
use crate::proto::{WordKind, classify_word};

/// The words of one reply sentence.
pub(crate) type Words = Vec<Vec<u8>>;

/// A command sentence taken apart.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Request {
    pub(crate) path: Vec<u8>,
    pub(crate) tag: Option<Vec<u8>>,
    pub(crate) attrs: Vec<(Vec<u8>, Vec<u8>)>,
    pub(crate) queries: Vec<Vec<u8>>,
    pub(crate) proplist: Option<Vec<u8>>,
    /// Words RouterOS 7 does not accept here (bare words, unknown `.x=`).
    pub(crate) stray: Vec<Vec<u8>>,
}

impl Request {
    /// Splits a sentence; fails when the first word is not a command path.
    pub(crate) fn parse(words: &[Vec<u8>]) -> Result<Request, String> {
        let Some((first, rest)) = words.split_first() else {
            return Err("empty sentence".to_owned());
        };
        let WordKind::Command(path) = classify_word(first) else {
            let shown: String = String::from_utf8_lossy(first).chars().take(40).collect();
            return Err(format!("expected a command word, got {shown:?}"));
        };
        let mut req = Request {
            path: path.to_vec(),
            ..Request::default()
        };
        for word in rest {
            match classify_word(word) {
                WordKind::Attribute(k, v) => req.attrs.push((k.to_vec(), v.to_vec())),
                WordKind::Query(q) => req.queries.push(q.to_vec()),
                WordKind::Api(b"tag", v) => req.tag = Some(v.to_vec()),
                WordKind::Api(b"proplist", v) => req.proplist = Some(v.to_vec()),
                WordKind::Api(..) | WordKind::Other(_) | WordKind::Command(_) => {
                    req.stray.push(word.clone());
                }
            }
        }
        Ok(req)
    }

    pub(crate) fn attr(&self, key: &str) -> Option<&[u8]> {
        self.attrs
            .iter()
            .rev()
            .find(|(k, _)| k == key.as_bytes())
            .map(|(_, v)| v.as_slice())
    }
}

fn words(parts: &[&[u8]]) -> Words {
    parts.iter().map(|p| p.to_vec()).collect()
}

pub(crate) fn done() -> Words {
    words(&[b"!done"])
}

fn done_ret(ret: &[u8]) -> Words {
    vec![b"!done".to_vec(), [b"=ret=".as_slice(), ret].concat()]
}

/// `!trap =message=…` then `!done`: traps are not terminal.
pub(crate) fn trap(message: &str) -> Vec<Words> {
    vec![
        vec![
            b"!trap".to_vec(),
            format!("=message={message}").into_bytes(),
        ],
        done(),
    ]
}

pub(crate) fn re(pairs: &[(Vec<u8>, Vec<u8>)]) -> Words {
    let mut w = Vec::with_capacity(pairs.len() + 1);
    w.push(b"!re".to_vec());
    for (k, v) in pairs {
        w.push([b"=", k.as_slice(), b"=", v.as_slice()].concat());
    }
    w
}

/// `=ret=` of a reply's `!done`, or the message of its `!trap`.
pub(crate) fn ret_or_trap(reply: &[Words]) -> Result<String, String> {
    let find = |head: &[u8], key: &[u8]| {
        reply
            .iter()
            .filter(|s| s.first().is_some_and(|w| w == head))
            .flat_map(|s| s.iter().skip(1))
            .find_map(|w| w.strip_prefix(key))
            .map(|v| String::from_utf8_lossy(v).into_owned())
    };
    if let Some(message) = find(b"!trap", b"=message=") {
        return Err(message);
    }
    Ok(find(b"!done", b"=ret=").unwrap_or_default())
}

const UNKNOWN_PARAMETER: &str = "unknown parameter";
const NO_SUCH_COMMAND: &str = "no such command";

/// Runs a command (anything but `/login`, `/cancel`, `/quit`).
pub(crate) fn execute(r: &mut Router, req: &Request) -> Vec<Words> {
    run(r, req).unwrap_or_else(|message| trap(&message))
}

fn run(r: &mut Router, req: &Request) -> Result<Vec<Words>, String> {
    let split = req.path.iter().rposition(|&b| b == b'/').unwrap_or(0);
    let (menu_path, cmd) = (&req.path[..split], &req.path[split + 1..]);
    let Some(menu) = Menu::from_path(menu_path) else {
        // A real menu level above the ones we model still exists on the
        // router, so only the command is unknown there.
        let inner = MENUS.iter().any(|(p, _)| {
            p.as_bytes().starts_with(menu_path) && p.as_bytes().get(menu_path.len()) == Some(&b'/')
        });
        return Err(if inner {
            NO_SUCH_COMMAND
        } else {
            "no such command prefix"
        }
        .to_owned());
    };
    if !req.stray.is_empty() {
        return Err(UNKNOWN_PARAMETER.to_owned());
    }
    let editable = matches!(
        menu,
        Menu::HotspotUser
            | Menu::HotspotProfile
            | Menu::PppSecret
            | Menu::PppProfile
            | Menu::SystemScript
            | Menu::SystemScheduler
    );
    let kickable = matches!(menu, Menu::HotspotActive | Menu::PppActive);
    let toggles = matches!(
        menu,
        Menu::HotspotUser | Menu::PppSecret | Menu::SystemScheduler
    );
    match cmd {
        b"print" | b"getall" => print(r, menu, req),
        b"get" => get(r, menu, req),
        b"add" if editable => add(r, menu, req),
        b"set" if editable => set(r, menu, req).map(|()| vec![done()]),
        b"set" if menu == Menu::SystemIdentity => set_identity(r, req),
        b"unset" if editable => unset(r, menu, req),
        b"remove" if editable || kickable => remove(r, menu, req),
        b"enable" | b"disable" if toggles => {
            let mut req = req.clone();
            let v: &[u8] = if cmd == b"disable" { b"yes" } else { b"no" };
            req.attrs.push((b"disabled".to_vec(), v.to_vec()));
            set(r, menu, &req).map(|()| vec![done()])
        }
        b"reset-counters" if menu == Menu::HotspotUser => {
            let table = &mut r.hs_users;
            for id in targets(table, req)? {
                if let Some(row) = table.by_id_mut(id) {
                    for c in [
                        "uptime",
                        "bytes-in",
                        "bytes-out",
                        "packets-in",
                        "packets-out",
                    ] {
                        row.reset(c);
                    }
                }
            }
            Ok(vec![done()])
        }
        _ => Err(NO_SUCH_COMMAND.to_owned()),
    }
}

fn print(r: &Router, menu: Menu, req: &Request) -> Result<Vec<Words>, String> {
    let mut count_only = false;
    let mut proplist = req.proplist.clone();
    let mut from = None;
    for (k, v) in &req.attrs {
        match k.as_slice() {
            b"count-only" => count_only = true,
            b".proplist" => proplist = Some(v.clone()),
            b"from" => from = Some(v.clone()),
            // Formatting switches that change nothing over the API.
            b"detail" | b"without-paging" | b"terse" | b"brief" | b"stats" => {}
            _ => return Err(UNKNOWN_PARAMETER.to_owned()),
        }
    }
    let query = Query::parse(&req.queries)?;
    let mut rows = r.print(menu);
    if let Some(from) = from {
        let ids = match r.table(menu) {
            Some(t) => t.resolve(&from)?,
            None => return Err(UNKNOWN_PARAMETER.to_owned()),
        };
        let wanted: Vec<Vec<u8>> = ids.into_iter().map(|i| format_id(i).into_bytes()).collect();
        rows.retain(|row| row.first().is_some_and(|(_, id)| wanted.contains(id)));
    }
    rows.retain(|row| query.matches(row));
    if count_only {
        return Ok(vec![done_ret(rows.len().to_string().as_bytes())]);
    }
    let props: Option<Vec<&[u8]>> = proplist.as_deref().map(|p| {
        p.split(|&b| b == b',')
            .map(<[u8]>::trim_ascii)
            .filter(|s| !s.is_empty())
            .collect()
    });
    let mut out: Vec<Words> = rows
        .iter()
        .map(|row| match &props {
            None => re(row),
            Some(props) => re(&select(row, props)),
        })
        .collect();
    if out.is_empty() && r.empty_reply {
        out.push(words(&[b"!empty"]));
    }
    out.push(done());
    Ok(out)
}

/// The properties named in a `.proplist`, in that order, skipping ones the
/// row does not have.
pub(crate) fn select(row: &Printed, props: &[&[u8]]) -> Printed {
    let mut out = Printed::new();
    for p in props {
        if out.iter().any(|(k, _)| k == p) {
            continue;
        }
        if let Some(pair) = row.iter().find(|(k, _)| k == p) {
            out.push(pair.clone());
        }
    }
    out
}

fn get(r: &Router, menu: Menu, req: &Request) -> Result<Vec<Words>, String> {
    let name = req
        .attr("value-name")
        .ok_or_else(|| "missing value(s) of argument(s) value-name".to_owned())?;
    let row = match r.table(menu) {
        Some(table) => {
            let ids = targets(table, req)?;
            let [id] = ids[..] else {
                return Err("expected exactly one item".to_owned());
            };
            table
                .by_id(id)
                .map(|row| row.print(r.dates))
                .ok_or_else(|| "no such item".to_owned())?
        }
        None => r.print(menu).into_iter().next().unwrap_or_default(),
    };
    let value = row
        .iter()
        .find(|(k, _)| k.as_slice() == name)
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    Ok(vec![done_ret(&value)])
}

/// The items a `set`/`remove`/… applies to: `=.id=` or `=numbers=`, each a
/// comma-separated list of ids or names.
fn targets(table: &Table, req: &Request) -> Result<Vec<u32>, String> {
    let list = req
        .attr(".id")
        .or_else(|| req.attr("numbers"))
        .ok_or_else(|| "no such item".to_owned())?;
    table.resolve(list)
}

/// Parses the writable properties of an `add`/`set`.
fn values(table: &Table, req: &Request) -> Result<Vec<(&'static str, Value)>, String> {
    let mut out = Vec::new();
    for (k, v) in &req.attrs {
        if k == b".id" || k == b"numbers" {
            continue;
        }
        let field = table
            .field(k)
            .filter(|f| f.writable)
            .ok_or_else(|| UNKNOWN_PARAMETER.to_owned())?;
        let value = Value::parse(field.kind, v)
            .ok_or_else(|| format!("invalid value for argument {}", field.name))?;
        out.push((field.name, value));
    }
    Ok(out)
}

fn duplicate_message(menu: Menu) -> &'static str {
    match menu {
        Menu::HotspotUser => "failure: already have user with this name",
        Menu::PppSecret => "failure: secret with the same name already exists",
        _ => "failure: already have such name",
    }
}

/// Users and secrets must name an existing profile.
fn check_profile(r: &Router, menu: Menu, vals: &[(&'static str, Value)]) -> Result<(), String> {
    let profiles = match menu {
        Menu::HotspotUser => &r.hs_profiles,
        Menu::PppSecret => &r.ppp_profiles,
        _ => return Ok(()),
    };
    for (k, v) in vals {
        if let (&"profile", Value::Str(name)) = (k, v)
            && profiles.by_name(name).is_none()
        {
            return Err("input does not match any value of profile".to_owned());
        }
    }
    Ok(())
}

fn new_name<'a>(vals: &'a [(&'static str, Value)]) -> Option<&'a [u8]> {
    vals.iter().rev().find_map(|(k, v)| match (k, v) {
        (&"name", Value::Str(s)) => Some(s.as_slice()),
        _ => None,
    })
}

fn add(r: &mut Router, menu: Menu, req: &Request) -> Result<Vec<Words>, String> {
    if req.attr(".id").is_some() || req.attr("numbers").is_some() {
        return Err(UNKNOWN_PARAMETER.to_owned());
    }
    let table = r.table(menu).ok_or_else(|| NO_SUCH_COMMAND.to_owned())?;
    let vals = values(table, req)?;
    let name = new_name(&vals)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| "missing value(s) of argument(s) name".to_owned())?;
    if table.by_name(name).is_some() {
        return Err(duplicate_message(menu).to_owned());
    }
    check_profile(r, menu, &vals)?;
    let table = r
        .table_mut(menu)
        .ok_or_else(|| NO_SUCH_COMMAND.to_owned())?;
    let id = table.insert(vals);
    Ok(vec![done_ret(format_id(id).as_bytes())])
}

fn set(r: &mut Router, menu: Menu, req: &Request) -> Result<(), String> {
    let table = r.table(menu).ok_or_else(|| NO_SUCH_COMMAND.to_owned())?;
    let ids = targets(table, req)?;
    let vals = values(table, req)?;
    if let Some(name) = new_name(&vals) {
        if name.is_empty() {
            return Err("invalid value for argument name".to_owned());
        }
        let clash = table
            .by_name(name)
            .is_some_and(|other| !ids.contains(&other.id) || ids.len() > 1);
        if clash {
            return Err(duplicate_message(menu).to_owned());
        }
    }
    check_profile(r, menu, &vals)?;
    let table = r
        .table_mut(menu)
        .ok_or_else(|| NO_SUCH_COMMAND.to_owned())?;
    for id in ids {
        if let Some(row) = table.by_id_mut(id) {
            for (k, v) in &vals {
                row.set(k, Some(v.clone()));
            }
        }
    }
    Ok(())
}

fn unset(r: &mut Router, menu: Menu, req: &Request) -> Result<Vec<Words>, String> {
    let table = r.table(menu).ok_or_else(|| NO_SUCH_COMMAND.to_owned())?;
    let ids = targets(table, req)?;
    let names = req
        .attr("value-name")
        .ok_or_else(|| "missing value(s) of argument(s) value-name".to_owned())?;
    let mut fields = Vec::new();
    for n in names.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
        let f = table
            .field(n)
            .filter(|f| f.writable && f.name != "name")
            .ok_or_else(|| UNKNOWN_PARAMETER.to_owned())?;
        fields.push(f.name);
    }
    let table = r
        .table_mut(menu)
        .ok_or_else(|| NO_SUCH_COMMAND.to_owned())?;
    for id in ids {
        if let Some(row) = table.by_id_mut(id) {
            for f in &fields {
                row.reset(f);
            }
        }
    }
    Ok(vec![done()])
}

/// Ids a fresh router gives its built-in profiles; those cannot be removed.
const BUILTIN_IDS: [u32; 2] = [0, 0xFFFF_FFFE];

fn remove(r: &mut Router, menu: Menu, req: &Request) -> Result<Vec<Words>, String> {
    let table = r.table(menu).ok_or_else(|| NO_SUCH_COMMAND.to_owned())?;
    let ids = targets(table, req)?;
    let profiles = matches!(menu, Menu::HotspotProfile | Menu::PppProfile);
    if profiles && ids.iter().any(|id| BUILTIN_IDS.contains(id)) {
        return Err("failure: default profile can not be removed".to_owned());
    }
    for id in ids {
        match menu {
            // Kicking a session saves its counters into the user entry.
            Menu::HotspotActive => {
                r.hotspot_kick(id);
            }
            Menu::PppActive => {
                r.ppp_kick(id, "admin-disconnect");
            }
            _ => {
                if let Some(t) = r.table_mut(menu) {
                    t.remove(id);
                }
            }
        }
    }
    Ok(vec![done()])
}

fn set_identity(r: &mut Router, req: &Request) -> Result<Vec<Words>, String> {
    let mut name = None;
    for (k, v) in &req.attrs {
        match k.as_slice() {
            b"name" => name = Some(v.clone()),
            _ => return Err(UNKNOWN_PARAMETER.to_owned()),
        }
    }
    if let Some(name) = name {
        r.identity = name;
    }
    Ok(vec![done()])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::GmtOffsetStyle;

    fn router() -> Router {
        let mut r = Router::new("sim", "7.16.2 (stable)", "hAP ac^2");
        r.ensure_profile(false, b"voucher-1h");
        r.ensure_profile(true, b"pppoe-10M");
        r
    }

    fn req(ws: &[&str]) -> Request {
        let ws: Vec<Vec<u8>> = ws.iter().map(|w| w.as_bytes().to_vec()).collect();
        match Request::parse(&ws) {
            Ok(r) => r,
            Err(e) => panic!("{ws:?}: {e}"),
        }
    }

    fn exec(r: &mut Router, ws: &[&str]) -> Vec<Vec<String>> {
        execute(r, &req(ws))
            .into_iter()
            .map(|s| {
                s.into_iter()
                    .map(|w| String::from_utf8_lossy(&w).into_owned())
                    .collect()
            })
            .collect()
    }

    fn trap_of(reply: &[Vec<String>]) -> Option<&str> {
        match reply {
            [t, d] if t[0] == "!trap" && d == &["!done"] => {
                t.iter().find_map(|w| w.strip_prefix("=message="))
            }
            _ => None,
        }
    }

    fn add_user(r: &mut Router, name: &str) -> Vec<Vec<String>> {
        exec(
            r,
            &[
                "/ip/hotspot/user/add",
                &format!("=name={name}"),
                "=password=pw",
                "=profile=voucher-1h",
                "=comment=VOUCHER_SYSTEM|B1|5000|3000|1",
            ],
        )
    }

    #[test]
    fn request_parse() {
        let r = req(&[
            "/a/print",
            "?x=1",
            ".tag=7",
            ".proplist=a",
            "=k=v=w",
            "junk",
        ]);
        assert_eq!(r.path, b"/a/print");
        assert_eq!(r.tag.as_deref(), Some(&b"7"[..]));
        assert_eq!(r.proplist.as_deref(), Some(&b"a"[..]));
        assert_eq!(r.queries, vec![b"x=1".to_vec()]);
        assert_eq!(r.attr("k"), Some(&b"v=w"[..]));
        assert_eq!(r.stray, vec![b"junk".to_vec()]);
        assert!(Request::parse(&[b"=name=x".to_vec()]).is_err());
        assert!(Request::parse(&[]).is_err());
    }

    #[test]
    fn add_returns_ret_and_traps_duplicates() {
        let mut r = router();
        assert_eq!(add_user(&mut r, "v1"), vec![vec!["!done", "=ret=*1"]]);
        assert_eq!(add_user(&mut r, "v2"), vec![vec!["!done", "=ret=*2"]]);
        assert_eq!(
            trap_of(&add_user(&mut r, "v1")),
            Some("failure: already have user with this name")
        );
        let secret = [
            "/ppp/secret/add",
            "=name=p1",
            "=profile=pppoe-10M",
            "=service=pppoe",
        ];
        assert_eq!(exec(&mut r, &secret), vec![vec!["!done", "=ret=*1"]]);
        assert_eq!(
            trap_of(&exec(&mut r, &secret)),
            Some("failure: secret with the same name already exists")
        );
        let bad = exec(&mut r, &["/ip/hotspot/user/add", "=name=x", "=bogus=1"]);
        assert_eq!(trap_of(&bad), Some("unknown parameter"));
        let ro = exec(&mut r, &["/ip/hotspot/user/add", "=name=x", "=uptime=1h"]);
        assert_eq!(trap_of(&ro), Some("unknown parameter"));
        let prof = exec(
            &mut r,
            &["/ip/hotspot/user/add", "=name=x", "=profile=nope"],
        );
        assert_eq!(
            trap_of(&prof),
            Some("input does not match any value of profile")
        );
        let noname = exec(&mut r, &["/ip/hotspot/user/add", "=password=x"]);
        assert!(trap_of(&noname).is_some());
        let badval = exec(
            &mut r,
            &["/ip/hotspot/user/add", "=name=x", "=limit-uptime=zz"],
        );
        assert_eq!(
            trap_of(&badval),
            Some("invalid value for argument limit-uptime")
        );
    }

    #[test]
    fn unknown_paths_and_commands() {
        let mut r = router();
        let t = |r: &mut Router, p: &str| trap_of(&exec(r, &[p])).map(str::to_owned);
        assert_eq!(
            t(&mut r, "/routing/bgp/print").as_deref(),
            Some("no such command prefix")
        );
        assert_eq!(
            t(&mut r, "/ip/hotspot/user/frob").as_deref(),
            Some("no such command")
        );
        assert_eq!(
            t(&mut r, "/ip/hotspot/print").as_deref(),
            Some("no such command")
        );
        assert_eq!(
            t(&mut r, "/ppp/active/add").as_deref(),
            Some("no such command")
        );
        assert_eq!(
            t(&mut r, "/system/resource/set").as_deref(),
            Some("no such command")
        );
        assert_eq!(
            t(&mut r, "/ip/hotspot/user/profile/disable").as_deref(),
            Some("no such command")
        );
        let stray = exec(&mut r, &["/ip/hotspot/user/print", "junk"]);
        assert_eq!(trap_of(&stray), Some("unknown parameter"));
    }

    #[test]
    fn print_proplist_query_count() {
        let mut r = router();
        for n in ["a", "b", "c"] {
            add_user(&mut r, n);
        }
        exec(
            &mut r,
            &["/ip/hotspot/user/add", "=name=m", "=comment=vc-1-01.01.25-"],
        );
        let all = exec(&mut r, &["/ip/hotspot/user/print"]);
        assert_eq!(all.len(), 5);
        assert_eq!(all[0][0], "!re");
        assert_eq!(all[0][1], "=.id=*1");
        let some = exec(
            &mut r,
            &[
                "/ip/hotspot/user/print",
                ".proplist=name,.id",
                "?profile=voucher-1h",
                "?name=b",
                "?name=c",
                "?#|",
            ],
        );
        assert_eq!(
            some,
            vec![
                vec!["!re", "=name=b", "=.id=*2"],
                vec!["!re", "=name=c", "=.id=*3"],
                vec!["!done"]
            ]
        );
        let attr_proplist = exec(
            &mut r,
            &["/ip/hotspot/user/print", "=.proplist=comment", "?name=m"],
        );
        assert_eq!(attr_proplist[0], vec!["!re", "=comment=vc-1-01.01.25-"]);
        let count = exec(
            &mut r,
            &[
                "/ip/hotspot/user/print",
                "=count-only=",
                "?profile=voucher-1h",
            ],
        );
        assert_eq!(count, vec![vec!["!done", "=ret=3"]]);
        let none = exec(&mut r, &["/ip/hotspot/user/print", "?name=zzz"]);
        assert_eq!(none, vec![vec!["!done"]]);
        r.empty_reply = true;
        let none = exec(&mut r, &["/ip/hotspot/user/print", "?name=zzz"]);
        assert_eq!(none, vec![vec!["!empty"], vec!["!done"]]);
        let bad = exec(&mut r, &["/ip/hotspot/user/print", "?#&"]);
        assert!(trap_of(&bad).is_some());
        let from = exec(
            &mut r,
            &["/ip/hotspot/user/print", "=from=*2,c", ".proplist=name"],
        );
        assert_eq!(from.len(), 3);
    }

    #[test]
    fn set_remove_enable_disable() {
        let mut r = router();
        add_user(&mut r, "a");
        add_user(&mut r, "b");
        assert_eq!(
            exec(&mut r, &["/ip/hotspot/user/disable", "=numbers=*1,b"]),
            vec![vec!["!done"]]
        );
        let disabled = exec(
            &mut r,
            &["/ip/hotspot/user/print", "=count-only=", "?disabled=true"],
        );
        assert_eq!(disabled, vec![vec!["!done", "=ret=2"]]);
        exec(&mut r, &["/ip/hotspot/user/enable", "=.id=*2"]);
        let set = exec(
            &mut r,
            &[
                "/ip/hotspot/user/set",
                "=.id=*1",
                "=comment=caf\u{e9}",
                "=limit-uptime=01:30:00",
            ],
        );
        assert_eq!(set, vec![vec!["!done"]]);
        let row = exec(
            &mut r,
            &[
                "/ip/hotspot/user/print",
                "?.id=*1",
                ".proplist=limit-uptime,comment,disabled",
            ],
        );
        assert_eq!(
            row[0],
            vec![
                "!re",
                "=limit-uptime=1h30m",
                "=comment=caf\u{e9}",
                "=disabled=true"
            ]
        );
        let rename = exec(&mut r, &["/ip/hotspot/user/set", "=.id=*1", "=name=b"]);
        assert_eq!(
            trap_of(&rename),
            Some("failure: already have user with this name")
        );
        assert_eq!(
            exec(&mut r, &["/ip/hotspot/user/set", "=.id=*1", "=name=a"]),
            vec![vec!["!done"]]
        );
        let unset = exec(
            &mut r,
            &["/ip/hotspot/user/unset", "=.id=*1", "=value-name=comment"],
        );
        assert_eq!(unset, vec![vec!["!done"]]);
        let get = exec(
            &mut r,
            &["/ip/hotspot/user/get", "=.id=a", "=value-name=comment"],
        );
        assert_eq!(get, vec![vec!["!done", "=ret="]]);
        let missing = exec(&mut r, &["/ip/hotspot/user/remove", "=.id=*9"]);
        assert_eq!(trap_of(&missing), Some("no such item"));
        let no_id = exec(&mut r, &["/ip/hotspot/user/remove"]);
        assert_eq!(trap_of(&no_id), Some("no such item"));
        assert_eq!(
            exec(&mut r, &["/ip/hotspot/user/remove", "=.id=*1"]),
            vec![vec!["!done"]]
        );
        assert_eq!(r.hs_users.rows.len(), 1);
        let builtin = exec(&mut r, &["/ppp/profile/remove", "=.id=*0"]);
        assert!(trap_of(&builtin).is_some());
    }

    #[test]
    fn kicking_a_session_moves_counters() {
        let mut r = router();
        add_user(&mut r, "a");
        assert!(r.hotspot_login(b"a", "10.5.50.2", "m").is_ok());
        r.advance(std::time::Duration::from_secs(60));
        assert!(r.add_traffic(b"a", 10, 20));
        assert_eq!(
            exec(&mut r, &["/ip/hotspot/active/remove", "=.id=*1"]),
            vec![vec!["!done"]]
        );
        let user = exec(&mut r, &["/ip/hotspot/user/print", ".proplist=uptime"]);
        assert_eq!(user[0], vec!["!re", "=uptime=1m"]);
        exec(&mut r, &["/ip/hotspot/user/reset-counters", "=numbers=a"]);
        let user = exec(
            &mut r,
            &["/ip/hotspot/user/print", ".proplist=uptime,bytes-in"],
        );
        assert_eq!(user[0], vec!["!re", "=uptime=0s", "=bytes-in=0"]);
    }

    #[test]
    fn mikhmon_menus() {
        let mut r = router();
        let on_login = ":put (\",rem,5000,1d,6000,,Disable,\"); {}";
        let add = exec(
            &mut r,
            &[
                "/ip/hotspot/user/profile/add",
                "=name=1hari",
                "=address-pool=none",
                "=status-autorefresh=1m",
                "=parent-queue=none",
                &format!("=on-login={on_login}"),
            ],
        );
        assert_eq!(trap_of(&add), None, "{add:?}");
        let p = exec(
            &mut r,
            &[
                "/ip/hotspot/user/profile/print",
                "?name=1hari",
                ".proplist=on-login",
            ],
        );
        assert_eq!(
            p[0],
            vec!["!re".to_owned(), format!("=on-login={on_login}")]
        );
        let sched = exec(
            &mut r,
            &[
                "/system/scheduler/add",
                "=name=1hari",
                "=start-time=03:12:45",
                "=interval=00:02:37",
                "=on-event=:log info x",
                "=comment=Monitor Profile 1hari",
            ],
        );
        assert_eq!(sched, vec![vec!["!done", "=ret=*1"]]);
        exec(&mut r, &["/system/scheduler/disable", "=.id=*1"]);
        let s = exec(
            &mut r,
            &[
                "/system/scheduler/print",
                ".proplist=interval,disabled,comment",
            ],
        );
        assert_eq!(
            s[0],
            vec![
                "!re",
                "=interval=2m37s",
                "=disabled=true",
                "=comment=Monitor Profile 1hari"
            ]
        );
        let script = exec(
            &mut r,
            &[
                "/system/script/add",
                "=name=jan/31/2024-|-19:00:00-|-mk1-|-5000",
                "=owner=jan2024",
                "=source=jan/31/2024",
                "=comment=mikhmon",
            ],
        );
        assert_eq!(script, vec![vec!["!done", "=ret=*1"]]);
        let n = exec(
            &mut r,
            &["/system/script/print", "=count-only=", "?comment=mikhmon"],
        );
        assert_eq!(n, vec![vec!["!done", "=ret=1"]]);
        // Scripts have no disabled flag.
        let t = exec(&mut r, &["/system/script/disable", "=.id=*1"]);
        assert_eq!(trap_of(&t), Some("no such command"));
        r.tz_name = "Asia/Jakarta".into();
        r.gmt_offset = 7 * 3_600;
        let c = exec(
            &mut r,
            &["/system/clock/print", ".proplist=time-zone-name,gmt-offset"],
        );
        assert_eq!(
            c[0],
            vec!["!re", "=time-zone-name=Asia/Jakarta", "=gmt-offset=+07:00"]
        );
        r.gmt_offset = -(3 * 3_600 + 1_800);
        let c = exec(&mut r, &["/system/clock/print", ".proplist=gmt-offset"]);
        assert_eq!(c[0], vec!["!re", "=gmt-offset=-03:30"]);
        for (style, shown) in [
            (GmtOffsetStyle::Compact, "-0330"),
            (GmtOffsetStyle::Seconds, "-12600"),
        ] {
            r.gmt_offset_style = style;
            let c = exec(&mut r, &["/system/clock/print", ".proplist=gmt-offset"]);
            assert_eq!(c[0], vec!["!re".to_owned(), format!("=gmt-offset={shown}")]);
        }
        r.gmt_offset = 7 * 3_600;
        r.gmt_offset_style = GmtOffsetStyle::Hours;
        let c = exec(&mut r, &["/system/clock/print", ".proplist=gmt-offset"]);
        assert_eq!(c[0], vec!["!re", "=gmt-offset=+07"]);
    }

    #[test]
    fn system_menus() {
        let mut r = router();
        let res = exec(&mut r, &["/system/resource/print"]);
        assert_eq!(res.len(), 2);
        assert!(res[0].contains(&"=version=7.16.2 (stable)".to_owned()));
        assert!(res[0].contains(&"=board-name=hAP ac^2".to_owned()));
        assert!(!res[0].iter().any(|w| w.starts_with("=.id=")));
        exec(&mut r, &["/system/identity/set", "=name=edge-1"]);
        assert_eq!(
            exec(&mut r, &["/system/identity/print"]),
            vec![vec!["!re", "=name=edge-1"], vec!["!done"]]
        );
        let pkg = exec(
            &mut r,
            &[
                "/system/package/print",
                ".proplist=.id,name,version,disabled",
            ],
        );
        assert_eq!(
            pkg[0],
            vec![
                "!re",
                "=.id=*1",
                "=name=routeros",
                "=version=7.16.2",
                "=disabled=false"
            ]
        );
        let ver = exec(&mut r, &["/system/resource/get", "=value-name=version"]);
        assert_eq!(ver, vec![vec!["!done", "=ret=7.16.2 (stable)"]]);
    }
}
