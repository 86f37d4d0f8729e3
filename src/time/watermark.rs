//! Watermarks: how far event time has provably progressed.
//!
//! A watermark `W` asserts that no more events with `ts <= W` are expected
//! (Flink's convention). The bounded-out-of-orderness strategy declared by
//! `WATERMARK FOR ts AS ts - INTERVAL 'd'` sets `W = max(ts seen) - d`.
//!
//! The watermark advances per row, not per push: each row is judged against
//! the watermark left by the rows before it. That makes lateness, and so the
//! results, independent of how the input was split into pushes.

use super::EventTime;

/// Watermark before any event has been seen.
pub const NO_WATERMARK: EventTime = EventTime::MIN;
/// Watermark after end of input: every window closes.
pub const END_OF_INPUT: EventTime = EventTime::MAX;

/// `W = max(ts) - delay`, advanced row by row.
#[derive(Debug, Clone)]
pub struct BoundedOutOfOrderness {
    delay: i64,
    current: EventTime,
}

impl BoundedOutOfOrderness {
    /// A generator that tolerates events up to `delay` ticks out of order.
    pub fn new(delay: i64) -> Self {
        Self {
            delay,
            current: NO_WATERMARK,
        }
    }

    /// The watermark now.
    pub fn current(&self) -> EventTime {
        self.current
    }

    /// The tolerated disorder, in ticks.
    pub fn delay(&self) -> i64 {
        self.delay
    }

    /// Observes a batch of event times in arrival order. Returns, for each
    /// row, the watermark in force just before that row arrived, and leaves
    /// the generator past the whole batch.
    pub fn observe(&mut self, event_times: &[EventTime]) -> Vec<EventTime> {
        let mut before = Vec::with_capacity(event_times.len());
        for &ts in event_times {
            before.push(self.current);
            self.current = self.current.max(ts.saturating_sub(self.delay));
        }
        before
    }

    /// Moves the watermark to at least `watermark` (a manual advance or
    /// idleness); it never moves back.
    pub fn advance_to(&mut self, watermark: EventTime) {
        self.current = self.current.max(watermark);
    }

    /// End of input: the watermark jumps to the end of time.
    pub fn finish(&mut self) {
        self.current = END_OF_INPUT;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watermark_trails_the_maximum_by_the_delay() {
        let mut wm = BoundedOutOfOrderness::new(2);
        assert_eq!(wm.observe(&[10, 8, 13, 11]), vec![NO_WATERMARK, 8, 8, 11]);
        assert_eq!(wm.current(), 11);
        assert_eq!(wm.observe(&[5]), vec![11]);
        assert_eq!(
            wm.current(),
            11,
            "an old event never moves the watermark back"
        );
    }

    #[test]
    fn split_does_not_change_the_per_row_watermarks() {
        let events = [100, 97, 105, 99, 120, 118, 90];
        let mut whole = BoundedOutOfOrderness::new(5);
        let expected = whole.observe(&events);
        let mut split = BoundedOutOfOrderness::new(5);
        let mut got = split.observe(&events[..3]);
        got.extend(split.observe(&events[3..]));
        assert_eq!(got, expected);
        assert_eq!(split.current(), whole.current());
    }
}
