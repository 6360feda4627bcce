//! Live thumbnails: a JPEG of each public stream, made from a keyframe at go-live and then every
//! `thumbnail_interval`, for the directory's cards and the player's poster.
//!
//! - [`tap`]: the sink in front of the packager that picks the keyframes (on the media path, so it
//!   only looks at tag headers and hands over shared bytes).
//! - [`picture`]: keyframe to JPEG (OpenH264 in process; why is written there).
//!
//! The work is bounded: one decoding thread per core, each doing one picture at a time at a lower
//! CPU priority than the runtime's threads, fed by a queue one deep per thread. A keyframe offered
//! while every thread is busy is not queued: the tap offers the next one instead. Pictures live in
//! memory only (two per live channel, so a page that read the newest id a moment before a new one
//! replaced it still gets its picture) and go when the publish ends. Private publishes get none:
//! a picture of a private stream would be plaintext under a public URL.

pub mod picture;
pub mod tap;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use boltstream_hls::avc::AvcConfig;
use boltstream_shared::username::Username;
use bytes::Bytes;
use tracing::{info, warn};

pub use tap::Thumbnailing;

/// One picture of a channel.
#[derive(Clone, Debug)]
pub struct Shot {
    /// Its id in the URL: the wall-clock ms of its keyframe, raised past the last one so ids only
    /// grow.
    pub id: u64,
    /// The JPEG.
    pub jpeg: Bytes,
}

/// A live channel's pictures.
#[derive(Default)]
struct Slot {
    /// The publish these belong to: a picture finished after its publish ended is dropped.
    publish: u64,
    current: Option<Shot>,
    previous: Option<Shot>,
    /// A failure was logged for this publish (once is enough to tell an operator; the rest are
    /// counted).
    told: bool,
}

/// A keyframe to picture.
struct Job {
    user: Username,
    publish: u64,
    wall_ms: i64,
    config: AvcConfig,
    frame: Bytes,
    /// The publish's recording directory: its newest picture is kept there as the recording's.
    keep_in: Option<std::path::PathBuf>,
}

/// The gallery the decoding threads fill and the HTTP side reads.
#[derive(Default)]
struct Gallery {
    slots: Mutex<HashMap<Username, Slot>>,
    made: AtomicU64,
    failed: AtomicU64,
}

/// Thumbnails of every public live channel of this process.
pub struct Thumbnails {
    gallery: Arc<Gallery>,
    /// `None` when thumbnails are off. Dropping it ends the decoding threads.
    jobs: Option<mpsc::SyncSender<Job>>,
    interval_ms: i64,
    publishes: AtomicU64,
    /// Keyframes not taken because every thread was busy.
    busy: AtomicU64,
}

impl Thumbnails {
    /// Starts `threads` decoding threads; an `interval` of zero turns thumbnails off.
    pub fn start(interval: Duration, threads: usize) -> std::io::Result<Arc<Self>> {
        let threads = threads.max(1);
        let (thumbs, jobs) = Self::with_queue(interval, threads);
        if let Some(jobs) = jobs {
            let jobs = Arc::new(Mutex::new(jobs));
            for n in 0..threads {
                let (jobs, gallery) = (Arc::clone(&jobs), Arc::clone(&thumbs.gallery));
                std::thread::Builder::new()
                    .name(format!("thumbnail-{n}"))
                    .spawn(move || decode_loop(&jobs, &gallery))?;
            }
            info!(
                threads,
                interval_s = interval.as_secs(),
                "live thumbnails on"
            );
        }
        Ok(Arc::new(thumbs))
    }

    /// The service with its job queue (`capacity` deep), and the queue's other end for whoever
    /// decodes; neither when `interval` is zero.
    fn with_queue(interval: Duration, capacity: usize) -> (Self, Option<mpsc::Receiver<Job>>) {
        let (tx, rx) = if interval.is_zero() {
            (None, None)
        } else {
            let (tx, rx) = mpsc::sync_channel::<Job>(capacity);
            (Some(tx), Some(rx))
        };
        let thumbs = Self {
            gallery: Arc::default(),
            jobs: tx,
            interval_ms: i64::try_from(interval.as_millis()).unwrap_or(i64::MAX),
            publishes: AtomicU64::new(0),
            busy: AtomicU64::new(0),
        };
        (thumbs, rx)
    }

    /// Whether pictures are made at all.
    pub fn enabled(&self) -> bool {
        self.jobs.is_some()
    }

    /// A publish of `user` began; its pictures replace any a previous publish left.
    fn begin(&self, user: &Username) -> u64 {
        let publish = self.publishes.fetch_add(1, Ordering::Relaxed) + 1;
        self.gallery.slots().insert(
            user.clone(),
            Slot {
                publish,
                ..Slot::default()
            },
        );
        publish
    }

    /// The publish ended: its pictures go (a channel that turns private or is banned must not stay
    /// pictured).
    fn end(&self, user: &Username, publish: u64) {
        let mut slots = self.gallery.slots();
        if slots.get(user).is_some_and(|s| s.publish == publish) {
            slots.remove(user);
        }
    }

    /// Hands a keyframe to a decoding thread if one is free; false (and nothing queued) if not.
    fn offer(&self, job: Job) -> bool {
        let Some(jobs) = &self.jobs else {
            return false;
        };
        match jobs.try_send(job) {
            Ok(()) => true,
            Err(_) => {
                self.busy.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// The id of `user`'s newest picture.
    pub fn latest(&self, user: &Username) -> Option<u64> {
        let slots = self.gallery.slots();
        slots.get(user)?.current.as_ref().map(|s| s.id)
    }

    /// The picture `id` of `user`, if it is still kept.
    pub fn get(&self, user: &Username, id: u64) -> Option<Bytes> {
        let slots = self.gallery.slots();
        let slot = slots.get(user)?;
        (slot.current.iter().chain(&slot.previous))
            .find(|s| s.id == id)
            .map(|s| s.jpeg.clone())
    }

    /// Prometheus lines.
    pub fn metrics(&self) -> String {
        let (made, failed) = (&self.gallery.made, &self.gallery.failed);
        format!(
            "# TYPE boltstream_thumbnails_total counter\n\
             boltstream_thumbnails_total{{result=\"made\"}} {}\n\
             boltstream_thumbnails_total{{result=\"failed\"}} {}\n\
             boltstream_thumbnails_total{{result=\"busy\"}} {}\n",
            made.load(Ordering::Relaxed),
            failed.load(Ordering::Relaxed),
            self.busy.load(Ordering::Relaxed),
        )
    }
}

impl Gallery {
    fn slots(&self) -> std::sync::MutexGuard<'_, HashMap<Username, Slot>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn keep(&self, job: &Job, made: Result<picture::Picture, picture::PictureError>) {
        let mut slots = self.slots();
        let Some(slot) = slots
            .get_mut(&job.user)
            .filter(|s| s.publish == job.publish)
        else {
            return; // the publish ended while its picture was made
        };
        match made {
            Ok(p) => {
                self.made.fetch_add(1, Ordering::Relaxed);
                let newest = slot.current.as_ref().map_or(0, |s| s.id + 1);
                let shot = Shot {
                    id: u64::try_from(job.wall_ms).unwrap_or(0).max(newest),
                    jpeg: Bytes::from(p.jpeg),
                };
                if let Some(dir) = &job.keep_in {
                    keep_for_recording(dir, &shot.jpeg);
                }
                slot.previous = slot.current.replace(shot);
            }
            Err(e) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                if !std::mem::replace(&mut slot.told, true) {
                    warn!(user = %job.user, error = %e, "no thumbnail from this stream's keyframe; the site shows a placeholder");
                }
            }
        }
    }
}

/// Writes the picture as a recording's (replacing the last); the recording may already have
/// ended for lack of room, in which case its directory is gone and stays gone.
fn keep_for_recording(dir: &std::path::Path, jpeg: &[u8]) {
    if !dir.is_dir() {
        return;
    }
    let tmp = dir.join(".thumb.jpg.tmp");
    let written = std::fs::write(&tmp, jpeg)
        .and_then(|()| std::fs::rename(&tmp, dir.join(crate::record::THUMB)));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        tracing::debug!(dir = %dir.display(), error = %e, "cannot keep a recording's picture");
    }
}

/// One decoding thread: takes keyframes until the sender is dropped.
fn decode_loop(jobs: &Mutex<mpsc::Receiver<Job>>, gallery: &Gallery) {
    lower_priority();
    let mut thumbnailer = picture::Thumbnailer::default();
    loop {
        let job = match jobs.lock().unwrap_or_else(|e| e.into_inner()).recv() {
            Ok(job) => job,
            Err(_) => return,
        };
        let made = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            picture::annex_b(&job.config, &job.frame).and_then(|au| thumbnailer.picture(&au))
        }))
        .unwrap_or_else(|_| {
            thumbnailer = picture::Thumbnailer::default();
            Err(picture::PictureError::NoPicture)
        });
        gallery.keep(&job, made);
    }
}

/// Nice 10 for the calling thread (Linux keeps a nice value per thread): a busy decoder yields
/// the CPU to the threads that move live media.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn lower_priority() {
    // SAFETY: gettid has no arguments; setpriority only reads its arguments, and the id is this
    // thread's own.
    unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 10);
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority() {}

/// The decoding threads a machine gets: one per core.
pub fn threads_for_this_machine() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> Username {
        Username::parse("alice").unwrap()
    }

    fn job(publish: u64, wall_ms: i64) -> Job {
        let (record, frame) = picture::fixture_as_flv();
        Job {
            user: alice(),
            publish,
            wall_ms,
            config: AvcConfig::parse(&record).unwrap(),
            frame: Bytes::from(frame),
            keep_in: None,
        }
    }

    fn made(j: &Job) -> Result<picture::Picture, picture::PictureError> {
        picture::thumbnail(&picture::annex_b(&j.config, &j.frame)?)
    }

    #[test]
    fn pictures_belong_to_their_publish_and_ids_only_grow() {
        let thumbs = Thumbnails::start(Duration::ZERO, 1).unwrap();
        let first = thumbs.begin(&alice());
        let j = job(first, 5_000);
        thumbs.gallery.keep(&j, made(&j));
        assert_eq!(thumbs.latest(&alice()), Some(5_000));
        // A clock that stepped back still gives a new id.
        let j = job(first, 4_000);
        thumbs.gallery.keep(&j, made(&j));
        assert_eq!(thumbs.latest(&alice()), Some(5_001));
        let jpeg = thumbs.get(&alice(), 5_001).unwrap();
        assert_eq!(&jpeg[..2], &[0xff, 0xd8]);
        assert!(
            thumbs.get(&alice(), 5_000).is_some(),
            "the previous one is kept"
        );
        assert!(thumbs.get(&alice(), 4_999).is_none());

        // A new publish starts bare; a picture of the old one finished late is dropped.
        let second = thumbs.begin(&alice());
        let late = job(first, 9_000);
        thumbs.gallery.keep(&late, made(&late));
        assert_eq!(thumbs.latest(&alice()), None);
        // The old publish's end does not take the new one's pictures.
        let j = job(second, 10_000);
        thumbs.gallery.keep(&j, made(&j));
        thumbs.end(&alice(), first);
        assert_eq!(thumbs.latest(&alice()), Some(10_000));
        thumbs.end(&alice(), second);
        assert_eq!(thumbs.latest(&alice()), None);
        assert!(thumbs.get(&alice(), 10_000).is_none());
        assert!(thumbs.metrics().contains("result=\"made\"} 3"));
    }

    #[test]
    fn failures_are_counted_and_leave_no_picture() {
        let thumbs = Thumbnails::start(Duration::ZERO, 1).unwrap();
        let publish = thumbs.begin(&alice());
        let mut j = job(publish, 1_000);
        j.frame = Bytes::from_static(&[0, 0, 0, 2, 0x65, 0x88]);
        for _ in 0..3 {
            thumbs.gallery.keep(&j, made(&j));
        }
        assert_eq!(thumbs.latest(&alice()), None);
        assert!(thumbs.metrics().contains("result=\"failed\"} 3"));
    }

    #[test]
    fn a_busy_pool_takes_nothing_more_and_a_free_one_makes_the_picture() {
        // No threads listening yet would block a queue; off means nothing is ever taken.
        let off = Thumbnails::start(Duration::ZERO, 1).unwrap();
        assert!(!off.enabled() && !off.offer(job(1, 1)));

        let on = Thumbnails::start(Duration::from_secs(30), 1).unwrap();
        let publish = on.begin(&alice());
        let burst: Vec<Job> = (0..50).map(|n| job(publish, 1_000 + n)).collect();
        let taken = burst
            .into_iter()
            .filter(|_| true)
            .map(|j| on.offer(j))
            .filter(|t| *t)
            .count();
        // One thread, one queued: most of a burst is refused rather than queued.
        assert!((1..=10).contains(&taken), "taken {taken}");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while on.latest(&alice()).is_none() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(on.latest(&alice()).is_some(), "the thread made a picture");
        assert!(on.metrics().contains("result=\"busy\"}"));
    }
}
