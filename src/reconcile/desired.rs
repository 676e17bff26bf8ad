//! The desired state from the central side (`site_desired_state`), typed.
//!
//! Text values are kept as raw bytes ([`Name`]): the JSON string, or, when
//! an `X_b64` field sits beside `X` (the same convention as the events),
//! the exact bytes it holds, so a name that is not UTF-8 on the router
//! still matches byte for byte. Passwords are kept only to be sent to the
//! router; `Debug` never prints them.

use std::fmt;

use serde_json::Value;

use crate::clock::{Timestamp, parse_rfc3339};
use crate::name::Name;

/// Status of a desired voucher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VoucherStatus {
    Created,
    Active,
    Expired,
    Migrated,
    /// Removed on purpose (an operator's delete): never recreated, and
    /// removed from the router if it is there.
    Deleted,
}

/// Status of a desired subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriptionStatus {
    Active,
    Suspended,
    /// Removed on purpose: never recreated, removed from the router.
    Deleted,
}

pub use crate::password::Password;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredVoucher {
    pub code: Name,
    pub password: Password,
    pub profile: Name,
    pub comment: Name,
    pub status: VoucherStatus,
    /// When the newest operator intent on this row was made (central's
    /// `intent_at`); see [`super::intent`].
    pub intent_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredSubscription {
    pub user: Name,
    pub password: Password,
    pub profile: Name,
    pub comment: Name,
    pub status: SubscriptionStatus,
    pub intent_at: Option<Timestamp>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DesiredState {
    pub vouchers: Vec<DesiredVoucher>,
    pub subscriptions: Vec<DesiredSubscription>,
    /// Opaque; changes exactly when the content does.
    pub version: String,
}

/// Why a desired-state document was refused (nothing of it is applied).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredError(pub String);

impl fmt::Display for DesiredError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad desired state: {}", self.0)
    }
}

impl std::error::Error for DesiredError {}

impl DesiredState {
    /// Parses the function's JSON answer. An entry without its name
    /// (`code`, `pppoe_username`) or with an unknown status refuses the
    /// whole document: applying half of it could adopt or suspend wrongly.
    pub fn from_json(v: &Value) -> Result<DesiredState, DesiredError> {
        let bad = |s: String| DesiredError(s);
        let obj = v
            .as_object()
            .ok_or_else(|| bad("not a JSON object".into()))?;
        let list = |key: &str| -> Result<&Vec<Value>, DesiredError> {
            match obj.get(key) {
                Some(Value::Array(a)) => Ok(a),
                _ => Err(bad(format!("\"{key}\" is not an array"))),
            }
        };
        let mut out = DesiredState {
            version: match obj.get("version") {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Number(n)) => n.to_string(),
                _ => String::new(),
            },
            ..DesiredState::default()
        };
        for (i, e) in list("vouchers")?.iter().enumerate() {
            let at = |what: &str| bad(format!("vouchers[{i}]: {what}"));
            let code = text(e, "code")
                .map_err(|w| at(&w))?
                .filter(|n| !n.is_empty());
            let code = code.ok_or_else(|| at("no code"))?;
            let status = match e.get("status").and_then(Value::as_str) {
                Some("created") | None => VoucherStatus::Created,
                Some("active") => VoucherStatus::Active,
                Some("expired") => VoucherStatus::Expired,
                Some("migrated") => VoucherStatus::Migrated,
                Some("deleted") => VoucherStatus::Deleted,
                Some(other) => return Err(at(&format!("unknown status {other:?}"))),
            };
            out.vouchers.push(DesiredVoucher {
                code,
                password: Password(text(e, "password").map_err(|w| at(&w))?),
                profile: text(e, "profile").map_err(|w| at(&w))?.unwrap_or_default(),
                comment: text(e, "comment").map_err(|w| at(&w))?.unwrap_or_default(),
                status,
                intent_at: intent_at(e).map_err(|w| at(&w))?,
            });
        }
        for (i, e) in list("subscriptions")?.iter().enumerate() {
            let at = |what: &str| bad(format!("subscriptions[{i}]: {what}"));
            let user = text(e, "pppoe_username")
                .map_err(|w| at(&w))?
                .filter(|n| !n.is_empty());
            let user = user.ok_or_else(|| at("no pppoe_username"))?;
            let status = match e.get("status").and_then(Value::as_str) {
                Some("active") | None => SubscriptionStatus::Active,
                Some("suspended") => SubscriptionStatus::Suspended,
                Some("deleted") => SubscriptionStatus::Deleted,
                Some(other) => return Err(at(&format!("unknown status {other:?}"))),
            };
            out.subscriptions.push(DesiredSubscription {
                user,
                password: Password(text(e, "password").map_err(|w| at(&w))?),
                profile: text(e, "profile").map_err(|w| at(&w))?.unwrap_or_default(),
                comment: text(e, "comment").map_err(|w| at(&w))?.unwrap_or_default(),
                status,
                intent_at: intent_at(e).map_err(|w| at(&w))?,
            });
        }
        Ok(out)
    }
}

/// `intent_at` (RFC 3339), absent or null for rows without one.
fn intent_at(e: &Value) -> Result<Option<Timestamp>, String> {
    match e.get("intent_at") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => parse_rfc3339(s.as_bytes())
            .map(Some)
            .map_err(|_| format!("intent_at is not an RFC 3339 time: {s:?}")),
        Some(_) => Err("intent_at is not a string".into()),
    }
}

/// `key` as bytes: `key_b64` decoded if present, else the string; `None`
/// for null or missing.
fn text(e: &Value, key: &str) -> Result<Option<Name>, String> {
    if let Some(Value::String(b64)) = e.get(format!("{key}_b64")) {
        return crate::encoding::unbase64(b64)
            .map(|b| Some(Name::new(b)))
            .ok_or_else(|| format!("{key}_b64 is not base64"));
    }
    match e.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(Name::new(s.as_bytes()))),
        Some(Value::Number(n)) => Ok(Some(Name::new(n.to_string()))),
        Some(_) => Err(format!("{key} is not a string")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_the_contract_and_keeps_bytes() {
        let v = json!({
            "vouchers": [
                {"code": "V1", "password": "p", "profile": "voucher-1h", "comment": "VOUCHER_SYSTEM|b", "status": "created"},
                {"code": "caf?", "code_b64": crate::encoding::base64(b"caf\xe9"), "password": null, "profile": "voucher-1h", "comment": null, "status": "expired"}
            ],
            "subscriptions": [{"pppoe_username": "c1", "password": "x", "profile": "pppoe-10M", "comment": "PPPOE_SYSTEM|", "status": "suspended"}],
            "version": "abc"
        });
        let d = DesiredState::from_json(&v).unwrap();
        assert_eq!(d.version, "abc");
        assert_eq!(d.vouchers[1].code.as_bytes(), b"caf\xe9");
        assert_eq!(d.vouchers[1].status, VoucherStatus::Expired);
        assert_eq!(d.vouchers[1].password, Password(None));
        assert_eq!(d.subscriptions[0].status, SubscriptionStatus::Suspended);
        assert!(!format!("{d:?}").contains("\"x\""));
    }

    #[test]
    fn refuses_documents_it_cannot_apply_safely() {
        for v in [
            json!([]),
            json!({"vouchers": {}, "subscriptions": []}),
            json!({"vouchers": [{"code": "a", "status": "gone"}], "subscriptions": []}),
            json!({"vouchers": [{"password": "a"}], "subscriptions": []}),
            json!({"vouchers": [], "subscriptions": [{"pppoe_username": ""}]}),
        ] {
            assert!(DesiredState::from_json(&v).is_err(), "{v}");
        }
    }
}
