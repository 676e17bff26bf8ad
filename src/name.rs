//! Typed values from router rows: names as raw bytes, `.id`s as numbers,
//! MAC addresses as six bytes.
//!
//! RouterOS is not UTF-8 clean: user names, profiles and comments are bytes
//! (often Latin-1 typed on Winbox). Two users whose names differ only in a
//! non-UTF-8 byte are two users, so names are never decoded for keying or
//! comparing; they are rendered as text only at the edges (logs, JSON), and
//! there without loss (see [`Name::json_into`]).

use std::fmt;

use crate::shared_bytes::SharedBytes;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Raw bytes of a name, profile, comment or other router text.
///
/// Backed by [`SharedBytes`], one pointer wide: a profile shared by 10,000
/// users is stored once (the row parser interns it) and clones are a
/// reference count.
#[derive(Clone)]
pub struct Name(SharedBytes);

/// Hashes the bytes, consistent with the byte-wise equality below.
impl std::hash::Hash for Name {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

/// Names are map keys compared thousands of times per poll. musl's
/// `memcmp` (what slice comparison calls) goes byte by byte; comparing
/// eight bytes at a time as big-endian words gives the same order faster.
/// Always inlined, with no calls inside: the shipped build optimises for
/// size and would otherwise turn each 8-byte load into a `memcpy` call.
#[inline(always)]
fn compare_bytes(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    let common = a.len().min(b.len());
    let (mut x, mut y) = (&a[..common], &b[..common]);
    while let (Some((wx, rx)), Some((wy, ry))) =
        (x.split_first_chunk::<8>(), y.split_first_chunk::<8>())
    {
        let (p, q) = (u64::from_be_bytes(*wx), u64::from_be_bytes(*wy));
        if p != q {
            return p.cmp(&q);
        }
        (x, y) = (rx, ry);
    }
    // The common part's last 0 to 7 bytes (as long on both sides),
    // zero-padded words; equal so far, the shorter name sorts first.
    tail_word(x).cmp(&tail_word(y)).then(a.len().cmp(&b.len()))
}

/// Up to 7 bytes as the high bytes of a big-endian word.
#[inline(always)]
fn tail_word(bytes: &[u8]) -> u64 {
    let mut w = 0u64;
    for (i, &b) in bytes.iter().enumerate() {
        w |= u64::from(b) << (56 - 8 * i);
    }
    w
}

/// Byte equality at `compare_bytes`' speed, for hot paths that compare
/// raw bytes rather than names.
#[inline(always)]
pub fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && compare_bytes(a, b).is_eq()
}

impl PartialEq for Name {
    fn eq(&self, other: &Name) -> bool {
        self.0.len() == other.0.len() && compare_bytes(&self.0, &other.0).is_eq()
    }
}

impl Eq for Name {}

impl PartialOrd for Name {
    fn partial_cmp(&self, other: &Name) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Name {
    fn cmp(&self, other: &Name) -> std::cmp::Ordering {
        compare_bytes(&self.0, &other.0)
    }
}

impl Name {
    pub fn new(bytes: impl AsRef<[u8]>) -> Name {
        Name(SharedBytes::new(bytes.as_ref()))
    }

    /// The same copy (not only equal bytes): a cheap shortcut for names
    /// known to be shared, such as interned profiles.
    #[inline(always)]
    pub fn same_allocation(&self, other: &Name) -> bool {
        self.0.ptr_eq(&other.0)
    }

    /// Whether another copy of this name exists (in rows, the monitor
    /// state, events): a cache lets go of the names only it holds.
    pub fn is_shared(&self) -> bool {
        self.0.count() > 1
    }

    /// The empty name, shared: rows carry many (no comment, no caller id).
    pub fn empty() -> Name {
        static EMPTY: std::sync::OnceLock<Name> = std::sync::OnceLock::new();
        EMPTY.get_or_init(|| Name::new(b"")).clone()
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The text if the bytes are valid UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }

    /// Text for humans; invalid bytes become U+FFFD. Never use it as a key.
    pub fn lossy(&self) -> String {
        String::from_utf8_lossy(&self.0).into_owned()
    }

    /// Writes `key` into a JSON object without losing bytes: the text when
    /// the bytes are UTF-8 without NUL; otherwise a lossy text under `key` (for people
    /// and for columns that need text) and the exact bytes, base64, under
    /// `key_b64`.
    pub fn json_into(&self, map: &mut serde_json::Map<String, serde_json::Value>, key: &str) {
        // U+0000 is valid UTF-8 but PostgreSQL's text and jsonb refuse it:
        // such text is treated as not UTF-8 (lossy text plus exact bytes).
        match self.as_str().filter(|s| !s.contains('\0')) {
            Some(s) => {
                map.insert(key.to_owned(), s.into());
            }
            None => {
                map.insert(
                    key.to_owned(),
                    self.lossy().replace('\0', "\u{fffd}").into(),
                );
                map.insert(
                    format!("{key}_b64"),
                    crate::encoding::base64(&self.0).into(),
                );
            }
        }
    }
}

impl Default for Name {
    fn default() -> Self {
        Name::empty()
    }
}

/// Lets a set of names be searched with raw bytes; sound because hashing,
/// equality and order above are all those of the bytes.
impl std::borrow::Borrow<[u8]> for Name {
    fn borrow(&self) -> &[u8] {
        &self.0
    }
}

impl From<&str> for Name {
    fn from(s: &str) -> Name {
        Name::new(s)
    }
}

impl From<&[u8]> for Name {
    fn from(s: &[u8]) -> Name {
        Name::new(s)
    }
}

impl PartialEq<str> for Name {
    fn eq(&self, other: &str) -> bool {
        &*self.0 == other.as_bytes()
    }
}

impl PartialEq<&str> for Name {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == other.as_bytes()
    }
}

impl PartialEq<&[u8]> for Name {
    fn eq(&self, other: &&[u8]) -> bool {
        &*self.0 == *other
    }
}

/// Quoted, with invalid bytes as `\xNN` (and `\` itself escaped, so the
/// rendering is unambiguous): for logs and `Debug`.
impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"")?;
        for chunk in self.0.utf8_chunks() {
            for c in chunk.valid().chars() {
                match c {
                    '"' => f.write_str("\\\"")?,
                    '\\' => f.write_str("\\\\")?,
                    c if c.is_control() => write!(f, "\\u{{{:x}}}", c as u32)?,
                    c => write!(f, "{c}")?,
                }
            }
            for b in chunk.invalid() {
                write!(f, "\\x{b:02X}")?;
            }
        }
        f.write_str("\"")
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for Name {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Name, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Name;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Name, E> {
                Ok(Name::new(v))
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Name, E> {
                Ok(Name::new(v))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Name, E> {
                Ok(Name::new(v))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Name, A::Error> {
                let mut out = Vec::new();
                while let Some(b) = seq.next_element::<u8>()? {
                    out.push(b);
                }
                Ok(Name::new(out))
            }
        }
        d.deserialize_bytes(V)
    }
}

/// A RouterOS item id: `*` and hexadecimal digits (`*1A`), kept as a number.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Id(pub u64);

impl Id {
    /// Parses `*HEX`; `None` for anything else.
    pub fn parse(raw: &[u8]) -> Option<Id> {
        let hex = raw.strip_prefix(b"*")?;
        if hex.is_empty() || hex.len() > 16 {
            return None;
        }
        // By hand rather than `from_str_radix` on a validated `str`: every
        // row has an `.id`, and this is a fraction of the cost.
        let mut n = 0u64;
        for &b in hex {
            let digit = match b {
                b'0'..=b'9' => b - b'0',
                b'a'..=b'f' => b - b'a' + 10,
                b'A'..=b'F' => b - b'A' + 10,
                _ => return None,
            };
            n = n << 4 | u64::from(digit);
        }
        Some(Id(n))
    }
}

/// A decimal counter as RouterOS writes it (`bytes-in=123456`): what
/// `str::parse::<u64>` accepts (digits, an optional leading `+`), without
/// the UTF-8 check and the generic parser, since rows carry several each.
/// `None` for anything else or a value past `u64::MAX`.
#[inline]
pub fn parse_decimal(raw: &[u8]) -> Option<u64> {
    let digits = raw.strip_prefix(b"+").unwrap_or(raw);
    if digits.is_empty() {
        return None;
    }
    let mut n = 0u64;
    for &b in digits {
        let digit = b.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(digit))?;
    }
    Some(n)
}

/// Test shorthand: `"*1A".into()`. Readable labels that are not hex
/// (`"*U1"`) map to a stable number with the top bit set, so they never
/// collide with a real id.
#[cfg(test)]
impl From<&str> for Id {
    fn from(s: &str) -> Id {
        Id::parse(s.as_bytes()).unwrap_or_else(|| {
            let h = s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
            });
            Id(h | 1 << 63)
        })
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "*{:X}", self.0)
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// An Ethernet MAC address (`AA:BB:CC:00:11:22`).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Mac(pub [u8; 6]);

impl Mac {
    /// `AA:BB:CC:00:11:22` (or with `-`); every hotspot session row has
    /// one, so the usual form is read byte by byte, anything else as text.
    pub fn parse(raw: &[u8]) -> Option<Mac> {
        Mac::parse_plain(raw).or_else(|| Mac::parse_text(raw))
    }

    /// Six pairs of hex digits, each pair after the first behind `:`/`-`.
    fn parse_plain(raw: &[u8]) -> Option<Mac> {
        let raw: &[u8; 17] = raw.try_into().ok()?;
        let hex = |b: u8| match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            b'A'..=b'F' => Some(b - b'A' + 10),
            _ => None,
        };
        let mut out = [0u8; 6];
        for (i, o) in out.iter_mut().enumerate() {
            let at = i * 3;
            if i > 0 && !matches!(raw[at - 1], b':' | b'-') {
                return None;
            }
            *o = hex(raw[at])? << 4 | hex(raw[at + 1])?;
        }
        Some(Mac(out))
    }

    fn parse_text(raw: &[u8]) -> Option<Mac> {
        let s = std::str::from_utf8(raw).ok()?;
        let mut out = [0u8; 6];
        let mut parts = s.split([':', '-']);
        for b in out.iter_mut() {
            let p = parts.next()?;
            if p.len() != 2 {
                return None;
            }
            *b = u8::from_str_radix(p, 16).ok()?;
        }
        parts.next().is_none().then_some(Mac(out))
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02X}:{:02X}:{:02X}:{:02X}:{:02X}:{:02X}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

impl fmt::Debug for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_bytes_is_byte_equality() {
        for (a, b) in [
            (&b""[..], &b""[..]),
            (b"abcdefgh", b"abcdefgh"),
            (b"abcdefghi", b"abcdefghj"),
            (b"abcdefgh1", b"abcdefgh"),
            (b"caf\xe9", b"caf\xe8"),
            (b"VOUCHER_SYSTEM|B1|5000", b"VOUCHER_SYSTEM|B1|5000"),
        ] {
            assert_eq!(same_bytes(a, b), a == b, "{a:?} {b:?}");
        }
    }

    proptest::proptest! {
        /// The word-wise order is the bytes' lexicographic order, whatever
        /// the lengths, shared prefixes and zero bytes (a zero-padded tail
        /// must not make "ab" equal "ab\0").
        #[test]
        fn name_order_is_byte_order(
            a in proptest::collection::vec(proptest::prop_oneof![0u8..3, proptest::num::u8::ANY], 0..20),
            b in proptest::collection::vec(proptest::prop_oneof![0u8..3, proptest::num::u8::ANY], 0..20),
            shared in 0usize..20,
        ) {
            // Often share a prefix, so the tail and length rules are reached.
            let b: Vec<u8> = a.iter().take(shared).chain(b.iter()).copied().collect();
            proptest::prop_assert_eq!(compare_bytes(&a, &b), a.cmp(&b));
            proptest::prop_assert_eq!(same_bytes(&a, &b), a == b);
            proptest::prop_assert_eq!(Name::new(&a).cmp(&Name::new(&b)), a.cmp(&b));
        }
    }

    proptest::proptest! {
        #[test]
        fn decimals_parse_as_std_does(s in "[+-]?[0-9a]{0,22}") {
            proptest::prop_assert_eq!(parse_decimal(s.as_bytes()), s.parse::<u64>().ok());
        }

        #[test]
        fn ids_parse_as_hex(n: u64, upper: bool) {
            let text = if upper { format!("*{n:X}") } else { format!("*{n:x}") };
            proptest::prop_assert_eq!(Id::parse(text.as_bytes()), Some(Id(n)));
        }
    }

    #[test]
    fn odd_ids_are_refused() {
        for raw in [
            &b""[..],
            b"*",
            b"1",
            b"*g",
            b"*+1",
            b"*-1",
            b"*12345678901234567",
            b"* 1",
        ] {
            assert_eq!(Id::parse(raw), None, "{raw:?}");
        }
        assert_eq!(Id::parse(b"*00000000000000ff"), Some(Id(255)));
    }

    #[test]
    fn names_differing_in_invalid_bytes_are_distinct() {
        let a = Name::new(b"caf\xE9");
        let b = Name::new(b"caf\xE8");
        assert_ne!(a, b);
        assert_eq!(a.lossy(), b.lossy());
        assert_eq!(a.to_string(), "\"caf\\xE9\"");
        assert_eq!(Name::new(b"a\\xE9").to_string(), "\"a\\\\xE9\"");
    }

    #[test]
    fn json_keeps_bytes() {
        let mut m = serde_json::Map::new();
        Name::new(b"caf\xE9").json_into(&mut m, "user");
        assert_eq!(m["user"], "caf\u{FFFD}");
        assert_eq!(m["user_b64"], "Y2Fm6Q==");
        let mut m = serde_json::Map::new();
        Name::new("café").json_into(&mut m, "user");
        assert_eq!(m["user"], "café");
        assert!(!m.contains_key("user_b64"));
    }

    /// Text PostgreSQL cannot hold as it is: NUL, an overlong encoding, a
    /// lone surrogate. Each gets its exact bytes in `_b64` and a lossy text
    /// without NUL; other control bytes are plain JSON escapes, and a
    /// 64 KiB comment is just long.
    #[test]
    fn json_of_text_postgres_refuses_keeps_the_bytes() {
        for raw in [
            &b"a\0b"[..],
            b"\0",
            b"\xC0\x80",
            b"\xED\xA0\x80",
            b"x\xF8\x88\x80\x80\x80",
        ] {
            let mut m = serde_json::Map::new();
            Name::new(raw).json_into(&mut m, "comment");
            let text = m["comment"].as_str().unwrap();
            assert!(!text.contains('\0'), "{raw:?}");
            assert_eq!(m["comment_b64"], crate::encoding::base64(raw), "{raw:?}");
        }
        let mut m = serde_json::Map::new();
        Name::new(b"\x01\x1f\x7f\t\n").json_into(&mut m, "comment");
        assert_eq!(m["comment"], "\u{1}\u{1f}\u{7f}\t\n");
        assert!(!m.contains_key("comment_b64"));
        let long = vec![b'x'; 64 * 1024];
        let mut m = serde_json::Map::new();
        Name::new(&long).json_into(&mut m, "comment");
        assert_eq!(m["comment"].as_str().unwrap().len(), 64 * 1024);
    }

    proptest::proptest! {
        #[test]
        fn order_and_equality_match_the_byte_slices(a in proptest::collection::vec(0u8..=255, 0..40), b in proptest::collection::vec(0u8..=255, 0..40)) {
            let (na, nb) = (Name::new(&a), Name::new(&b));
            proptest::prop_assert_eq!(na.cmp(&nb), a.cmp(&b));
            proptest::prop_assert_eq!(na == nb, a == b);
            // Shared prefixes are the interesting case for word-wise compare.
            let mut c = a.clone();
            c.extend_from_slice(&b);
            proptest::prop_assert_eq!(Name::new(&a).cmp(&Name::new(&c)), a.as_slice().cmp(c.as_slice()));
        }
    }

    #[test]
    fn ids_and_macs() {
        assert_eq!(Id::parse(b"*1A"), Some(Id(0x1a)));
        assert_eq!(Id(0x1a).to_string(), "*1A");
        assert_eq!(Id::parse(b"1A"), None);
        assert_eq!(Id::parse(b"*"), None);
        assert_eq!(Id::parse(b"*zz"), None);
        let m = Mac::parse(b"aa:BB:cc:00:11:22").unwrap();
        assert_eq!(m.to_string(), "AA:BB:CC:00:11:22");
        assert_eq!(Mac::parse(b"AA:BB:CC:00:11"), None);
        assert_eq!(Mac::parse(b"AA:BB:CC:00:11:22:33"), None);
    }

    #[test]
    fn postcard_round_trip() {
        let n = Name::new(b"\xff\x00x");
        let bytes = postcard::to_stdvec(&n).unwrap();
        let back: Name = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(n, back);
    }

    proptest::proptest! {
        #[test]
        fn mac_plain_path_reads_as_the_text_path(
            raw in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::sample::select(b"0123456789abcdefABCDEFgG:-+ ".to_vec()),
                    proptest::prelude::any::<u8>(),
                ],
                15..19,
            )
        ) {
            proptest::prop_assert_eq!(Mac::parse(&raw), Mac::parse_text(&raw));
        }

        #[test]
        fn mac_plain_path_reads_every_mac(m in proptest::prelude::any::<[u8; 6]>(), dash: bool) {
            let text = Mac(m).to_string();
            let text = if dash { text.replace(':', "-") } else { text.to_lowercase() };
            proptest::prop_assert_eq!(Mac::parse_plain(text.as_bytes()), Some(Mac(m)));
        }
    }
}
