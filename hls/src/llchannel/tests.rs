use super::*;
use crate::cmaf::PartPackager;
use crate::media::Media;
use crate::synthetic;

const T0: i64 = 1_700_000_000_000;

fn state() -> LlChannelState {
    LlChannelState::new(
        LlConfig {
            target_s: 2,
            part_target_us: 333_000,
            window: 6,
        },
        12_000,
    )
}

/// Publishes `seconds` of synthetic media into `state`, the wall clock following media time;
/// returns every effect and the packager's outputs.
fn publish(
    state: &mut LlChannelState,
    seconds: u32,
    start_ms: i64,
) -> (Vec<LlEffect>, Vec<Output>) {
    state.begin_publish();
    let mut packager = PartPackager::new(2000, 333);
    let (mut effects, mut outputs) = (Vec::new(), Vec::new());
    for media in synthetic::stream(seconds) {
        let at = match &media {
            Media::Video { timestamp, .. } | Media::Audio { timestamp, .. } => {
                i64::from(*timestamp)
            }
            Media::Metadata(_) => 0,
        };
        for output in packager.push(&media, start_ms + at).unwrap() {
            outputs.push(output.clone());
            effects.extend(state.apply(output, start_ms + at));
        }
    }
    for output in packager.finish() {
        outputs.push(output.clone());
        effects.extend(state.apply(output, start_ms + i64::from(seconds) * 1000));
    }
    (effects, outputs)
}

#[test]
fn a_segment_is_its_parts_concatenated_and_every_listed_part_is_fetchable() {
    let mut s = state();
    let (effects, outputs) = publish(&mut s, 5, T0);
    let written: Vec<(SegmentName, Bytes)> = (effects.iter())
        .filter_map(|e| match e {
            LlEffect::WriteSegment { name, bytes, .. } => Some((*name, bytes.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(written.len(), 3, "2 s segments over 5 s");
    let parts: Vec<Bytes> = (outputs.iter())
        .filter_map(|o| match o {
            Output::Part(p) => Some(p.data.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        written
            .iter()
            .flat_map(|(_, b)| b.to_vec())
            .collect::<Vec<u8>>(),
        parts.iter().flat_map(|b| b.to_vec()).collect::<Vec<u8>>(),
        "the segments are the parts, in order, byte for byte"
    );
    let (playlist, _) = s.playlist();
    let text = String::from_utf8(playlist.to_vec()).unwrap();
    for (name, bytes) in &written {
        assert_eq!(s.segment_bytes(*name).as_ref(), Some(bytes));
        assert!(text.contains(&format!("{name}.m4s")));
        let mut i = 0;
        let mut joined = Vec::new();
        while let Some(part) = s.part_bytes(*name, i) {
            assert!(
                text.contains(&format!("\"{name}.{i}.m4s\"")),
                "part {i} listed"
            );
            joined.extend_from_slice(&part);
            i += 1;
        }
        assert_eq!(&joined[..], &bytes[..]);
    }
    let LlEffect::WriteInit { id, .. } = effects[0] else {
        panic!("the init section comes first: {:?}", effects[0]);
    };
    assert!(s.init_bytes(id).is_some() && s.init_bytes(id + 1).is_none());
    assert!(text.contains(&format!("#EXT-X-MAP:URI=\"init{id}.mp4\"")));
    // The first segment's date is its first frame's arrival.
    assert!(
        text.contains("#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:20.000Z"),
        "{text}"
    );
}

#[test]
fn every_change_moves_the_version_and_rewrites_the_playlist() {
    let mut s = state();
    let (_, v0) = s.playlist();
    let (effects, outputs) = publish(&mut s, 3, T0);
    let (_, v1) = s.playlist();
    let changes = (outputs.iter())
        .filter(|o| !matches!(o, Output::Init(_)))
        .count() as u64;
    assert_eq!(v1 - v0, changes);
    let writes = (effects.iter())
        .filter(|e| matches!(e, LlEffect::WritePlaylist { .. }))
        .count() as u64;
    assert_eq!(writes, changes);
    assert_eq!(
        s.blocking(Some(9), None),
        Blocking::BadRequest("_HLS_msn too far ahead")
    );
    s.end();
    let (playlist, v2) = s.playlist();
    assert_eq!(v2, v1 + 1);
    assert!(playlist.ends_with(b"#EXT-X-ENDLIST\n"));
    assert_eq!(s.blocking(Some(9), Some(0)), Blocking::Ready);
}

#[test]
fn delisted_parts_stay_fetchable_for_three_targets_and_files_until_the_grace() {
    let mut s = state();
    let (effects, _) = publish(&mut s, 17, T0);
    let first = (effects.iter())
        .find_map(|e| match e {
            LlEffect::WriteSegment { name, .. } => Some(*name),
            _ => None,
        })
        .unwrap();
    let (playlist, _) = s.playlist();
    assert!(
        !String::from_utf8_lossy(&playlist).contains(&format!("{first}.m4s")),
        "delisted"
    );
    let end = T0 + 17_000;
    // Delisted when the eighth segment ended, at about 16 s.
    assert!(
        s.part_bytes(first, 0).is_some(),
        "still fetchable right after"
    );
    assert!(s.tidy(end).is_empty());
    assert!(s.tidy(end + 6_500).is_empty(), "files stay for the grace");
    assert!(
        s.part_bytes(first, 0).is_none(),
        "parts gone after three targets"
    );
    let deleted = s.tidy(end + 12_500);
    assert!(
        deleted.contains(&LlEffect::DeleteSegment { name: first }),
        "{deleted:?}"
    );
}

#[test]
fn a_republish_continues_after_a_discontinuity_with_names_that_never_repeat() {
    let mut s = state();
    let (first, _) = publish(&mut s, 3, T0);
    s.end();
    let (second, _) = publish(&mut s, 3, T0 - 60_000); // a clock that went backwards
    let names: Vec<SegmentName> = (first.iter().chain(&second))
        .filter_map(|e| match e {
            LlEffect::WriteSegment { name, .. } => Some(*name),
            _ => None,
        })
        .collect();
    assert!(names.windows(2).all(|w| w[0] < w[1]), "{names:?}");
    // Each publish's init section gets its own never-reused URL (an edge caches it as immutable).
    let inits: Vec<u64> = (first.iter().chain(&second))
        .filter_map(|e| match e {
            LlEffect::WriteInit { id, .. } => Some(*id),
            _ => None,
        })
        .collect();
    assert_eq!(inits.len(), 2);
    assert!(inits[0] < inits[1], "{inits:?}");
    let (playlist, _) = s.playlist();
    let text = String::from_utf8(playlist.to_vec()).unwrap();
    assert_eq!(text.matches("#EXT-X-DISCONTINUITY\n").count(), 1, "{text}");
    assert!(!text.contains("ENDLIST"));
}

#[test]
fn the_preload_hint_names_the_part_that_comes_next_even_across_a_segment_boundary() {
    let mut s = state();
    s.begin_publish();
    let mut packager = PartPackager::new(2000, 333);
    let (mut checked_parts, mut checked_boundaries) = (0, 0);
    let mut hinted: Option<(String, bool)> = None;
    for media in synthetic::stream(5) {
        let at = match &media {
            Media::Video { timestamp, .. } | Media::Audio { timestamp, .. } => {
                T0 + i64::from(*timestamp)
            }
            Media::Metadata(_) => T0,
        };
        for output in packager.push(&media, at).unwrap() {
            let is_part = matches!(output, Output::Part(_));
            s.apply(output, at);
            if is_part {
                if let Some((uri, across)) = hinted.take() {
                    // The part the hint named is the one that just arrived.
                    let (name, index) = uri.trim_end_matches(".m4s").split_once('.').unwrap();
                    let name = SegmentName(name.parse().unwrap());
                    let index: usize = index.parse().unwrap();
                    assert!(matches!(s.part(name, index), PartLookup::Ready(_)), "{uri}");
                    checked_parts += 1;
                    checked_boundaries += usize::from(across);
                }
            }
            let (playlist, _) = s.playlist();
            let text = std::str::from_utf8(&playlist).unwrap();
            if let Some(line) = text.lines().find(|l| l.starts_with("#EXT-X-PRELOAD-HINT")) {
                let uri = line.split("URI=\"").nth(1).unwrap().trim_end_matches('"');
                let (name, index) = uri.trim_end_matches(".m4s").split_once('.').unwrap();
                let name = SegmentName(name.parse().unwrap());
                let index: usize = index.parse().unwrap();
                assert_eq!(s.part(name, index), PartLookup::Hinted, "{uri}");
                hinted = Some((uri.to_string(), index == 0));
            }
        }
    }
    assert!(
        checked_parts >= 12,
        "{checked_parts}: about three parts a second over 5 s"
    );
    assert_eq!(
        checked_boundaries, 2,
        "the first part of each later segment was hinted"
    );
    assert_eq!(s.part(SegmentName(1), 0), PartLookup::Missing);
}

#[test]
fn init_sections_no_segment_needs_are_forgotten_after_the_grace() {
    let mut s = state();
    s.begin_publish();
    let part = |first: bool, at: i64| {
        Output::Part(Part {
            data: Bytes::from_static(b"moof+mdat"),
            duration_us: 300_000,
            independent: first,
            first,
            segment_start_wall_ms: at,
        })
    };
    let end = |at: i64| {
        Output::SegmentEnd(SegmentEnd {
            duration_us: 300_000,
            start_wall_ms: at,
            discontinuity: true,
            parts: 1,
        })
    };
    // A publisher that changes its configuration before every segment, 50 times.
    let mut effects = Vec::new();
    for i in 0..50 {
        let at = T0 + i * 300;
        effects.extend(s.apply(Output::Init(Bytes::from(vec![i as u8; 100])), at));
        effects.extend(s.apply(part(true, at), at));
        effects.extend(s.apply(end(at), at));
        effects.extend(s.tidy(at));
    }
    let later = T0 + 50 * 300 + 12_001;
    effects.extend(s.tidy(later));
    let deleted = (effects.iter())
        .filter(|e| matches!(e, LlEffect::DeleteInit { .. }))
        .count();
    // The window lists 6 segments, each with its own init section; the rest are gone.
    assert_eq!(s.inits.len(), 6, "{:?}", s.inits.keys());
    assert_eq!(deleted, 44);
    // Every listed segment's init section is still served.
    let (playlist, _) = s.playlist();
    for line in std::str::from_utf8(&playlist).unwrap().lines() {
        if let Some(uri) = line.strip_prefix("#EXT-X-MAP:URI=\"init") {
            let id: u64 = uri.trim_end_matches(".mp4\"").parse().unwrap();
            assert!(s.init_bytes(id).is_some(), "{line}");
        }
    }
}

#[test]
fn a_complete_segment_is_held_once_its_parts_are_views_into_it() {
    let mut s = state();
    publish(&mut s, 5, T0);
    let (playlist, _) = s.playlist();
    let text = std::str::from_utf8(&playlist).unwrap().to_string();
    let mut checked = 0;
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && l.ends_with(".m4s"))
    {
        let name = SegmentName(line.trim_end_matches(".m4s").parse().unwrap());
        let whole = s.segment_bytes(name).unwrap();
        let range = whole.as_ptr() as usize..whole.as_ptr() as usize + whole.len();
        let mut index = 0;
        let mut joined = Vec::new();
        while let Some(part) = s.part_bytes(name, index) {
            assert!(
                range.contains(&(part.as_ptr() as usize)),
                "part {index} is a view"
            );
            joined.extend_from_slice(&part);
            index += 1;
        }
        assert!(index > 0);
        assert_eq!(joined, whole.to_vec());
        checked += 1;
    }
    assert_eq!(checked, 3);
    // Memory counts each complete segment once.
    let wholes: usize = (text.lines())
        .filter(|l| !l.starts_with('#') && l.ends_with(".m4s"))
        .map(|l| {
            s.segment_bytes(SegmentName(l.trim_end_matches(".m4s").parse().unwrap()))
                .unwrap()
                .len()
        })
        .sum();
    assert!(
        s.bytes_in_memory() < wholes + 200_000,
        "{} vs {wholes}",
        s.bytes_in_memory()
    );
}

/// A private stream: each part decrypts alone under its segment's key and IV (as hls.js reads
/// low-latency parts), the whole segment decrypts as one stream to its parts' plaintext, nothing
/// held is plaintext, and the playlist names the key before the parts with the init in the clear.
#[test]
fn encrypted_parts_and_segments_each_decrypt_alone() {
    use aes::cipher::{block_padding::Pkcs7, BlockDecryptMut, KeyIvInit};
    type Decryptor = cbc::Decryptor<aes::Aes128>;
    let decrypt = |key: &[u8; 16], iv: &[u8; 16], data: &[u8]| {
        Decryptor::new(key.into(), iv.into())
            .decrypt_padded_vec_mut::<Pkcs7>(data)
            .expect("valid padding")
    };
    let media_key = MediaKey {
        id: 77,
        key: [0x5a; 16],
        salt: 0x0102_0304_0506_0708,
    };
    let mut s = state();
    s.set_next_key(Some(media_key));
    let (effects, outputs) = publish(&mut s, 5, T0);
    let plain_parts: Vec<Bytes> = (outputs.iter())
        .filter_map(|o| match o {
            Output::Part(p) => Some(p.data.clone()),
            _ => None,
        })
        .collect();
    let written: Vec<(SegmentName, Bytes)> = (effects.iter())
        .filter_map(|e| match e {
            LlEffect::WriteSegment { name, bytes, .. } => Some((*name, bytes.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(written.len(), 3);
    let mut at = 0;
    let mut held_parts = 0;
    for (name, whole) in &written {
        let seg = media_key.for_segment(name.0);
        let mut plain_whole = Vec::new();
        let mut i = 0;
        while let Some(part) = s.part_bytes(*name, i) {
            let plain = decrypt(&seg.key, &seg.tag.iv, &part);
            assert_eq!(plain, plain_parts[at + i].to_vec(), "part {name}.{i}");
            assert_ne!(&part[..], &plain_parts[at + i][..]);
            plain_whole.extend_from_slice(&plain);
            i += 1;
        }
        held_parts += i;
        at += i;
        assert!(i > 0);
        assert_eq!(decrypt(&seg.key, &seg.tag.iv, whole), plain_whole, "{name}");
        assert!(
            !whole.windows(4).any(|w| w == b"moof"),
            "no box visible in ciphertext"
        );
    }
    assert!(held_parts >= 15);
    let (playlist, _) = s.playlist();
    let text = String::from_utf8(playlist.to_vec()).unwrap();
    let map = text.find("#EXT-X-MAP").unwrap();
    let first_key = text
        .find("#EXT-X-KEY:METHOD=AES-128,URI=\"key/77.key\",IV=0X0102030405060708")
        .unwrap();
    assert!(
        map < first_key,
        "the init section is before any key:\n{text}"
    );
    let keys = text.matches("#EXT-X-KEY:").count();
    let segments = text.matches("#EXT-X-PROGRAM-DATE-TIME").count();
    assert_eq!(
        keys, segments,
        "one key line per segment (its own IV):\n{text}"
    );
    // The init section stays in the clear: it has no media.
    let init = (effects.iter()).find_map(|e| match e {
        LlEffect::WriteInit { bytes, .. } => Some(bytes.clone()),
        _ => None,
    });
    assert!(init.unwrap().windows(4).any(|w| w == b"moov"));
}

#[test]
fn segments_are_listed_after_parts() {
    let mut s = state();
    assert!(!s.has_parts() && !s.has_segments());
    let (_, outputs) = publish(&mut state(), 1, T0);
    let first_part = outputs
        .into_iter()
        .find(|o| matches!(o, Output::Part(_)))
        .unwrap();
    // An init section first, as the packager sends one.
    let (_, all) = publish(&mut state(), 1, T0);
    for o in all
        .into_iter()
        .take_while(|o| !matches!(o, Output::Part(_)))
    {
        s.apply(o, T0);
    }
    s.apply(first_part, T0);
    assert!(
        s.has_parts() && !s.has_segments(),
        "a part alone is not a segment"
    );
    let mut done = state();
    publish(&mut done, 3, T0);
    assert!(done.has_segments());
}
