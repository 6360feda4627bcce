//! A structural MPEG-TS checker: what neither ffmpeg nor hls.js reports (continuity counters, PCR
//! order and spacing, PAT/PMT first, segments starting at a random access point) but Safari and
//! hardware decoders choke on. Used by the unit tests, the end-to-end tests and the benchmarks.

use std::collections::HashMap;

use super::ts::{PACKET_LEN, PMT_PID, PTS_WRAP};

/// What a segment contains, for assertions.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct SegmentReport {
    /// TS packets.
    pub packets: usize,
    /// PES packets per PID.
    pub pes_per_pid: HashMap<u16, usize>,
    /// PCR values (90 kHz base) in order.
    pub pcrs: Vec<u64>,
    /// (pid, pts, dts) of each PES in order.
    pub timestamps: Vec<(u16, u64, u64)>,
    /// The first PES of the PCR PID carried the random-access flag.
    pub starts_with_random_access: bool,
}

/// Continuity state carried from one segment to the next of the same stream.
pub type Continuity = HashMap<u16, u8>;

/// The 33-bit base of a PCR field.
fn pcr_base(b: &[u8]) -> u64 {
    (u64::from(b[0]) << 25)
        | (u64::from(b[1]) << 17)
        | (u64::from(b[2]) << 9)
        | (u64::from(b[3]) << 1)
        | (u64::from(b[4]) >> 7)
}

/// PTS and DTS (DTS = PTS when absent) of a PES header; `None` without a start code.
fn pes_timestamps(pes: &[u8]) -> Option<(u64, u64)> {
    if pes.len() < 14 || pes[..3] != [0, 0, 1] {
        return None;
    }
    let read = |b: &[u8]| {
        (u64::from(b[0] >> 1) & 7) << 30
            | u64::from(b[1]) << 22
            | u64::from(b[2] >> 1) << 15
            | u64::from(b[3]) << 7
            | u64::from(b[4] >> 1)
    };
    let pts = read(&pes[9..14]);
    let dts = if pes[7] >> 6 == 3 && pes.len() >= 19 {
        read(&pes[14..19])
    } else {
        pts
    };
    Some((pts, dts))
}

/// Checks one segment; `continuity` carries counters across segments. Returns what is wrong.
pub fn check_segment(data: &[u8], continuity: &mut Continuity) -> Result<SegmentReport, String> {
    if data.is_empty() || data.len() % PACKET_LEN != 0 {
        return Err(format!("length {} is not a multiple of 188", data.len()));
    }
    let mut report = SegmentReport {
        packets: data.len() / PACKET_LEN,
        ..Default::default()
    };
    let mut first_pes_seen = false;
    for (i, p) in data.chunks(PACKET_LEN).enumerate() {
        if p[0] != 0x47 {
            return Err(format!("packet {i}: no sync byte"));
        }
        let pid = (u16::from(p[1] & 0x1f) << 8) | u16::from(p[2]);
        let pusi = p[1] & 0x40 != 0;
        let afc = (p[3] >> 4) & 0x3;
        let cc = p[3] & 0x0f;
        if i == 0 && pid != 0 {
            return Err("segment does not start with a PAT".into());
        }
        if i == 1 && pid != PMT_PID {
            return Err("PAT is not followed by the PMT".into());
        }
        if afc & 1 == 1 {
            if let Some(prev) = continuity.insert(pid, cc) {
                if cc != (prev + 1) & 0x0f {
                    return Err(format!(
                        "packet {i}: PID {pid:#x} continuity {prev} -> {cc}"
                    ));
                }
            }
        }
        let mut payload_start = 4;
        if afc & 2 == 2 {
            let af_len = usize::from(p[4]);
            if 5 + af_len > PACKET_LEN {
                return Err(format!("packet {i}: adaptation field too long"));
            }
            if af_len > 0 {
                let flags = p[5];
                if flags & 0x10 != 0 {
                    report.pcrs.push(pcr_base(&p[6..11]));
                }
                if pusi && !first_pes_seen && pid >= 0x100 && pid != PMT_PID {
                    report.starts_with_random_access = flags & 0x40 != 0;
                }
            }
            payload_start = 5 + af_len;
        }
        if pusi && pid >= 0x100 && pid != PMT_PID {
            first_pes_seen = true;
            let (pts, dts) = pes_timestamps(&p[payload_start..])
                .ok_or_else(|| format!("packet {i}: PES without start code"))?;
            *report.pes_per_pid.entry(pid).or_default() += 1;
            report.timestamps.push((pid, pts, dts));
        }
    }
    check_pcrs(&report.pcrs)?;
    Ok(report)
}

/// PCRs only move forward (modulo the 33-bit wrap).
fn check_pcrs(pcrs: &[u64]) -> Result<(), String> {
    for pair in pcrs.windows(2) {
        let step = (pair[1] + PTS_WRAP - pair[0]) % PTS_WRAP;
        if step > PTS_WRAP / 2 {
            return Err(format!("PCR went backwards: {} -> {}", pair[0], pair[1]));
        }
    }
    Ok(())
}
