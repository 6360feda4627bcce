//! H.264 in FLV (AVCC: length-prefixed NAL units plus an AVCDecoderConfigurationRecord) to what
//! MPEG-TS needs (Annex B: start codes, an access unit delimiter per access unit, SPS/PPS before
//! every IDR so each segment decodes on its own).

use bytes::{BufMut, Bytes, BytesMut};

use crate::media::MediaError;

/// Annex B start code.
pub const START_CODE: &[u8] = &[0, 0, 0, 1];
/// Start code + access unit delimiter (primary_pic_type 7: any slice type).
pub const AUD: &[u8] = &[0, 0, 0, 1, 0x09, 0xf0];
const NAL_IDR: u8 = 5;
const NAL_SPS: u8 = 7;
const NAL_PPS: u8 = 8;
const NAL_AUD: u8 = 9;

/// A parsed AVCDecoderConfigurationRecord.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AvcConfig {
    /// Bytes of each NAL length prefix (1, 2 or 4).
    pub nal_length_size: usize,
    /// Every SPS and PPS, each behind a start code: inserted before IDRs as one slice.
    pub parameter_sets: Bytes,
    /// profile_idc, from the record.
    pub profile: u8,
    /// level_idc, from the record.
    pub level: u8,
}

impl AvcConfig {
    /// Parses the record (ISO/IEC 14496-15 §5.2.4.1).
    pub fn parse(record: &[u8]) -> Result<Self, MediaError> {
        let bad = MediaError::Malformed("invalid AVCDecoderConfigurationRecord");
        if record.len() < 7 || record[0] != 1 {
            return Err(bad);
        }
        let nal_length_size = usize::from(record[4] & 0x03) + 1;
        if nal_length_size == 3 {
            return Err(bad);
        }
        let mut sets = BytesMut::new();
        let mut pos = 5;
        let mut sps_count = 0;
        for (count_mask, expect_type) in [(0x1f, NAL_SPS), (0xff, NAL_PPS)] {
            let count = *record
                .get(pos)
                .ok_or(MediaError::Malformed("truncated AVC record"))?
                & count_mask;
            pos += 1;
            for _ in 0..count {
                let len_bytes = record
                    .get(pos..pos + 2)
                    .ok_or(MediaError::Malformed("truncated AVC record"))?;
                let len = usize::from(u16::from_be_bytes([len_bytes[0], len_bytes[1]]));
                pos += 2;
                let nal = record
                    .get(pos..pos + len)
                    .ok_or(MediaError::Malformed("truncated AVC record"))?;
                if nal.first().map(|b| b & 0x1f) != Some(expect_type) {
                    return Err(MediaError::Malformed(
                        "AVC record holds a NAL of the wrong type",
                    ));
                }
                pos += len;
                sets.put_slice(START_CODE);
                sets.put_slice(nal);
                if expect_type == NAL_SPS {
                    sps_count += 1;
                }
            }
        }
        if sps_count == 0 {
            return Err(MediaError::Malformed("AVC record without SPS"));
        }
        Ok(Self {
            nal_length_size,
            parameter_sets: sets.freeze(),
            profile: record[1],
            level: record[3],
        })
    }
}

/// Splits an AVCC access unit into NAL units, validating every length.
pub fn nal_units(data: &[u8], nal_length_size: usize) -> Result<Vec<&[u8]>, MediaError> {
    let mut nals = Vec::with_capacity(4);
    let mut pos = 0;
    while pos < data.len() {
        let header = data
            .get(pos..pos + nal_length_size)
            .ok_or(MediaError::Malformed("truncated NAL length"))?;
        let len = header
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        pos += nal_length_size;
        let nal = data
            .get(pos..pos + len)
            .ok_or(MediaError::Malformed("NAL length beyond the frame"))?;
        if !nal.is_empty() {
            nals.push(nal);
        }
        pos += len;
    }
    Ok(nals)
}

/// The Annex B pieces of one access unit, in order, as slices to be copied once into TS packets:
/// AUD, then SPS/PPS when the unit holds an IDR and lacks them, then each NAL behind a start code.
/// AUDs already in the input are dropped (one per access unit).
pub fn annex_b_parts<'a>(nals: &[&'a [u8]], config: &'a AvcConfig) -> (Vec<&'a [u8]>, bool) {
    let types = || nals.iter().map(|n| n[0] & 0x1f);
    let idr = types().any(|t| t == NAL_IDR);
    let has_sps = types().any(|t| t == NAL_SPS);
    let mut parts = Vec::with_capacity(2 + 2 * nals.len());
    parts.push(AUD);
    if idr && !has_sps {
        parts.push(&config.parameter_sets[..]);
    }
    for nal in nals {
        if nal[0] & 0x1f == NAL_AUD {
            continue;
        }
        parts.push(START_CODE);
        parts.push(nal);
    }
    (parts, idr)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An avcC as ffmpeg's libx264 writes it for 1280x720 High@3.1 (SPS/PPS shortened).
    const RECORD: &[u8] = &[
        0x01, 0x64, 0x00, 0x1f, 0xff, 0xe1, 0x00, 0x04, 0x67, 0x64, 0x00, 0x1f, 0x01, 0x00, 0x03,
        0x68, 0xeb, 0xe3,
    ];

    #[test]
    fn parses_the_record() {
        let c = AvcConfig::parse(RECORD).unwrap();
        assert_eq!(c.nal_length_size, 4);
        assert_eq!((c.profile, c.level), (0x64, 0x1f));
        assert_eq!(
            &c.parameter_sets[..],
            &[0, 0, 0, 1, 0x67, 0x64, 0x00, 0x1f, 0, 0, 0, 1, 0x68, 0xeb, 0xe3]
        );
    }

    #[test]
    fn refuses_broken_records() {
        assert!(AvcConfig::parse(&[]).is_err());
        assert!(AvcConfig::parse(&RECORD[..10]).is_err());
        let mut three = RECORD.to_vec();
        three[4] = 0xfe; // length size 3
        assert!(AvcConfig::parse(&three).is_err());
        let mut wrong = RECORD.to_vec();
        wrong[8] = 0x68; // PPS where the SPS should be
        assert!(AvcConfig::parse(&wrong).is_err());
        let mut none = RECORD.to_vec();
        none[5] = 0xe0;
        assert!(AvcConfig::parse(&none[..6]).is_err());
    }

    #[test]
    fn avcc_to_annex_b_with_aud_and_parameter_sets_before_idr() {
        let c = AvcConfig::parse(RECORD).unwrap();
        let frame = [
            0, 0, 0, 2, 0x09, 0xf0, 0, 0, 0, 3, 0x65, 0x88, 0x84, 0, 0, 0, 2, 0x06, 0x05,
        ];
        let nals = nal_units(&frame, 4).unwrap();
        assert_eq!(nals.len(), 3);
        let (parts, idr) = annex_b_parts(&nals, &c);
        assert!(idr);
        let joined: Vec<u8> = parts.concat();
        let mut want = vec![0, 0, 0, 1, 0x09, 0xf0];
        want.extend_from_slice(&c.parameter_sets);
        want.extend_from_slice(&[0, 0, 0, 1, 0x65, 0x88, 0x84, 0, 0, 0, 1, 0x06, 0x05]);
        assert_eq!(joined, want);

        let p_frame = [0, 0, 0, 2, 0x41, 0x9a];
        let nals = nal_units(&p_frame, 4).unwrap();
        let (parts, idr) = annex_b_parts(&nals, &c);
        assert!(!idr);
        assert_eq!(
            parts.concat(),
            vec![0, 0, 0, 1, 0x09, 0xf0, 0, 0, 0, 1, 0x41, 0x9a]
        );
    }

    #[test]
    fn bad_lengths_are_errors() {
        assert!(nal_units(&[0, 0, 0, 9, 1, 2], 4).is_err());
        assert!(nal_units(&[0, 0], 4).is_err());
        assert_eq!(
            nal_units(&[0, 2, 0x41, 0x9a], 2).unwrap(),
            vec![&[0x41, 0x9a][..]]
        );
    }
}
