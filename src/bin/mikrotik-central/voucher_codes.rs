//! Voucher codes and passwords: drawn from a CSPRNG over an alphabet
//! without look-alike characters (no 0/O, 1/I/l), so a code read off a
//! printed card is typed right.

use ring::rand::SecureRandom;

/// 32 characters: each is exactly 5 random bits, so no character is
/// likelier than another (no modulo bias).
pub const ALPHABET: &[u8; 32] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZ";

/// Shortest and longest random part of a code or password.
pub const MIN_LENGTH: usize = 4;
pub const MAX_LENGTH: usize = 32;

#[derive(Debug)]
pub struct NoRandomness;

/// `len` random characters of [`ALPHABET`].
pub fn random_text(rng: &dyn SecureRandom, len: usize) -> Result<String, NoRandomness> {
    let mut bytes = vec![0u8; len];
    rng.fill(&mut bytes).map_err(|_| NoRandomness)?;
    Ok(bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(b & 31)]))
        .collect())
}

/// How many distinct codes `len` random characters give (saturating).
pub fn code_space(len: usize) -> u128 {
    32u128.saturating_pow(u32::try_from(len).unwrap_or(u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alphabet_has_no_look_alikes_and_no_repeats() {
        for c in b"0O1Il" {
            assert!(!ALPHABET.contains(c), "{}", char::from(*c));
        }
        let mut v = ALPHABET.to_vec();
        v.sort();
        v.dedup();
        assert_eq!(v.len(), 32);
    }

    #[test]
    fn random_text_uses_the_alphabet_and_varies() {
        let rng = ring::rand::SystemRandom::new();
        let a = random_text(&rng, 16).unwrap();
        let b = random_text(&rng, 16).unwrap();
        assert_eq!(a.len(), 16);
        assert!(a.bytes().all(|c| ALPHABET.contains(&c)));
        assert_ne!(a, b);
        assert_eq!(code_space(4), 1 << 20);
    }
}
