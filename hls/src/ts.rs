//! MPEG-TS (ISO/IEC 13818-1) muxing for HLS: PAT/PMT, PES packetisation with per-PID continuity
//! counters, PCR and adaptation-field stuffing. Written by hand because it is small and every byte
//! matters to players; `mpeg2ts` only models packets. Sans-IO: appends to a caller's buffer.

use bytes::{BufMut, BytesMut};

/// Bytes per TS packet.
pub const PACKET_LEN: usize = 188;
/// PID of the program map table.
pub const PMT_PID: u16 = 0x1000;
/// PID of the H.264 elementary stream.
pub const VIDEO_PID: u16 = 0x100;
/// PID of the AAC elementary stream.
pub const AUDIO_PID: u16 = 0x101;
const STREAM_TYPE_H264: u8 = 0x1b;
const STREAM_TYPE_AAC_ADTS: u8 = 0x0f;
const PAYLOAD_PER_PACKET: usize = PACKET_LEN - 4;
/// 33-bit timestamps wrap here.
pub const PTS_WRAP: u64 = 1 << 33;

/// CRC-32/MPEG-2 (poly 0x04C11DB7, init all ones, no reflection, no final xor), for PSI sections.
const MPEG2: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_MPEG_2);

/// The CRC of a PSI section.
pub fn crc32_mpeg2(data: &[u8]) -> u32 {
    MPEG2.checksum(data)
}

/// Which elementary streams the program carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tracks {
    /// H.264 on [`VIDEO_PID`].
    pub video: bool,
    /// AAC on [`AUDIO_PID`].
    pub audio: bool,
}

impl Tracks {
    /// The PCR rides on video when there is video, else on audio.
    pub fn pcr_pid(self) -> u16 {
        if self.video {
            VIDEO_PID
        } else {
            AUDIO_PID
        }
    }
}

/// Options for one PES packet.
#[derive(Clone, Copy, Debug)]
pub struct Pes {
    /// Elementary PID.
    pub pid: u16,
    /// PES stream id (0xE0 video, 0xC0 audio).
    pub stream_id: u8,
    /// Presentation time, 90 kHz.
    pub pts: u64,
    /// Decode time, 90 kHz; written only when it differs from `pts`.
    pub dts: u64,
    /// Program clock reference to carry (27 MHz base/300 form: 90 kHz value), if any.
    pub pcr: Option<u64>,
    /// Marks a random access point (IDR) in the adaptation field.
    pub random_access: bool,
}

/// The muxer's only state: continuity counters, which must run on across segments per PID.
#[derive(Clone, Debug, Default)]
pub struct TsMuxer {
    cc_pat: u8,
    cc_pmt: u8,
    cc_video: u8,
    cc_audio: u8,
}

impl TsMuxer {
    fn next_cc(&mut self, pid: u16) -> u8 {
        let cc = match pid {
            0 => &mut self.cc_pat,
            PMT_PID => &mut self.cc_pmt,
            VIDEO_PID => &mut self.cc_video,
            _ => &mut self.cc_audio,
        };
        let now = *cc;
        *cc = (*cc + 1) & 0x0f;
        now
    }

    /// Writes a PAT and a PMT (each one packet); every segment starts with them so it decodes alone.
    pub fn write_tables(&mut self, out: &mut BytesMut, tracks: Tracks) {
        let pat = [
            0x00, // table_id
            0xb0,
            0x0d, // section_syntax_indicator, reserved, section_length 13
            0x00,
            0x01, // transport_stream_id
            0xc1,
            0x00,
            0x00, // version 0, current, section 0/0
            0x00,
            0x01, // program 1
            0xe0 | (PMT_PID >> 8) as u8,
            PMT_PID as u8,
        ];
        self.write_section(out, 0, &pat);

        let pcr = tracks.pcr_pid();
        let mut pmt = Vec::with_capacity(32);
        let stream_count = usize::from(tracks.video) + usize::from(tracks.audio);
        let section_len = 9 + 5 * stream_count + 4;
        pmt.extend_from_slice(&[
            0x02,
            0xb0 | (section_len >> 8) as u8,
            section_len as u8,
            0x00,
            0x01,
            0xc1,
            0x00,
            0x00,
        ]);
        pmt.extend_from_slice(&[0xe0 | (pcr >> 8) as u8, pcr as u8, 0xf0, 0x00]);
        if tracks.video {
            pmt.extend_from_slice(&[
                STREAM_TYPE_H264,
                0xe0 | (VIDEO_PID >> 8) as u8,
                VIDEO_PID as u8,
                0xf0,
                0x00,
            ]);
        }
        if tracks.audio {
            pmt.extend_from_slice(&[
                STREAM_TYPE_AAC_ADTS,
                0xe0 | (AUDIO_PID >> 8) as u8,
                AUDIO_PID as u8,
                0xf0,
                0x00,
            ]);
        }
        self.write_section(out, PMT_PID, &pmt);
    }

    fn write_section(&mut self, out: &mut BytesMut, pid: u16, section: &[u8]) {
        let start = out.len();
        out.put_u8(0x47);
        out.put_u8(0x40 | (pid >> 8) as u8);
        out.put_u8(pid as u8);
        out.put_u8(0x10 | self.next_cc(pid));
        out.put_u8(0x00); // pointer_field
        out.put_slice(section);
        out.put_u32(crc32_mpeg2(section));
        let used = out.len() - start;
        out.put_bytes(0xff, PACKET_LEN - used);
    }

    /// Writes one PES packet whose payload is the concatenation of `parts`, split into TS packets.
    pub fn write_pes(&mut self, out: &mut BytesMut, pes: &Pes, parts: &[&[u8]]) {
        let payload_len: usize = parts.iter().map(|p| p.len()).sum();
        let with_dts = pes.dts != pes.pts;
        let header_data_len = if with_dts { 10 } else { 5 };
        let mut header = [0u8; 19];
        header[..4].copy_from_slice(&[0x00, 0x00, 0x01, pes.stream_id]);
        let pes_len = 3 + header_data_len + payload_len;
        // Only video may use 0 (unbounded); audio PES are always small enough to state the length.
        let stated = if pes_len > 0xffff || pes.stream_id & 0xf0 == 0xe0 {
            0
        } else {
            pes_len
        };
        header[4] = (stated >> 8) as u8;
        header[5] = stated as u8;
        header[6] = 0x84; // marker bits, data_alignment_indicator
        header[7] = if with_dts { 0xc0 } else { 0x80 };
        header[8] = header_data_len as u8;
        write_timestamp(
            &mut header[9..14],
            if with_dts { 0x3 } else { 0x2 },
            pes.pts,
        );
        if with_dts {
            write_timestamp(&mut header[14..19], 0x1, pes.dts);
        }
        let header = &header[..9 + header_data_len];

        let mut cursor = Cursor {
            parts: PartsIter {
                head: Some(header),
                rest: parts,
            },
            remaining: header.len() + payload_len,
        };
        let mut first = true;
        while cursor.remaining > 0 {
            let pcr = if first { pes.pcr } else { None };
            let random_access = first && pes.random_access;
            self.write_packet(out, pes.pid, first, pcr, random_access, &mut cursor);
            first = false;
        }
    }

    fn write_packet(
        &mut self,
        out: &mut BytesMut,
        pid: u16,
        start: bool,
        pcr: Option<u64>,
        random_access: bool,
        cursor: &mut Cursor<'_>,
    ) {
        let flags_needed = pcr.is_some() || random_access;
        let af_fixed = if flags_needed {
            2 + if pcr.is_some() { 6 } else { 0 }
        } else {
            0
        };
        let space = PAYLOAD_PER_PACKET - af_fixed;
        let take = cursor.remaining.min(space);
        let stuffing = space - take;
        let has_af = af_fixed > 0 || stuffing > 0;

        out.put_u8(0x47);
        out.put_u8(if start { 0x40 } else { 0x00 } | (pid >> 8) as u8);
        out.put_u8(pid as u8);
        out.put_u8(if has_af { 0x30 } else { 0x10 } | self.next_cc(pid));
        if has_af {
            if af_fixed == 0 {
                // Stuffing only: a lone length byte for one byte, else length + empty flags + 0xFF.
                out.put_u8((stuffing - 1) as u8);
                if stuffing > 1 {
                    out.put_u8(0x00);
                    out.put_bytes(0xff, stuffing - 2);
                }
            } else {
                out.put_u8((af_fixed - 1 + stuffing) as u8);
                out.put_u8(
                    if random_access { 0x40 } else { 0 } | if pcr.is_some() { 0x10 } else { 0 },
                );
                if let Some(pcr) = pcr {
                    let base = pcr % PTS_WRAP;
                    out.put_u8((base >> 25) as u8);
                    out.put_u8((base >> 17) as u8);
                    out.put_u8((base >> 9) as u8);
                    out.put_u8((base >> 1) as u8);
                    out.put_u8(((base & 1) << 7) as u8 | 0x7e);
                    out.put_u8(0x00);
                }
                out.put_bytes(0xff, stuffing);
            }
        }
        cursor.copy_into(out, take);
    }
}

fn write_timestamp(dst: &mut [u8], prefix: u8, ts: u64) {
    let ts = ts % PTS_WRAP;
    dst[0] = (prefix << 4) | (((ts >> 30) & 0x07) as u8) << 1 | 1;
    dst[1] = (ts >> 22) as u8;
    dst[2] = (((ts >> 15) & 0x7f) as u8) << 1 | 1;
    dst[3] = (ts >> 7) as u8;
    dst[4] = ((ts & 0x7f) as u8) << 1 | 1;
}

struct PartsIter<'a> {
    head: Option<&'a [u8]>,
    rest: &'a [&'a [u8]],
}

impl<'a> PartsIter<'a> {
    fn current(&mut self) -> Option<&mut &'a [u8]> {
        loop {
            if self.head.is_some_and(|h| !h.is_empty()) {
                return self.head.as_mut();
            }
            let (first, rest) = self.rest.split_first()?;
            self.head = Some(first);
            self.rest = rest;
        }
    }
}

struct Cursor<'a> {
    parts: PartsIter<'a>,
    remaining: usize,
}

impl Cursor<'_> {
    fn copy_into(&mut self, out: &mut BytesMut, mut n: usize) {
        self.remaining -= n;
        while n > 0 {
            let Some(part) = self.parts.current() else {
                return;
            };
            let k = n.min(part.len());
            out.put_slice(&part[..k]);
            *part = &part[k..];
            n -= k;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_matches_the_standard_check_value() {
        // CRC-32/MPEG-2 check value for "123456789".
        assert_eq!(crc32_mpeg2(b"123456789"), 0x0376_e6e7);
    }

    #[test]
    fn pat_is_byte_exact() {
        let mut out = BytesMut::new();
        TsMuxer::default().write_tables(
            &mut out,
            Tracks {
                video: true,
                audio: true,
            },
        );
        assert_eq!(out.len(), 2 * PACKET_LEN);
        // The PAT ffmpeg writes for the same program layout (program 1 → PMT PID 0x1000).
        assert_eq!(
            &out[..21],
            &[
                0x47, 0x40, 0x00, 0x10, 0x00, 0x00, 0xb0, 0x0d, 0x00, 0x01, 0xc1, 0x00, 0x00, 0x00,
                0x01, 0xf0, 0x00, 0x2a, 0xb1, 0x04, 0xb2
            ]
        );
        assert!(out[21..PACKET_LEN].iter().all(|&b| b == 0xff));
        // PMT: PCR PID 0x100, H.264 on 0x100, AAC on 0x101.
        let pmt = &out[PACKET_LEN..];
        assert_eq!(&pmt[..4], &[0x47, 0x50, 0x00, 0x10]);
        assert_eq!(
            &pmt[5..17],
            &[0x02, 0xb0, 0x17, 0x00, 0x01, 0xc1, 0x00, 0x00, 0xe1, 0x00, 0xf0, 0x00]
        );
        assert_eq!(
            &pmt[17..27],
            &[0x1b, 0xe1, 0x00, 0xf0, 0x00, 0x0f, 0xe1, 0x01, 0xf0, 0x00]
        );
        let crc = crc32_mpeg2(&pmt[5..27]);
        assert_eq!(&pmt[27..31], &crc.to_be_bytes());
    }

    #[test]
    fn pes_packets_are_whole_stuffed_and_counted() {
        let mut mux = TsMuxer::default();
        let mut out = BytesMut::new();
        let payload = vec![0xabu8; 1000];
        let pes = Pes {
            pid: VIDEO_PID,
            stream_id: 0xe0,
            pts: 93_000,
            dts: 90_000,
            pcr: Some(90_000),
            random_access: true,
        };
        mux.write_pes(&mut out, &pes, &[&payload[..300], &payload[300..]]);
        mux.write_pes(&mut out, &pes, &[&payload[..1]]);
        assert_eq!(out.len() % PACKET_LEN, 0);
        let packets: Vec<&[u8]> = out.chunks(PACKET_LEN).collect();
        for (i, p) in packets.iter().enumerate() {
            assert_eq!(p[0], 0x47);
            assert_eq!(p[3] & 0x0f, i as u8 & 0x0f, "continuity counter");
        }
        let first = packets[0];
        assert_eq!(first[1] & 0x40, 0x40, "payload unit start");
        assert_eq!(first[3] & 0x30, 0x30, "adaptation field + payload");
        assert_eq!(first[5] & 0x50, 0x50, "random access + PCR flags");
        // PCR base 90000 → bytes.
        let base = (u64::from(first[6]) << 25)
            | (u64::from(first[7]) << 17)
            | (u64::from(first[8]) << 9)
            | (u64::from(first[9]) << 1)
            | (u64::from(first[10]) >> 7);
        assert_eq!(base, 90_000);
        // Every payload byte arrives, in order, after the PES header.
        let mut body = Vec::new();
        for p in &packets[..packets.len() - 1] {
            let start = if p[3] & 0x20 != 0 {
                5 + usize::from(p[4])
            } else {
                4
            };
            body.extend_from_slice(&p[start..]);
        }
        assert_eq!(&body[..4], &[0, 0, 1, 0xe0]);
        assert_eq!(body[8], 10, "PTS and DTS");
        assert_eq!(&body[19..], &payload[..]);
    }

    #[test]
    fn timestamps_encode_with_markers_and_wrap() {
        let mut b = [0u8; 5];
        write_timestamp(&mut b, 0x2, 0);
        assert_eq!(b, [0x21, 0x00, 0x01, 0x00, 0x01]);
        write_timestamp(&mut b, 0x2, PTS_WRAP + 5);
        let mut c = [0u8; 5];
        write_timestamp(&mut c, 0x2, 5);
        assert_eq!(b, c);
    }

    #[test]
    fn one_byte_of_stuffing_uses_a_lone_length_byte() {
        let mut mux = TsMuxer::default();
        let mut out = BytesMut::new();
        // header 14 bytes (audio, PTS only) + 169 payload = 183 = 184 - 1.
        let payload = vec![1u8; 169];
        let pes = Pes {
            pid: AUDIO_PID,
            stream_id: 0xc0,
            pts: 0,
            dts: 0,
            pcr: None,
            random_access: false,
        };
        mux.write_pes(&mut out, &pes, &[&payload]);
        assert_eq!(out.len(), PACKET_LEN);
        assert_eq!(out[3] & 0x30, 0x30);
        assert_eq!(out[4], 0);
        assert_eq!(&out[5..9], &[0, 0, 1, 0xc0]);
        assert_eq!(u16::from_be_bytes([out[9], out[10]]), 3 + 5 + 169);
    }
}
