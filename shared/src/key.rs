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

/// Alphanumeric characters after a `live_` prefix (any case) from which a run is treated as a key
/// that is slightly off: a typo, a wrong case, a character too many or too few. Such a near-miss is
/// as secret as the key it is one repair away from (its checksum tells which repair is right).
pub const NEAR_MISS_AFTER_PREFIX: usize = 12;
/// Alphanumeric characters in one run (with both letter cases), prefix or not, that are treated as
/// a key's random part.
pub const NEAR_MISS_RUN: usize = 24;

/// True when `run` (a maximal run of ASCII letters, digits and `_`) looks like a key or a near
/// miss of one. No word of a log line or a username is this shaped (usernames are ≤ 25 characters
/// and may not start with `live_`).
fn key_like(run: &[u8]) -> bool {
    // A key's random part is base62: in 32 characters both cases appear but for odds of about
    // 1 in 30 million, while hex digests (commit ids, hashes in paths) never mix them.
    let mixed_run = run.split(|b| !b.is_ascii_alphanumeric()).any(|part| {
        part.len() >= NEAR_MISS_RUN
            && part.iter().any(u8::is_ascii_uppercase)
            && part.iter().any(u8::is_ascii_lowercase)
    });
    if mixed_run {
        return true;
    }
    let prefix = PREFIX.as_bytes();
    (0..run.len().saturating_sub(prefix.len() - 1)).any(|i| {
        run[i..].len() >= prefix.len()
            && run[i..i + prefix.len()].eq_ignore_ascii_case(prefix)
            && run[i + prefix.len()..]
                .iter()
                .take_while(|b| b.is_ascii_alphanumeric())
                .count()
                >= NEAR_MISS_AFTER_PREFIX
    })
}

/// True when any part of `haystack` is a key or a near miss of one (see [`scrub`]): what a secret
/// scanner looks for in logs and files, since a near miss is repairable offline.
pub fn contains_key_like(haystack: &[u8]) -> bool {
    contains_key(haystack) || haystack.split(|b| !is_run_byte(*b)).any(key_like)
}

fn is_run_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// `text` with every key, and every run of characters shaped like one whether or not its checksum
/// holds, replaced by its redaction: for text that did not come from us (client-chosen names,
/// parser error messages) on its way to a log line.
pub fn scrub(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        if is_run_byte(bytes[i]) {
            let end = i + bytes[i..].iter().take_while(|b| is_run_byte(**b)).count();
            // Runs are ASCII, so both ends are char boundaries.
            let run = &text[i..end];
            if key_like(run.as_bytes()) {
                out.push_str(&redact(run));
            } else {
                out.push_str(run);
            }
            i = end;
        } else {
            let ch = text[i..].chars().next().expect("i is a char boundary");
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

/// Most characters of client-chosen text that reach a log line.
pub const LOG_TEXT_MAX: usize = 128;

/// Client-chosen text made fit for a log line: keys and near misses redacted ([`scrub`]), control
/// characters escaped (one log line stays one line, and no terminal escape reaches an operator's
/// screen), and cut to [`LOG_TEXT_MAX`] characters with the length of what was cut, so one client
/// cannot multiply the log's volume.
pub fn for_log(text: &str) -> String {
    let scrubbed = scrub(text);
    let mut out = String::with_capacity(scrubbed.len().min(LOG_TEXT_MAX * 2));
    let mut shown = 0;
    let mut chars = scrubbed.char_indices();
    for (_, ch) in chars.by_ref() {
        if ch.is_control() {
            out.extend(ch.escape_default());
        } else {
            out.push(ch);
        }
        shown += 1;
        if shown == LOG_TEXT_MAX {
            break;
        }
    }
    if let Some((at, _)) = chars.next() {
        out.push_str(&alloc::format!("…(+{} bytes)", scrubbed.len() - at));
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
    fn near_misses_are_redacted_too() {
        // One character changed: the checksum fails, yet the key is one repair away.
        let mut near = String::from(EXAMPLE_KEY);
        near.replace_range(12..13, "Q");
        assert!(!is_well_formed(&near));
        let line = alloc::format!("bad key {near} from x");
        assert_eq!(scrub(&line), "bad key live_…LZSi from x");
        assert!(contains_key_like(line.as_bytes()));
        assert!(!contains_key_like(scrub(&line).as_bytes()));
        // One character too many or too few, upper-case prefix, no prefix at all.
        for variant in [
            alloc::format!("{EXAMPLE_KEY}x"),
            String::from(&EXAMPLE_KEY[..KEY_LEN - 1]),
            EXAMPLE_KEY.replacen("live_", "LIVE_", 1),
            String::from(&EXAMPLE_KEY[PREFIX.len()..]),
        ] {
            assert!(contains_key_like(variant.as_bytes()), "{variant}");
            assert!(!contains_key_like(scrub(&variant).as_bytes()), "{variant}");
        }
        // Words of ordinary log lines are left alone.
        for plain in [
            "route=live_playlist",
            "boltstream_live_streams 3",
            "user=some_very_long_username_x",
            "location=/rustc/59807616e1fa2540724bfbac14d7976d7e4a3860/library/core/src/x.rs:1",
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        ] {
            assert_eq!(scrub(plain), plain);
            assert!(!contains_key_like(plain.as_bytes()), "{plain}");
        }
    }

    #[test]
    fn log_text_is_short_one_line_and_scrubbed() {
        assert_eq!(for_log("app"), "app");
        assert_eq!(for_log("a\nb\x1b[31m"), "a\\nb\\u{1b}[31m");
        let long = "x ".repeat(32 * 1024);
        let shown = for_log(&long);
        assert!(shown.starts_with(&long[..LOG_TEXT_MAX]));
        assert!(shown.ends_with(&alloc::format!("…(+{} bytes)", 64 * 1024 - LOG_TEXT_MAX)));
        assert!(shown.len() < 200);
        assert!(!contains_key_like(for_log(EXAMPLE_KEY).as_bytes()));
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
            prop_assert!(!contains_key_like(scrub(&s).as_bytes()));
            let logged = for_log(&s);
            prop_assert!(!logged.contains('\n') && !logged.contains('\r'));
            prop_assert!(logged.chars().count() <= LOG_TEXT_MAX * 10 + 32);
        }
    }
}
