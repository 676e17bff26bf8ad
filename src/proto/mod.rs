//! The RouterOS API wire format as a sans-IO codec.
//!
//! A *word* is a length prefix plus that many bytes; a *sentence* is words
//! ended by an empty word. Nothing here touches a socket: the
//! [`Decoder`] is fed whatever chunks the transport delivered and hands out
//! complete sentences, and [`Command`] encodes into a byte buffer. That keeps
//! every edge case (a prefix split across reads, a 5-byte length, a control
//! byte) reachable from a unit test.
//!
//! Words stay bytes end to end: RouterOS is not UTF-8 clean (comments typed
//! in Winbox on a Windows-1252 machine are common), and a comment must
//! survive a read-modify-write byte for byte.

mod command;
mod decoder;
mod error;
mod length;
mod reply;
mod sentence;

pub use command::{Command, WordKind, classify_word};
pub use decoder::{DEFAULT_MAX_SENTENCE, DEFAULT_MAX_WORD, Decoder, WORD_OVERHEAD, sentence_cost};
pub use error::ProtoError;
pub use length::{decode_length, encode_length};
pub use reply::{Attrs, AttrsIter, Reply, ReplyKind, split_attribute};
pub use sentence::{Sentence, encode_sentence};
