//! One clock for everything periodic. Every timed wake-up of a publisher's connection and of the
//! housekeeping timers (drop watch, statistics, janitor) falls on a process-wide grid, so tasks
//! due at about the same moment wake the process once between them instead of once each: on a
//! machine with a handful of streams those separate wake-ups were most of the server's CPU.
//!
//! Publishers are read on a coarse poll, except around the moment their next segment is due:
//! then the socket is read as soon as anything arrives, so the frame that completes a segment is
//! taken at once and viewers see the segment as soon as it exists, while the ~100 writes a second
//! a publisher makes in between wake nothing.

use std::sync::OnceLock;
use std::time::Duration;

use tokio::time::{Instant, Interval, MissedTickBehavior};

/// The grid every timed wake-up falls on.
pub const FINE_TICK: Duration = Duration::from_millis(10);
/// How long media may wait in the kernel when no output is due.
pub const MEDIA_POLL: Duration = Duration::from_millis(200);
/// Reading on arrival starts this long before the expected arrival of the frame that completes a
/// segment: the newest frame read so far may have waited up to a frame interval in the kernel, so
/// the prediction can be that early.
const EXPECT_MARGIN: Duration = Duration::from_millis(50);
/// A frame this late (an irregular GOP) is waited for on the coarse poll again.
const EXPECT_LATE: Duration = Duration::from_secs(1);

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// The first multiple of `period` since the process-wide epoch that is strictly after `after`.
fn next_multiple(after: Instant, period: Duration) -> Instant {
    let epoch = epoch();
    let period = period.as_nanos().max(1);
    let since = after.saturating_duration_since(epoch).as_nanos();
    let next = (since / period + 1) * period;
    epoch + Duration::from_nanos(u64::try_from(next).unwrap_or(u64::MAX))
}

/// How a polled publisher's socket is next read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextRead {
    /// At this moment, on the grid; what arrives meanwhile waits in the kernel.
    At(Instant),
    /// As soon as anything arrives, until this moment: the frame that completes a segment is due.
    OnArrival { until: Instant },
}

/// How a polled publisher's socket should next be read, given the moment the connection expects
/// the frame that completes its next segment (if it expects one).
pub fn next_read(now: Instant, expected: Option<Instant>) -> NextRead {
    let poll = next_multiple(now, MEDIA_POLL);
    let Some(expected) = expected else {
        return NextRead::At(poll);
    };
    let start = expected.checked_sub(EXPECT_MARGIN).unwrap_or(expected);
    let late = expected + EXPECT_LATE;
    if now + FINE_TICK <= start {
        // Sleep until just before it is due, on the fine grid (`start` itself may be on it).
        let fine = next_multiple(start.checked_sub(FINE_TICK).unwrap_or(start), FINE_TICK);
        NextRead::At(poll.min(fine))
    } else if now < late {
        NextRead::OnArrival { until: late }
    } else {
        NextRead::At(poll)
    }
}

/// An interval of `period` (a multiple of [`MEDIA_POLL`]) whose ticks fall on publisher polls.
pub fn aligned_interval(period: Duration) -> Interval {
    debug_assert_eq!(period.as_nanos() % MEDIA_POLL.as_nanos(), 0);
    let mut interval = tokio::time::interval_at(next_multiple(Instant::now(), period), period);
    interval.set_missed_tick_behavior(MissedTickBehavior::Skip);
    interval
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on_grid(at: Instant, period: Duration) -> bool {
        (at - epoch()).as_nanos() % period.as_nanos() == 0
    }

    /// A moment `ms` after a poll, so cases do not depend on when the test runs.
    fn after_poll(ms: u64) -> Instant {
        next_multiple(Instant::now(), MEDIA_POLL) + Duration::from_millis(ms)
    }

    fn at(read: NextRead) -> Instant {
        match read {
            NextRead::At(at) => at,
            other => panic!("expected a timed read, got {other:?}"),
        }
    }

    #[test]
    fn nothing_expected_waits_for_the_next_shared_poll() {
        let now = after_poll(30);
        let at = at(next_read(now, None));
        assert_eq!(at, now - Duration::from_millis(30) + MEDIA_POLL);
        assert!(on_grid(at, MEDIA_POLL));
    }

    #[test]
    fn an_expected_frame_far_off_waits_for_the_poll() {
        let now = after_poll(0);
        let read = next_read(now, Some(now + Duration::from_secs(2)));
        assert_eq!(read, NextRead::At(now + MEDIA_POLL));
    }

    #[test]
    fn wakes_on_the_fine_grid_just_before_an_expected_frame() {
        let now = after_poll(0);
        let expected = now + Duration::from_millis(123);
        let at = at(next_read(now, Some(expected)));
        assert!(on_grid(at, FINE_TICK));
        assert!(
            at <= expected - EXPECT_MARGIN,
            "woke too late: {:?}",
            at - now
        );
        assert!(
            at + FINE_TICK > expected - EXPECT_MARGIN,
            "woke too early: {:?}",
            at - now
        );
        // Woken then, it reads on arrival.
        assert!(matches!(
            next_read(at, Some(expected)),
            NextRead::OnArrival { .. }
        ));
    }

    #[test]
    fn reads_on_arrival_while_the_frame_is_due_then_gives_up() {
        let now = after_poll(3);
        for expected in [
            now + Duration::from_millis(20),
            now,
            now - Duration::from_millis(900),
        ] {
            assert_eq!(
                next_read(now, Some(expected)),
                NextRead::OnArrival {
                    until: expected + EXPECT_LATE
                }
            );
        }
        let too_late = now - EXPECT_LATE - Duration::from_millis(1);
        assert_eq!(
            next_read(now, Some(too_late)),
            NextRead::At(now - Duration::from_millis(3) + MEDIA_POLL)
        );
    }

    #[test]
    fn never_waits_into_the_past() {
        let now = after_poll(195);
        for ms in [0u64, 40, 49, 50, 51, 59, 60, 61, 70, 500] {
            match next_read(now, Some(now + Duration::from_millis(ms))) {
                NextRead::At(at) => {
                    assert!(
                        at > now,
                        "{ms} ms: woke at {:?}",
                        at.checked_duration_since(now)
                    );
                    assert!(on_grid(at, FINE_TICK));
                }
                NextRead::OnArrival { until } => assert!(until > now, "{ms} ms"),
            }
        }
    }

    #[tokio::test]
    async fn intervals_fire_on_polls() {
        let mut interval = aligned_interval(MEDIA_POLL * 2);
        let at = interval.tick().await;
        assert!(on_grid(at, MEDIA_POLL * 2));
    }
}
