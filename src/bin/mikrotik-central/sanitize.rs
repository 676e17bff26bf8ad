//! U+0000 in an uploaded batch. PostgreSQL's `jsonb` (and `text`) cannot
//! hold it, so one such character anywhere would make the whole batch fail
//! (SQLSTATE 22P05). The gateway makes it storable before the call, the way
//! the agent renders text that is not UTF-8: the text with U+FFFD in place
//! of each NUL, and the exact bytes, base64, under `X_b64` beside it (kept
//! when the client already sent one).

use mikrotik_edge::encoding::base64;
use serde_json::{Map, Value};

/// False when the JSON text cannot hold U+0000: JSON strings carry it only
/// as the escape `\u0000` (a raw control byte is invalid JSON).
pub fn may_hold_nul(json: &[u8]) -> bool {
    let mut rest = json;
    while let Some(i) = rest.iter().position(|&b| b == b'\\') {
        if rest[i..].starts_with(b"\\u0000") {
            return true;
        }
        rest = &rest[i + 2.min(rest.len() - i)..];
    }
    false
}

/// Rewrites every string (and object key) holding NUL; returns how many.
pub fn nul_free(v: &mut Value) -> usize {
    match v {
        Value::Array(items) => items.iter_mut().map(nul_free).sum(),
        Value::Object(map) => object(map),
        // A bare string has no sibling for its bytes: only made storable.
        Value::String(s) if s.contains('\0') => {
            *s = s.replace('\0', "\u{fffd}");
            1
        }
        _ => 0,
    }
}

fn object(map: &mut Map<String, Value>) -> usize {
    let mut n: usize = map.values_mut().map(nul_free_nested).sum();
    let dirty: Vec<String> = map
        .iter()
        .filter(|(k, v)| k.contains('\0') || v.as_str().is_some_and(|s| s.contains('\0')))
        .map(|(k, _)| k.clone())
        .collect();
    for key in dirty {
        let Some(value) = map.remove(&key) else {
            continue;
        };
        n += 1;
        let clean_key = key.replace('\0', "\u{fffd}");
        let value = match value {
            Value::String(s) => {
                let b64 = format!("{clean_key}_b64");
                if !map.contains_key(&b64) {
                    map.insert(b64, base64(s.as_bytes()).into());
                }
                Value::String(s.replace('\0', "\u{fffd}"))
            }
            other => other,
        };
        map.insert(clean_key, value);
    }
    n
}

/// Containers inside an object; its own strings are handled by `object`.
fn nul_free_nested(v: &mut Value) -> usize {
    match v {
        Value::Array(_) | Value::Object(_) => nul_free(v),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nul_becomes_lossy_text_plus_exact_bytes() {
        let mut v = json!({"batch": {"events": [
            {"seq": 1, "comment": "a\u{0}b", "user": "ok"},
            {"seq": 2, "comment": "x\u{0}", "comment_b64": "eAA="},
            {"seq": 3, "k\u{0}": 1, "list": ["\u{0}"]},
        ]}});
        assert_eq!(nul_free(&mut v), 4);
        let e = &v["batch"]["events"];
        assert_eq!(e[0]["comment"], "a\u{fffd}b");
        assert_eq!(e[0]["comment_b64"], "YQBi");
        assert_eq!(e[0]["user"], "ok");
        assert_eq!(e[1]["comment_b64"], "eAA=");
        assert_eq!(e[2]["k\u{fffd}"], 1);
        assert_eq!(e[2]["list"][0], "\u{fffd}");
        assert!(!v.to_string().contains("\\u0000"));
    }

    #[test]
    fn only_an_escape_may_hold_nul() {
        assert!(may_hold_nul(br#"{"a":"x\u0000"}"#));
        assert!(!may_hold_nul(br#"{"a":"x\u0001"}"#));
        // An escaped backslash before "u0000" is no escape.
        assert!(!may_hold_nul(br#"{"a":"x\\u0000"}"#));
        assert!(may_hold_nul(br#"{"a":"x\\\u0000"}"#));
        assert!(!may_hold_nul(b"\\"));
    }
}
