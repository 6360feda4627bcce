//! The sink in front of a public publish's packager that picks keyframes for thumbnails: the first
//! one (go-live), then the first after each interval. It runs on the media path, so it reads only
//! tag headers (a full parse for keyframes and configuration records alone) and hands the decoder
//! the frame's shared bytes, never a copy.

use std::sync::Arc;

use boltstream_hls::avc::AvcConfig;
use boltstream_hls::flv::{self, VideoTag};
use boltstream_shared::username::Username;

use super::{Job, Thumbnails};
use crate::live::{Media, MediaError, MediaSink, PublishSpec, SinkFactory};
use crate::record::Recordings;

/// Wraps a [`SinkFactory`] so public publishes are pictured.
pub struct Thumbnailing {
    inner: Arc<dyn SinkFactory>,
    thumbs: Arc<Thumbnails>,
    recordings: Option<Arc<Recordings>>,
}

impl Thumbnailing {
    /// Sinks from `inner`, with keyframes offered to `thumbs`.
    pub fn new(inner: Arc<dyn SinkFactory>, thumbs: Arc<Thumbnails>) -> Self {
        Self {
            inner,
            thumbs,
            recordings: None,
        }
    }

    /// And the newest picture of a recorded publish kept as its recording's.
    pub fn keeping_for(mut self, recordings: Arc<Recordings>) -> Self {
        self.recordings = Some(recordings);
        self
    }
}

impl SinkFactory for Thumbnailing {
    fn open(&self, user: &Username, spec: &PublishSpec) -> Box<dyn MediaSink> {
        let sink = self.inner.open(user, spec);
        if spec.private || !self.thumbs.enabled() {
            return sink;
        }
        let publish = self.thumbs.begin(user);
        // The inner factory has begun the publish's recording, if it records.
        let keep_in = (self.recordings.as_ref())
            .filter(|_| spec.record)
            .and_then(|r| r.active_dir(user));
        Box::new(TappedSink {
            inner: sink,
            thumbs: Arc::clone(&self.thumbs),
            user: user.clone(),
            publish,
            config: None,
            next_ms: i64::MIN,
            keep_in,
        })
    }
}

struct TappedSink {
    inner: Box<dyn MediaSink>,
    thumbs: Arc<Thumbnails>,
    user: Username,
    publish: u64,
    /// The stream's current decoder configuration.
    config: Option<AvcConfig>,
    /// Wall-clock ms from which the next keyframe is offered.
    next_ms: i64,
    /// The publish's recording directory.
    keep_in: Option<std::path::PathBuf>,
}

impl TappedSink {
    fn look(&mut self, body: &bytes::Bytes, wall_ms: i64) {
        // Configuration records and keyframes both have frame type 1; everything else is skipped
        // on its first byte.
        if body.first().is_none_or(|b| b >> 4 != 1) {
            return;
        }
        match flv::parse_video(body) {
            Ok(VideoTag::AvcConfig(record)) => self.config = AvcConfig::parse(&record).ok(),
            Ok(VideoTag::AvcFrame {
                keyframe: true,
                data,
                ..
            }) if wall_ms >= self.next_ms => {
                let Some(config) = self.config.clone() else {
                    return;
                };
                let job = Job {
                    user: self.user.clone(),
                    publish: self.publish,
                    wall_ms,
                    config,
                    frame: data,
                    keep_in: self.keep_in.clone(),
                };
                if self.thumbs.offer(job) {
                    self.next_ms = wall_ms.saturating_add(self.thumbs.interval_ms);
                }
            }
            _ => {}
        }
    }
}

impl MediaSink for TappedSink {
    fn push(&mut self, media: Media, wall_ms: i64) -> Result<(), MediaError> {
        if let Media::Video { data, .. } = &media {
            self.look(data, wall_ms);
        }
        self.inner.push(media, wall_ms)
    }

    fn finish(&mut self, wall_ms: i64) {
        self.inner.finish(wall_ms);
        self.thumbs.end(&self.user, self.publish);
    }

    fn cut_due_in_ms(&self) -> Option<i64> {
        self.inner.cut_due_in_ms()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use bytes::Bytes;

    use super::*;
    use crate::thumbs::picture;

    /// Counts what reaches the packager.
    #[derive(Default, Clone)]
    struct Counted(Arc<AtomicUsize>);

    impl MediaSink for Counted {
        fn push(&mut self, _media: Media, _wall_ms: i64) -> Result<(), MediaError> {
            self.0.fetch_add(1, Ordering::Relaxed);
            Ok(())
        }
        fn finish(&mut self, _wall_ms: i64) {}
    }

    impl SinkFactory for Counted {
        fn open(&self, _user: &Username, _spec: &PublishSpec) -> Box<dyn MediaSink> {
            Box::new(self.clone())
        }
    }

    /// An FLV sequence header, a keyframe and an inter frame, as a publisher sends them.
    fn tags() -> [Media; 3] {
        let (record, avcc) = picture::fixture_as_flv();
        let tag = |head: [u8; 5], body: &[u8]| Media::Video {
            timestamp: 0,
            data: Bytes::from([&head[..], body].concat()),
        };
        [
            tag([0x17, 0, 0, 0, 0], &record),
            tag([0x17, 1, 0, 0, 0], &avcc),
            tag([0x27, 1, 0, 0, 0], &[0, 0, 0, 2, 0x41, 0x9a]),
        ]
    }

    #[test]
    fn go_live_then_one_keyframe_per_interval_and_all_media_passes_through() {
        let (thumbs, jobs) = Thumbnails::with_queue(Duration::from_secs(30), 8);
        let (thumbs, jobs) = (Arc::new(thumbs), jobs.unwrap());
        let counted = Counted::default();
        let factory = Thumbnailing::new(Arc::new(counted.clone()), Arc::clone(&thumbs));
        let alice = Username::parse("alice").unwrap();
        let mut sink = factory.open(&alice, &PublishSpec::default());
        let [config, key, inter] = tags();
        let mut pushed = 0;
        // A keyframe before any configuration cannot be decoded: not offered.
        for (media, at) in [(&key, 0), (&config, 0), (&inter, 10), (&key, 1_000)] {
            sink.push(media.clone(), at).unwrap();
            pushed += 1;
        }
        let first = jobs.try_recv().expect("the go-live keyframe");
        assert_eq!((first.wall_ms, first.publish), (1_000, 1));
        // The job holds the frame's own bytes, not a copy.
        let Media::Video { data, .. } = &key else {
            unreachable!()
        };
        assert_eq!(first.frame.as_ptr(), data[5..].as_ptr());
        for at in [2_000, 20_000, 30_999] {
            sink.push(key.clone(), at).unwrap();
            pushed += 1;
        }
        assert!(jobs.try_recv().is_err(), "nothing within the interval");
        sink.push(key.clone(), 31_000).unwrap();
        pushed += 1;
        assert_eq!(jobs.try_recv().unwrap().wall_ms, 31_000);
        assert_eq!(
            counted.0.load(Ordering::Relaxed),
            pushed,
            "every unit reached the packager"
        );

        // The made picture is the publish's until it ends.
        thumbs.gallery.keep(
            &first,
            picture::thumbnail(&picture::annex_b(&first.config, &first.frame).unwrap()),
        );
        assert_eq!(thumbs.latest(&alice), Some(1_000));
        sink.finish(40_000);
        assert_eq!(thumbs.latest(&alice), None);
    }

    #[test]
    fn a_refused_offer_is_retried_at_the_next_keyframe() {
        let (thumbs, jobs) = Thumbnails::with_queue(Duration::from_secs(30), 1);
        let (thumbs, jobs) = (Arc::new(thumbs), jobs.unwrap());
        let factory = Thumbnailing::new(Arc::new(Counted::default()), Arc::clone(&thumbs));
        let [config, key, _] = tags();
        let mut bob = factory.open(&Username::parse("bob").unwrap(), &PublishSpec::default());
        let mut carol = factory.open(&Username::parse("carol").unwrap(), &PublishSpec::default());
        bob.push(config.clone(), 0).unwrap();
        carol.push(config, 0).unwrap();
        bob.push(key.clone(), 0).unwrap(); // fills the queue
        carol.push(key.clone(), 0).unwrap(); // refused: busy
        assert_eq!(jobs.try_recv().unwrap().user.as_str(), "bob");
        carol.push(key, 2_000).unwrap();
        assert_eq!(jobs.try_recv().unwrap().user.as_str(), "carol");
        assert!(thumbs.metrics().contains("result=\"busy\"} 1"));
    }

    #[test]
    fn private_publishes_are_never_pictured() {
        let (thumbs, jobs) = Thumbnails::with_queue(Duration::from_secs(30), 8);
        let (thumbs, jobs) = (Arc::new(thumbs), jobs.unwrap());
        let factory = Thumbnailing::new(Arc::new(Counted::default()), Arc::clone(&thumbs));
        let mut sink = factory.open(
            &Username::parse("alice").unwrap(),
            &PublishSpec {
                private: true,
                ..PublishSpec::default()
            },
        );
        for media in tags() {
            sink.push(media, 0).unwrap();
        }
        assert!(jobs.try_recv().is_err());
        assert!(thumbs.gallery.slots().is_empty());
    }
}
