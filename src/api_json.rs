//! How `mikrotik-edge api` prints a reply's attributes: one JSON object per
//! row, written straight into an output buffer (no intermediate values: a
//! 10,000-row print is mostly this).
//!
//! The rule, documented in the README: keys in the router's order, repeated
//! keys kept (written twice); a value is a JSON string when its bytes are
//! UTF-8, else `{"base64":"…"}` with the exact bytes, so no rendering can be
//! mistaken for another; a key that is not UTF-8 (never seen in practice)
//! is written as `=b64=` and its base64: real keys never start with `=`.

use crate::name::base64;
use crate::proto::Attrs;

/// Appends `attrs` as one JSON object (no newline).
pub fn write_attrs(out: &mut Vec<u8>, attrs: &Attrs) {
    out.push(b'{');
    for (i, (k, v)) in attrs.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        match std::str::from_utf8(k) {
            Ok(k) if k.bytes().all(|b| !ESCAPE[b as usize]) => {
                out.push(b'"');
                out.extend_from_slice(k.as_bytes());
                out.push(b'"');
            }
            Ok(k) => write_str(out, k),
            Err(_) => write_str(out, &format!("=b64={}", base64(k))),
        }
        out.push(b':');
        // Plain ASCII (nearly every value) needs neither UTF-8 validation
        // nor escapes: copied in one go.
        if v.iter().all(|&b| b < 0x80 && !ESCAPE[b as usize]) {
            out.reserve(v.len() + 2);
            out.push(b'"');
            out.extend_from_slice(v);
            out.push(b'"');
            continue;
        }
        match std::str::from_utf8(v) {
            Ok(v) => write_str(out, v),
            Err(_) => {
                out.extend_from_slice(b"{\"base64\":\"");
                out.extend_from_slice(base64(v).as_bytes());
                out.extend_from_slice(b"\"}");
            }
        }
    }
    out.push(b'}');
}

/// Bytes that need an escape in a JSON string: `"`, `\\` and controls.
const ESCAPE: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

/// A JSON string literal (RFC 8259 escaping). Runs of plain bytes are
/// copied whole; only the rare escaped byte is handled one at a time.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    while let Some(off) = bytes[start..].iter().position(|&b| ESCAPE[b as usize]) {
        let i = start + off;
        out.extend_from_slice(&bytes[start..i]);
        match bytes[i] {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b => out.extend_from_slice(format!("\\u{b:04x}").as_bytes()),
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(pairs: &[(&[u8], &[u8])]) -> String {
        let attrs: Attrs = pairs
            .iter()
            .map(|(k, v)| (k.to_vec(), v.to_vec()))
            .collect();
        let mut out = Vec::new();
        write_attrs(&mut out, &attrs);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn order_repeats_and_bytes_are_kept() {
        let s = render(&[
            (b".id", b"*1"),
            (b"name", b"caf\xe9"),
            (b"name", b"x\"y\\z\n\x01"),
        ]);
        assert_eq!(
            s,
            r#"{".id":"*1","name":{"base64":"Y2Fm6Q=="},"name":"x\"y\\z\n\u0001"}"#
        );
    }

    proptest::proptest! {
        #[test]
        fn strings_round_trip_through_a_json_parser(s in ".*") {
            let mut out = Vec::new();
            write_str(&mut out, &s);
            let back: String = serde_json::from_slice(&out).unwrap();
            proptest::prop_assert_eq!(back, s);
        }
    }
}
