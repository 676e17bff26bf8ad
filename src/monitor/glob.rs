//! Profile patterns: `*` and `?` globs over profile names, which are bytes.

/// Matches `name` against a glob where `*` is any run of bytes (including
/// none) and `?` is exactly one byte; everything else matches itself,
/// case-sensitively. Profile names are bytes on the wire, hence `&[u8]`.
///
/// Iterative with one backtrack point, so it is O(len(pattern) * len(name))
/// at worst instead of exponential.
pub fn glob_match(pattern: &str, name: &[u8]) -> bool {
    let pat = pattern.as_bytes();
    let (mut p, mut n) = (0, 0);
    // Position of the last `*` seen and the name position it is matched up to.
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pat.get(p) {
            Some(b'*') => {
                star = Some((p, n));
                p += 1;
            }
            Some(&c) if c == b'?' || c == name[n] => {
                p += 1;
                n += 1;
            }
            _ => match star {
                // Let the last `*` swallow one more byte and retry.
                Some((sp, sn)) => {
                    star = Some((sp, sn + 1));
                    p = sp + 1;
                    n = sn + 1;
                }
                None => return false,
            },
        }
    }
    pat[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_basics() {
        let cases: &[(&str, &[u8], bool)] = &[
            ("*voucher*", b"voucher", true),
            ("*voucher*", b"1h-voucher-10", true),
            ("*voucher*", b"Voucher", false),
            ("*pppoe*", b"pppoe-10M", true),
            ("", b"", true),
            ("", b"a", false),
            ("*", b"", true),
            ("*", b"\xff\x00", true),
            ("?", b"", false),
            ("?", b"\xff", true),
            ("a?c", b"abc", true),
            ("a?c", b"ac", false),
            ("a*b*c", b"axxbyyc", true),
            ("a*b*c", b"axxbyy", false),
            ("*a", b"bbba", true),
            ("*a", b"bbab", false),
            ("**x**", b"x", true),
            ("exact", b"exact", true),
            ("exact", b"exactly", false),
        ];
        for (pattern, name, expected) in cases {
            assert_eq!(glob_match(pattern, name), *expected, "{pattern:?} {name:?}");
        }
    }

    #[test]
    fn glob_pathological_is_fast() {
        let name = vec![b'a'; 10_000];
        let pattern = format!("{}b", "*a".repeat(50));
        assert!(!glob_match(&pattern, &name));
    }

    /// Obviously correct, exponential reference implementation.
    fn glob_reference(p: &[u8], n: &[u8]) -> bool {
        match p.split_first() {
            None => n.is_empty(),
            Some((b'*', rest)) => (0..=n.len()).any(|i| glob_reference(rest, &n[i..])),
            Some((&c, rest)) => {
                n.first().is_some_and(|&d| c == b'?' || c == d) && glob_reference(rest, &n[1..])
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn glob_matches_reference(pattern in "[ab*?]{0,8}", name in proptest::collection::vec(proptest::sample::select(vec![b'a', b'b', 0xff]), 0..10)) {
            proptest::prop_assert_eq!(glob_match(&pattern, &name), glob_reference(pattern.as_bytes(), &name));
        }
    }
}
