//! AAC in FLV (an AudioSpecificConfig, then raw frames) to ADTS, which MPEG-TS players require:
//! every frame gets a 7-byte header carrying profile, sample rate and channels.

use crate::media::MediaError;

const SAMPLE_RATES: [u32; 13] = [
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
];

/// The parts of an AudioSpecificConfig that ADTS needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AacConfig {
    /// Audio object type (2 = AAC-LC).
    pub object_type: u8,
    /// Index into the standard sample-rate table.
    pub sample_rate_index: u8,
    /// Channel configuration (1 = mono, 2 = stereo, ...).
    pub channels: u8,
}

impl AacConfig {
    /// Parses an AudioSpecificConfig (ISO/IEC 14496-3 §1.6.2.1).
    pub fn parse(asc: &[u8]) -> Result<Self, MediaError> {
        if asc.len() < 2 {
            return Err(MediaError::Malformed("AudioSpecificConfig too short"));
        }
        let bits = u32::from(asc[0]) << 8 | u32::from(asc[1]);
        let mut object_type = (bits >> 11) as u8;
        let (sample_rate_index, channels) = if object_type == 31 {
            // Escaped object type: 6 more bits; the rest shifts by 6.
            let wide = u64::from(asc[0]) << 24
                | u64::from(asc[1]) << 16
                | u64::from(*asc.get(2).unwrap_or(&0)) << 8;
            object_type = 32 + ((wide >> 21) & 0x3f) as u8;
            (((wide >> 17) & 0x0f) as u8, ((wide >> 13) & 0x0f) as u8)
        } else {
            (((bits >> 7) & 0x0f) as u8, ((bits >> 3) & 0x0f) as u8)
        };
        if object_type == 0 {
            return Err(MediaError::Malformed("AAC object type 0"));
        }
        if usize::from(sample_rate_index) >= SAMPLE_RATES.len() {
            // Index 15 means an explicit 24-bit rate, which ADTS cannot carry.
            return Err(MediaError::UnsupportedCodec(
                "AAC with an explicit sample rate (not expressible in ADTS)".into(),
            ));
        }
        if channels == 0 || channels > 7 {
            return Err(MediaError::UnsupportedCodec(format!(
                "AAC channel configuration {channels}"
            )));
        }
        Ok(Self {
            object_type,
            sample_rate_index,
            channels,
        })
    }

    /// Sample rate in Hz.
    pub fn sample_rate(&self) -> u32 {
        SAMPLE_RATES[usize::from(self.sample_rate_index)]
    }

    /// The ADTS header for a raw frame of `frame_len` bytes. ADTS has two bits of profile (object
    /// type − 1); HE-AAC (SBR/PS) is signalled implicitly as its AAC-LC core.
    pub fn adts_header(&self, frame_len: usize) -> Result<[u8; 7], MediaError> {
        let total = frame_len + 7;
        if total > 0x1fff {
            return Err(MediaError::Malformed("AAC frame too large for ADTS"));
        }
        let profile = match self.object_type {
            1..=4 => self.object_type - 1,
            _ => 1,
        };
        Ok([
            0xff,
            0xf1,
            (profile << 6) | (self.sample_rate_index << 2) | (self.channels >> 2),
            ((self.channels & 3) << 6) | (total >> 11) as u8,
            (total >> 3) as u8,
            (((total & 7) as u8) << 5) | 0x1f,
            0xfc,
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lc_48k_stereo_and_44k_mono() {
        let c = AacConfig::parse(&[0x11, 0x90]).unwrap();
        assert_eq!(
            c,
            AacConfig {
                object_type: 2,
                sample_rate_index: 3,
                channels: 2
            }
        );
        assert_eq!(c.sample_rate(), 48000);
        let m = AacConfig::parse(&[0x12, 0x08]).unwrap();
        assert_eq!((m.sample_rate(), m.channels), (44100, 1));
    }

    #[test]
    fn adts_header_is_byte_exact() {
        // What ffmpeg's ADTS muxer writes for a 371-byte AAC-LC 48 kHz stereo frame.
        let c = AacConfig::parse(&[0x11, 0x90]).unwrap();
        assert_eq!(
            c.adts_header(371).unwrap(),
            [0xff, 0xf1, 0x4c, 0x80, 0x2f, 0x5f, 0xfc]
        );
        assert!(c.adts_header(9000).is_err());
    }

    #[test]
    fn refuses_what_adts_cannot_carry() {
        assert!(AacConfig::parse(&[0x12]).is_err());
        assert!(AacConfig::parse(&[0x17, 0x80, 0, 0, 0]).is_err()); // explicit rate
        assert!(AacConfig::parse(&[0x11, 0x80]).is_err()); // 0 channels
        assert!(AacConfig::parse(&[0x00, 0x10]).is_err());
    }
}
