//! Feeds arbitrary bytes, cut into arbitrary chunks, to the sentence
//! decoder and parses every sentence as a reply. It must never panic, and
//! a stream cut differently must decode the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mikrotik_edge::proto::{Decoder, Reply};

fuzz_target!(|data: &[u8]| {
    let Some((&cut, bytes)) = data.split_first() else { return };
    let whole = decode(bytes, bytes.len().max(1));
    let chunked = decode(bytes, usize::from(cut).max(1));
    assert_eq!(whole, chunked);
});

fn decode(bytes: &[u8], chunk: usize) -> Vec<Result<Vec<Vec<u8>>, String>> {
    let mut dec = Decoder::new(64 * 1024);
    let mut out = Vec::new();
    for piece in bytes.chunks(chunk) {
        dec.feed(piece);
        loop {
            match dec.next_sentence() {
                Ok(Some(s)) => {
                    let _ = Reply::parse(s.clone());
                    out.push(Ok(s.into_words()));
                }
                Ok(None) => break,
                Err(e) => {
                    out.push(Err(e.to_string()));
                    return out;
                }
            }
        }
    }
    out
}
