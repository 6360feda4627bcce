//! The packager's input path: arbitrary sequences of FLV audio/video tag bodies and timestamps.
//! Whatever it accepts, every segment it emits must pass the structural TS check.
#![no_main]
use boltstream_hls::inspect::{check_segment, Continuity};
use boltstream_hls::packager::Packager;
use libfuzzer_sys::fuzz_target;

#[path = "records.rs"]
mod records;

fuzz_target!(|data: &[u8]| {
    let mut packager = Packager::new(2000);
    let mut cc = Continuity::new();
    for media in records::media(data) {
        match packager.push(&media, 0) {
            Ok(Some(segment)) => {
                check_segment(&segment.data, &mut cc).expect("packager wrote a broken segment");
            }
            Ok(None) => {}
            Err(_) => return,
        }
    }
    if let Some(segment) = packager.finish() {
        check_segment(&segment.data, &mut cc).expect("packager wrote a broken final segment");
    }
});
