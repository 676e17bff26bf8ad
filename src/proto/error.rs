use std::fmt;

/// Everything that can be wrong with bytes coming off the wire.
///
/// Each of these means the stream can no longer be trusted (we cannot find
/// the next word boundary), so the connection must be dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProtoError {
    /// A first byte `>= 0xF8` is reserved for control bytes, never a length.
    ControlByte(u8),
    /// `0xF1..=0xF7` are not a defined length form.
    InvalidLengthPrefix(u8),
    /// The announced word is larger than the configured cap; refused before
    /// allocating anything for it.
    WordTooLong { len: u64, cap: usize },
    /// The sentence being assembled grew past the configured cap (counted
    /// with a per-word overhead): an unterminated or hostile sentence.
    SentenceTooLong { words: usize, cap: usize },
    /// A sentence that does not start with `!re`, `!done`, `!trap`, `!fatal`
    /// or `!empty`.
    UnknownReply(Vec<u8>),
    /// A sentence with no words at all (just the terminating empty word).
    EmptySentence,
}

impl fmt::Display for ProtoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtoError::ControlByte(b) => {
                write!(
                    f,
                    "malformed API frame: control byte 0x{b:02X} where a word length was expected"
                )
            }
            ProtoError::InvalidLengthPrefix(b) => {
                write!(
                    f,
                    "malformed API frame: invalid length prefix byte 0x{b:02X}"
                )
            }
            ProtoError::WordTooLong { len, cap } => {
                write!(
                    f,
                    "malformed API frame: word of {len} bytes exceeds the {cap}-byte limit"
                )
            }
            ProtoError::SentenceTooLong { words, cap } => {
                write!(
                    f,
                    "malformed API frame: sentence exceeds the {cap}-byte limit after {words} words"
                )
            }
            ProtoError::UnknownReply(word) => {
                let shown: String = String::from_utf8_lossy(word).chars().take(40).collect();
                write!(f, "malformed API frame: unknown reply type {shown:?}")
            }
            ProtoError::EmptySentence => write!(f, "malformed API frame: empty sentence"),
        }
    }
}

impl std::error::Error for ProtoError {}
