//! The low-latency packager's input path: arbitrary FLV tag bodies and timestamps, as the TS
//! packager's target feeds them (and the same bytes as an SPS). Whatever it accepts, every init
//! section and part it emits must be whole boxes: `ftyp` + `moov`, `moof` + `mdat`, sizes adding
//! up to the bytes.
#![no_main]
use boltstream_hls::cmaf::{Output, PartPackager};
use libfuzzer_sys::fuzz_target;

#[path = "records.rs"]
mod records;

/// The four-character types of the top-level boxes, if their sizes tile `data` exactly.
fn boxes(data: &[u8]) -> Option<Vec<[u8; 4]>> {
    let mut kinds = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let size = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
        if size < 8 || size > rest.len() {
            return None;
        }
        kinds.push(rest[4..8].try_into().ok()?);
        rest = &rest[size..];
    }
    Some(kinds)
}

fn check(output: &Output) {
    match output {
        Output::Init(bytes) => {
            assert_eq!(boxes(bytes), Some(vec![*b"ftyp", *b"moov"]), "init section")
        }
        Output::Part(part) => {
            assert_eq!(boxes(&part.data), Some(vec![*b"moof", *b"mdat"]), "part")
        }
        Output::SegmentEnd(end) => assert!(end.parts > 0),
    }
}

fuzz_target!(|data: &[u8]| {
    let _ = boltstream_hls::sps::dimensions(data);
    let mut packager = PartPackager::new(2000, 333);
    for media in records::media(data) {
        match packager.push(&media, 0) {
            Ok(outputs) => outputs.iter().for_each(check),
            Err(_) => return,
        }
    }
    packager.finish().iter().for_each(check);
});
