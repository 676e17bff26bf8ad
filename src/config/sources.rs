//! Where values come from: the TOML file (read with a size limit, unknown
//! keys rejected) and `MIKROTIK_EDGE_*` variables, and the errors that name
//! the offending key both ways.

use std::ffi::OsString;
use std::fmt;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use super::{ConfigError, MAX_SECS, ROUTER_KEYS, TOP_KEYS};
use crate::files::{MAX_CONFIG_BYTES, MAX_SECRET_BYTES, read_regular};

/// Where a value came from, for messages about conflicting keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Origin {
    File,
    Env,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Origin::File => "config file",
            Origin::Env => "environment",
        })
    }
}

/// One key's raw value, before type checks.
pub(super) enum Raw<'a> {
    Env(String),
    File(&'a toml::Value),
}

/// The file (already checked for unknown keys) and the environment.
pub(super) struct Sources<'a> {
    pub(super) file: Option<&'a toml::Table>,
    pub(super) env: &'a dyn Fn(&str) -> Option<OsString>,
}

impl<'a> Sources<'a> {
    pub(super) fn raw(&self, key: &'static str) -> Result<Option<Raw<'a>>, ConfigError> {
        if let Some(value) = (self.env)(&env_name(key)) {
            return match value.into_string() {
                Ok(s) => Ok(Some(Raw::Env(s))),
                Err(_) => Err(error(key, "value is not valid UTF-8")),
            };
        }
        let Some(table) = self.file else {
            return Ok(None);
        };
        let value = match key.split_once('.') {
            Some((section, name)) => table
                .get(section)
                .and_then(toml::Value::as_table)
                .and_then(|t| t.get(name)),
            None => table.get(key),
        };
        Ok(value.map(Raw::File))
    }

    /// A string and its origin; `reveal` says whether a wrongly typed value
    /// may be quoted back in the error.
    pub(super) fn string_with_origin(
        &self,
        key: &'static str,
        reveal: bool,
    ) -> Result<Option<(String, Origin)>, ConfigError> {
        match self.raw(key)? {
            None => Ok(None),
            Some(Raw::Env(s)) => Ok(Some((s, Origin::Env))),
            Some(Raw::File(toml::Value::String(s))) => Ok(Some((s.clone(), Origin::File))),
            Some(Raw::File(v)) if reveal => Err(error(
                key,
                format!("expected a string, got {}", describe(v)),
            )),
            Some(Raw::File(_)) => Err(error(key, "expected a string")),
        }
    }

    pub(super) fn string(&self, key: &'static str) -> Result<Option<String>, ConfigError> {
        Ok(self.string_with_origin(key, true)?.map(|(s, _)| s))
    }

    pub(super) fn secret(
        &self,
        key: &'static str,
    ) -> Result<Option<(String, Origin)>, ConfigError> {
        self.string_with_origin(key, false)
    }

    pub(super) fn path_with_origin(
        &self,
        key: &'static str,
    ) -> Result<Option<(PathBuf, Origin)>, ConfigError> {
        match self.string_with_origin(key, true)? {
            Some((s, _)) if s.is_empty() => Err(error(key, "expected a path, got \"\"")),
            Some((s, origin)) => Ok(Some((PathBuf::from(s), origin))),
            None => Ok(None),
        }
    }

    pub(super) fn path(&self, key: &'static str) -> Result<Option<PathBuf>, ConfigError> {
        Ok(self.path_with_origin(key)?.map(|(p, _)| p))
    }

    pub(super) fn pattern(&self, key: &'static str) -> Result<Option<String>, ConfigError> {
        match self.string(key)? {
            Some(s) if s.is_empty() => Err(error(key, "expected a non-empty glob pattern")),
            other => Ok(other),
        }
    }

    pub(super) fn uint(
        &self,
        key: &'static str,
        range: RangeInclusive<u64>,
        what: &str,
    ) -> Result<Option<u64>, ConfigError> {
        let bad = |got: String| error(key, format!("expected {what}, got {got}"));
        let n = match self.raw(key)? {
            None => return Ok(None),
            Some(Raw::Env(s)) => s.parse::<u64>().map_err(|_| bad(format!("{s:?}")))?,
            Some(Raw::File(toml::Value::Integer(i))) => {
                u64::try_from(*i).map_err(|_| bad(i.to_string()))?
            }
            Some(Raw::File(v)) => return Err(bad(describe(v))),
        };
        if range.contains(&n) {
            Ok(Some(n))
        } else {
            Err(bad(n.to_string()))
        }
    }

    /// A duration in whole seconds, 1 up to a year.
    pub(super) fn secs(&self, key: &'static str) -> Result<Option<u64>, ConfigError> {
        self.uint(key, 1..=MAX_SECS, "a whole number of seconds 1-31536000")
    }

    /// A list of strings: a TOML array of strings, or comma-separated in
    /// the environment (empty items dropped).
    pub(super) fn string_list(
        &self,
        key: &'static str,
    ) -> Result<Option<Vec<String>>, ConfigError> {
        match self.raw(key)? {
            None => Ok(None),
            Some(Raw::Env(s)) => Ok(Some(
                s.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect(),
            )),
            Some(Raw::File(toml::Value::Array(items))) => items
                .iter()
                .map(|v| match v {
                    toml::Value::String(s) => Ok(s.trim().to_owned()),
                    v => Err(error(
                        key,
                        format!("expected an array of strings, got {}", describe(v)),
                    )),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(Raw::File(v)) => Err(error(
                key,
                format!("expected an array of strings, got {}", describe(v)),
            )),
        }
    }

    pub(super) fn boolean(&self, key: &'static str) -> Result<Option<bool>, ConfigError> {
        match self.raw(key)? {
            None => Ok(None),
            Some(Raw::Env(s)) => match s.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => Ok(Some(true)),
                "false" | "0" | "no" => Ok(Some(false)),
                _ => Err(error(
                    key,
                    format!("expected true|false|1|0|yes|no, got {s:?}"),
                )),
            },
            Some(Raw::File(toml::Value::Boolean(b))) => Ok(Some(*b)),
            Some(Raw::File(v)) => Err(error(
                key,
                format!("expected true or false, got {}", describe(v)),
            )),
        }
    }
}

/// `router.port` -> `MIKROTIK_EDGE_ROUTER_PORT`.
pub(super) fn env_name(key: &str) -> String {
    format!(
        "MIKROTIK_EDGE_{}",
        key.replace('.', "_").to_ascii_uppercase()
    )
}

/// `router.port` -> `router.port (MIKROTIK_EDGE_ROUTER_PORT)`.
pub(super) fn label(key: &str) -> String {
    format!("{key} ({})", env_name(key))
}

pub(super) fn error(key: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        key: label(key),
        // A quoted value may be a URL with a password or token in it.
        reason: excerpt(crate::redact::redact_urls_in(&reason.into())),
    }
}

/// Longest reason quoted back, in characters. Reasons end with the
/// offending value; a 10 MB value must not put 10 MB on stderr.
pub(super) const MAX_REASON_CHARS: usize = 200;

pub(super) fn excerpt(reason: String) -> String {
    let total = reason.len();
    match reason.char_indices().nth(MAX_REASON_CHARS) {
        Some((cut, _)) => format!("{}… ({total} bytes in all)", &reason[..cut]),
        None => reason,
    }
}

pub(super) fn file_error(path: &Path, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        key: path.display().to_string(),
        reason: reason.into(),
    }
}

/// A wrongly typed TOML value, for "expected X, got Y".
pub(super) fn describe(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => format!("the string {s:?}"),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        toml::Value::Datetime(d) => format!("the datetime {d}"),
        toml::Value::Array(_) => "an array".to_owned(),
        toml::Value::Table(_) => "a table".to_owned(),
    }
}

/// Reads and parses the file, and rejects unknown keys up front so a typo
/// cannot silently fall back to a default.
pub(super) fn read_toml(path: &Path) -> Result<toml::Table, ConfigError> {
    let bytes = read_regular(path, MAX_CONFIG_BYTES).map_err(|e| ConfigError {
        key: format!("--config {}", path.display()),
        reason: format!("cannot read: {e}"),
    })?;
    let text = String::from_utf8(bytes).map_err(|e| {
        file_error(
            path,
            format!("not valid UTF-8 at byte {}", e.utf8_error().valid_up_to()),
        )
    })?;
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        // Only the message and position: toml's own Display quotes the
        // offending line, which could hold the password.
        let reason = match e.span() {
            Some(span) => {
                let (line, column) = line_column(&text, span.start);
                format!(
                    "TOML syntax error at line {line}, column {column}: {}",
                    e.message()
                )
            }
            None => format!("TOML syntax error: {}", e.message()),
        };
        file_error(path, reason)
    })?;

    let unknown = |key: String| ConfigError {
        key,
        reason: format!("unknown key in {}", path.display()),
    };
    for (name, value) in &table {
        if name == "router" {
            let Some(router) = value.as_table() else {
                return Err(ConfigError {
                    key: "router".to_owned(),
                    reason: format!(
                        "expected a [router] table in {}, got {}",
                        path.display(),
                        describe(value)
                    ),
                });
            };
            if let Some(name) = router.keys().find(|k| !ROUTER_KEYS.contains(&k.as_str())) {
                return Err(unknown(format!("router.{}", name.escape_debug())));
            }
        } else if !TOP_KEYS.contains(&name.as_str()) {
            return Err(unknown(name.escape_debug().to_string()));
        }
    }
    Ok(table)
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
pub(super) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

pub(super) fn read_password_file(path: &Path) -> Result<String, ConfigError> {
    read_secret_file("router.password_file", path)
}

/// A password, token or header-value file: a regular file (never a FIFO
/// that would block), bounded read, one line ending stripped. The one
/// reader for every secret file.
pub(super) fn read_secret_file(key: &str, path: &Path) -> Result<String, ConfigError> {
    let mut bytes = read_regular(path, MAX_SECRET_BYTES)
        .map_err(|e| error(key, format!("cannot read {}: {e}", path.display())))?;
    // Files written by `echo` or editors end in a newline that is not part
    // of the password; strip exactly one line ending and nothing else.
    if bytes.ends_with(b"\n") {
        bytes.pop();
        if bytes.ends_with(b"\r") {
            bytes.pop();
        }
    }
    String::from_utf8(bytes)
        .map_err(|_| error(key, format!("{} is not valid UTF-8", path.display())))
}

pub(super) fn check_readable_file(key: &str, path: &Path) -> Result<(), ConfigError> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() => Ok(()),
        Ok(_) => Err(error(
            key,
            format!("{} is not a regular file", path.display()),
        )),
        Err(e) => Err(error(key, format!("cannot access {}: {e}", path.display()))),
    }
}
