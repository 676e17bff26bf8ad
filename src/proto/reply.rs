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
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Attrs(Vec<(Vec<u8>, Vec<u8>)>);

impl Attrs {
    pub fn get(&self, key: &str) -> Option<&[u8]> {
        self.0
            .iter()
            .find(|(k, _)| k == key.as_bytes())
            .map(|(_, v)| v.as_slice())
    }

    /// The value as text, lossily decoded; empty when absent. For names,
    /// addresses and display; comments stay bytes via [`get`](Self::get).
    pub fn text(&self, key: &str) -> String {
        String::from_utf8_lossy(self.get(key).unwrap_or_default()).into_owned()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.0.iter().map(|(k, v)| (k.as_slice(), v.as_slice()))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn push(&mut self, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.0.push((key.into(), value.into()));
    }
}

impl FromIterator<(Vec<u8>, Vec<u8>)> for Attrs {
    fn from_iter<T: IntoIterator<Item = (Vec<u8>, Vec<u8>)>>(iter: T) -> Self {
        Attrs(iter.into_iter().collect())
    }
}

/// Splits an attribute word `=key=value` on its first two `=` only: values
/// may contain `=` or be empty. A word `=key` (no second `=`) is a key with
/// an empty value. Returns `None` for words that are not attributes.
pub fn split_attribute(word: &[u8]) -> Option<(&[u8], &[u8])> {
    let rest = word.strip_prefix(b"=")?;
    match rest.iter().position(|&b| b == b'=') {
        Some(i) => Some((&rest[..i], &rest[i + 1..])),
        None => Some((rest, &[])),
    }
}

/// One reply sentence, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub kind: ReplyKind,
    /// The `.tag` of the command this answers; RouterOS may put it anywhere
    /// in the sentence.
    pub tag: Option<Vec<u8>>,
    pub attrs: Attrs,
    /// Words that are neither attributes nor `.tag`: the reason of a
    /// `!fatal`, or API attributes such as `.section=`.
    pub other: Vec<Vec<u8>>,
}

impl Reply {
    pub fn parse(sentence: Sentence) -> Result<Reply, ProtoError> {
        let mut words = sentence.into_words().into_iter();
        let first = words.next().ok_or(ProtoError::EmptySentence)?;
        let kind = ReplyKind::from_word(&first).ok_or(ProtoError::UnknownReply(first))?;
        let mut reply = Reply {
            kind,
            tag: None,
            attrs: Attrs::default(),
            other: Vec::new(),
        };
        for word in words {
            if let Some(tag) = word.strip_prefix(b".tag=") {
                reply.tag = Some(tag.to_vec());
            } else if let Some((k, v)) = split_attribute(&word) {
                reply.attrs.push(k, v);
            } else {
                reply.other.push(word);
            }
        }
        Ok(reply)
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
    fn tag_anywhere() {
        let r = Reply::parse(sentence(&[b"!re", b".tag=abc", b"=name=x"])).unwrap();
        assert_eq!(r.kind, ReplyKind::Re);
        assert_eq!(r.tag.as_deref(), Some(&b"abc"[..]));
        assert_eq!(r.attrs.get("name"), Some(&b"x"[..]));
        let r = Reply::parse(sentence(&[b"!done", b"=ret=*5", b".tag=9"])).unwrap();
        assert_eq!(r.tag.as_deref(), Some(&b"9"[..]));
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
