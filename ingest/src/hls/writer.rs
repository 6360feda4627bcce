//! The disk side of the HLS output: one task that runs every file operation on the blocking pool,
//! in the order they were asked for, so the connections never wait on a disk.
//!
//! Finished segments and playlists are written to a temporary name and renamed. When the window
//! is not kept in memory, a segment is instead written while it is being made: its bytes are
//! appended to a part file as they come (so a stream holds one small chunk in memory, not its
//! whole open segment) and the part is renamed and listed when the segment closes. If the disk
//! fails halfway, what reached the part file is read back and the segment is listed from memory,
//! so a failing disk interrupts no viewer.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Weak};

use boltstream_shared::username::Username;
use bytes::Bytes;
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::output::{Channel, HlsOutput, PartId};
use super::packager::Segment;
use crate::store::now_ms;

/// A file operation.
pub(super) enum Job {
    /// A whole file, written atomically.
    Write {
        dir: PathBuf,
        name: String,
        body: Bytes,
        user: Username,
        /// Set for a segment: its channel learns when the file is written.
        segment_of: Option<Arc<Channel>>,
    },
    /// The next bytes of a channel's open segment.
    Append {
        channel: Arc<Channel>,
        part: PartId,
        bytes: Bytes,
    },
    /// The rest of a segment whose first bytes were appended: complete it and list it.
    Finish {
        channel: Arc<Channel>,
        part: PartId,
        name: u64,
        segment: Segment,
        /// The publish ended with this segment: end the playlist once it is listed.
        end_after: bool,
    },
    Delete {
        path: PathBuf,
    },
    RemoveDir {
        dir: PathBuf,
    },
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// How far a segment being written has got.
enum Part {
    Disk {
        file: File,
        len: u64,
    },
    /// The disk failed: the segment is collected here instead.
    Memory(Vec<Bytes>),
    /// The disk failed and what it had could not be read back.
    Lost,
}

struct OpenPart {
    id: PartId,
    part: Part,
}

/// What the writer keeps between batches.
#[derive(Default)]
struct State {
    parts: HashMap<Username, OpenPart>,
}

fn part_path(dir: &Path) -> PathBuf {
    dir.join(".open.ts.part")
}

/// Runs disk jobs on the blocking pool, one batch at a time, logging a failing channel once until
/// it recovers. `busy_since` holds when the running batch started (0: idle), so the output can
/// tell a stalled disk from a busy one.
pub(super) async fn writer(
    mut rx: mpsc::Receiver<Job>,
    output: Weak<HlsOutput>,
    busy_since: Arc<AtomicI64>,
) {
    let mut failing: HashSet<Username> = HashSet::new();
    let mut state = State::default();
    let mut batch = Vec::new();
    while rx.recv_many(&mut batch, 64).await > 0 {
        let jobs = std::mem::take(&mut batch);
        let output = output.clone();
        busy_since.store(now_ms(), Ordering::Relaxed);
        let outcome = tokio::task::spawn_blocking(move || {
            let mut results = Vec::new();
            for job in jobs {
                run(&mut state, job, &output, &mut results);
            }
            (state, results)
        })
        .await;
        busy_since.store(0, Ordering::Relaxed);
        let Ok((back, results)) = outcome else {
            // A panic in a job: the part files in flight are abandoned, later segments start anew.
            state = State::default();
            continue;
        };
        state = back;
        for (user, result) in results {
            match result {
                Ok(()) => {
                    if failing.remove(&user) {
                        info!(user = %user, "HLS files are being written to disk again");
                    }
                }
                Err(err) => {
                    if failing.insert(user.clone()) {
                        warn!(user = %user, error = %err, "cannot write HLS files; serving this stream from memory only");
                    }
                }
            }
        }
    }
}

type Results = Vec<(Username, Result<(), String>)>;

fn run(state: &mut State, job: Job, output: &Weak<HlsOutput>, results: &mut Results) {
    match job {
        Job::Write {
            dir,
            name,
            body,
            user,
            segment_of,
        } => {
            let result = write_atomically(&dir, &name, &body);
            if let Some(channel) = segment_of {
                channel.set_disk_failing(result.is_err());
                if result.is_ok() {
                    channel.written(name.strip_suffix(".ts").unwrap_or(&name));
                }
            }
            results.push((
                user,
                result.map_err(|e| format!("{}: {e}", dir.join(&name).display())),
            ));
        }
        Job::Append {
            channel,
            part,
            bytes,
        } => {
            let open = match state.parts.remove(channel.user()) {
                Some(open) if open.id == part => open,
                stale => {
                    // A new segment (the last one's Finish never came: its part is abandoned).
                    if stale.is_some() {
                        let _ = std::fs::remove_file(part_path(channel.dir()));
                    }
                    OpenPart {
                        id: part,
                        part: create_part(channel.dir()).unwrap_or_else(|e| {
                            report(results, &channel, e, "creating");
                            Part::Memory(Vec::new())
                        }),
                    }
                }
            };
            let next = append(open.part, channel.dir(), bytes, |e| {
                report(results, &channel, e, "appending to")
            });
            state.parts.insert(
                channel.user().clone(),
                OpenPart {
                    id: open.id,
                    part: next,
                },
            );
        }
        Job::Finish {
            channel,
            part,
            name,
            mut segment,
            end_after,
        } => {
            let open = state
                .parts
                .remove(channel.user())
                .filter(|open| open.id == part)
                .map_or(Part::Lost, |open| open.part);
            let file_name = format!("{name}.ts");
            let listed = match append(open, channel.dir(), segment.data.clone(), |e| {
                report(results, &channel, e, "appending to")
            }) {
                Part::Disk { file, .. } => {
                    drop(file);
                    let from = part_path(channel.dir());
                    match std::fs::rename(&from, channel.dir().join(&file_name)) {
                        Ok(()) => {
                            channel.set_disk_failing(false);
                            results.push((channel.user().clone(), Ok(())));
                            segment.data = Bytes::new();
                            Some((segment, true))
                        }
                        Err(e) => {
                            report(results, &channel, e, "renaming");
                            let back = std::fs::read(&from).ok();
                            let _ = std::fs::remove_file(&from);
                            back.map(|bytes| {
                                segment.data = Bytes::from(bytes);
                                (segment, false)
                            })
                        }
                    }
                }
                Part::Memory(chunks) => {
                    segment.data = Bytes::from(chunks.concat());
                    Some((segment, false))
                }
                Part::Lost => None,
            };
            let Some(output) = output.upgrade() else {
                return;
            };
            match listed {
                Some((segment, on_disk)) => {
                    output.publish(&channel, part, Some(name), segment, on_disk);
                }
                None => warn!(
                    user = %channel.user(),
                    "a segment was lost to a disk failure; the playlist continues after a discontinuity"
                ),
            }
            if end_after {
                output.end_playlist(&channel, part.generation);
            }
        }
        Job::Delete { path } => {
            let _ = std::fs::remove_file(path);
        }
        Job::RemoveDir { dir } => {
            let _ = std::fs::remove_dir_all(dir);
        }
        Job::Flush(done) => {
            let _ = done.send(());
        }
    }
}

fn report(results: &mut Results, channel: &Channel, error: std::io::Error, doing: &str) {
    channel.set_disk_failing(true);
    let path = part_path(channel.dir());
    results.push((
        channel.user().clone(),
        Err(format!("{doing} {}: {error}", path.display())),
    ));
}

fn create_part(dir: &Path) -> std::io::Result<Part> {
    std::fs::create_dir_all(dir)?;
    Ok(Part::Disk {
        file: create_exclusive(&part_path(dir))?,
        len: 0,
    })
}

/// Appends `bytes`; on a disk error, falls back to memory with what the part file holds.
fn append(part: Part, dir: &Path, bytes: Bytes, on_error: impl FnOnce(std::io::Error)) -> Part {
    match part {
        Part::Disk { mut file, len } => match file.write_all(&bytes) {
            Ok(()) => Part::Disk {
                file,
                len: len + bytes.len() as u64,
            },
            Err(e) => {
                on_error(e);
                drop(file);
                let path = part_path(dir);
                // Only the bytes written before this chunk count: a failed write may leave part
                // of it behind.
                let back = std::fs::read(&path).ok().filter(|b| b.len() as u64 >= len);
                let _ = std::fs::remove_file(&path);
                match back {
                    Some(mut prefix) => {
                        prefix.truncate(len as usize);
                        Part::Memory(vec![Bytes::from(prefix), bytes])
                    }
                    None => Part::Lost,
                }
            }
        },
        Part::Memory(mut chunks) => {
            chunks.push(bytes);
            Part::Memory(chunks)
        }
        Part::Lost => Part::Lost,
    }
}

fn write_atomically(dir: &Path, name: &str, body: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{name}.tmp"));
    let written = create_exclusive(&tmp).and_then(|mut file| file.write_all(body));
    written.inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })?;
    std::fs::rename(&tmp, dir.join(name))
}

/// Creates `path` afresh (`O_CREAT | O_EXCL`, which never follows a symlink): whatever was there —
/// a file left by a crash, or a link planted to make us write elsewhere — is removed first (the
/// link itself, never its target).
fn create_exclusive(path: &Path) -> std::io::Result<File> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> tempfile::TempDir {
        tempfile::tempdir().unwrap()
    }

    #[test]
    fn a_planted_symlink_is_replaced_not_followed() {
        let d = dir();
        let victim = d.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        std::os::unix::fs::symlink(&victim, d.path().join(".index.m3u8.tmp")).unwrap();
        std::os::unix::fs::symlink(&victim, part_path(d.path())).unwrap();
        write_atomically(d.path(), "index.m3u8", b"#EXTM3U").unwrap();
        let part = create_part(d.path()).unwrap();
        let _ = append(part, d.path(), Bytes::from_static(b"ts"), |e| panic!("{e}"));
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert_eq!(
            std::fs::read(d.path().join("index.m3u8")).unwrap(),
            b"#EXTM3U"
        );
        assert_eq!(std::fs::read(part_path(d.path())).unwrap(), b"ts");
    }

    #[test]
    fn appends_reach_the_part_file_in_order() {
        let d = dir();
        let mut part = create_part(d.path()).unwrap();
        for chunk in [&b"abc"[..], b"", b"defg"] {
            part = append(part, d.path(), Bytes::copy_from_slice(chunk), |e| {
                panic!("{e}")
            });
        }
        assert!(matches!(part, Part::Disk { len: 7, .. }));
        assert_eq!(std::fs::read(part_path(d.path())).unwrap(), b"abcdefg");
    }

    #[test]
    fn a_failed_append_falls_back_to_memory_with_what_was_written() {
        let d = dir();
        let mut part = create_part(d.path()).unwrap();
        part = append(part, d.path(), Bytes::from_static(b"head"), |e| {
            panic!("{e}")
        });
        // A file opened read-only fails every write, like a full disk.
        let Part::Disk { len, .. } = part else {
            panic!("on disk")
        };
        let read_only = File::open(part_path(d.path())).unwrap();
        let part = Part::Disk {
            file: read_only,
            len,
        };
        let mut failed = false;
        let part = append(part, d.path(), Bytes::from_static(b"tail"), |_| {
            failed = true
        });
        assert!(failed);
        let Part::Memory(chunks) = part else {
            panic!("falls back to memory")
        };
        assert_eq!(chunks.concat(), b"headtail");
        assert!(!part_path(d.path()).exists(), "the part file is cleared");
    }

    #[test]
    fn a_part_that_cannot_be_read_back_is_lost() {
        let d = dir();
        let file = File::open(d.path()).unwrap(); // a directory: writes fail, nothing to read
        let mut failed = false;
        let part = append(
            Part::Disk { file, len: 4 },
            d.path(),
            Bytes::from_static(b"x"),
            |_| failed = true,
        );
        assert!(failed && matches!(part, Part::Lost));
    }
}
