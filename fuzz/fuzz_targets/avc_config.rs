//! AVCDecoderConfigurationRecord parsing and AVCC → Annex B on arbitrary bytes.
#![no_main]
use boltstream_hls::avc::{annex_b_parts, nal_units, AvcConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let split = data.first().map_or(0, |b| usize::from(*b)).min(data.len());
    let (record, frame) = data.split_at(split);
    if let Ok(config) = AvcConfig::parse(record) {
        for size in [1, 2, 4] {
            if let Ok(nals) = nal_units(frame, size) {
                let (parts, _) = annex_b_parts(&nals, &config);
                assert!(parts.iter().map(|p| p.len()).sum::<usize>() >= 6);
            }
        }
    }
});
