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

use aes::cipher::{block_padding::Pkcs7, BlockEncryptMut, KeyIvInit};

type Encryptor = cbc::Encryptor<aes::Aes128>;

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

#[cfg(test)]
mod tests {
    use aes::cipher::BlockDecryptMut;

    use super::*;

    type Decryptor = cbc::Decryptor<aes::Aes128>;

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
