use super::{ProtoError, Sentence};

/// The five reply types RouterOS sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyKind {
    /// One row of data.
    Re,
    /// The command finished; may carry attributes such as `=ret=`.
    Done,
    /// The command failed. Not terminal: `!done` still follows, and a
    /// command may produce several traps before it.
    Trap,
    /// The router is closing the connection; one bare reason word follows.
    Fatal,
    /// RouterOS 7.18+: the command produced no rows. `!done` follows.
    Empty,
}

impl ReplyKind {
    fn from_word(word: &[u8]) -> Option<Self> {
        Some(match word {
            b"!re" => ReplyKind::Re,
            b"!done" => ReplyKind::Done,
            b"!trap" => ReplyKind::Trap,
            b"!fatal" => ReplyKind::Fatal,
            b"!empty" => ReplyKind::Empty,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ReplyKind::Re => "!re",
            ReplyKind::Done => "!done",
            ReplyKind::Trap => "!trap",
            ReplyKind::Fatal => "!fatal",
            ReplyKind::Empty => "!empty",
        }
    }
}

/// `=key=value` attributes of a reply, in wire order, as bytes.
///
/// One buffer plus spans: parsing a reply moves the sentence's buffer in
/// and records where each key and value sit, so a row costs no per-word
/// allocation.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Attrs {
    buf: Vec<u8>,
    /// (key start, key end = value start - 1, value end) into `buf`.
    spans: Vec<(u32, u32, u32)>,
}

impl Attrs {
    pub fn get(&self, key: &str) -> Option<&[u8]> {
        self.iter()
            .find(|(k, _)| same_key(k, key.as_bytes()))
            .map(|(_, v)| v)
    }

    /// The first value of each of `keys` (distinct), in one pass over the
    /// attributes: a row typed field by field would search it once per field.
    pub fn fields<const N: usize>(&self, keys: [&str; N]) -> [Option<&[u8]>; N] {
        let mut out = [None; N];
        // Rows of one reply list their keys in the same order, usually the
        // order asked for: the key after the last one found is tried first,
        // so a row costs about one comparison per field, not N.
        let mut guess = 0;
        for (k, v) in self.iter() {
            let found = match keys.get(guess) {
                Some(key) if same_key(k, key.as_bytes()) => Some(guess),
                _ => keys.iter().position(|key| same_key(k, key.as_bytes())),
            };
            if let Some(i) = found {
                guess = i + 1;
                if out[i].is_none() {
                    out[i] = Some(v);
                }
            }
        }
        out
    }

    /// The value as text, lossily decoded; empty when absent. For display
    /// only: names and comments are keys and must stay bytes ([`get`](Self::get)).
    pub fn text(&self, key: &str) -> String {
        String::from_utf8_lossy(self.get(key).unwrap_or_default()).into_owned()
    }

    pub fn iter(&self) -> AttrsIter<'_> {
        AttrsIter {
            buf: &self.buf,
            spans: self.spans.iter(),
        }
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The emptied buffers, for the decoder to reuse.
    pub(crate) fn into_buffers(mut self) -> (Vec<u8>, Vec<(u32, u32, u32)>) {
        self.buf.clear();
        self.spans.clear();
        (self.buf, self.spans)
    }

    pub fn push(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        let k = self.buf.len() as u32;
        self.buf.extend_from_slice(key.as_ref());
        let e = self.buf.len() as u32;
        self.buf.push(b'=');
        self.buf.extend_from_slice(value.as_ref());
        self.spans.push((k, e, self.buf.len() as u32));
    }
}

/// The `(key, value)` pairs of an [`Attrs`], in wire order.
pub struct AttrsIter<'a> {
    buf: &'a [u8],
    spans: std::slice::Iter<'a, (u32, u32, u32)>,
}

impl<'a> Iterator for AttrsIter<'a> {
    type Item = (&'a [u8], &'a [u8]);

    // Always inlined: every field of every row goes through here, and the
    // size-optimised build would otherwise make each step a call.
    #[inline(always)]
    fn next(&mut self) -> Option<Self::Item> {
        let &(k, e, v) = self.spans.next()?;
        let (k, e, v) = (k as usize, e as usize, v as usize);
        // A value starts after the `=` that ends the key (or is empty for
        // `=key` words, where e == v). Spans are made by the parser, within
        // the buffer; `get` keeps a wrong one from panicking.
        let vs = (e + 1).min(v);
        Some((
            self.buf.get(k..e).unwrap_or_default(),
            self.buf.get(vs..v).unwrap_or_default(),
        ))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.spans.size_hint()
    }
}

impl std::fmt::Debug for Attrs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.iter().map(|(k, v)| {
                (
                    String::from_utf8_lossy(k).into_owned(),
                    String::from_utf8_lossy(v).into_owned(),
                )
            }))
            .finish()
    }
}

impl FromIterator<(Vec<u8>, Vec<u8>)> for Attrs {
    fn from_iter<T: IntoIterator<Item = (Vec<u8>, Vec<u8>)>>(iter: T) -> Self {
        let mut a = Attrs::default();
        for (k, v) in iter {
            a.push(k, v);
        }
        a
    }
}

/// Key equality without a call to libc's `memcmp` (musl's compares byte
/// by byte behind a call): keys are a few bytes, compared per row field.
#[inline]
fn same_key(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

/// Splits an attribute word `=key=value` on its first two `=` only: values
/// may contain `=` or be empty. A word `=key` (no second `=`) is a key with
/// an empty value. Returns `None` for words that are not attributes.
// Always inlined and without library calls: the parser runs it for every
// word of every row, and the size-optimised build would make each slice
// helper a call.
#[inline(always)]
pub fn split_attribute(word: &[u8]) -> Option<(&[u8], &[u8])> {
    let (&b'=', rest) = word.split_first()? else {
        return None;
    };
    let mut key_len = 0;
    while let Some(&b) = rest.get(key_len)
        && b != b'='
    {
        key_len += 1;
    }
    let (key, value) = rest.split_at(key_len);
    Some((key, value.get(1..).unwrap_or_default()))
}

/// One reply sentence, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub kind: ReplyKind,
    /// Where the `.tag` value lies in `attrs`' buffer (RouterOS may put
    /// the word anywhere in the sentence); a span, not a copy: one
    /// allocation fewer per row. See [`Reply::tag`].
    tag: Option<(u32, u32)>,
    pub attrs: Attrs,
    /// Words that are neither attributes nor `.tag`: the reason of a
    /// `!fatal`, or API attributes such as `.section=`.
    pub other: Vec<Vec<u8>>,
}

impl Reply {
    /// Parses without copying attribute bytes: the sentence's buffer
    /// becomes the [`Attrs`] buffer.
    pub fn parse(sentence: Sentence) -> Result<Reply, ProtoError> {
        let (buf, ends) = sentence.into_parts();
        Reply::from_parts(buf, &ends, Vec::new())
    }

    /// [`Reply::parse`] on a sentence's parts, with `spans` as the
    /// (empty, reusable) vector for the attribute spans.
    pub(crate) fn from_parts(
        buf: Vec<u8>,
        words: &[(u32, u32)],
        mut spans: Vec<(u32, u32, u32)>,
    ) -> Result<Reply, ProtoError> {
        let Some(&(first_start, first_end)) = words.first() else {
            return Err(ProtoError::EmptySentence);
        };
        let first = &buf[first_start as usize..first_end as usize];
        let kind =
            ReplyKind::from_word(first).ok_or_else(|| ProtoError::UnknownReply(first.to_vec()))?;
        let mut tag = None;
        let mut other = Vec::new();
        spans.clear();
        spans.reserve(words.len() - 1);
        for &(start, end) in &words[1..] {
            let word = &buf[start as usize..end as usize];
            if let Some((key, _)) = split_attribute(word) {
                let key_start = start + 1;
                spans.push((key_start, key_start + key.len() as u32, end));
            } else if word.starts_with(b".tag=") {
                tag = Some((start + 5, end));
            } else {
                other.push(word.to_vec());
            }
        }
        Ok(Reply {
            kind,
            tag,
            attrs: Attrs { buf, spans },
            other,
        })
    }

    /// The `.tag` of the command this answers.
    pub fn tag(&self) -> Option<&[u8]> {
        self.tag
            .map(|(start, end)| &self.attrs.buf[start as usize..end as usize])
    }

    /// The bare reason word of a `!fatal` (e.g. `session terminated on request`).
    pub fn fatal_reason(&self) -> Option<&[u8]> {
        self.other
            .iter()
            .find(|w| !w.starts_with(b"."))
            .map(Vec::as_slice)
            .or_else(|| self.attrs.get("message"))
    }

    /// `=message=` of a `!trap`.
    pub fn message(&self) -> Option<&[u8]> {
        self.attrs.get("message")
    }

    /// `=category=` of a `!trap` (0 missing item or command, 1 argument
    /// value failure, 2 execution interrupted, ...).
    pub fn category(&self) -> Option<u8> {
        std::str::from_utf8(self.attrs.get("category")?)
            .ok()?
            .parse()
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sentence(words: &[&[u8]]) -> Sentence {
        Sentence::new(words.iter().map(|w| w.to_vec()).collect())
    }

    #[test]
    fn attribute_split_on_first_two_equals_only() {
        assert_eq!(
            split_attribute(b"=name=a=b"),
            Some((&b"name"[..], &b"a=b"[..]))
        );
        assert_eq!(
            split_attribute(b"=comment="),
            Some((&b"comment"[..], &b""[..]))
        );
        assert_eq!(split_attribute(b"=flag"), Some((&b"flag"[..], &b""[..])));
        assert_eq!(
            split_attribute(b"=.id=*1A"),
            Some((&b".id"[..], &b"*1A"[..]))
        );
        assert_eq!(split_attribute(b"==x"), Some((&b""[..], &b"x"[..])));
        assert_eq!(split_attribute(b"?name=x"), None);
        assert_eq!(split_attribute(b".tag=1"), None);
    }

    #[test]
    fn fields_take_the_first_of_each_key_in_one_pass() {
        let r = Reply::parse(sentence(&[
            b"!re",
            b"=name=a",
            b"=comment=x=y",
            b".tag=1",
            b"=name=b",
            b"=disabled=",
            b"=names=c",
        ]))
        .unwrap();
        let [name, comment, disabled, missing] =
            r.attrs.fields(["name", "comment", "disabled", "profile"]);
        // As `get`: the first occurrence, values split on the first `=` only.
        assert_eq!(name, Some(&b"a"[..]));
        assert_eq!(name, r.attrs.get("name"));
        assert_eq!(comment, Some(&b"x=y"[..]));
        assert_eq!(disabled, Some(&b""[..]));
        assert_eq!(missing, None);
        // Keys in another order than asked, or in another order from row to
        // row, are found all the same.
        for order in [
            ["comment", "name", "profile", "disabled"],
            ["disabled", "profile", "comment", "name"],
        ] {
            let got = r.attrs.fields(order);
            let want = order.map(|k| r.attrs.get(k));
            assert_eq!(got, want);
        }
    }

    #[test]
    fn tag_anywhere() {
        let r = Reply::parse(sentence(&[b"!re", b".tag=abc", b"=name=x"])).unwrap();
        assert_eq!(r.kind, ReplyKind::Re);
        assert_eq!(r.tag(), Some(&b"abc"[..]));
        assert_eq!(r.attrs.get("name"), Some(&b"x"[..]));
        let r = Reply::parse(sentence(&[b"!done", b"=ret=*5", b".tag=9"])).unwrap();
        assert_eq!(r.tag(), Some(&b"9"[..]));
        assert_eq!(r.attrs.get("ret"), Some(&b"*5"[..]));
    }

    #[test]
    fn trap_with_category_and_message() {
        let r = Reply::parse(sentence(&[
            b"!trap",
            b"=category=1",
            b"=message=no such item",
        ]))
        .unwrap();
        assert_eq!(r.kind, ReplyKind::Trap);
        assert_eq!(r.category(), Some(1));
        assert_eq!(r.message(), Some(&b"no such item"[..]));
        let r = Reply::parse(sentence(&[
            b"!trap",
            b"=message=failure: already have user with this name",
        ]))
        .unwrap();
        assert_eq!(r.category(), None);
    }

    #[test]
    fn fatal_reason_is_a_bare_word() {
        let r = Reply::parse(sentence(&[b"!fatal", b"session terminated on request"])).unwrap();
        assert_eq!(r.kind, ReplyKind::Fatal);
        assert_eq!(
            r.fatal_reason(),
            Some(&b"session terminated on request"[..])
        );
    }

    #[test]
    fn empty_reply_of_7_18() {
        let r = Reply::parse(sentence(&[b"!empty", b".tag=3"])).unwrap();
        assert_eq!(r.kind, ReplyKind::Empty);
    }

    #[test]
    fn unknown_reply_type_is_an_error() {
        let err = Reply::parse(sentence(&[b"!bogus", b"=a=b"])).unwrap_err();
        assert_eq!(err, ProtoError::UnknownReply(b"!bogus".to_vec()));
        assert_eq!(
            Reply::parse(Sentence::default()),
            Err(ProtoError::EmptySentence)
        );
    }

    #[test]
    fn non_utf8_values_are_kept_as_bytes() {
        let r = Reply::parse(sentence(&[b"!re", b"=comment=\xe9t\xe9|\xff"])).unwrap();
        assert_eq!(r.attrs.get("comment"), Some(&b"\xe9t\xe9|\xff"[..]));
    }
}
