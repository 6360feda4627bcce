use alloc::format;
use alloc::string::ToString;
use alloc::vec;

use proptest::prelude::*;

use super::*;

const NOW: u64 = 1_796_000_000;

fn secret(id: u8, fill: u8) -> Secret {
    Secret::new(id, &[fill; 32]).unwrap()
}

#[test]
fn a_token_opens_its_channel_until_it_expires_and_nothing_else() {
    let s = secret(1, 7);
    let token = sign(&s, "/live/alice/", NOW + 60);
    assert!(token.len() <= MAX_TOKEN_LEN, "{token}");
    assert_eq!(
        verify(core::slice::from_ref(&s), &token, "/live/alice/", NOW),
        Ok(())
    );
    assert_eq!(
        verify(core::slice::from_ref(&s), &token, "/live/alice/", NOW + 59),
        Ok(())
    );
    assert_eq!(
        verify(core::slice::from_ref(&s), &token, "/live/alice/", NOW + 60),
        Err(TokenError::Expired)
    );
    // Another channel, or a prefix of this one's scope.
    for scope in ["/live/bob/", "/live/alice", "/live/", "/live/alice/x/"] {
        assert_eq!(
            verify(core::slice::from_ref(&s), &token, scope, NOW),
            Err(TokenError::BadSignature),
            "{scope}"
        );
    }
    // Another secret with the same id.
    assert_eq!(
        verify(&[secret(1, 8)], &token, "/live/alice/", NOW),
        Err(TokenError::BadSignature)
    );
}

#[test]
fn two_secrets_let_the_signing_secret_rotate() {
    let (old, new) = (secret(1, 1), secret(2, 2));
    let by_old = sign(&old, "/live/alice/", NOW + 60);
    let by_new = sign(&new, "/live/alice/", NOW + 60);
    let both = [old.clone(), new.clone()];
    assert_eq!(verify(&both, &by_old, "/live/alice/", NOW), Ok(()));
    assert_eq!(verify(&both, &by_new, "/live/alice/", NOW), Ok(()));
    assert_eq!(
        verify(&[new], &by_old, "/live/alice/", NOW),
        Err(TokenError::UnknownKey)
    );
}

#[test]
fn malformed_truncated_re_encoded_and_oversized_tokens_are_refused() {
    let s = secret(3, 9);
    let good = sign(&s, "/live/alice/", NOW + 60);
    let (expires, rest) = good.split_once('.').unwrap();
    let signature = rest.split_once('.').unwrap().1;
    let mut last_bits = signature.to_string();
    // 'A' → 'B' in the last character sets a bit the 32 bytes do not have.
    let last = last_bits.pop().unwrap();
    let flipped = char::from(ALPHABET[ALPHABET.iter().position(|&c| c == last as u8).unwrap() ^ 1]);
    last_bits.push(flipped);
    let cases = vec![
        String::new(),
        ".".into(),
        "..".into(),
        format!("{expires}.3"),
        format!("{expires}.3.{signature}.x"),
        format!("{expires}..{signature}"),
        format!("{expires}.33.{signature}"),
        format!("{expires}.a.{signature}"),
        format!("0{expires}.3.{signature}"),
        format!("+{expires}.3.{signature}"),
        format!("99999999999999999999.3.{signature}"),
        format!("{expires}.3.{}", &signature[..42]),
        format!("{expires}.3.{signature}A"),
        format!(
            "{expires}.3.{}",
            signature.replace('-', "+").replace('_', "/")
        ),
        format!("{expires}.3.{signature}="),
        format!("{expires}%2E3%2E{signature}"),
        format!("{expires}.3.{}", "A".repeat(200)),
        "x".repeat(MAX_TOKEN_LEN + 1),
        format!("{expires}.3.{}", "é".repeat(22)),
    ];
    for token in &cases {
        assert_eq!(
            verify(core::slice::from_ref(&s), token, "/live/alice/", NOW),
            Err(TokenError::Malformed),
            "{token:?}"
        );
    }
    // One spelling per signature: the flipped low bit is refused, not read as the same bytes.
    if last_bits != signature {
        let token = format!("{expires}.3.{last_bits}");
        assert_ne!(
            verify(core::slice::from_ref(&s), &token, "/live/alice/", NOW),
            Ok(()),
            "{token}"
        );
    }
    assert_eq!(verify(&[s], &good, "/live/alice/", NOW), Ok(()));
}

#[test]
fn secrets_are_long_and_never_printed() {
    assert_eq!(Secret::new(0, &[1; 31]).unwrap_err(), SecretError::TooShort);
    assert_eq!(Secret::new(10, &[1; 32]).unwrap_err(), SecretError::BadId);
    let s = Secret::new(4, b"0123456789abcdef0123456789abcdef").unwrap();
    let shown = format!("{s:?}");
    assert!(!shown.contains("0123456789"), "{shown}");
}

#[test]
fn base64url_round_trips_every_length() {
    for len in 0..40usize {
        let bytes: vec::Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
        let mut text = String::new();
        base64url(&bytes, &mut text);
        assert_eq!(text.len(), (len * 4).div_ceil(3), "{len}");
        if len == 32 {
            assert_eq!(decode_base64url_32(&text).unwrap().to_vec(), bytes);
        }
    }
}

proptest! {
    #[test]
    fn verifying_any_text_never_panics(token in "\\PC{0,120}", scope in "/live/[a-z]{1,8}/") {
        let _ = verify(&[secret(1, 3)], &token, &scope, NOW);
    }

    #[test]
    fn every_signed_token_verifies_and_every_changed_one_does_not(
        user in "[a-z0-9_]{1,25}",
        ttl in 1u64..100_000,
        at in 0usize..66,
        with in "[A-Za-z0-9_.-]",
    ) {
        let s = secret(5, 42);
        let scope = format!("/live/{user}/");
        let token = sign(&s, &scope, NOW + ttl);
        prop_assert_eq!(verify(core::slice::from_ref(&s), &token, &scope, NOW), Ok(()));
        let at = at % token.len();
        let mut changed = token.clone();
        changed.replace_range(at..at + 1, &with);
        if changed != token {
            prop_assert_ne!(verify(&[s], &changed, &scope, NOW), Ok(()));
        }
    }
}

#[test]
fn cookies_are_read_alike_from_any_header_split() {
    let secret = Secret::new(1, &[7; 32]).unwrap();
    let token = sign(&secret, "/private/alice/", 1000);
    let good = alloc::format!("a=b; {COOKIE}={token}; c=d");
    let secrets = [secret];
    let check = |headers: &[&[u8]], scope: &str| {
        verify_cookies(&secrets, headers.iter().copied(), scope, 10)
    };
    assert_eq!(check(&[good.as_bytes()], "/private/alice/"), Ok(()));
    assert_eq!(check(&[b"a=b", good.as_bytes()], "/private/alice/"), Ok(()));
    assert_eq!(
        check(&[good.as_bytes()], "/private/bob/"),
        Err(TokenError::BadSignature)
    );
    assert_eq!(
        check(&[b"a=b; bs_playx=1"], "/private/alice/"),
        Err(TokenError::Missing)
    );
    assert_eq!(check(&[], "/private/alice/"), Err(TokenError::Missing));
    // A bad cookie before the good one does not hide it; past the limit nothing more is tried.
    let second = alloc::format!("{COOKIE}=junk; {COOKIE}={token}");
    assert_eq!(check(&[second.as_bytes()], "/private/alice/"), Ok(()));
    let mut many = String::new();
    for _ in 0..MAX_COOKIES_TRIED {
        many.push_str(&alloc::format!("{COOKIE}=junk; "));
    }
    many.push_str(&alloc::format!("{COOKIE}={token}"));
    assert_eq!(
        check(&[many.as_bytes()], "/private/alice/"),
        Err(TokenError::Malformed)
    );
    assert_eq!(
        check(&[b"bs_play=\xff\xfe"], "/private/alice/"),
        Err(TokenError::Malformed)
    );
    assert_eq!(scope("alice"), "/private/alice/");
}
