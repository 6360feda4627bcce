//! The packager's input path: arbitrary sequences of FLV audio/video tag bodies and timestamps.
//! Whatever it accepts, every segment it emits must pass the structural TS check.
#![no_main]
use boltstream_hls::inspect::{check_segment, Continuity};
use boltstream_hls::packager::Packager;
use boltstream_hls::media::{Media, Metadata};
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut packager = Packager::new(2000);
    let mut cc = Continuity::new();
    let mut rest = data;
    // Record: kind (1) | timestamp (4) | length (2) | body.
    while rest.len() >= 7 {
        let kind = rest[0];
        let ts = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]);
        let len = usize::from(u16::from_be_bytes([rest[5], rest[6]])).min(rest.len() - 7);
        let body = Bytes::copy_from_slice(&rest[7..7 + len]);
        rest = &rest[7 + len..];
        let media = match kind % 3 {
            0 => Media::Video { timestamp: ts, data: body },
            1 => Media::Audio { timestamp: ts, data: body },
            _ => Media::Metadata(Metadata { video_codec_id: (kind & 4 != 0).then_some(7), audio_codec_id: (kind & 8 != 0).then_some(10), ..Metadata::default() }),
        };
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
