use super::*;
use mp4_atom::{Any, Decode as _, FourCC};

const RECORD: &[u8] = &[
    0x01, 0x64, 0x00, 0x1f, 0xff, 0xe1, 0x00, 0x04, 0x67, 0x64, 0x00, 0x1f, 0x01, 0x00, 0x03, 0x68,
    0xeb, 0xe3,
];

fn video() -> VideoConfig {
    VideoConfig {
        record: Bytes::from_static(RECORD),
        width: 1280,
        height: 720,
    }
}

fn audio() -> AudioConfig {
    AudioConfig {
        asc: Bytes::from_static(&[0x11, 0x90]),
        sample_rate: 48_000,
        channels: 2,
    }
}

fn sample(duration: u32, offset: i32, sync: bool, data: &'static [u8]) -> Sample {
    Sample {
        duration,
        composition_offset: offset,
        sync,
        data: Bytes::from_static(data),
    }
}

/// Every top-level box of `bytes`, decoded by an independent reader.
fn decode_all(bytes: &[u8]) -> Vec<Any> {
    let mut buf = bytes;
    let mut atoms = Vec::new();
    while !buf.is_empty() {
        atoms.push(Any::decode(&mut buf).expect("a valid box"));
    }
    atoms
}

#[test]
fn a_fragment_is_byte_exact() {
    let v = [sample(3000, 6000, true, &[0, 0, 0, 1, 0x65])];
    let a = [sample(1024, 0, true, &[0x21, 0x22])];
    let bytes = fragment(
        7,
        &[
            Run {
                track: VIDEO_TRACK,
                base_decode_time: 90_000,
                samples: &v,
            },
            Run {
                track: AUDIO_TRACK,
                base_decode_time: 48_000,
                samples: &a,
            },
        ],
    );
    #[rustfmt::skip]
    let expected: &[u8] = &[
        // moof: 8 + mfhd 16 + video traf (8+16+20+20+16 = 80) + audio traf (8+16+20+20+8 = 72)
        0, 0, 0, 176, b'm', b'o', b'o', b'f',
        0, 0, 0, 16, b'm', b'f', b'h', b'd', 0, 0, 0, 0, 0, 0, 0, 7,
        0, 0, 0, 80, b't', b'r', b'a', b'f',
        0, 0, 0, 16, b't', b'f', b'h', b'd', 0, 2, 0, 0, 0, 0, 0, 1,
        0, 0, 0, 20, b't', b'f', b'd', b't', 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0x5f, 0x90,
        0, 0, 0, 36, b't', b'r', b'u', b'n', 1, 0, 0x0f, 0x01, 0, 0, 0, 1,
        0, 0, 0, 184, // data offset: moof 176 + mdat header 8
        0, 0, 0x0b, 0xb8, 0, 0, 0, 5, 0x02, 0, 0, 0, 0, 0, 0x17, 0x70,
        0, 0, 0, 72, b't', b'r', b'a', b'f',
        0, 0, 0, 16, b't', b'f', b'h', b'd', 0, 2, 0, 0, 0, 0, 0, 2,
        0, 0, 0, 20, b't', b'f', b'd', b't', 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xbb, 0x80,
        0, 0, 0, 28, b't', b'r', b'u', b'n', 0, 0, 0x03, 0x01, 0, 0, 0, 1,
        0, 0, 0, 189, // after the video sample's 5 bytes
        0, 0, 0x04, 0, 0, 0, 0, 2,
        0, 0, 0, 15, b'm', b'd', b'a', b't', 0, 0, 0, 1, 0x65, 0x21, 0x22,
    ];
    assert_eq!(&bytes[..], expected);
}

#[test]
fn an_independent_reader_sees_the_fragment_as_written() {
    let v = [
        sample(3000, 3000, true, &[0, 0, 0, 2, 0x65, 0x88]),
        sample(3000, -3000, false, &[0, 0, 0, 1, 0x41]),
    ];
    let a = [
        sample(1024, 0, true, &[1, 2, 3]),
        sample(1024, 0, true, &[4]),
    ];
    let runs = [
        Run {
            track: VIDEO_TRACK,
            base_decode_time: 1 << 33,
            samples: &v,
        },
        Run {
            track: AUDIO_TRACK,
            base_decode_time: 5,
            samples: &a,
        },
    ];
    let bytes = fragment(1, &runs);
    let atoms = decode_all(&bytes);
    let [Any::Moof(moof), Any::Mdat(mdat)] = &atoms[..] else {
        panic!("moof then mdat: {atoms:?}");
    };
    assert_eq!(moof.mfhd.sequence_number, 1);
    assert_eq!(moof.traf.len(), 2);
    let mut payload = Vec::new();
    for (traf, run) in moof.traf.iter().zip(&runs) {
        assert_eq!(traf.tfhd.track_id, run.track);
        assert!(traf.tfhd.default_base_is_moof);
        assert_eq!(
            traf.tfdt.as_ref().unwrap().base_media_decode_time,
            run.base_decode_time
        );
        let trun = &traf.trun[0];
        let offset = usize::try_from(trun.data_offset.unwrap()).unwrap();
        for (entry, s) in trun.entries.iter().zip(run.samples) {
            assert_eq!(entry.duration, Some(s.duration));
            assert_eq!(entry.size, Some(s.data.len() as u32));
            if run.track == VIDEO_TRACK {
                assert_eq!(entry.cts, Some(s.composition_offset));
                assert_eq!(entry.flags.unwrap() & 0x0001_0000 == 0, s.sync);
            }
        }
        // The offset points at this run's bytes in the mdat.
        let len: usize = run.samples.iter().map(|s| s.data.len()).sum();
        payload.extend_from_slice(&bytes[offset..offset + len]);
    }
    let written: Vec<u8> = (runs.iter())
        .flat_map(|r| r.samples.iter())
        .flat_map(|s| s.data.iter().copied())
        .collect();
    assert_eq!(payload, written);
    assert_eq!(mdat.data, written);
}

#[test]
fn the_init_section_describes_each_track() {
    let bytes = init_section(Some(&video()), Some(&audio()));
    let atoms = decode_all(&bytes);
    let [Any::Ftyp(ftyp), Any::Moov(moov)] = &atoms[..] else {
        panic!("ftyp then moov: {atoms:?}");
    };
    assert_eq!(ftyp.major_brand, FourCC::new(b"iso6"));
    assert!(ftyp.compatible_brands.contains(&FourCC::new(b"cmfc")));
    assert_eq!(moov.trak.len(), 2);
    let (v, a) = (&moov.trak[0], &moov.trak[1]);
    assert_eq!(v.tkhd.track_id, VIDEO_TRACK);
    assert_eq!(v.mdia.mdhd.timescale, VIDEO_TIMESCALE);
    assert_eq!(v.mdia.hdlr.handler, FourCC::new(b"vide"));
    let mp4_atom::Codec::Avc1(avc1) = &v.mdia.minf.stbl.stsd.codecs[0] else {
        panic!("avc1");
    };
    assert_eq!((avc1.visual.width, avc1.visual.height), (1280, 720));
    assert_eq!(avc1.visual.data_reference_index, 1);
    assert_eq!(avc1.avcc.avc_profile_indication, 0x64);
    assert_eq!(
        avc1.avcc.sequence_parameter_sets,
        vec![RECORD[8..12].to_vec()]
    );
    assert_eq!(a.tkhd.track_id, AUDIO_TRACK);
    assert_eq!(a.mdia.mdhd.timescale, 48_000);
    assert_eq!(a.mdia.hdlr.handler, FourCC::new(b"soun"));
    let mp4_atom::Codec::Mp4a(mp4a) = &a.mdia.minf.stbl.stsd.codecs[0] else {
        panic!("mp4a");
    };
    assert_eq!(mp4a.audio.channel_count, 2);
    let config = &mp4a.esds.es_desc.dec_config;
    assert_eq!(config.object_type_indication, 0x40);
    assert_eq!(
        (config.dec_specific.profile, config.dec_specific.freq_index),
        (2, 3),
        "AAC-LC at 48 kHz"
    );
    let mvex = moov.mvex.as_ref().expect("mvex: the file is fragmented");
    let tracks: Vec<u32> = mvex.trex.iter().map(|t| t.track_id).collect();
    assert_eq!(tracks, vec![VIDEO_TRACK, AUDIO_TRACK]);
}

#[test]
fn one_track_alone_makes_a_one_track_init_section() {
    for (v, a, handler) in [
        (Some(video()), None, b"vide"),
        (None, Some(audio()), b"soun"),
    ] {
        let bytes = init_section(v.as_ref(), a.as_ref());
        let atoms = decode_all(&bytes);
        let Any::Moov(moov) = &atoms[1] else {
            panic!("moov");
        };
        assert_eq!(moov.trak.len(), 1);
        assert_eq!(moov.trak[0].mdia.hdlr.handler, FourCC::new(handler));
        assert_eq!(moov.mvex.as_ref().unwrap().trex.len(), 1);
    }
}

#[test]
fn the_whole_audio_config_is_kept() {
    // HE-AAC with explicit SBR signalling: five bytes, more than the three fields of a plain one.
    let asc = Bytes::from_static(&[0x2b, 0x92, 0x08, 0x00, 0x00]);
    let bytes = init_section(
        None,
        Some(&AudioConfig {
            asc: asc.clone(),
            sample_rate: 24_000,
            channels: 2,
        }),
    );
    let at = bytes
        .windows(asc.len() + 2)
        .position(|w| w[0] == 0x05 && usize::from(w[1]) == asc.len() && w[2..] == asc[..]);
    assert!(at.is_some(), "DecoderSpecificInfo carries the ASC whole");
}
