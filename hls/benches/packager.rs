//! The packager alone on one core: FLV payloads of a 2.5 Mb/s 720p30 H.264 + AAC stream in, MPEG-TS
//! segments out. The peer measured in the same run is a plain copy of the same payload bytes into
//! one buffer: the floor any packager that writes its output once must pay.
//!
//! `cargo bench -p boltstream-hls --bench packager`

use bytes::{BufMut, Bytes, BytesMut};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};

use boltstream_hls::media::{Media, Metadata};
use boltstream_hls::packager::Packager;

const RECORD: &[u8] = &[
    0x01, 0x64, 0x00, 0x1f, 0xff, 0xe1, 0x00, 0x04, 0x67, 0x64, 0x00, 0x1f, 0x01, 0x00, 0x03, 0x68,
    0xeb, 0xe3,
];

/// 60 s of media shaped like the benchmark clip: 2.5 Mb/s video (IDR every 2 s, 6x a P-frame),
/// 128 kb/s AAC at 48 kHz.
fn stream() -> Vec<Media> {
    let mut out = vec![Media::Metadata(Metadata {
        video_codec_id: Some(7),
        audio_codec_id: Some(10),
        ..Metadata::default()
    })];
    let mut cfg = vec![0x17, 0x00, 0, 0, 0];
    cfg.extend_from_slice(RECORD);
    out.push(Media::Video {
        timestamp: 0,
        data: Bytes::from(cfg),
    });
    out.push(Media::Audio {
        timestamp: 0,
        data: Bytes::from_static(&[0xaf, 0x00, 0x11, 0x90]),
    });
    let video_bytes_per_gop = 2_500_000 / 8 * 2;
    let (idr, p) = (video_bytes_per_gop * 6 / 65, video_bytes_per_gop / 65);
    let mut audio_ms = 0.0f64;
    for f in 0..(60 * 30) {
        let ms = f * 1000 / 30;
        let key = f % 60 == 0;
        let size = if key { idr } else { p };
        let mut body = Vec::with_capacity(size + 9);
        body.extend_from_slice(&[
            if key { 0x17 } else { 0x27 },
            0x01,
            0,
            0,
            if f % 3 == 0 { 0 } else { 33 },
        ]);
        body.extend_from_slice(&(size as u32).to_be_bytes());
        body.push(if key { 0x65 } else { 0x41 });
        body.resize(size + 9, 0x5a);
        out.push(Media::Video {
            timestamp: ms as u32,
            data: Bytes::from(body),
        });
        while audio_ms <= f64::from(ms) {
            let mut a = vec![0xaf, 0x01];
            a.resize(2 + 340, 0x21);
            out.push(Media::Audio {
                timestamp: audio_ms as u32,
                data: Bytes::from(a),
            });
            audio_ms += 1024.0 * 1000.0 / 48000.0;
        }
    }
    out
}

fn media_bytes(stream: &[Media]) -> usize {
    stream
        .iter()
        .map(|m| match m {
            Media::Video { data, .. } | Media::Audio { data, .. } => data.len(),
            Media::Metadata(_) => 0,
        })
        .sum()
}

fn bench(c: &mut Criterion) {
    let input = stream();
    let bytes = media_bytes(&input);
    let mut group = c.benchmark_group("package_60s_2500kbps");
    group.throughput(Throughput::Bytes(bytes as u64));
    group.sample_size(30);
    group.bench_function("boltstream_packager", |b| {
        b.iter(|| {
            let mut p = Packager::new(2000);
            let mut out = 0usize;
            for (i, m) in input.iter().enumerate() {
                if let Some(seg) = p.push(m, i as i64).expect("valid input") {
                    out += seg.data.len();
                }
            }
            out += p.finish().map_or(0, |s| s.data.len());
            black_box(out)
        })
    });
    group.bench_function("peer_memcpy_of_payloads", |b| {
        b.iter(|| {
            let mut buf = BytesMut::with_capacity(bytes + bytes / 8);
            for m in &input {
                if let Media::Video { data, .. } | Media::Audio { data, .. } = m {
                    buf.put_slice(data);
                }
            }
            black_box(buf.len())
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
