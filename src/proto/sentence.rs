use super::{ProtoError, encode_length};

/// One complete sentence as it came off the wire: its words, as bytes, in
/// order, without the terminating empty word.
///
/// Stored as one buffer plus word boundaries: a 10,000-row print is 10,000
/// sentences, and two allocations per sentence instead of one per word is
/// most of the decoder's cost.
#[derive(Clone, Default)]
pub struct Sentence {
    /// The words' bytes: concatenated, or (for a sentence that arrived
    /// whole) the wire bytes with their length prefixes, copied in one go.
    buf: Vec<u8>,
    /// Where each word lies in `buf`.
    spans: Vec<(u32, u32)>,
}

/// Sentences are equal when their words are, however they are buffered.
impl PartialEq for Sentence {
    fn eq(&self, other: &Sentence) -> bool {
        self.len() == other.len() && self.words().eq(other.words())
    }
}

impl Eq for Sentence {}

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
            spans: Vec::with_capacity(16),
        }
    }

    /// An empty sentence on reused buffers.
    pub(crate) fn from_parts(mut buf: Vec<u8>, mut spans: Vec<(u32, u32)>) -> Self {
        buf.clear();
        spans.clear();
        Sentence { buf, spans }
    }

    /// A sentence over wire bytes, with the spans of its words in them.
    pub(crate) fn from_wire(buf: Vec<u8>, spans: Vec<(u32, u32)>) -> Self {
        Sentence { buf, spans }
    }

    pub(crate) fn push(&mut self, word: &[u8]) {
        let start = self.buf.len();
        self.buf.extend_from_slice(word);
        // Sentences are capped far below 4 GiB by the decoder.
        self.spans.push((start as u32, self.buf.len() as u32));
    }

    /// The words, in order.
    pub fn words(&self) -> impl ExactSizeIterator<Item = &[u8]> + '_ {
        (0..self.spans.len()).map(move |i| self.word(i))
    }

    pub fn word(&self, i: usize) -> &[u8] {
        let (start, end) = self.spans[i];
        &self.buf[start as usize..end as usize]
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Bytes buffered for the words (with their length prefixes when the
    /// sentence arrived whole).
    pub fn byte_len(&self) -> usize {
        self.buf.len()
    }

    pub fn into_words(self) -> Vec<Vec<u8>> {
        self.words().map(<[u8]>::to_vec).collect()
    }

    /// The buffer and word spans, for zero-copy parsing.
    pub(crate) fn into_parts(self) -> (Vec<u8>, Vec<(u32, u32)>) {
        (self.buf, self.spans)
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
