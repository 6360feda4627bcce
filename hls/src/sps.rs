//! The picture size from an H.264 sequence parameter set (ITU-T H.264 §7.3.2.1.1), for the init
//! section's track and sample entry when the publisher's metadata does not give it. Reads only as
//! far as the frame cropping; anything malformed or unsupported is `None`, never a panic.

/// Reads bits of an RBSP (the NAL payload with emulation-prevention bytes removed).
struct Bits {
    data: Vec<u8>,
    pos: usize,
}

impl Bits {
    fn new(nal_payload: &[u8]) -> Self {
        // 0x000003 → 0x0000: the 03 only prevents a start code.
        let mut data = Vec::with_capacity(nal_payload.len());
        let mut zeros = 0;
        for &b in nal_payload {
            if zeros >= 2 && b == 3 {
                zeros = 0;
                continue;
            }
            zeros = if b == 0 { zeros + 1 } else { 0 };
            data.push(b);
        }
        Self { data, pos: 0 }
    }

    fn bit(&mut self) -> Option<u32> {
        let byte = self.data.get(self.pos / 8)?;
        let bit = (byte >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        Some(u32::from(bit))
    }

    fn bits(&mut self, n: u32) -> Option<u32> {
        (0..n).try_fold(0, |acc, _| Some((acc << 1) | self.bit()?))
    }

    /// Exp-Golomb unsigned.
    fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0;
        while self.bit()? == 0 {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        Some((1u32 << zeros) - 1 + self.bits(zeros)?)
    }

    /// Exp-Golomb signed.
    fn se(&mut self) -> Option<i32> {
        let k = self.ue()?;
        let magnitude = i32::try_from(k.div_ceil(2)).ok()?;
        Some(if k % 2 == 1 { magnitude } else { -magnitude })
    }
}

/// Profiles whose SPS carries chroma format, bit depths and scaling matrices.
const HIGH_PROFILES: [u32; 12] = [100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134];

/// Width and height in pixels, after cropping, of the SPS NAL unit `nal` (its header byte
/// included). Long because it reads the SPS syntax (§7.3.2.1.1) field by field in the
/// standard's order, which is easiest to check against the table as one piece.
pub fn dimensions(nal: &[u8]) -> Option<(u16, u16)> {
    if nal.first()? & 0x1f != 7 {
        return None;
    }
    let mut r = Bits::new(nal.get(1..)?);
    let profile = r.bits(8)?;
    r.bits(16)?; // constraint flags, level
    r.ue()?; // seq_parameter_set_id
    let mut chroma_format = 1;
    let mut separate_planes = false;
    if HIGH_PROFILES.contains(&profile) || profile == 135 {
        chroma_format = r.ue()?;
        if chroma_format == 3 {
            separate_planes = r.bit()? == 1;
        }
        r.ue()?; // bit depth luma
        r.ue()?; // bit depth chroma
        r.bit()?; // qpprime_y_zero_transform_bypass
        if r.bit()? == 1 {
            let lists = if chroma_format == 3 { 12 } else { 8 };
            for i in 0..lists {
                if r.bit()? == 1 {
                    skip_scaling_list(&mut r, if i < 6 { 16 } else { 64 })?;
                }
            }
        }
    }
    r.ue()?; // log2_max_frame_num
    match r.ue()? {
        0 => {
            r.ue()?;
        }
        1 => {
            r.bit()?;
            r.se()?;
            r.se()?;
            for _ in 0..r.ue()?.min(255) {
                r.se()?;
            }
        }
        _ => {}
    }
    r.ue()?; // max_num_ref_frames
    r.bit()?; // gaps_in_frame_num_allowed
    let width_mbs = r.ue()?.checked_add(1)?;
    let height_units = r.ue()?.checked_add(1)?;
    let frame_mbs_only = r.bit()?;
    if frame_mbs_only == 0 {
        r.bit()?; // mb_adaptive_frame_field
    }
    r.bit()?; // direct_8x8_inference
    let (mut crop_x, mut crop_y) = (0, 0);
    if r.bit()? == 1 {
        let (left, right, top, bottom) = (r.ue()?, r.ue()?, r.ue()?, r.ue()?);
        let (unit_x, unit_y) = match (chroma_format, separate_planes) {
            (0, _) | (3, true) => (1, 2 - frame_mbs_only),
            (1, _) => (2, 2 * (2 - frame_mbs_only)),
            (2, _) => (2, 2 - frame_mbs_only),
            _ => (1, 2 - frame_mbs_only),
        };
        crop_x = unit_x * left.checked_add(right)?;
        crop_y = unit_y * top.checked_add(bottom)?;
    }
    let width = width_mbs.checked_mul(16)?.checked_sub(crop_x)?;
    let height = (2 - frame_mbs_only)
        .checked_mul(height_units)?
        .checked_mul(16)?
        .checked_sub(crop_y)?;
    Some((u16::try_from(width).ok()?, u16::try_from(height).ok()?))
}

fn skip_scaling_list(r: &mut Bits, size: usize) -> Option<()> {
    let (mut last, mut next) = (8i32, 8i32);
    for _ in 0..size {
        if next != 0 {
            next = (last + r.se()? + 256) % 256;
        }
        if next != 0 {
            last = next;
        }
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn sizes_of_libx264_parameter_sets() {
        // As ffmpeg's libx264 wrote them for the test clips (High profile, cropping at 360 lines).
        for (sps, size) in [
            (
                "6764001facd9405005bb0110000003001000000303c0f1831960",
                (1280, 720),
            ),
            (
                "6764001eacd940a02ff970110000030001000003003c0f162d96",
                (640, 360),
            ),
            (
                "67640015acd94141fb0110000003001000000303c0f162d960",
                (320, 240),
            ),
        ] {
            assert_eq!(dimensions(&hex(sps)), Some(size), "{sps}");
        }
    }

    #[test]
    fn anything_else_is_none() {
        assert_eq!(dimensions(&[]), None);
        assert_eq!(dimensions(&[0x68, 0xeb]), None, "a PPS");
        assert_eq!(dimensions(&[0x67, 0x64, 0x00, 0x1f]), None, "truncated");
        assert_eq!(
            dimensions(&[0x67, 0x64, 0, 0x1f, 0, 0, 0, 0, 0, 0]),
            None,
            "all zeros"
        );
    }
}
