//! Past broadcasts: the log a recording keeps of its segments, and the VOD playlist made from it.
//! Pure: the ingest appends the lines and reads the file; this module only formats and parses.
//!
//! The log is append-only text, one line per fact, each written only after what it names is
//! complete on disk: a line a crash cut short has no newline and is ignored, so a recording read
//! after a crash ends at its last complete segment and never lists a half-written one.
//!
//! A private channel's recording keeps its segments as the live output encrypted them; the log
//! holds each media key wrapped under a key-encryption key it never sees (`key` lines, before the
//! first segment under that key) and each segment's key id and IV, so its playlist names them
//! exactly as the live one did.

use std::fmt::Write as _;

use crate::encrypt::{from_hex, hex, KeyTag, WrappedKey};

/// One line of a recording's log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogLine {
    /// The init section (`init<id>.mp4`) of the CMAF segments that follow.
    Init(u64),
    /// A media key of the segments that follow, wrapped (see [`crate::encrypt::wrap_key`]).
    Key {
        /// Its id, as segments name it.
        id: u64,
        /// The key, wrapped.
        wrapped: WrappedKey,
    },
    /// A segment file, `<name>.ts` or `<name>.m4s`, of `duration_ms`, `bytes` long.
    Segment {
        /// The file name's number.
        name: u64,
        /// True for CMAF (`.m4s`), false for MPEG-TS (`.ts`).
        cmaf: bool,
        /// Its duration.
        duration_ms: u64,
        /// Its size.
        bytes: u64,
        /// Its key and IV, when encrypted.
        key: Option<KeyTag>,
    },
    /// The publish ended (Unix ms). Absent after a crash; the recording then ends at its last
    /// segment just the same.
    End(i64),
}

impl LogLine {
    /// The line, newline included.
    pub fn format(&self) -> String {
        match self {
            LogLine::Init(id) => format!("init {id}\n"),
            LogLine::Key { id, wrapped } => format!("key {id} {}\n", hex(wrapped)),
            LogLine::Segment {
                name,
                cmaf,
                duration_ms,
                bytes,
                key,
            } => {
                let key = key.map_or(String::new(), |k| format!(" {} {}", k.id, hex(&k.iv)));
                format!(
                    "seg {name} {} {duration_ms} {bytes}{key}\n",
                    if *cmaf { "m4s" } else { "ts" }
                )
            }
            LogLine::End(ms) => format!("end {ms}\n"),
        }
    }

    fn parse(line: &str) -> Option<Self> {
        let mut words = line.split(' ');
        let number = |w: Option<&str>| -> Option<u64> {
            let w = w?;
            (!w.is_empty() && w.len() <= 20 && w.bytes().all(|b| b.is_ascii_digit()))
                .then(|| w.parse().ok())
                .flatten()
        };
        let parsed = match words.next()? {
            "init" => LogLine::Init(number(words.next())?),
            "key" => LogLine::Key {
                id: number(words.next())?,
                wrapped: from_hex(words.next()?)?,
            },
            "seg" => {
                let name = number(words.next())?;
                let cmaf = match words.next()? {
                    "m4s" => true,
                    "ts" => false,
                    _ => return None,
                };
                let duration_ms = number(words.next())?;
                let bytes = number(words.next())?;
                let key = match words.next() {
                    None => None,
                    Some(id) => Some(KeyTag {
                        id: number(Some(id))?,
                        iv: from_hex(words.next()?)?,
                    }),
                };
                LogLine::Segment {
                    name,
                    cmaf,
                    duration_ms,
                    bytes,
                    key,
                }
            }
            "end" => LogLine::End(i64::try_from(number(words.next())?).ok()?),
            _ => return None,
        };
        words.next().is_none().then_some(parsed)
    }
}

/// A recording's segment, with the init section it needs (CMAF).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VodSegment {
    /// The file name's number.
    pub name: u64,
    /// CMAF (`.m4s`) or MPEG-TS (`.ts`).
    pub cmaf: bool,
    /// Its duration.
    pub duration_ms: u64,
    /// Its size.
    pub bytes: u64,
    /// The init section before it (CMAF only).
    pub init: Option<u64>,
    /// Its key and IV, when encrypted.
    pub key: Option<KeyTag>,
}

impl VodSegment {
    /// Its file name.
    pub fn file_name(&self) -> String {
        format!("{}.{}", self.name, if self.cmaf { "m4s" } else { "ts" })
    }
}

/// What a recording's log says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recording {
    /// Its segments, in order.
    pub segments: Vec<VodSegment>,
    /// When the publish ended, if the server saw it end.
    pub ended_ms: Option<i64>,
    /// The media keys its segments use, wrapped, by id.
    pub keys: Vec<(u64, WrappedKey)>,
}

impl Recording {
    /// Reads a log. Only whole lines count: a last line without its newline (a crash cut it)
    /// and lines that do not parse are skipped; a CMAF segment before any init line, and an
    /// encrypted segment whose key has no line before it, are skipped (they could not be
    /// played).
    pub fn parse(log: &[u8]) -> Self {
        let mut recording = Recording::default();
        let complete = match log.iter().rposition(|&b| b == b'\n') {
            Some(end) => &log[..end],
            None => return recording,
        };
        let mut init = None;
        for line in complete.split(|&b| b == b'\n') {
            let Some(line) = std::str::from_utf8(line).ok().and_then(LogLine::parse) else {
                continue;
            };
            match line {
                LogLine::Init(id) => init = Some(id),
                LogLine::Key { id, wrapped } => {
                    if recording.key(id).is_none() {
                        recording.keys.push((id, wrapped));
                    }
                }
                LogLine::Segment {
                    name,
                    cmaf,
                    duration_ms,
                    bytes,
                    key,
                } => {
                    let keyless = key.is_some_and(|k| recording.key(k.id).is_none());
                    if (cmaf && init.is_none()) || keyless {
                        continue;
                    }
                    recording.segments.push(VodSegment {
                        name,
                        cmaf,
                        duration_ms,
                        bytes,
                        init: if cmaf { init } else { None },
                        key,
                    });
                }
                LogLine::End(ms) => recording.ended_ms = Some(ms),
            }
        }
        recording
    }

    /// Media key `id`, wrapped, if its line was read.
    pub fn key(&self, id: u64) -> Option<&WrappedKey> {
        self.keys.iter().find(|(k, _)| *k == id).map(|(_, w)| w)
    }

    /// Total duration.
    pub fn duration_ms(&self) -> u64 {
        self.segments.iter().map(|s| s.duration_ms).sum()
    }

    /// Total size of its segments.
    pub fn bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.bytes).sum()
    }

    /// The VOD playlist (RFC 8216 §6.2.1 `EXT-X-PLAYLIST-TYPE:VOD`, ended), segment URIs relative
    /// to the playlist; `None` for a recording without segments.
    pub fn playlist(&self) -> Option<String> {
        let longest = self.segments.iter().map(|s| s.duration_ms).max()?;
        let cmaf = self.segments.iter().any(|s| s.cmaf);
        let mut out = String::with_capacity(64 + 40 * self.segments.len());
        out.push_str("#EXTM3U\n");
        // EXT-X-MAP outside I-frame playlists needs version 6 (RFC 8216 §7).
        let _ = writeln!(out, "#EXT-X-VERSION:{}", if cmaf { 6 } else { 3 });
        let _ = writeln!(
            out,
            "#EXT-X-TARGETDURATION:{}",
            longest.div_ceil(1000).max(1)
        );
        out.push_str(
            "#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-INDEPENDENT-SEGMENTS\n",
        );
        let mut map = None;
        for segment in &self.segments {
            if segment.init.is_some() && segment.init != map {
                map = segment.init;
                let _ = writeln!(
                    out,
                    "#EXT-X-MAP:URI=\"init{}.mp4\"",
                    segment.init.unwrap_or(0)
                );
            }
            if let Some(key) = segment.key {
                // Every segment's own IV, as the live playlist gave it (RFC 8216 §4.3.2.4).
                out.push_str(&key.line());
            }
            let _ = writeln!(
                out,
                "#EXTINF:{}.{:03},\n{}",
                segment.duration_ms / 1000,
                segment.duration_ms % 1000,
                segment.file_name()
            );
        }
        out.push_str("#EXT-X-ENDLIST\n");
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(name: u64, cmaf: bool, duration_ms: u64) -> LogLine {
        LogLine::Segment {
            name,
            cmaf,
            duration_ms,
            bytes: 1000,
            key: None,
        }
    }

    /// An encrypted recording: each segment's key and IV are in its playlist as the live one gave
    /// them, the wrapped keys only in the log; a segment whose key line is missing is not listed.
    #[test]
    fn an_encrypted_recording_names_each_segments_key_and_iv() {
        let wrapped = [7u8; 24];
        let tag = |id, iv| KeyTag { id, iv: [iv; 16] };
        let encrypted = |name, key| LogLine::Segment {
            name,
            cmaf: false,
            duration_ms: 2000,
            bytes: 1008,
            key: Some(key),
        };
        let lines = [
            LogLine::Key { id: 5, wrapped },
            encrypted(10, tag(5, 0xa1)),
            encrypted(12, tag(5, 0xa2)),
            encrypted(14, tag(6, 0xa3)), // key 6 was never logged
            LogLine::Key { id: 6, wrapped },
            encrypted(16, tag(6, 0xa4)),
        ];
        let log: String = lines.iter().map(LogLine::format).collect();
        assert!(
            log.starts_with(&format!("key 5 {}\n", "07".repeat(24))),
            "{log}"
        );
        assert!(log.contains(&format!("seg 10 ts 2000 1008 5 {}\n", "A1".repeat(16))));
        let r = Recording::parse(log.as_bytes());
        assert_eq!(r.key(5), Some(&wrapped));
        let names: Vec<u64> = r.segments.iter().map(|s| s.name).collect();
        assert_eq!(names, [10, 12, 16]);
        let playlist = r.playlist().unwrap();
        assert!(
            playlist.contains(&format!(
                "#EXT-X-KEY:METHOD=AES-128,URI=\"key/5.key\",IV=0X{}\n#EXTINF:2.000,\n12.ts\n",
                "A2".repeat(16)
            )),
            "{playlist}"
        );
        assert_eq!(playlist.matches("#EXT-X-KEY").count(), 3);
        assert!(!playlist.contains("0707"), "no wrapped key in the playlist");
        // A torn or altered key line is no key.
        for bad in [
            "key 5 0707\n",
            "key x 07\n",
            &format!("key 5 {}\n", "zz".repeat(24)),
        ] {
            let log = format!("{bad}{}", encrypted(10, tag(5, 1)).format());
            assert!(
                Recording::parse(log.as_bytes()).segments.is_empty(),
                "{bad}"
            );
        }
    }

    #[test]
    fn lines_round_trip_and_the_playlist_is_a_finished_vod() {
        let lines = [
            LogLine::Init(7),
            seg(100, true, 2000),
            seg(102, true, 1999),
            LogLine::Init(9),
            seg(104, true, 2501),
            LogLine::End(5000),
        ];
        let log: String = lines.iter().map(LogLine::format).collect();
        let r = Recording::parse(log.as_bytes());
        assert_eq!(r.segments.len(), 3);
        assert_eq!(r.ended_ms, Some(5000));
        assert_eq!((r.duration_ms(), r.bytes()), (6500, 3000));
        assert_eq!(
            r.playlist().unwrap(),
            "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-TARGETDURATION:3\n#EXT-X-PLAYLIST-TYPE:VOD\n\
             #EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-INDEPENDENT-SEGMENTS\n\
             #EXT-X-MAP:URI=\"init7.mp4\"\n#EXTINF:2.000,\n100.m4s\n#EXTINF:1.999,\n102.m4s\n\
             #EXT-X-MAP:URI=\"init9.mp4\"\n#EXTINF:2.501,\n104.m4s\n#EXT-X-ENDLIST\n"
        );
        let ts: String = [seg(1, false, 2000), seg(2, false, 800)]
            .iter()
            .map(LogLine::format)
            .collect();
        let ts = Recording::parse(ts.as_bytes()).playlist().unwrap();
        assert!(
            ts.contains("#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n"),
            "{ts}"
        );
        assert!(!ts.contains("EXT-X-MAP"));
        assert!(
            ts.ends_with("#EXTINF:0.800,\n2.ts\n#EXT-X-ENDLIST\n"),
            "{ts}"
        );
    }

    /// What a crash leaves: a last line cut short is not read, and the recording ends at the
    /// last whole segment.
    #[test]
    fn a_torn_last_line_and_garbage_are_ignored() {
        let whole = format!(
            "{}{}",
            LogLine::Init(1).format(),
            seg(10, true, 2000).format()
        );
        for cut in ["seg 12 m4s 20", "seg 12 m4s 2000 10", "se", ""] {
            let log = format!("{whole}{cut}");
            let r = Recording::parse(log.as_bytes());
            assert_eq!(r.segments.len(), 1, "{cut:?}");
            assert_eq!(r.ended_ms, None);
        }
        let junk = b"seg 1 m4s 2000 10\nseg x ts 1 1\nseg 2 mp4 1 1\nseg 3 ts 1 1 extra\n\xff\xfe\nend -1\n";
        let r = Recording::parse(junk);
        assert!(
            r.segments.is_empty(),
            "a CMAF segment without init, and junk: {r:?}"
        );
        assert!(r.playlist().is_none());
        assert_eq!(Recording::parse(b"").segments.len(), 0);
        assert_eq!(
            Recording::parse(b"seg 99999999999999999999999 ts 1 1\n")
                .segments
                .len(),
            0
        );
    }
}
