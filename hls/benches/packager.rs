//! The packagers alone on one core: FLV payloads of a 2.5 Mb/s 720p30 H.264 + AAC stream in,
//! MPEG-TS segments (the TS packager) or CMAF parts of at most 333 ms (the low-latency packager)
//! out. The peer measured in the same run is a plain copy of the same payload bytes into one
//! buffer: the floor any packager that writes its output once must pay.
//!
//! `cargo bench -p boltstream-hls --bench packager`

use bytes::{BufMut, BytesMut};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};

use boltstream_hls::cmaf::{Output, PartPackager};
use boltstream_hls::media::Media;
use boltstream_hls::packager::Packager;
use boltstream_hls::synthetic;

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
    let input = synthetic::stream(60);
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
    group.bench_function("boltstream_cmaf_part_packager", |b| {
        b.iter(|| {
            let mut p = PartPackager::new(2000, 333);
            let mut out = 0usize;
            let mut count = |outputs: Vec<Output>| {
                for o in outputs {
                    if let Output::Part(part) = o {
                        out += part.data.len();
                    }
                }
            };
            for (i, m) in input.iter().enumerate() {
                count(p.push(m, i as i64).expect("valid input"));
            }
            count(p.finish());
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
