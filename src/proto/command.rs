use super::{ProtoError, encode_sentence, split_attribute};

/// A command sentence to send: the command path, then its words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    words: Vec<Vec<u8>>,
}

impl Command {
    /// `path` is the command word, e.g. `/ip/hotspot/user/print`.
    pub fn new(path: impl AsRef<[u8]>) -> Self {
        Command {
            words: vec![path.as_ref().to_vec()],
        }
    }

    /// Adds `=key=value`.
    pub fn attr(mut self, key: &str, value: impl AsRef<[u8]>) -> Self {
        let value = value.as_ref();
        let mut w = Vec::with_capacity(key.len() + value.len() + 2);
        w.push(b'=');
        w.extend_from_slice(key.as_bytes());
        w.push(b'=');
        w.extend_from_slice(value);
        self.words.push(w);
        self
    }

    /// Adds a query word; `q` is what follows the `?`: `name=x`, `-disabled`,
    /// `>bytes-in=100`, or a stack operation such as `#|`.
    pub fn query(mut self, q: impl AsRef<[u8]>) -> Self {
        let mut w = vec![b'?'];
        w.extend_from_slice(q.as_ref());
        self.words.push(w);
        self
    }

    /// Limits the returned properties: `.proplist=a,b,c`.
    pub fn proplist(mut self, fields: &[&str]) -> Self {
        let mut w = b".proplist=".to_vec();
        w.extend_from_slice(fields.join(",").as_bytes());
        self.words.push(w);
        self
    }

    /// Adds a word verbatim (used by `mikrotik-edge api`).
    pub fn word(mut self, raw: impl Into<Vec<u8>>) -> Self {
        self.words.push(raw.into());
        self
    }

    pub fn path(&self) -> &[u8] {
        &self.words[0]
    }

    pub fn words(&self) -> &[Vec<u8>] {
        &self.words
    }

    /// Appends the sentence, with `.tag=<tag>` when given, to `out`.
    pub fn encode(&self, tag: Option<&[u8]>, out: &mut Vec<u8>) -> Result<(), ProtoError> {
        match tag {
            None => encode_sentence(&self.words, out),
            Some(tag) => {
                let mut words: Vec<&[u8]> = self.words.iter().map(Vec::as_slice).collect();
                let tag_word = [b".tag=".as_slice(), tag].concat();
                words.push(&tag_word);
                encode_sentence(&words, out)
            }
        }
    }
}

/// What a word in a command sentence is, as a server sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WordKind<'a> {
    /// `/path/to/command`
    Command(&'a [u8]),
    /// `=key=value`
    Attribute(&'a [u8], &'a [u8]),
    /// `?…` without the `?`
    Query(&'a [u8]),
    /// `.tag=…`, `.proplist=…` and other `.key=value` API attributes.
    Api(&'a [u8], &'a [u8]),
    /// Anything else (RouterOS ignores such words in older versions and
    /// traps on them in newer ones).
    Other(&'a [u8]),
}

pub fn classify_word(word: &[u8]) -> WordKind<'_> {
    match word.first() {
        Some(b'/') => WordKind::Command(word),
        Some(b'=') => match split_attribute(word) {
            Some((k, v)) => WordKind::Attribute(k, v),
            None => WordKind::Other(word),
        },
        Some(b'?') => WordKind::Query(&word[1..]),
        Some(b'.') => match word.iter().position(|&b| b == b'=') {
            Some(i) => WordKind::Api(&word[1..i], &word[i + 1..]),
            None => WordKind::Other(word),
        },
        _ => WordKind::Other(word),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{Decoder, Sentence};

    #[test]
    fn builds_documented_words() {
        let cmd = Command::new("/ip/hotspot/user/print")
            .query("profile=voucher")
            .query("#|")
            .proplist(&[".id", "name", "comment"])
            .attr("comment", b"a=b|\xff");
        let mut out = Vec::new();
        cmd.encode(Some(b"12"), &mut out).unwrap();
        let mut dec = Decoder::default();
        dec.feed(&out);
        let s = dec.next_sentence().unwrap().unwrap();
        let expected: Vec<&[u8]> = vec![
            b"/ip/hotspot/user/print",
            b"?profile=voucher",
            b"?#|",
            b".proplist=.id,name,comment",
            b"=comment=a=b|\xff",
            b".tag=12",
        ];
        assert_eq!(
            s,
            Sentence::new(expected.iter().map(|w| w.to_vec()).collect())
        );
    }

    #[test]
    fn classifies_words() {
        assert_eq!(classify_word(b"/login"), WordKind::Command(b"/login"));
        assert_eq!(
            classify_word(b"=name=a=b"),
            WordKind::Attribute(b"name", b"a=b")
        );
        assert_eq!(classify_word(b"?#!"), WordKind::Query(b"#!"));
        assert_eq!(classify_word(b".tag=5"), WordKind::Api(b"tag", b"5"));
        assert_eq!(
            classify_word(b".proplist=name"),
            WordKind::Api(b"proplist", b"name")
        );
        assert_eq!(classify_word(b"junk"), WordKind::Other(b"junk"));
    }
}
