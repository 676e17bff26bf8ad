//! URLs as they may be shown in logs and errors: `scheme://host[:port]/…`.
//!
//! A webhook URL often carries its secret in the path
//! (`/hooks/T0K3N`) or the query (`?token=…`), and a mistyped setting may
//! carry a password (`ftp://user:PASS@host/`). Only the scheme, host and
//! port are ever shown; userinfo is dropped and everything after the
//! authority becomes `…`.

/// `http://u:p@host:8080/secret?token=x` -> `http://host:8080/…`.
/// Without a scheme the same rules apply to what is there
/// (`u:p@host/x` -> `host/…`).
pub fn redact_url(url: &str) -> String {
    let url = url.trim();
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r))
            if s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.')) =>
        {
            (Some(s), r)
        }
        _ => (None, url),
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let mut out = String::new();
    if let Some(s) = scheme {
        out.push_str(s);
        out.push_str("://");
    }
    out.push_str(host);
    match tail {
        "" => {}
        "/" => out.push('/'),
        _ => out.push_str("/…"),
    }
    out
}

/// Every URL (`scheme://…`) inside `text` redacted: error texts from HTTP
/// libraries, and config errors, may quote the URL they were given.
pub fn redact_urls_in(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = find_url(rest) {
        out.push_str(&rest[..start]);
        let url = &rest[start..];
        let end = url
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | '`'))
            .unwrap_or(url.len());
        out.push_str(&redact_url(&url[..end]));
        rest = &url[end..];
    }
    out.push_str(rest);
    out
}

/// Where the first `scheme://` starts (the scheme being the letters,
/// digits, `+`, `-`, `.` right before `://`).
fn find_url(text: &str) -> Option<usize> {
    let sep = text.find("://")?;
    let start = text[..sep]
        .rfind(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
        .map_or(0, |i| i + 1);
    Some(start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_scheme_host_and_port_remain() {
        assert_eq!(
            redact_url("https://u:PASS@gw.example:8443/hooks/T0K3N?token=abc#x"),
            "https://gw.example:8443/…"
        );
        assert_eq!(redact_url("http://gw.example"), "http://gw.example");
        assert_eq!(redact_url("http://gw.example/"), "http://gw.example/");
        assert_eq!(
            redact_url("http://gw.example?token=s"),
            "http://gw.example/…"
        );
        assert_eq!(redact_url("ftp://u:PASS@files/x"), "ftp://files/…");
        assert_eq!(redact_url("u:PASS@host/path"), "host/…");
        assert_eq!(redact_url("http://[::1]:8080/x"), "http://[::1]:8080/…");
        assert_eq!(redact_url("not a url"), "not a url");
    }

    #[test]
    fn urls_inside_text_are_redacted() {
        assert_eq!(
            redact_urls_in("bad uri: \"https://h/secret?token=t\" (x); HTTP://A@b/c"),
            "bad uri: \"https://h/…\" (x); HTTP://b/…"
        );
        assert_eq!(redact_urls_in("no url here"), "no url here");
        assert_eq!(
            redact_urls_in("expected http, got \"ftp://u:PASS@x/\""),
            "expected http, got \"ftp://x/\""
        );
        assert_eq!(redact_urls_in("a ://b/c"), "a ://b/…");
    }
}
