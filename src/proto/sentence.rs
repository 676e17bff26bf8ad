use super::{ProtoError, encode_length};

/// One complete sentence as it came off the wire: its words, as bytes, in
/// order, without the terminating empty word.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Sentence {
    words: Vec<Vec<u8>>,
}

impl Sentence {
    pub fn new(words: Vec<Vec<u8>>) -> Self {
        Sentence { words }
    }

    pub fn words(&self) -> &[Vec<u8>] {
        &self.words
    }

    pub fn into_words(self) -> Vec<Vec<u8>> {
        self.words
    }

    /// Appends the wire form (each word length-prefixed, then the empty word).
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), ProtoError> {
        encode_sentence(&self.words, out)
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
