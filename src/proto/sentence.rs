use super::{ProtoError, encode_length};

/// One complete sentence as it came off the wire: its words, as bytes, in
/// order, without the terminating empty word.
///
/// Stored as one buffer plus word boundaries: a 10,000-row print is 10,000
/// sentences, and two allocations per sentence instead of one per word is
/// most of the decoder's cost.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Sentence {
    buf: Vec<u8>,
    /// End offset of each word in `buf`.
    ends: Vec<u32>,
}

impl Sentence {
    pub fn new(words: Vec<Vec<u8>>) -> Self {
        let mut s = Sentence::default();
        for w in &words {
            s.push(w);
        }
        s
    }

    /// An empty sentence with room for `bytes` of words.
    pub(crate) fn with_capacity(bytes: usize) -> Self {
        Sentence {
            buf: Vec::with_capacity(bytes),
            // A typical row has a dozen words or fewer.
            ends: Vec::with_capacity(16),
        }
    }

    /// An empty sentence on reused buffers.
    pub(crate) fn from_parts(mut buf: Vec<u8>, mut ends: Vec<u32>) -> Self {
        buf.clear();
        ends.clear();
        Sentence { buf, ends }
    }

    pub(crate) fn push(&mut self, word: &[u8]) {
        self.buf.extend_from_slice(word);
        // Words are capped far below 4 GiB by the decoder.
        self.ends.push(self.buf.len() as u32);
    }

    /// The words, in order.
    pub fn words(&self) -> impl ExactSizeIterator<Item = &[u8]> + '_ {
        (0..self.ends.len()).map(move |i| self.word(i))
    }

    pub fn word(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.buf[start..self.ends[i] as usize]
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Bytes of all words together.
    pub fn byte_len(&self) -> usize {
        self.buf.len()
    }

    pub fn into_words(self) -> Vec<Vec<u8>> {
        self.words().map(<[u8]>::to_vec).collect()
    }

    /// The buffer and word ends, for zero-copy parsing.
    pub(crate) fn into_parts(self) -> (Vec<u8>, Vec<u32>) {
        (self.buf, self.ends)
    }

    /// Appends the wire form (each word length-prefixed, then the empty word).
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), ProtoError> {
        encode_sentence(&self.words().collect::<Vec<_>>(), out)
    }
}

impl std::fmt::Debug for Sentence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(
                self.words()
                    .map(|w| String::from_utf8_lossy(w).into_owned()),
            )
            .finish()
    }
}

/// Appends the wire form of a sentence made of `words`.
///
/// Fails only for a word over 4 GiB, which no length prefix can express.
pub fn encode_sentence<W: AsRef<[u8]>>(words: &[W], out: &mut Vec<u8>) -> Result<(), ProtoError> {
    for word in words {
        let word = word.as_ref();
        let len = u32::try_from(word.len()).map_err(|_| ProtoError::WordTooLong {
            len: word.len() as u64,
            cap: u32::MAX as usize,
        })?;
        encode_length(len, out);
        out.extend_from_slice(word);
    }
    out.push(0);
    Ok(())
}
