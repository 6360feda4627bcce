//! AES-128 encryption of media for private streams (RFC 8216 §4.3.2.4, §5.2): each resource —
//! a segment, or a low-latency part — is AES-128-CBC with PKCS7 padding as a whole, under the key
//! the playlist's EXT-X-KEY names and, without an IV attribute, the segment's media sequence
//! number as a 16-byte big-endian IV. Sans-IO: bytes in, bytes out.
//!
//! Parts and whole segments cannot share ciphertext. hls.js decrypts each low-latency part on its
//! own with its segment's key and IV (`src/demux/transmuxer.ts`, one `decrypt` per pushed part),
//! so every part is encrypted alone from the segment's IV with its own padding; a player reading
//! the whole segment decrypts one CBC stream from that IV, so the segment is encrypted again as a
//! whole. An encrypted low-latency stream therefore keeps both — the price of serving parts and
//! segments to players of either kind.

use core::fmt;

use aes::cipher::{block_padding::Pkcs7, BlockEncryptMut, KeyIvInit};

type Encryptor = cbc::Encryptor<aes::Aes128>;

/// What a playlist says about one encrypted segment: which key (`key/<id>.key`, relative to the
/// playlist) and which IV. Boltstream writes the IV out for every segment rather than relying on
/// the media sequence number, because a segment is encrypted before the playlist window has
/// numbered it (the MPEG-TS window numbers a segment when the disk reports it written).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyTag {
    /// The key's id: unique per channel, from the wall clock like segment names.
    pub id: u64,
    /// The IV of this segment (and of each of its parts).
    pub iv: [u8; 16],
}

impl KeyTag {
    /// The playlist line that applies this key to the segment after it. The IV is spelled `0X` and
    /// upper-case hex, as RFC 8216's hexadecimal-sequence is (and so no secret scanner reads a
    /// mixed-case run in it as a stream key).
    pub fn line(&self) -> String {
        format!(
            "#EXT-X-KEY:METHOD=AES-128,URI=\"key/{}.key\",IV=0X{}\n",
            self.id,
            hex(&self.iv)
        )
    }
}

/// A segment's key: the tag the playlist shows and the key bytes it names.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SegmentKey {
    /// What the playlist shows.
    pub tag: KeyTag,
    /// The AES-128 key.
    pub key: [u8; 16],
}

impl fmt::Debug for SegmentKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the key: a debug print must not put it in a log.
        write!(f, "SegmentKey {{ tag: {:?}, .. }}", self.tag)
    }
}

/// A channel's media key: what the origin serves at `key/<id>.key`, and the salt each segment's
/// IV is made from.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct MediaKey {
    /// Unique per channel.
    pub id: u64,
    /// The AES-128 key.
    pub key: [u8; 16],
    /// Random, so IVs are not predictable from segment names alone.
    pub salt: u64,
}

impl fmt::Debug for MediaKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MediaKey {{ id: {}, .. }}", self.id)
    }
}

impl MediaKey {
    /// The key and IV of segment `name`.
    pub fn for_segment(&self, name: u64) -> SegmentKey {
        SegmentKey {
            tag: KeyTag {
                id: self.id,
                iv: segment_iv(self.salt, name),
            },
            key: self.key,
        }
    }
}

/// The IV of segment `name` under a key whose random salt is `salt`: unique for every segment a
/// key encrypts, since names never repeat within a channel.
pub fn segment_iv(salt: u64, name: u64) -> [u8; 16] {
    let mut iv = [0u8; 16];
    iv[..8].copy_from_slice(&salt.to_be_bytes());
    iv[8..].copy_from_slice(&name.to_be_bytes());
    iv
}

/// One resource encrypted as it arrives: CBC carries only the last ciphertext block and at most
/// 15 bytes of plaintext between pushes, so a low-latency segment's whole-segment ciphertext is
/// built from its parts without keeping their plaintext.
pub struct CbcStream {
    cipher: Encryptor,
    pending: Vec<u8>,
    out: Vec<u8>,
}

impl CbcStream {
    /// A stream under `key` from `iv`.
    pub fn new(key: &[u8; 16], iv: &[u8; 16]) -> Self {
        Self {
            cipher: Encryptor::new(key.into(), iv.into()),
            pending: Vec::with_capacity(16),
            out: Vec::new(),
        }
    }

    /// Encrypts the whole blocks `plain` completes.
    pub fn push(&mut self, mut plain: &[u8]) {
        if !self.pending.is_empty() {
            let take = (16 - self.pending.len()).min(plain.len());
            self.pending.extend_from_slice(&plain[..take]);
            plain = &plain[take..];
            if self.pending.len() < 16 {
                return;
            }
            let block = std::mem::take(&mut self.pending);
            self.encrypt_blocks(&block);
        }
        let whole = plain.len() / 16 * 16;
        self.encrypt_blocks(&plain[..whole]);
        self.pending.extend_from_slice(&plain[whole..]);
    }

    fn encrypt_blocks(&mut self, blocks: &[u8]) {
        for block in blocks.chunks_exact(16) {
            let mut b = aes::cipher::generic_array::GenericArray::clone_from_slice(block);
            self.cipher.encrypt_block_mut(&mut b);
            self.out.extend_from_slice(&b);
        }
    }

    /// Pads the last block (PKCS7) and returns the whole ciphertext.
    pub fn finish(mut self) -> Vec<u8> {
        let pad = 16 - self.pending.len();
        let mut last = std::mem::take(&mut self.pending);
        last.resize(16, pad as u8);
        self.encrypt_blocks(&last);
        self.out
    }
}

/// The IV of media sequence number `msn` when EXT-X-KEY has no IV attribute.
pub fn sequence_iv(msn: u64) -> [u8; 16] {
    let mut iv = [0u8; 16];
    iv[8..].copy_from_slice(&msn.to_be_bytes());
    iv
}

/// `plain` encrypted as one resource: AES-128-CBC, PKCS7 padding (1 to 16 bytes added).
pub fn encrypt(key: &[u8; 16], iv: &[u8; 16], plain: &[u8]) -> Vec<u8> {
    Encryptor::new(key.into(), iv.into()).encrypt_padded_vec_mut::<Pkcs7>(plain)
}

/// A media key wrapped (RFC 3394 AES key wrap) under a key-encryption key: what a recording keeps
/// of each key on disk, so its files alone — copied, backed up, served by a misconfigured web
/// server — never decrypt; the key-encryption key lives elsewhere (the ingest keeps it in its
/// database). Deleting the recording deletes its keys with it.
pub type WrappedKey = [u8; 24];

/// `key` wrapped under `kek`.
pub fn wrap_key(kek: &[u8; 16], key: &[u8; 16]) -> WrappedKey {
    let mut out = [0u8; 24];
    aes_kw::KekAes128::from(*kek)
        .wrap(key, &mut out)
        .expect("a 16-byte key wraps into 24 bytes");
    out
}

/// The key `wrapped` holds, if it was wrapped under `kek` (the wrap's integrity check fails for
/// another key-encryption key or altered bytes).
pub fn unwrap_key(kek: &[u8; 16], wrapped: &WrappedKey) -> Option<[u8; 16]> {
    let mut out = [0u8; 16];
    aes_kw::KekAes128::from(*kek)
        .unwrap(wrapped, &mut out)
        .ok()
        .map(|()| out)
}

/// Upper-case hex, as playlists spell IVs.
pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push_str(&format!("{b:02X}"));
    }
    out
}

/// The bytes of `N * 2` hex digits (either case); `None` for anything else.
pub fn from_hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    let text = text.as_bytes();
    if text.len() != N * 2 {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = [0u8; N];
    for (i, pair) in text.chunks_exact(2).enumerate() {
        out[i] = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use aes::cipher::BlockDecryptMut;

    use super::*;

    #[test]
    fn a_wrapped_key_unwraps_only_under_its_kek() {
        let (kek, other, key) = ([1u8; 16], [2u8; 16], [0xabu8; 16]);
        let wrapped = wrap_key(&kek, &key);
        assert_eq!(unwrap_key(&kek, &wrapped), Some(key));
        assert_eq!(unwrap_key(&other, &wrapped), None);
        let mut altered = wrapped;
        altered[5] ^= 1;
        assert_eq!(unwrap_key(&kek, &altered), None);
        assert!(
            !hex(&wrapped).contains(&hex(&key)),
            "the key is not in the clear"
        );
        assert_eq!(from_hex::<24>(&hex(&wrapped)), Some(wrapped));
        assert_eq!(from_hex::<2>("0aFf"), Some([0x0a, 0xff]));
        for bad in ["0a0", "0g00", "", "0a0a0a"] {
            assert_eq!(from_hex::<2>(bad), None, "{bad}");
        }
    }

    type Decryptor = cbc::Decryptor<aes::Aes128>;

    #[test]
    fn a_stream_encrypts_as_one_call_does_however_it_is_cut() {
        let key = [9u8; 16];
        let iv = segment_iv(0xdead_beef, 1_764_140_000_123);
        let plain: Vec<u8> = (0..1000u32).map(|i| (i * 7 % 251) as u8).collect();
        for cuts in [
            vec![],
            vec![1],
            vec![15, 16, 17],
            vec![3, 500, 999],
            vec![16, 32, 48],
        ] {
            let mut stream = CbcStream::new(&key, &iv);
            let mut at = 0;
            for cut in cuts.iter().copied().chain([plain.len()]) {
                stream.push(&plain[at..cut]);
                at = cut;
            }
            assert_eq!(stream.finish(), encrypt(&key, &iv, &plain), "{cuts:?}");
        }
        assert_eq!(CbcStream::new(&key, &iv).finish(), encrypt(&key, &iv, &[]));
    }

    #[test]
    fn the_key_line_names_the_key_and_spells_the_iv() {
        let tag = KeyTag {
            id: 1_764_140_000_000,
            iv: segment_iv(1, 2),
        };
        assert_eq!(
            tag.line(),
            "#EXT-X-KEY:METHOD=AES-128,URI=\"key/1764140000000.key\",IV=0X00000000000000010000000000000002\n"
        );
        let key = SegmentKey {
            tag,
            key: [0xab; 16],
        };
        assert!(!format!("{key:?}").to_lowercase().contains("abab"));
    }

    #[test]
    fn the_iv_is_the_sequence_number_big_endian() {
        assert_eq!(sequence_iv(0), [0; 16]);
        let iv = sequence_iv(0x0102_0304_0506_0708);
        assert_eq!(iv[..8], [0; 8]);
        assert_eq!(iv[8..], [1, 2, 3, 4, 5, 6, 7, 8]);
    }

    #[test]
    fn a_known_answer_and_padding_to_whole_blocks() {
        // NIST SP 800-38A F.2.1 (CBC-AES128.Encrypt), first block.
        let key = [
            0x2b, 0x7e, 0x15, 0x16, 0x28, 0xae, 0xd2, 0xa6, 0xab, 0xf7, 0x15, 0x88, 0x09, 0xcf,
            0x4f, 0x3c,
        ];
        let iv: [u8; 16] = core::array::from_fn(|i| i as u8);
        let plain = [
            0x6b, 0xc1, 0xbe, 0xe2, 0x2e, 0x40, 0x9f, 0x96, 0xe9, 0x3d, 0x7e, 0x11, 0x73, 0x93,
            0x17, 0x2a,
        ];
        let out = encrypt(&key, &iv, &plain);
        assert_eq!(
            out[..16],
            [
                0x76, 0x49, 0xab, 0xac, 0x81, 0x19, 0xb2, 0x46, 0xce, 0xe9, 0x8e, 0x9b, 0x12, 0xe9,
                0x19, 0x7d
            ]
        );
        assert_eq!(
            out.len(),
            32,
            "a whole block of padding after a whole block"
        );
        for len in 0..40 {
            let plain = vec![7u8; len];
            let out = encrypt(&key, &iv, &plain);
            assert_eq!(out.len(), (len / 16 + 1) * 16);
            let back = Decryptor::new((&key).into(), (&iv).into())
                .decrypt_padded_vec_mut::<Pkcs7>(&out)
                .unwrap();
            assert_eq!(back, plain);
        }
    }
}
