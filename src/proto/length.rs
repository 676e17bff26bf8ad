//! Word length prefixes: 1 to 5 bytes, the high bits of the first byte say
//! how many follow.
//!
//! | first byte  | bytes | range                      |
//! |-------------|-------|----------------------------|
//! | `0xxxxxxx`  | 1     | `0 ..= 0x7F`               |
//! | `10xxxxxx`  | 2     | `0x80 ..= 0x3FFF`          |
//! | `110xxxxx`  | 3     | `0x4000 ..= 0x1F_FFFF`     |
//! | `1110xxxx`  | 4     | `0x20_0000 ..= 0xFFF_FFFF` |
//! | `11110000`  | 5     | `0x1000_0000 ..= u32::MAX` |
//! | `11111xxx`  | -     | control byte, never a length |

use super::ProtoError;

/// Appends the length prefix for a word of `len` bytes.
pub fn encode_length(len: u32, out: &mut Vec<u8>) {
    let b = len.to_be_bytes();
    match len {
        0..=0x7F => out.push(b[3]),
        0x80..=0x3FFF => out.extend_from_slice(&[b[2] | 0x80, b[3]]),
        0x4000..=0x1F_FFFF => out.extend_from_slice(&[b[1] | 0xC0, b[2], b[3]]),
        0x20_0000..=0xFFF_FFFF => out.extend_from_slice(&[b[0] | 0xE0, b[1], b[2], b[3]]),
        _ => out.extend_from_slice(&[0xF0, b[0], b[1], b[2], b[3]]),
    }
}

/// Decodes a length prefix at the start of `buf`.
///
/// Returns `Ok(None)` when `buf` holds only part of the prefix, otherwise the
/// word length and how many prefix bytes it used.
#[inline(always)]
pub fn decode_length(buf: &[u8]) -> Result<Option<(u32, usize)>, ProtoError> {
    // Nearly every word of a row is under 128 bytes: its one-byte prefix is
    // decoded inline, with no call (the shipped build optimises for size,
    // and a call per word was a tenth of decoding).
    match buf.first() {
        Some(&first) if first < 0x80 => Ok(Some((u32::from(first), 1))),
        _ => decode_long_length(buf),
    }
}

fn decode_long_length(buf: &[u8]) -> Result<Option<(u32, usize)>, ProtoError> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    let (size, mask) = match first {
        0x00..=0x7F => (1, 0x7F),
        0x80..=0xBF => (2, 0x3F),
        0xC0..=0xDF => (3, 0x1F),
        0xE0..=0xEF => (4, 0x0F),
        0xF0 => (5, 0x00),
        0xF1..=0xF7 => return Err(ProtoError::InvalidLengthPrefix(first)),
        _ => return Err(ProtoError::ControlByte(first)),
    };
    let Some(prefix) = buf.get(..size) else {
        return Ok(None);
    };
    let len = prefix[1..]
        .iter()
        .fold(u32::from(first & mask), |acc, &b| (acc << 8) | u32::from(b));
    Ok(Some((len, size)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn enc(len: u32) -> Vec<u8> {
        let mut v = Vec::new();
        encode_length(len, &mut v);
        v
    }

    /// Vectors from MikroTik's API documentation and other clients
    /// (go-routeros, librouteros).
    #[test]
    fn documented_vectors() {
        let cases: &[(u32, &[u8])] = &[
            (0x00, &[0x00]),
            (0x01, &[0x01]),
            (0x7F, &[0x7F]),
            (0x80, &[0x80, 0x80]),
            (0x87, &[0x80, 0x87]),
            (0x3FFF, &[0xBF, 0xFF]),
            (0x4000, &[0xC0, 0x40, 0x00]),
            (0x4321, &[0xC0, 0x43, 0x21]),
            (0x1F_FFFF, &[0xDF, 0xFF, 0xFF]),
            (0x20_0000, &[0xE0, 0x20, 0x00, 0x00]),
            (0x2A_CDEF, &[0xE0, 0x2A, 0xCD, 0xEF]),
            (0xFFF_FFFF, &[0xEF, 0xFF, 0xFF, 0xFF]),
            (0x1000_0000, &[0xF0, 0x10, 0x00, 0x00, 0x00]),
            (0x1000_0080, &[0xF0, 0x10, 0x00, 0x00, 0x80]),
            (u32::MAX, &[0xF0, 0xFF, 0xFF, 0xFF, 0xFF]),
        ];
        for &(len, bytes) in cases {
            assert_eq!(enc(len), bytes, "encode 0x{len:X}");
            assert_eq!(
                decode_length(bytes),
                Ok(Some((len, bytes.len()))),
                "decode 0x{len:X}"
            );
        }
    }

    #[test]
    fn partial_prefix_needs_more() {
        let full = enc(0x1000_0080);
        for cut in 0..full.len() {
            assert_eq!(decode_length(&full[..cut]), Ok(None), "cut at {cut}");
        }
    }

    #[test]
    fn control_and_invalid_bytes_are_rejected() {
        for b in 0xF8..=0xFF {
            assert_eq!(decode_length(&[b]), Err(ProtoError::ControlByte(b)));
        }
        for b in 0xF1..=0xF7 {
            assert_eq!(
                decode_length(&[b, 0, 0, 0, 0]),
                Err(ProtoError::InvalidLengthPrefix(b))
            );
        }
    }

    proptest! {
        #[test]
        fn encode_then_decode_is_identity(len in any::<u32>(), tail in proptest::collection::vec(any::<u8>(), 0..4)) {
            let mut bytes = enc(len);
            let size = bytes.len();
            bytes.extend_from_slice(&tail);
            prop_assert_eq!(decode_length(&bytes), Ok(Some((len, size))));
        }

        #[test]
        fn shortest_form_is_used(len in any::<u32>()) {
            let expected = match len {
                0..=0x7F => 1,
                0x80..=0x3FFF => 2,
                0x4000..=0x1F_FFFF => 3,
                0x20_0000..=0xFFF_FFFF => 4,
                _ => 5,
            };
            prop_assert_eq!(enc(len).len(), expected);
        }
    }
}
