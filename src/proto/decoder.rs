use super::{Attrs, ProtoError, Reply, Sentence, decode_length};

/// Default cap on a single word: 1 MiB. Names, comments and script
/// sources are far smaller; anything beyond this is a corrupt or hostile
/// stream.
pub const DEFAULT_MAX_WORD: usize = 1024 * 1024;

/// Default cap on a whole sentence, counted as [`sentence_cost`].
pub const DEFAULT_MAX_SENTENCE: usize = 4 * 1024 * 1024;

/// What one buffered word costs in memory beyond its bytes (the `Vec`
/// header and allocator rounding). Charged against the sentence cap, so an
/// endless sentence of one-byte words is stopped at the cap's worth of
/// memory, not at thirty times it.
pub const WORD_OVERHEAD: usize = 32;

/// The cost of a word of `len` bytes against the sentence cap.
pub fn sentence_cost(len: usize) -> usize {
    len + WORD_OVERHEAD
}

/// Incremental sentence decoder.
///
/// Feed it bytes exactly as the transport delivered them (a length prefix or
/// a word may be split across reads) and pull complete sentences out. Once
/// it reports an error it stays failed: after a bad length we no longer know
/// where the next word starts, so the only safe move is to drop the
/// connection.
#[derive(Debug)]
pub struct Decoder {
    buf: Vec<u8>,
    /// Start of the first byte not yet consumed in `buf`.
    pos: usize,
    /// The sentence being assembled.
    current: Sentence,
    /// [`sentence_cost`] of `words`.
    sentence_bytes: usize,
    max_word: usize,
    max_sentence: usize,
    failed: Option<ProtoError>,
    /// Emptied buffers of replies already handled (see [`Decoder::recycle`]):
    /// a 10,000-row print then reuses a few buffers instead of allocating
    /// and freeing three per row.
    spare: Spare,
}

#[derive(Debug, Default)]
struct Spare {
    buf: Option<Vec<u8>>,
    words: Option<Vec<(u32, u32)>>,
    spans: Option<Vec<(u32, u32, u32)>>,
}

/// Larger buffers are not kept: one huge row must not pin its memory.
const SPARE_MAX_BYTES: usize = 16 * 1024;

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new(DEFAULT_MAX_WORD)
    }
}

impl Decoder {
    /// A decoder with the given word cap and a sentence cap of
    /// [`DEFAULT_MAX_SENTENCE`] (raised to fit at least one word).
    pub fn new(max_word: usize) -> Self {
        Decoder::with_limits(max_word, DEFAULT_MAX_SENTENCE)
    }

    /// Caps on one word and on one whole sentence. The sentence cap is
    /// raised if needed so that one word of `max_word` bytes fits.
    pub fn with_limits(max_word: usize, max_sentence: usize) -> Self {
        Decoder {
            buf: Vec::new(),
            pos: 0,
            current: Sentence::default(),
            sentence_bytes: 0,
            max_word,
            max_sentence: max_sentence.max(sentence_cost(max_word)),
            failed: None,
            spare: Spare::default(),
        }
    }

    /// Appends bytes received from the transport.
    pub fn feed(&mut self, data: &[u8]) {
        // Reclaim consumed space before growing, so a long-lived connection
        // keeps a buffer the size of one sentence, not of its history.
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// Bytes fed but not yet part of a returned sentence.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.pos + self.current.byte_len()
    }

    /// Returns the next complete sentence, `Ok(None)` if more bytes are
    /// needed, or the error that makes the stream unusable.
    pub fn next_sentence(&mut self) -> Result<Option<Sentence>, ProtoError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        if self.current.is_empty()
            && let Some(whole) = self.whole_sentence()
        {
            return Ok(Some(whole));
        }
        loop {
            let rest = &self.buf[self.pos..];
            let (len, prefix) = match decode_length(rest) {
                Ok(Some(found)) => found,
                Ok(None) => return Ok(None),
                Err(err) => return Err(self.fail(err)),
            };
            // Checked before anything is allocated or buffered for the word.
            if u64::from(len) > self.max_word as u64 {
                let err = ProtoError::WordTooLong {
                    len: u64::from(len),
                    cap: self.max_word,
                };
                return Err(self.fail(err));
            }
            let len = len as usize;
            if len > 0 && self.sentence_bytes + sentence_cost(len) > self.max_sentence {
                let err = ProtoError::SentenceTooLong {
                    words: self.current.len() + 1,
                    cap: self.max_sentence,
                };
                return Err(self.fail(err));
            }
            let Some(word) = rest.get(prefix..prefix + len) else {
                return Ok(None);
            };
            if len > 0 {
                if self.current.is_empty() {
                    self.current = match (self.spare.buf.take(), self.spare.words.take()) {
                        (Some(buf), Some(words)) => Sentence::from_parts(buf, words),
                        // Most sentences arrive whole: size the buffer for
                        // the rest of what is buffered, capped, to avoid
                        // regrowth.
                        _ => Sentence::with_capacity((self.buf.len() - self.pos).min(256)),
                    };
                }
                self.current.push(word);
                self.sentence_bytes += sentence_cost(len);
                self.pos += prefix + len;
            } else {
                self.pos += prefix;
                if !self.current.is_empty() {
                    self.sentence_bytes = 0;
                    return Ok(Some(std::mem::take(&mut self.current)));
                }
            }
            // A lone empty word is an empty sentence: nothing to deliver.
        }
    }

    /// A sentence that is buffered whole and within the caps, copied in
    /// one piece (a word-by-word copy was most of the decoding time).
    /// Anything else (incomplete, over a cap, malformed, a lone empty
    /// word) is left to the word-by-word path, which reports it.
    fn whole_sentence(&mut self) -> Option<Sentence> {
        let rest = &self.buf[self.pos..];
        let mut spans = self.spare.words.take().unwrap_or_default();
        spans.clear();
        let mut off = 0;
        let mut cost = 0;
        let complete = loop {
            let Ok(Some((len, prefix))) = decode_length(&rest[off..]) else {
                break false;
            };
            let len = len as usize;
            if len == 0 {
                off += prefix;
                break !spans.is_empty();
            }
            cost += sentence_cost(len);
            if len > self.max_word || cost > self.max_sentence || rest.len() < off + prefix + len {
                break false;
            }
            spans.push(((off + prefix) as u32, (off + prefix + len) as u32));
            off += prefix + len;
        };
        if !complete {
            self.spare.words = Some(spans);
            return None;
        }
        let mut buf = self.spare.buf.take().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(&rest[..off]);
        self.pos += off;
        Some(Sentence::from_wire(buf, spans))
    }

    /// The next reply, parsed, with its cost against the sentence cap (the
    /// measure callers use for their own reply caps).
    pub fn next_reply(&mut self) -> Result<Option<(Reply, usize)>, ProtoError> {
        let Some(sentence) = self.next_sentence()? else {
            return Ok(None);
        };
        let (buf, mut words) = sentence.into_parts();
        let cost = words
            .iter()
            .map(|&(start, end)| sentence_cost((end - start) as usize))
            .sum();
        let spans = self.spare.spans.take().unwrap_or_default();
        let reply = Reply::from_parts(buf, &words, spans)?;
        words.clear();
        self.spare.words = Some(words);
        Ok(Some((reply, cost)))
    }

    /// Hands back the buffers of a handled reply's attributes for the next
    /// sentence to reuse.
    pub fn recycle(&mut self, attrs: Attrs) {
        let (buf, spans) = attrs.into_buffers();
        if buf.capacity() <= SPARE_MAX_BYTES {
            self.spare.buf = Some(buf);
        }
        if spans.capacity() <= SPARE_MAX_BYTES / 12 {
            self.spare.spans = Some(spans);
        }
    }

    fn fail(&mut self, err: ProtoError) -> ProtoError {
        // Nothing after an error is delivered: free what was buffered.
        self.current = Sentence::default();
        self.buf = Vec::new();
        self.pos = 0;
        self.failed = Some(err.clone());
        err
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::encode_sentence;
    use proptest::prelude::*;

    fn wire(sentences: &[&[&[u8]]]) -> Vec<u8> {
        let mut out = Vec::new();
        for s in sentences {
            encode_sentence(s, &mut out).unwrap();
        }
        out
    }

    #[test]
    fn endless_sentence_of_tiny_words_hits_the_sentence_cap() {
        let mut dec = Decoder::with_limits(64, 10_000);
        let mut err = None;
        for _ in 0..100_000 {
            dec.feed(&[1, b'x']);
            match dec.next_sentence() {
                Ok(None) => {}
                Ok(Some(s)) => panic!("unexpected sentence {s:?}"),
                Err(e) => {
                    err = Some(e);
                    break;
                }
            }
        }
        let err = err.expect("the cap must stop the sentence");
        assert!(matches!(err, ProtoError::SentenceTooLong { .. }), "{err}");
        assert!(err.to_string().contains("10000-byte"), "{err}");
        // Failed for good, and nothing kept buffered.
        assert_eq!(dec.buffered(), 0);
        assert!(dec.next_sentence().is_err());
    }

    #[test]
    fn sentence_cap_counts_overhead_not_just_bytes() {
        // 40 one-byte words cost 40 * 33 bytes against the cap.
        let mut dec = Decoder::with_limits(8, 40 * sentence_cost(1));
        let words: Vec<&[u8]> = vec![b"x"; 40];
        dec.feed(&wire(&[&words]));
        assert_eq!(dec.next_sentence().unwrap().unwrap().len(), 40);
        let words: Vec<&[u8]> = vec![b"x"; 41];
        dec.feed(&wire(&[&words]));
        assert!(dec.next_sentence().is_err());
    }

    #[test]
    fn recycled_buffers_carry_nothing_over() {
        // A long row, then shorter ones on its recycled buffers: each
        // reply holds exactly its own words, tag and cost.
        let mut dec = Decoder::default();
        dec.feed(&wire(&[
            &[b"!re", b"=name=a-long-name", b"=comment=xyz", b".tag=3"],
            &[b"!re", b"=name=b"],
            &[b"!done", b".tag=4"],
        ]));
        let (first, cost) = dec.next_reply().unwrap().unwrap();
        assert_eq!(first.tag(), Some(&b"3"[..]));
        assert_eq!(first.attrs.get("comment"), Some(&b"xyz"[..]));
        assert_eq!(
            cost,
            [3, 17, 12, 6]
                .iter()
                .map(|&n| sentence_cost(n))
                .sum::<usize>()
        );
        dec.recycle(first.attrs);
        let (second, _) = dec.next_reply().unwrap().unwrap();
        assert_eq!(second.tag(), None);
        assert_eq!(second.attrs.len(), 1);
        assert_eq!(second.attrs.get("name"), Some(&b"b"[..]));
        assert_eq!(second.attrs.get("comment"), None);
        dec.recycle(second.attrs);
        let (done, _) = dec.next_reply().unwrap().unwrap();
        assert_eq!(done.kind, crate::proto::ReplyKind::Done);
        assert!(done.attrs.is_empty());
        assert_eq!(done.tag(), Some(&b"4"[..]));
        assert!(dec.next_reply().unwrap().is_none());
    }

    fn decode_all(dec: &mut Decoder) -> Vec<Sentence> {
        let mut got = Vec::new();
        while let Some(s) = dec.next_sentence().unwrap() {
            got.push(s);
        }
        got
    }

    fn reply() -> (Vec<u8>, Vec<Sentence>) {
        let long = vec![b'x'; 0x4321];
        let sentences: &[&[&[u8]]] = &[
            &[b"!re", b"=.id=*1", b"=name=a=b", b"=comment=", b".tag=7"],
            &[b"!re", b"=comment=caf\xe9 \xff", long.as_slice()],
            &[
                b"!trap",
                b"=category=2",
                b"=message=no such item",
                b".tag=7",
            ],
            &[b"!done", b".tag=7"],
        ];
        let expected = sentences
            .iter()
            .map(|s| Sentence::new(s.iter().map(|w| w.to_vec()).collect()))
            .collect();
        (wire(sentences), expected)
    }

    #[test]
    fn decodes_whole_stream() {
        let (bytes, expected) = reply();
        let mut dec = Decoder::default();
        dec.feed(&bytes);
        assert_eq!(decode_all(&mut dec), expected);
        assert_eq!(dec.buffered(), 0);
    }

    /// The stream cut into two pieces at every byte decodes the same.
    #[test]
    fn every_prefix() {
        let (bytes, expected) = reply();
        for cut in 0..=bytes.len() {
            let mut dec = Decoder::default();
            dec.feed(&bytes[..cut]);
            let mut got = decode_all(&mut dec);
            dec.feed(&bytes[cut..]);
            got.extend(decode_all(&mut dec));
            assert_eq!(got, expected, "cut at {cut}");
        }
    }

    #[test]
    fn byte_at_a_time() {
        let (bytes, expected) = reply();
        let mut dec = Decoder::default();
        let mut got = Vec::new();
        for b in &bytes {
            dec.feed(std::slice::from_ref(b));
            got.extend(decode_all(&mut dec));
        }
        assert_eq!(got, expected);
    }

    #[test]
    fn absurd_length_is_refused_before_buffering() {
        let mut dec = Decoder::new(1024);
        // 0xF0 form announcing ~4 GiB, followed by almost nothing.
        dec.feed(&[0xF0, 0xFF, 0xFF, 0xFF, 0xFF, b'a']);
        let err = dec.next_sentence().unwrap_err();
        assert_eq!(
            err,
            ProtoError::WordTooLong {
                len: 0xFFFF_FFFF,
                cap: 1024
            }
        );
        assert!(err.to_string().contains("exceeds the 1024-byte limit"));
        // The decoder stays failed: the stream has lost its framing.
        dec.feed(&[0]);
        assert_eq!(dec.next_sentence(), Err(err));
    }

    #[test]
    fn default_cap_is_sixteen_mib() {
        let mut dec = Decoder::default();
        let mut bytes = Vec::new();
        crate::proto::encode_length(16 * 1024 * 1024 + 1, &mut bytes);
        dec.feed(&bytes);
        assert!(matches!(
            dec.next_sentence(),
            Err(ProtoError::WordTooLong { .. })
        ));
    }

    #[test]
    fn control_byte_is_an_error() {
        let mut dec = Decoder::default();
        dec.feed(&[0x03, b'!', b'r', b'e', 0xF8]);
        let err = dec.next_sentence().unwrap_err();
        assert_eq!(err, ProtoError::ControlByte(0xF8));
        assert!(err.to_string().contains("control byte 0xF8"));
    }

    #[test]
    fn lone_empty_words_are_skipped() {
        let mut dec = Decoder::default();
        dec.feed(&[0, 0, 5, b'!', b'd', b'o', b'n', b'e', 0]);
        let got = decode_all(&mut dec);
        assert_eq!(got, vec![Sentence::new(vec![b"!done".to_vec()])]);
    }

    proptest! {
        #[test]
        fn encode_then_decode_is_identity(
            sentences in proptest::collection::vec(
                proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..300), 1..6),
                1..5),
            chunk in 1usize..64,
        ) {
            let mut bytes = Vec::new();
            for s in &sentences {
                encode_sentence(s, &mut bytes).unwrap();
            }
            let mut dec = Decoder::default();
            let mut got = Vec::new();
            for piece in bytes.chunks(chunk) {
                dec.feed(piece);
                while let Some(s) = dec.next_sentence().unwrap() {
                    got.push(s.into_words());
                }
            }
            prop_assert_eq!(got, sentences);
        }

        #[test]
        fn whole_and_piecemeal_feeds_agree(
            bytes in proptest::collection::vec(any::<u8>(), 0..512),
            chunk in 1usize..16,
            max_word in 1usize..64,
            max_sentence in 1usize..600,
        ) {
            // Whole sentences take the one-copy path, split ones the
            // word-by-word path: same sentences, same error, either way.
            let run = |pieces: &mut dyn Iterator<Item = &[u8]>| {
                let mut dec = Decoder::with_limits(max_word, max_sentence);
                let mut got = Vec::new();
                for piece in pieces {
                    dec.feed(piece);
                    loop {
                        match dec.next_sentence() {
                            Ok(Some(s)) => got.push(Ok(s.into_words())),
                            Ok(None) => break,
                            Err(e) => {
                                got.push(Err(e.to_string()));
                                return got;
                            }
                        }
                    }
                }
                got
            };
            let whole = run(&mut std::iter::once(&bytes[..]));
            let pieces = run(&mut bytes.chunks(chunk));
            prop_assert_eq!(whole, pieces);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let mut dec = Decoder::new(4096);
            dec.feed(&bytes);
            while let Ok(Some(_)) = dec.next_sentence() {}
        }
    }
}
