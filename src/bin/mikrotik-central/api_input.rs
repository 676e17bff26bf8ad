//! Operator API request bodies and query strings, parsed into typed
//! requests (parse, don't validate): every check happens here, before
//! anything touches the database, and each refusal names its field.

use serde_json::{Map, Value};

use mikrotik_edge::valid_hours::ValidHours;

use crate::api_error::ApiError;
use crate::voucher_codes::{self, MAX_LENGTH, MIN_LENGTH};

/// Most vouchers one request creates.
pub const MAX_BATCH: u32 = 10_000;

/// An exact, non-negative amount of money in the currency units the site
/// writes in its comments, as canonical decimal text (`5000`, `12500.75`):
/// what goes into the comment and, cast to `numeric`, into the database.
/// Never a float.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Money(String);

impl Money {
    /// A JSON integer (`5000`), or a decimal string (`"5000"`, `"12500.75"`):
    /// up to 15 digits before the point and 6 after. A JSON number with a
    /// fraction is refused: JSON parsers read it as a float, which cannot
    /// hold most decimal amounts exactly.
    pub fn parse(field: &str, v: &Value) -> Result<Money, ApiError> {
        let text = match v {
            Value::Number(n) => match n.as_u64() {
                Some(i) => i.to_string(),
                None if n.as_i64().is_some() => {
                    return Err(ApiError::invalid(
                        field,
                        format!("{field} must not be negative"),
                    ));
                }
                None => {
                    return Err(ApiError::invalid(
                        field,
                        format!(
                            "{field}: give a fractional amount as a string (\"12500.75\"); \
                             JSON numbers with a fraction are floats"
                        ),
                    ));
                }
            },
            Value::String(s) => s.trim().to_string(),
            _ => {
                return Err(ApiError::invalid(
                    field,
                    format!("{field} must be an integer or a decimal string"),
                ));
            }
        };
        let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if int.is_empty()
            || !digits(int)
            || !digits(frac)
            || (text.contains('.') && frac.is_empty())
        {
            return Err(ApiError::invalid(
                field,
                format!("{field} must be a non-negative decimal amount like 5000 or \"12500.75\""),
            ));
        }
        let int = int.trim_start_matches('0');
        let frac = frac.trim_end_matches('0');
        if int.len() > 15 || frac.len() > 6 {
            return Err(ApiError::invalid(
                field,
                format!("{field}: at most 15 digits before the point and 6 after"),
            ));
        }
        let int = if int.is_empty() { "0" } else { int };
        Ok(Money(if frac.is_empty() {
            int.to_string()
        } else {
            format!("{int}.{frac}")
        }))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `POST /api/sites/{site}/vouchers`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewBatch {
    pub count: u32,
    pub profile: String,
    pub valid_hours: ValidHours,
    pub sell: Money,
    pub cost: Option<Money>,
    pub vendor: String,
    pub prefix: String,
    pub code_length: usize,
    pub batch_id: Option<String>,
}

/// `POST /api/sites/{site}/subscriptions`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSubscription {
    pub pppoe_username: String,
    pub password: String,
    pub profile_name: String,
    pub customer_id: String,
    pub subscription_id: String,
    pub sell: Option<Money>,
    pub cost: Option<Money>,
}

/// The fields a body may have; any other is refused, so a typo never
/// silently drops a value.
fn object<'a>(body: &'a Value, known: &[&str]) -> Result<&'a Map<String, Value>, ApiError> {
    let Value::Object(map) = body else {
        return Err(ApiError::BadRequest(
            "the body must be a JSON object".into(),
        ));
    };
    if let Some(k) = map.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(ApiError::invalid(
            k.as_str(),
            format!("unknown field {k:?} (known: {})", known.join(", ")),
        ));
    }
    Ok(map)
}

/// `field` present and not null.
fn get<'a>(map: &'a Map<String, Value>, field: &str) -> Option<&'a Value> {
    map.get(field).filter(|v| !v.is_null())
}

fn required<'a>(map: &'a Map<String, Value>, field: &str) -> Result<&'a Value, ApiError> {
    get(map, field).ok_or_else(|| ApiError::invalid(field, format!("{field} is required")))
}

/// Text that goes into a RouterOS name or comment field: at most `max`
/// bytes, no control characters, and (`in_comment`) no `|`, the comment's
/// separator; `name` also refuses spaces.
fn text(
    map: &Map<String, Value>,
    field: &str,
    need: bool,
    max: usize,
    rule: TextRule,
) -> Result<String, ApiError> {
    let s = match get(map, field) {
        None if need => return Err(ApiError::invalid(field, format!("{field} is required"))),
        None => return Ok(String::new()),
        Some(Value::String(s)) => s.clone(),
        Some(_) => {
            return Err(ApiError::invalid(
                field,
                format!("{field} must be a string"),
            ));
        }
    };
    if need && s.is_empty() {
        return Err(ApiError::invalid(
            field,
            format!("{field} must not be empty"),
        ));
    }
    if s.len() > max {
        return Err(ApiError::invalid(
            field,
            format!("{field} is longer than {max} bytes"),
        ));
    }
    if s.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            field,
            format!("{field} contains a control character"),
        ));
    }
    match rule {
        TextRule::Free => {}
        TextRule::CommentField if s.contains('|') => {
            return Err(ApiError::invalid(
                field,
                format!("{field} must not contain |"),
            ));
        }
        TextRule::CommentField => {}
        TextRule::Name if s.contains(' ') || s.contains('|') => {
            return Err(ApiError::invalid(
                field,
                format!("{field} must not contain spaces or |"),
            ));
        }
        TextRule::Name => {}
    }
    Ok(s)
}

#[derive(Clone, Copy)]
enum TextRule {
    Free,
    CommentField,
    Name,
}

fn money(map: &Map<String, Value>, field: &str) -> Result<Option<Money>, ApiError> {
    get(map, field).map(|v| Money::parse(field, v)).transpose()
}

impl NewBatch {
    pub fn parse(body: &Value) -> Result<NewBatch, ApiError> {
        let map = object(
            body,
            &[
                "count",
                "profile",
                "valid_hours",
                "sell",
                "cost",
                "vendor",
                "prefix",
                "code_length",
                "batch_id",
            ],
        )?;
        let count = match required(map, "count")?.as_u64() {
            Some(n) if (1..=u64::from(MAX_BATCH)).contains(&n) => n as u32,
            _ => {
                return Err(ApiError::invalid(
                    "count",
                    format!("count must be an integer from 1 to {MAX_BATCH}"),
                ));
            }
        };
        let profile = text(map, "profile", true, 64, TextRule::Free)?;
        let valid_hours = match required(map, "valid_hours")? {
            Value::Number(n) => n.to_string(),
            Value::String(s) => s.clone(),
            _ => {
                return Err(ApiError::invalid(
                    "valid_hours",
                    "valid_hours must be a number",
                ));
            }
        };
        let valid_hours = ValidHours::parse(valid_hours.as_bytes()).map_err(|e| {
            ApiError::invalid(
                "valid_hours",
                format!("{e} (hours, fractions allowed: 24, 0.5, 1.5; at most 87600)"),
            )
        })?;
        let sell = Money::parse("sell", required(map, "sell")?)?;
        let cost = money(map, "cost")?;
        let vendor = text(map, "vendor", false, 64, TextRule::CommentField)?;
        let prefix = text(map, "prefix", false, 32, TextRule::Name)?;
        let code_length = match get(map, "code_length") {
            None => 8,
            Some(v) => match v.as_u64() {
                Some(n) if (MIN_LENGTH as u64..=MAX_LENGTH as u64).contains(&n) => n as usize,
                _ => {
                    return Err(ApiError::invalid(
                        "code_length",
                        format!("code_length must be an integer from {MIN_LENGTH} to {MAX_LENGTH}"),
                    ));
                }
            },
        };
        // A batch must fill at most a hundredth of its code space, so
        // drawing unused codes stays quick and codes stay hard to guess.
        if u128::from(count) * 100 > voucher_codes::code_space(code_length) {
            return Err(ApiError::invalid(
                "code_length",
                format!("code_length {code_length} is too short for {count} codes"),
            ));
        }
        let batch_id = text(map, "batch_id", false, 64, TextRule::Name)?;
        Ok(NewBatch {
            count,
            profile,
            valid_hours,
            sell,
            cost,
            vendor,
            prefix,
            code_length,
            batch_id: (!batch_id.is_empty()).then_some(batch_id),
        })
    }
}

impl NewSubscription {
    pub fn parse(body: &Value) -> Result<NewSubscription, ApiError> {
        let map = object(
            body,
            &[
                "pppoe_username",
                "password",
                "profile_name",
                "customer_id",
                "subscription_id",
                "sell",
                "cost",
            ],
        )?;
        Ok(NewSubscription {
            pppoe_username: text(map, "pppoe_username", true, 64, TextRule::Name)?,
            password: text(map, "password", true, 64, TextRule::Free)?,
            profile_name: text(map, "profile_name", true, 64, TextRule::Free)?,
            customer_id: text(map, "customer_id", false, 64, TextRule::CommentField)?,
            subscription_id: text(map, "subscription_id", false, 64, TextRule::CommentField)?,
            sell: money(map, "sell")?,
            cost: money(map, "cost")?,
        })
    }
}

/// A query string's `key=value` pairs, percent-decoded; unknown keys and
/// repeated keys are refused.
pub fn query(raw: Option<&str>, known: &[&str]) -> Result<Vec<(String, String)>, ApiError> {
    let mut out: Vec<(String, String)> = Vec::new();
    for pair in raw.unwrap_or_default().split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let k = percent_decode(k, true)
            .ok_or_else(|| ApiError::BadRequest("malformed query string".into()))?;
        let v = percent_decode(v, true).ok_or_else(|| ApiError::invalid(&k, "malformed value"))?;
        if !known.contains(&k.as_str()) {
            return Err(ApiError::invalid(
                &k,
                format!("unknown parameter {k:?} (known: {})", known.join(", ")),
            ));
        }
        if out.iter().any(|(x, _)| *x == k) {
            return Err(ApiError::invalid(&k, format!("{k} given twice")));
        }
        out.push((k, v));
    }
    Ok(out)
}

/// `true`/`false` (also `1`/`0`) for a query flag.
pub fn flag(q: &[(String, String)], key: &str) -> Result<Option<bool>, ApiError> {
    match q.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str()) {
        None => Ok(None),
        Some("true" | "1") => Ok(Some(true)),
        Some("false" | "0") => Ok(Some(false)),
        Some(_) => Err(ApiError::invalid(
            key,
            format!("{key} must be true or false"),
        )),
    }
}

/// `%XX` decoding (and `+` as a space in query strings); `None` when the
/// result is not UTF-8 or an escape is malformed.
pub fn percent_decode(s: &str, plus_is_space: bool) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = b.get(i + 1..i + 3)?;
                let v = u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
                out.push(v);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field(e: ApiError) -> String {
        match e {
            ApiError::Invalid { field, .. } => field,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn money_is_exact_text() {
        let m = |v: Value| Money::parse("sell", &v).map(|m| m.0);
        assert_eq!(m(json!(5000)).unwrap(), "5000");
        assert_eq!(m(json!("12500.750")).unwrap(), "12500.75");
        assert_eq!(m(json!("007.10")).unwrap(), "7.1");
        assert_eq!(m(json!("0")).unwrap(), "0");
        assert_eq!(
            m(json!("999999999999999.999999")).unwrap(),
            "999999999999999.999999"
        );
        for bad in [
            json!(1.5),
            json!(-1),
            json!("-1"),
            json!("1e3"),
            json!("1."),
            json!(".5"),
            json!(""),
            json!("1000000000000000"),
            json!("0.0000001"),
            json!(true),
        ] {
            assert_eq!(
                field(Money::parse("sell", &bad).unwrap_err()),
                "sell",
                "{bad}"
            );
        }
    }

    #[test]
    fn batch_fields_are_checked_by_name() {
        let ok = json!({"count": 100, "profile": "voucher-1d", "valid_hours": 24, "sell": 5000,
                        "cost": 3500, "vendor": "V1", "prefix": "WIFI-", "code_length": 6});
        let b = NewBatch::parse(&ok).unwrap();
        assert_eq!(
            (b.count, b.code_length, b.valid_hours.minutes()),
            (100, 6, 1440)
        );
        assert_eq!(b.sell.as_str(), "5000");
        let with = |k: &str, v: Value| {
            let mut x = ok.clone();
            x[k] = v;
            field(NewBatch::parse(&x).unwrap_err())
        };
        assert_eq!(with("count", json!(0)), "count");
        assert_eq!(with("count", json!(10_001)), "count");
        assert_eq!(with("profile", json!("")), "profile");
        assert_eq!(with("valid_hours", json!(0)), "valid_hours");
        assert_eq!(with("valid_hours", json!("x")), "valid_hours");
        assert_eq!(with("sell", json!(1.25)), "sell");
        assert_eq!(with("vendor", json!("a|b")), "vendor");
        assert_eq!(with("prefix", json!("a b")), "prefix");
        assert_eq!(with("code_length", json!(3)), "code_length");
        assert_eq!(with("batch_id", json!("x|y")), "batch_id");
        assert_eq!(with("bogus", json!(1)), "bogus");
        let mut half = ok.clone();
        half["valid_hours"] = json!(0.5);
        assert_eq!(NewBatch::parse(&half).unwrap().valid_hours.minutes(), 30);
    }

    #[test]
    fn queries() {
        let q = query(
            Some("batch_id=B%201&status=created"),
            &["batch_id", "status"],
        )
        .unwrap();
        assert_eq!(q[0], ("batch_id".into(), "B 1".into()));
        assert!(query(Some("nope=1"), &["a"]).is_err());
        assert!(query(Some("a=1&a=2"), &["a"]).is_err());
        assert_eq!(
            flag(&query(Some("active=true"), &["active"]).unwrap(), "active").unwrap(),
            Some(true)
        );
        assert!(flag(&query(Some("active=yes"), &["active"]).unwrap(), "active").is_err());
        assert_eq!(percent_decode("a%7Cb", false).as_deref(), Some("a|b"));
        assert_eq!(percent_decode("%zz", false), None);
    }
}
