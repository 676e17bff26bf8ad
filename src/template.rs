//! Alert webhook bodies from an operator's template, so the alert can go
//! to whatever a gateway accepts (a WhatsApp gateway's form with a target
//! number, a chat API's JSON).
//!
//! Placeholders are `{message}`, `{site}`, `{router}`, `{time}` and
//! `{alert}`. Any other `{name}` (letters and `_`) is an error at config
//! load; a `{` not followed by such a name is literal, so JSON objects
//! need no escaping. In JSON format a value is JSON-escaped in place (the
//! placeholder belongs inside a string literal, and the filled-in template
//! must parse as JSON); in form format it is percent-encoded.

use std::fmt;

/// How the body is encoded, and its `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    Json,
    Form,
}

impl BodyFormat {
    pub fn content_type(self) -> &'static str {
        match self {
            BodyFormat::Json => "application/json",
            BodyFormat::Form => "application/x-www-form-urlencoded",
        }
    }
}

impl fmt::Display for BodyFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BodyFormat::Json => "json",
            BodyFormat::Form => "form",
        })
    }
}

/// The form body used when `alert_webhook_format = "form"` and no
/// template is given.
pub const DEFAULT_FORM: &str =
    "alert={alert}&site={site}&router={router}&time={time}&message={message}";

/// What one alert fills in.
#[derive(Debug, Clone, Default)]
pub struct AlertFields {
    /// Short and human: `Router shop-north unreachable since 14:02 (…)`.
    pub message: String,
    pub site: String,
    pub router: String,
    /// Local time of the alert, e.g. `2026-11-24 14:02 +07:00`.
    pub time: String,
    /// The alert's stable name, e.g. `mikrotik_connection_failed`.
    pub alert: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Var {
    Message,
    Site,
    Router,
    Time,
    Alert,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Var(Var),
}

/// A parsed, validated body template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    format: BodyFormat,
    parts: Vec<Part>,
}

impl Template {
    /// Parses `text`; the error says what is wrong (never quoting values:
    /// the template itself is not secret, so it may be quoted).
    pub fn parse(text: &str, format: BodyFormat) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            lit.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            let name_len = after
                .find(|c: char| !(c.is_ascii_alphabetic() || c == '_'))
                .unwrap_or(after.len());
            if name_len > 0 && after[name_len..].starts_with('}') {
                let name = &after[..name_len];
                let var = match name {
                    "message" => Var::Message,
                    "site" => Var::Site,
                    "router" => Var::Router,
                    "time" => Var::Time,
                    "alert" => Var::Alert,
                    _ => {
                        return Err(format!(
                            "unknown placeholder {{{name}}} (known: {{message}}, {{site}}, {{router}}, {{time}}, {{alert}})"
                        ));
                    }
                };
                if !lit.is_empty() {
                    parts.push(Part::Text(std::mem::take(&mut lit)));
                }
                parts.push(Part::Var(var));
                rest = &after[name_len + 1..];
            } else {
                lit.push('{');
                rest = after;
            }
        }
        lit.push_str(rest);
        if !lit.is_empty() {
            parts.push(Part::Text(lit));
        }
        let t = Template { format, parts };
        t.check()?;
        Ok(t)
    }

    pub fn format(&self) -> BodyFormat {
        self.format
    }

    /// The body for one alert.
    pub fn render(&self, f: &AlertFields) -> String {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Var(v) => {
                    let value = match v {
                        Var::Message => &f.message,
                        Var::Site => &f.site,
                        Var::Router => &f.router,
                        Var::Time => &f.time,
                        Var::Alert => &f.alert,
                    };
                    match self.format {
                        BodyFormat::Json => out.push_str(&json_escape(value)),
                        BodyFormat::Form => out.push_str(&percent_encode(value)),
                    }
                }
            }
        }
        out
    }

    /// Filled in with awkward values, the body must still be what its
    /// format says, or the gateway would get garbage at the first alert.
    fn check(&self) -> Result<(), String> {
        let awkward = "a \"quoted\" back\\slash & é\nline = 100%";
        let sample = AlertFields {
            message: awkward.into(),
            site: awkward.into(),
            router: awkward.into(),
            time: awkward.into(),
            alert: awkward.into(),
        };
        let body = self.render(&sample);
        match self.format {
            BodyFormat::Json => serde_json::from_str::<serde_json::Value>(&body)
                .map(|_| ())
                .map_err(|e| {
                    format!(
                        "not valid JSON once the placeholders are filled in ({e}); put each placeholder inside a JSON string, e.g. \"text\": \"{{message}}\""
                    )
                }),
            BodyFormat::Form => {
                if body.is_empty() || !body.contains('=') {
                    return Err("expected name=value pairs joined by &, e.g. target=62812000&message={message}".into());
                }
                if body.chars().any(|c| c.is_whitespace() || c.is_control()) {
                    return Err("a form body must not contain spaces or line breaks (percent-encode them, e.g. %20)".into());
                }
                Ok(())
            }
        }
    }
}

/// The inside of a JSON string literal for `s`.
fn json_escape(s: &str) -> String {
    let quoted = serde_json::Value::from(s).to_string();
    quoted[1..quoted.len() - 1].to_owned()
}

/// `application/x-www-form-urlencoded` for `s`: every byte but the
/// unreserved ones as `%XX` (so `+`, `&` and `=` in a message stay text).
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> AlertFields {
        AlertFields {
            message: "Router \"shop\" down & out\n100%".into(),
            site: "site-a".into(),
            router: "shop-north".into(),
            time: "2026-11-24 14:02 +07:00".into(),
            alert: "mikrotik_connection_failed".into(),
        }
    }

    #[test]
    fn json_values_are_escaped_in_place() {
        let t = Template::parse(
            r#"{"to": "62812", "text": "{message}", "meta": {"site": "{site}", "at": "{time}"}}"#,
            BodyFormat::Json,
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_str(&t.render(&fields())).unwrap();
        assert_eq!(v["text"], "Router \"shop\" down & out\n100%");
        assert_eq!(v["meta"]["site"], "site-a");
        assert_eq!(v["meta"]["at"], "2026-11-24 14:02 +07:00");
    }

    #[test]
    fn form_values_are_percent_encoded() {
        let t = Template::parse(
            "target=62812000&message={message}&r={router}",
            BodyFormat::Form,
        )
        .unwrap();
        assert_eq!(
            t.render(&fields()),
            "target=62812000&message=Router%20%22shop%22%20down%20%26%20out%0A100%25&r=shop-north"
        );
        assert_eq!(
            BodyFormat::Form.content_type(),
            "application/x-www-form-urlencoded"
        );
        assert!(Template::parse(DEFAULT_FORM, BodyFormat::Form).is_ok());
    }

    #[test]
    fn bad_templates_are_refused_with_a_reason() {
        let e = Template::parse(r#"{"text": "{mesage}"}"#, BodyFormat::Json).unwrap_err();
        assert!(e.contains("unknown placeholder {mesage}"), "{e}");
        let e = Template::parse(r#"{"text": {message}}"#, BodyFormat::Json).unwrap_err();
        assert!(e.contains("not valid JSON"), "{e}");
        let e = Template::parse(r#"{"text": "{message}""#, BodyFormat::Json).unwrap_err();
        assert!(e.contains("not valid JSON"), "{e}");
        assert!(Template::parse("message {message}", BodyFormat::Form).is_err());
        assert!(Template::parse("", BodyFormat::Form).is_err());
    }
}
