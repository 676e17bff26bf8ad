//! The export file that makes an import undoable.
//!
//! ```text
//! id,name,old_comment,new_comment
//! "*1A","mk4821","vc-482-01.15.25-","VOUCHER_SYSTEM|vc-482-01.15.25|…"
//! ```
//!
//! One row per rewritten user: its router `.id`, its name, the comment
//! before and the comment written. Names and comments are bytes, so every
//! field is quoted and escaped reversibly: printable ASCII stays as it is,
//! `\` becomes `\\`, and `"`, control bytes and every byte above 0x7E
//! become `\xNN`. No field ever contains a `"`, so the file opens in a
//! spreadsheet and splits on `","` without a CSV library, and
//! [`unescape`] gives back exactly the bytes that were escaped.

use std::fmt::Write as _;

/// The header line (without newline).
pub const HEADER: &str = "id,name,old_comment,new_comment";

/// One row of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvRow {
    pub id: Vec<u8>,
    pub name: Vec<u8>,
    pub old_comment: Vec<u8>,
    pub new_comment: Vec<u8>,
}

/// `bytes` as printable ASCII without `"` (see the module docs).
pub fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'"' => out.push_str("\\x22"),
            0x20..=0x7e => out.push(char::from(b)),
            _ => {
                let _ = write!(out, "\\x{b:02X}");
            }
        }
    }
    out
}

/// The inverse of [`escape`]; None for text `escape` never produces.
pub fn unescape(text: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while let Some(&b) = text.get(i) {
        match b {
            b'\\' => match text.get(i + 1..)? {
                [b'\\', ..] => {
                    out.push(b'\\');
                    i += 2;
                }
                [b'x', h, l, ..] if h.is_ascii_hexdigit() && l.is_ascii_hexdigit() => {
                    // Both are hex digits (checked above), so the fallback is never taken.
                    let hex = |c: u8| char::from(c).to_digit(16).unwrap_or(0) as u8;
                    out.push(hex(*h) << 4 | hex(*l));
                    i += 4;
                }
                _ => return None,
            },
            0x20..=0x7e if b != b'"' => {
                out.push(b);
                i += 1;
            }
            _ => return None,
        }
    }
    Some(out)
}

/// The whole file: header and rows, `\n` line ends.
pub fn write(rows: &[CsvRow]) -> String {
    let mut out = String::from(HEADER);
    out.push('\n');
    for r in rows {
        let fields = [&r.id, &r.name, &r.old_comment, &r.new_comment];
        let line: Vec<String> = fields
            .iter()
            .map(|f| format!("\"{}\"", escape(f)))
            .collect();
        out.push_str(&line.join(","));
        out.push('\n');
    }
    out
}

/// Parses a file written by [`write()`]; the error names the line.
pub fn read(text: &[u8]) -> Result<Vec<CsvRow>, String> {
    let mut lines = text
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .enumerate();
    match lines.next() {
        Some((_, h)) if h == HEADER.as_bytes() => {}
        _ => return Err(format!("line 1: expected the header {HEADER:?}")),
    }
    let mut rows = Vec::new();
    for (i, line) in lines {
        if line.is_empty() {
            continue;
        }
        let bad = || format!("line {}: not a row of an import export file", i + 1);
        let inner = line
            .strip_prefix(b"\"")
            .and_then(|l| l.strip_suffix(b"\""))
            .ok_or_else(bad)?;
        // Fields never contain `"`, so `","` only ever separates them.
        let fields: Vec<Vec<u8>> = split_fields(inner)
            .into_iter()
            .map(unescape)
            .collect::<Option<_>>()
            .ok_or_else(bad)?;
        let [id, name, old_comment, new_comment]: [Vec<u8>; 4] =
            fields.try_into().map_err(|_| bad())?;
        rows.push(CsvRow {
            id,
            name,
            old_comment,
            new_comment,
        });
    }
    Ok(rows)
}

fn split_fields(inner: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = inner;
    while let Some(at) = rest.windows(3).position(|w| w == b"\",\"") {
        out.push(&rest[..at]);
        rest = &rest[at + 3..];
    }
    out.push(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn escapes_readably() {
        assert_eq!(escape(b"vc-482-01.15.25-"), "vc-482-01.15.25-");
        assert_eq!(escape(b"a\"b\\c,d"), "a\\x22b\\\\c,d");
        assert_eq!(escape(b"Caf\xe9\n\x00"), "Caf\\xE9\\x0A\\x00");
        assert_eq!(unescape(b"Caf\\xE9\\x0a"), Some(b"Caf\xe9\n".to_vec()));
        for bad in [
            &b"\\"[..],
            b"\\x4",
            b"\\xZZ",
            b"\\x+1",
            b"\\q",
            b"\"",
            b"\t",
        ] {
            assert_eq!(unescape(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn file_round_trip() {
        let rows = vec![
            CsvRow {
                id: b"*1A".to_vec(),
                name: b"mk\xff".to_vec(),
                old_comment: b"vc-1-01.01.24-\",\"".to_vec(),
                new_comment: b"VOUCHER_SYSTEM|x".to_vec(),
            },
            CsvRow {
                id: b"*2".to_vec(),
                name: b"".to_vec(),
                old_comment: b"".to_vec(),
                new_comment: b"\r\n".to_vec(),
            },
        ];
        let text = write(&rows);
        assert!(text.starts_with("id,name,old_comment,new_comment\n\"*1A\",\"mk\\xFF\""));
        assert_eq!(read(text.as_bytes()), Ok(rows.clone()));
        let crlf = text.replace('\n', "\r\n");
        assert_eq!(read(crlf.as_bytes()), Ok(rows));
        assert!(read(b"").is_err());
        assert!(read(b"id,name\n").is_err());
        assert!(read(format!("{HEADER}\n\"a\",\"b\"\n").as_bytes()).is_err());
        assert!(read(format!("{HEADER}\nx\n").as_bytes()).is_err());
        assert_eq!(read(format!("{HEADER}\n").as_bytes()), Ok(vec![]));
    }

    proptest! {
        #[test]
        fn any_bytes_round_trip(b in proptest::collection::vec(any::<u8>(), 0..64)) {
            let e = escape(&b);
            prop_assert!(!e.contains('"'));
            prop_assert!(e.bytes().all(|c| (0x20..=0x7e).contains(&c)));
            prop_assert_eq!(unescape(e.as_bytes()), Some(b));
        }
    }
}
