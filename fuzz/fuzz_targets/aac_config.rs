//! AudioSpecificConfig parsing and ADTS headers on arbitrary bytes.
#![no_main]
use boltstream_hls::aac::AacConfig;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(config) = AacConfig::parse(data) {
        let len = data.len() * 37 % 9000;
        if let Ok(h) = config.adts_header(len) {
            assert_eq!(h[0], 0xff);
            let frame_len = (usize::from(h[3] & 3) << 11) | (usize::from(h[4]) << 3) | usize::from(h[5] >> 5);
            assert_eq!(frame_len, len + 7);
        }
    }
});
