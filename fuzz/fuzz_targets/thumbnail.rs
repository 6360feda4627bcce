//! The thumbnail path on arbitrary Annex B bytes: the SPS bound, OpenH264 (C++, built
//! uninstrumented: libFuzzer steers by the Rust side's coverage, and a crash or hang in the decoder
//! still fails the run) and the scaler. One decoder for every input, as a decoding thread keeps one.
#![no_main]
use std::cell::RefCell;

use boltstream_ingest::thumbs::picture::{Thumbnailer, MAX_HEIGHT, MAX_WIDTH};
use libfuzzer_sys::fuzz_target;

thread_local! {
    static THUMBNAILER: RefCell<Thumbnailer> = RefCell::new(Thumbnailer::default());
}

fuzz_target!(|data: &[u8]| {
    if data.len() > 256 * 1024 {
        return;
    }
    THUMBNAILER.with(|t| {
        if let Ok(p) = t.borrow_mut().picture(data) {
            assert!(p.width <= MAX_WIDTH && p.height <= MAX_HEIGHT);
            assert!(p.jpeg.starts_with(&[0xff, 0xd8]));
        }
    });
});
