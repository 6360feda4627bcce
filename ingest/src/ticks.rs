//! One clock for everything periodic. Publishers are read on a shared media tick, and the
//! housekeeping timers (drop watch, statistics, janitor) fire on multiples of the same tick, so
//! the process wakes once per tick for all of them instead of once for each: on a machine with a
//! handful of streams those separate wake-ups were most of the server's CPU.

use std::sync::OnceLock;
use std::time::Duration;

use tokio::time::{Instant, Interval, MissedTickBehavior};

/// How long media may wait in the kernel before it is read.
pub const MEDIA_TICK: Duration = Duration::from_millis(50);

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// The next multiple of `period` since the process-wide epoch.
fn next_multiple(period: Duration) -> Instant {
    let epoch = epoch();
    let period = period.as_nanos().max(1);
    let since = Instant::now().duration_since(epoch).as_nanos();
    let next = (since / period + 1) * period;
    epoch + Duration::from_nanos(u64::try_from(next).unwrap_or(u64::MAX))
}

/// The next media tick.
pub fn next_tick() -> Instant {
    next_multiple(MEDIA_TICK)
}

/// An interval of `period` (a multiple of [`MEDIA_TICK`]) whose ticks fall on media ticks.
pub fn aligned_interval(period: Duration) -> Interval {
    debug_assert_eq!(period.as_nanos() % MEDIA_TICK.as_nanos(), 0);
    let mut interval = tokio::time::interval_at(next_multiple(period), period);
    interval.set_missed_tick_behavior(MissedTickBehavior::Skip);
    interval
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_shared_multiples() {
        let a = next_tick();
        let b = next_tick();
        assert!(a <= b && b - a <= MEDIA_TICK);
        assert!(a > Instant::now() - Duration::from_millis(1));
        let n = (a - epoch()).as_nanos();
        assert_eq!(n % MEDIA_TICK.as_nanos(), 0);
    }

    #[tokio::test]
    async fn intervals_fire_on_media_ticks() {
        let mut interval = aligned_interval(MEDIA_TICK * 2);
        let at = interval.tick().await;
        assert_eq!((at - epoch()).as_nanos() % (MEDIA_TICK * 2).as_nanos(), 0);
    }
}
