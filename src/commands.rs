//! The RouterOS command vocabulary: the menus the agent reads and writes,
//! and one builder per command. Every writer (the monitor's actions in
//! [`crate::agent::commands`], the sync's in [`crate::agent::sync`],
//! `create-batch`, the HTTP user API, `import-mikhmon`) and every list
//! read goes through here, so a command is spelt once.

use crate::event::Service;
use crate::name::{Id, Mac};
use crate::proto::Command;

/// The user list: hotspot users or PPP secrets.
pub fn users(service: Service) -> &'static str {
    match service {
        Service::Hotspot => "/ip/hotspot/user",
        Service::Pppoe => "/ppp/secret",
    }
}

/// The profile list of `service`.
pub fn profiles(service: Service) -> &'static str {
    match service {
        Service::Hotspot => "/ip/hotspot/user/profile",
        Service::Pppoe => "/ppp/profile",
    }
}

/// The active-session list of `service`.
pub fn active(service: Service) -> &'static str {
    match service {
        Service::Hotspot => "/ip/hotspot/active",
        Service::Pppoe => "/ppp/active",
    }
}

/// The field naming the user in `service`'s active list.
pub fn active_user_field(service: Service) -> &'static str {
    match service {
        Service::Hotspot => "user",
        Service::Pppoe => "name",
    }
}

/// `{menu}/print` of the fields `props` (a `.proplist`).
pub fn print(menu: &str, props: &[&str]) -> Command {
    Command::new(format!("{menu}/print")).proplist(props)
}

/// `{menu}/print =count-only=`: the number of items, as `!done =ret=N`.
pub fn count(menu: &str) -> Command {
    Command::new(format!("{menu}/print")).attr("count-only", "")
}

/// `{menu}/print` of the `.id`s of the items whose `field` is exactly
/// `value` (a literal `?field=value` query: no globs, no case folding).
pub fn find(menu: &str, field: &str, value: &[u8]) -> Command {
    let mut q = field.as_bytes().to_vec();
    q.push(b'=');
    q.extend_from_slice(value);
    Command::new(format!("{menu}/print"))
        .query(q)
        .proplist(&[".id"])
}

/// `{menu}/listen` of the fields `props`.
pub fn listen(menu: &str, props: &[&str]) -> Command {
    Command::new(format!("{menu}/listen")).proplist(props)
}

/// An item's `.id` as the router wants it back: a parsed [`Id`], or the
/// bytes a reply gave.
pub trait ItemId {
    fn word(&self) -> Vec<u8>;
}

impl ItemId for Id {
    fn word(&self) -> Vec<u8> {
        self.to_string().into_bytes()
    }
}

impl ItemId for [u8] {
    fn word(&self) -> Vec<u8> {
        self.to_vec()
    }
}

impl ItemId for Vec<u8> {
    fn word(&self) -> Vec<u8> {
        self.clone()
    }
}

/// A new hotspot user or PPP secret. Fields left `None` are not sent (the
/// router's defaults apply).
#[derive(Debug, Clone, Copy)]
pub struct AddUser<'a> {
    pub service: Service,
    pub name: &'a [u8],
    pub password: Option<&'a [u8]>,
    pub profile: Option<&'a [u8]>,
    pub comment: Option<&'a [u8]>,
    /// Created disabled (PPP secrets only: a hotspot user has no such
    /// field at creation here).
    pub disabled: bool,
}

/// `/ip/hotspot/user/add` or `/ppp/secret/add` (with `service=pppoe`).
pub fn add_user(u: &AddUser<'_>) -> Command {
    let mut cmd = Command::new(format!("{}/add", users(u.service))).attr("name", u.name);
    if let Some(p) = u.password {
        cmd = cmd.attr("password", p);
    }
    if let Some(p) = u.profile {
        cmd = cmd.attr("profile", p);
    }
    if u.service == Service::Pppoe {
        cmd = cmd.attr("service", "pppoe");
        if u.disabled {
            cmd = cmd.attr("disabled", "yes");
        }
    }
    if let Some(c) = u.comment {
        cmd = cmd.attr("comment", c);
    }
    cmd
}

/// Removes a user or secret.
pub fn remove_user(service: Service, id: &(impl ItemId + ?Sized)) -> Command {
    Command::new(format!("{}/remove", users(service))).attr(".id", id.word())
}

/// `/ip/hotspot/user/disable`.
pub fn disable_hotspot_user(id: &(impl ItemId + ?Sized)) -> Command {
    Command::new("/ip/hotspot/user/disable").attr(".id", id.word())
}

/// `/ppp/secret/disable` or `/enable`.
pub fn set_secret_enabled(id: &(impl ItemId + ?Sized), enabled: bool) -> Command {
    let verb = if enabled { "enable" } else { "disable" };
    Command::new(format!("/ppp/secret/{verb}")).attr(".id", id.word())
}

/// Sets a hotspot user's comment.
pub fn set_hotspot_comment(id: &(impl ItemId + ?Sized), comment: &[u8]) -> Command {
    Command::new("/ip/hotspot/user/set")
        .attr(".id", id.word())
        .attr("comment", comment)
}

/// Locks a hotspot user to one MAC address.
pub fn set_hotspot_mac(id: &(impl ItemId + ?Sized), mac: Mac) -> Command {
    Command::new("/ip/hotspot/user/set")
        .attr(".id", id.word())
        .attr("mac-address", mac.to_string())
}

/// Moves a PPP secret to another profile, with its new comment.
pub fn set_secret_profile(id: &(impl ItemId + ?Sized), profile: &[u8], comment: &[u8]) -> Command {
    Command::new("/ppp/secret/set")
        .attr(".id", id.word())
        .attr("profile", profile)
        .attr("comment", comment)
}

/// Ends an active session.
pub fn kick(service: Service, active_id: &(impl ItemId + ?Sized)) -> Command {
    Command::new(format!("{}/remove", active(service))).attr(".id", active_id.word())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(c: &Command) -> Vec<String> {
        c.words()
            .iter()
            .map(|w| String::from_utf8_lossy(w).into_owned())
            .collect()
    }

    #[test]
    fn add_user_sends_only_what_is_given() {
        let hotspot = add_user(&AddUser {
            service: Service::Hotspot,
            name: b"u",
            password: None,
            profile: None,
            comment: None,
            disabled: true,
        });
        assert_eq!(words(&hotspot), ["/ip/hotspot/user/add", "=name=u"]);
        let ppp = add_user(&AddUser {
            service: Service::Pppoe,
            name: b"u",
            password: Some(b"p"),
            profile: Some(b"1M"),
            comment: Some(b"c"),
            disabled: true,
        });
        assert_eq!(
            words(&ppp),
            [
                "/ppp/secret/add",
                "=name=u",
                "=password=p",
                "=profile=1M",
                "=service=pppoe",
                "=disabled=yes",
                "=comment=c"
            ]
        );
    }

    #[test]
    fn ids_parsed_or_raw_are_the_same_word() {
        assert_eq!(
            words(&kick(Service::Pppoe, &Id(0x1a))),
            words(&kick(Service::Pppoe, b"*1A".as_slice()))
        );
        assert_eq!(
            words(&set_secret_enabled(&Id(2), false)),
            ["/ppp/secret/disable", "=.id=*2"]
        );
        assert_eq!(
            words(&find("/ppp/active", "name", b"a b")),
            ["/ppp/active/print", "?name=a b", ".proplist=.id"]
        );
    }
}
