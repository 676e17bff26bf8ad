//! DNS-rebinding protection: which `Host` a request may name.
//!
//! A web page on an attacker's domain can make a browser on the LAN send
//! requests to this endpoint by pointing its own name at our address; the
//! browser then sends `Host: attacker.example`. Answering only the names
//! this endpoint is known by (its address, loopback names, and the
//! operator's `http_allowed_hosts`) makes such pages read nothing.

use std::net::{IpAddr, SocketAddr};

use hyper::HeaderMap;
use hyper::Uri;
use hyper::header;

/// The names a request may carry in `Host`.
pub(crate) struct HostPolicy {
    /// `http_allowed_hosts`, lowercased: `name` (any port) or `name:port`.
    allowed: Vec<String>,
}

impl HostPolicy {
    pub(crate) fn new(allowed: &[String]) -> HostPolicy {
        HostPolicy {
            allowed: allowed.iter().map(|h| normalize(h)).collect(),
        }
    }

    /// Whether the request's host (the absolute URI's authority, else the
    /// `Host` header) is one this endpoint answers to. `listen` is the
    /// configured address, `local` the address this connection reached
    /// (the concrete interface address when listening on 0.0.0.0 or `[::]`).
    pub(crate) fn allows(
        &self,
        uri: &Uri,
        headers: &HeaderMap,
        listen: SocketAddr,
        local: SocketAddr,
    ) -> bool {
        let host = match uri.authority() {
            Some(a) => a.as_str(),
            None => match headers.get(header::HOST).and_then(|v| v.to_str().ok()) {
                Some(h) => h,
                // No name at all: nothing a rebinding page can produce
                // (browsers always send Host), but nothing to check either.
                None => return false,
            },
        };
        let host = normalize(host);
        let Some((name, port)) = split_host_port(&host) else {
            return false;
        };
        // Built-in names: without a port, or with the port served here.
        if port.is_none_or(|p| p == local.port() || p == listen.port()) {
            let builtin = matches!(name, "localhost" | "127.0.0.1" | "[::1]")
                || [listen.ip(), local.ip()].iter().any(|ip| is_ip(name, *ip));
            if builtin {
                return true;
            }
        }
        self.allowed.iter().any(|a| match split_host_port(a) {
            Some((n, None)) => n == name,
            Some((n, Some(p))) => n == name && Some(p) == port,
            None => false,
        })
    }
}

/// Lowercase, without a trailing dot on the name (`Localhost.` is
/// `localhost`).
fn normalize(host: &str) -> String {
    let mut h = host.trim().to_ascii_lowercase();
    match split_host_port(&h) {
        Some((name, port)) if name.ends_with('.') => {
            let name = name.trim_end_matches('.');
            h = match port {
                Some(p) => format!("{name}:{p}"),
                None => name.to_owned(),
            };
        }
        _ => {}
    }
    h
}

/// `name`, `name:port`, `[v6]` or `[v6]:port`; the name keeps its
/// brackets. `None` when the port is not a number.
pub(crate) fn split_host_port(s: &str) -> Option<(&str, Option<u16>)> {
    let (name, port) = if s.starts_with('[') {
        let end = s.find(']')?;
        let (name, rest) = s.split_at(end + 1);
        match rest.strip_prefix(':') {
            Some(p) => (name, Some(p)),
            None if rest.is_empty() => (name, None),
            None => return None,
        }
    } else {
        match s.rsplit_once(':') {
            // More than one colon without brackets: a bare IPv6 address.
            Some((n, _)) if n.contains(':') => (s, None),
            Some((n, p)) => (n, Some(p)),
            None => (s, None),
        }
    };
    if name.is_empty() {
        return None;
    }
    let port = match port {
        Some(p) => Some(p.parse::<u16>().ok()?),
        None => None,
    };
    Some((name, port))
}

/// `name` (bracketed for IPv6) is `ip`, written any way that parses.
fn is_ip(name: &str, ip: IpAddr) -> bool {
    if ip.is_unspecified() {
        return false;
    }
    let bare = name
        .strip_prefix('[')
        .and_then(|n| n.strip_suffix(']'))
        .unwrap_or(name);
    bare.parse::<IpAddr>().is_ok_and(|p| p == ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(policy: &HostPolicy, host: &str, listen: &str, local: &str) -> bool {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, host.parse().unwrap());
        policy.allows(
            &Uri::from_static("/"),
            &h,
            listen.parse().unwrap(),
            local.parse().unwrap(),
        )
    }

    #[test]
    fn loopback_and_listen_names_pass_others_do_not() {
        let p = HostPolicy::new(&["edge.lan".into(), "Proxy.Example:8443".into()]);
        let (l, c) = ("127.0.0.1:8080", "127.0.0.1:8080");
        for ok in [
            "127.0.0.1:8080",
            "127.0.0.1",
            "localhost",
            "LOCALHOST:8080",
            "localhost.",
            "[::1]:8080",
            "edge.lan",
            "edge.lan:9999",
            "proxy.example:8443",
        ] {
            assert!(check(&p, ok, l, c), "{ok}");
        }
        for bad in [
            "attacker.example",
            "attacker.example:8080",
            "localhost:9999",
            "proxy.example",
            "proxy.example:80",
            "edge.lan.attacker.example",
            "127.0.0.1:abc",
            "",
        ] {
            assert!(!check(&p, bad, l, c), "{bad}");
        }
    }

    #[test]
    fn a_wildcard_listener_accepts_the_address_reached() {
        let p = HostPolicy::new(&[]);
        assert!(check(
            &p,
            "192.168.88.10:8080",
            "0.0.0.0:8080",
            "192.168.88.10:8080"
        ));
        assert!(!check(
            &p,
            "0.0.0.0:8080",
            "0.0.0.0:8080",
            "192.168.88.10:8080"
        ));
        assert!(!check(
            &p,
            "192.168.88.11:8080",
            "0.0.0.0:8080",
            "192.168.88.10:8080"
        ));
        assert!(check(&p, "[fe80::1]:8080", "[::]:8080", "[fe80::1]:8080"));
    }

    #[test]
    fn an_absolute_uri_names_the_host() {
        let p = HostPolicy::new(&[]);
        let mut h = HeaderMap::new();
        h.insert(header::HOST, "localhost".parse().unwrap());
        let uri: Uri = "http://attacker.example/".parse().unwrap();
        let a = "127.0.0.1:8080".parse().unwrap();
        assert!(!p.allows(&uri, &h, a, a));
        assert!(!p.allows(&Uri::from_static("/"), &HeaderMap::new(), a, a));
    }
}
