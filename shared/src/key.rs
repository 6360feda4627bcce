//! Stream keys: `live_` + 32 random base62 characters + 6 base62 characters of the CRC32 of the random
//! part. The checksum (GitHub's token idea) lets an edge, a log scrubber or a secret scanner recognise
//! a key with no database lookup and practically no false positives; it carries no secrecy — the
//! 32 random characters (~190 bits) do.

use alloc::string::String;
use rand_core::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};

/// What every key starts with; chosen so a human recognises it too.
pub const PREFIX: &str = "live_";
/// Random characters after the prefix.
pub const RANDOM_LEN: usize = 32;
/// Base62 digits of the checksum: 62^6 > 2^32, so every CRC32 fits.
pub const CHECKSUM_LEN: usize = 6;
/// Length of a whole key.
pub const KEY_LEN: usize = PREFIX.len() + RANDOM_LEN + CHECKSUM_LEN;

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Makes a new key. Production passes the OS RNG; tests may pass a seeded one.
pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> String {
    let mut key = String::with_capacity(KEY_LEN);
    key.push_str(PREFIX);
    let mut random = [0u8; RANDOM_LEN];
    for slot in random.iter_mut() {
        // Rejection sampling keeps the 62 symbols uniformly likely (248 = 4 * 62).
        *slot = loop {
            let byte = (rng.next_u32() & 0xff) as u8;
            if byte < 248 {
                break ALPHABET[usize::from(byte % 62)];
            }
        };
    }
    for &b in &random {
        key.push(char::from(b));
    }
    for b in checksum(&random) {
        key.push(char::from(b));
    }
    key
}

fn checksum(random: &[u8]) -> [u8; CHECKSUM_LEN] {
    let mut value = crc32fast::hash(random);
    let mut out = [b'0'; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(value % 62) as usize];
        value /= 62;
    }
    out
}

/// True when `candidate` is exactly a key: prefix, length, alphabet and checksum all hold.
pub fn is_well_formed(candidate: &str) -> bool {
    is_well_formed_bytes(candidate.as_bytes())
}

/// [`is_well_formed`] on raw bytes, for scanners that look at undecoded input.
pub fn is_well_formed_bytes(candidate: &[u8]) -> bool {
    if candidate.len() != KEY_LEN || !candidate.starts_with(PREFIX.as_bytes()) {
        return false;
    }
    let body = &candidate[PREFIX.len()..];
    if !body.iter().all(u8::is_ascii_alphanumeric) {
        return false;
    }
    let (random, sum) = body.split_at(RANDOM_LEN);
    checksum(random) == sum
}

/// True when any window of `haystack` is a well-formed key. Keys hide inside longer strings
/// (`/x/live_….flv`, `?k=live_…&`), so a scanner must not rely on delimiters.
pub fn contains_key(haystack: &[u8]) -> bool {
    let prefix = PREFIX.as_bytes();
    if haystack.len() < KEY_LEN {
        return false;
    }
    (0..=haystack.len() - KEY_LEN).any(|start| {
        haystack[start..].starts_with(prefix)
            && is_well_formed_bytes(&haystack[start..start + KEY_LEN])
    })
}

/// The only form in which something a client presented as a key may reach a log line or error:
/// at most the prefix and the last four characters, so an operator can tell keys apart without
/// being able to use one.
pub fn redact(presented: &str) -> String {
    let chars: alloc::vec::Vec<char> = presented.chars().collect();
    let mut out = String::new();
    if presented.starts_with(PREFIX) {
        out.push_str(PREFIX);
    }
    out.push('…');
    // Short inputs are shown not at all: four characters of an eight-character secret is half of it.
    if chars.len() >= 16 {
        out.extend(&chars[chars.len() - 4..]);
    }
    out
}

/// `text` with every well-formed key in it replaced by its redaction: for text that did not come from
/// us (client-chosen names, parser error messages) on its way to a log line.
pub fn scrub(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes.len() - i >= KEY_LEN
            && bytes[i..].starts_with(PREFIX.as_bytes())
            && is_well_formed_bytes(&bytes[i..i + KEY_LEN])
        {
            // A key is ASCII, so both ends are char boundaries.
            out.push_str(&redact(&text[i..i + KEY_LEN]));
            i += KEY_LEN;
        } else {
            let ch = text[i..].chars().next().expect("i is a char boundary");
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

/// The at-rest form of a key: lowercase hex SHA-256. Keys carry ~190 random bits, so a plain fast
/// hash is enough (no salt or KDF needed: there is nothing to brute-force), and it allows an indexed
/// lookup by hash on every publish.
pub fn storage_hash(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    let mut hex = String::with_capacity(64);
    for byte in digest {
        hex.push(char::from(b"0123456789abcdef"[usize::from(byte >> 4)]));
        hex.push(char::from(b"0123456789abcdef"[usize::from(byte & 0xf)]));
    }
    hex
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cases::EXAMPLE_KEY;
    use proptest::prelude::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn example_key_is_well_formed() {
        assert!(is_well_formed(EXAMPLE_KEY));
    }

    #[test]
    fn rejects_wrong_prefix_length_alphabet_and_checksum() {
        let key = generate(&mut StdRng::seed_from_u64(7));
        assert!(is_well_formed(&key));
        assert!(!is_well_formed(&key.replacen("live_", "LIVE_", 1)));
        assert!(!is_well_formed(&key[..KEY_LEN - 1]));
        assert!(!is_well_formed(&alloc::format!("{key}0")));
        let mut bad_alphabet = key.clone();
        bad_alphabet.replace_range(10..11, "-");
        assert!(!is_well_formed(&bad_alphabet));
        assert!(!is_well_formed(
            "live_00000000000000000000000000000000000000"
        ));
        assert!(!is_well_formed(""));
    }

    #[test]
    fn redaction_keeps_only_prefix_and_tail() {
        let key = generate(&mut StdRng::seed_from_u64(1));
        let shown = redact(&key);
        assert_eq!(shown, alloc::format!("live_…{}", &key[KEY_LEN - 4..]));
        assert!(!contains_key(shown.as_bytes()));
        assert_eq!(redact("short"), "…");
        assert_eq!(redact("ünïcödé-ünïcödé-ünïcödé"), "…cödé");
    }

    #[test]
    fn storage_hash_is_sha256_hex() {
        // SHA-256("abc") from FIPS 180-2.
        assert_eq!(
            storage_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn scrub_redacts_every_embedded_key() {
        let text = alloc::format!("app=ü{EXAMPLE_KEY}/x {EXAMPLE_KEY}");
        let scrubbed = scrub(&text);
        assert!(!contains_key(scrubbed.as_bytes()));
        assert_eq!(scrubbed, "app=ülive_…LZSi/x live_…LZSi");
        assert_eq!(scrub("nothing here"), "nothing here");
    }

    #[test]
    fn contains_key_finds_embedded_keys() {
        let inside = alloc::format!("/app/x{EXAMPLE_KEY}.flv?y=1");
        assert!(contains_key(inside.as_bytes()));
        assert!(!contains_key(b"/live/alice/index.m3u8"));
    }

    proptest! {
        #[test]
        fn every_generated_key_is_well_formed(seed in any::<u64>()) {
            let key = generate(&mut StdRng::seed_from_u64(seed));
            prop_assert_eq!(key.len(), KEY_LEN);
            prop_assert!(is_well_formed(&key));
        }

        #[test]
        fn any_single_character_change_breaks_the_key(
            seed in any::<u64>(), pos in 0..KEY_LEN, replacement in any::<char>()
        ) {
            let key = generate(&mut StdRng::seed_from_u64(seed));
            let original = key.as_bytes()[pos] as char;
            prop_assume!(replacement != original);
            let mut changed = String::new();
            changed.push_str(&key[..pos]);
            changed.push(replacement);
            changed.push_str(&key[pos + 1..]);
            prop_assert!(!is_well_formed(&changed));
        }

        #[test]
        fn well_formedness_never_panics(s in ".*") {
            let _ = is_well_formed(&s);
            let _ = redact(&s);
            prop_assert!(!contains_key(scrub(&s).as_bytes()));
        }
    }
}
