//! `shared`'s route parser on arbitrary request targets: never panics, canonical paths are stable.
#![no_main]
use boltstream_shared::route::classify;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let route = classify(data);
    if let Some(canonical) = route.canonical_path() {
        let again = classify(canonical.as_bytes());
        assert_eq!(again, route);
        assert_eq!(again.canonical_path(), Some(canonical));
    }
});
