//! How `mikrotik-edge api` prints a reply's attributes: one JSON object per
//! row, written straight into an output buffer (no intermediate values: a
//! 10,000-row print is mostly this).
//!
//! The rule, documented in the README: keys in the router's order, repeated
//! keys kept (written twice); a value is a JSON string when its bytes are
//! UTF-8, else `{"base64":"…"}` with the exact bytes, so no rendering can be
//! mistaken for another; a key that is not UTF-8 (never seen in practice)
//! is written as `=b64=` and its base64: real keys never start with `=`.

use crate::encoding::base64;
use crate::proto::Attrs;

/// Appends `attrs` as one JSON object (no newline).
pub fn write_attrs(out: &mut Vec<u8>, attrs: &Attrs) {
    let start = out.len();
    if write_plain(out, attrs) {
        return;
    }
    out.truncate(start);
    write_general(out, attrs);
}

/// Any row, field by field: UTF-8 checked, escaped, base64 where needed.
fn write_general(out: &mut Vec<u8>, attrs: &Attrs) {
    out.push(b'{');
    for (i, (k, v)) in attrs.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        match std::str::from_utf8(k) {
            Ok(k) => write_str(out, k),
            Err(_) => write_str(out, &format!("=b64={}", base64(k))),
        }
        out.push(b':');
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

/// The row as JSON when every key and value is plain ASCII (nearly every
/// row): no UTF-8 validation and no escapes are needed, so the row is
/// sized, then copied byte by byte while checking, in one pass. False (with
/// `out` holding a partial row) when a byte needs care.
///
/// Byte stores rather than `extend_from_slice`: the shipped build
/// optimises for size and calls out for each of those, which cost several
/// times the copying of a field of a dozen bytes.
fn write_plain(out: &mut Vec<u8>, attrs: &Attrs) -> bool {
    let mut len = 2 + attrs.len().saturating_sub(1);
    for (k, v) in attrs.iter() {
        len += k.len() + v.len() + 5;
    }
    let start = out.len();
    out.resize(start + len, 0);
    let dst = &mut out[start..];
    let mut special = false;
    dst[0] = b'{';
    let mut j = 1;
    for (i, (k, v)) in attrs.iter().enumerate() {
        if i > 0 {
            dst[j] = b',';
            j += 1;
        }
        dst[j] = b'"';
        j = copy_plain(dst, j + 1, k, &mut special);
        dst[j] = b'"';
        dst[j + 1] = b':';
        dst[j + 2] = b'"';
        j = copy_plain(dst, j + 3, v, &mut special);
        dst[j] = b'"';
        j += 1;
    }
    dst[j] = b'}';
    !special
}

/// Copies `bytes` into `dst` at `at`, noting any byte that is not plain;
/// returns where the copy ended.
#[inline(always)]
fn copy_plain(dst: &mut [u8], mut at: usize, bytes: &[u8], special: &mut bool) -> usize {
    for &b in bytes {
        *special |= NOT_PLAIN[b as usize];
        dst[at] = b;
        at += 1;
    }
    at
}

/// [`ESCAPE`] plus every non-ASCII byte.
const NOT_PLAIN: [bool; 256] = {
    let mut t = ESCAPE;
    let mut i = 0x80;
    while i < 256 {
        t[i] = true;
        i += 1;
    }
    t
};

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
    use proptest::strategy::Just;

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

    #[test]
    fn plain_rows_take_the_fast_path_with_the_same_output() {
        assert_eq!(render(&[]), "{}");
        assert_eq!(
            render(&[(b".id", b"*1"), (b"comment", b""), (b"name", b"a=b")]),
            r#"{".id":"*1","comment":"","name":"a=b"}"#
        );
    }

    proptest::proptest! {
        #[test]
        fn rows_render_as_the_general_path_does(
            pairs in proptest::collection::vec(
                (
                    proptest::collection::vec(proptest::prop_oneof![b'a'..=b'z', Just(b'.'), Just(b'-'), 0x80u8..=0xff], 0..6),
                    proptest::collection::vec(proptest::prop_oneof![0x20u8..0x7f, Just(b'"'), Just(b'\\'), 0u8..0x20, 0x80u8..=0xff], 0..12),
                ),
                0..8,
            )
        ) {
            let attrs: Attrs = pairs.iter().cloned().collect();
            let (mut out, mut general) = (Vec::new(), Vec::new());
            write_attrs(&mut out, &attrs);
            write_general(&mut general, &attrs);
            proptest::prop_assert_eq!(&out, &general);
            let parsed: Result<serde_json::Value, _> = serde_json::from_slice(&out);
            proptest::prop_assert!(parsed.is_ok());
        }

        #[test]
        fn strings_round_trip_through_a_json_parser(s in ".*") {
            let mut out = Vec::new();
            write_str(&mut out, &s);
            let back: String = serde_json::from_slice(&out).unwrap();
            proptest::prop_assert_eq!(back, s);
        }
    }
}
