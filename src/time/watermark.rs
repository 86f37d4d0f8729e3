//! Watermarks: how far event time has provably progressed.
//!
//! A watermark `W` asserts that no more events with `ts <= W` are expected
//! (Flink's convention). The bounded-out-of-orderness strategy declared by
//! `WATERMARK FOR ts AS ts - INTERVAL 'd'` sets `W = max(ts seen) - d`.
//!
//! The watermark advances per row, not per push: each row is judged against
//! the watermark left by the rows before it. That makes lateness, and so the
//! results, independent of how the input was split into pushes.

use arrow::datatypes::TimeUnit;

use super::{nanos_per_unit, EventTime};

/// Watermark before any event has been seen.
pub const NO_WATERMARK: EventTime = EventTime::MIN;
/// Watermark after end of input: every window closes.
pub const END_OF_INPUT: EventTime = EventTime::MAX;

/// A watermark in ticks of `from` as ticks of `to`: the last `to` tick
/// that lies wholly at or before it, so that no later event, cast to `to`,
/// lands at or before the result. The ends of time stay as they are.
pub fn convert_watermark(watermark: EventTime, from: TimeUnit, to: TimeUnit) -> EventTime {
    if from == to || watermark == NO_WATERMARK || watermark == END_OF_INPUT {
        return watermark;
    }
    let (from_nanos, to_nanos) = (
        i128::from(nanos_per_unit(from)),
        i128::from(nanos_per_unit(to)),
    );
    // One past the last nanosecond the watermark covers.
    let end = (i128::from(watermark) + 1) * from_nanos;
    let ticks = end.div_euclid(to_nanos) - 1;
    ticks.clamp(i128::from(NO_WATERMARK) + 1, i128::from(END_OF_INPUT) - 1) as EventTime
}

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

    #[test]
    fn converted_watermarks_never_let_a_later_event_be_late() {
        use TimeUnit::{Millisecond, Nanosecond, Second};
        // 77.5 s in ns covers 77 499 ms wholly, not 77 500.
        assert_eq!(
            convert_watermark(77_499_999_999, Nanosecond, Millisecond),
            77_499
        );
        assert_eq!(
            convert_watermark(77_500_000_000, Nanosecond, Millisecond),
            77_499
        );
        assert_eq!(
            convert_watermark(77_500_999_999, Nanosecond, Millisecond),
            77_500
        );
        // 9 999 ms covers every nanosecond up to 9 999 999 999.
        assert_eq!(
            convert_watermark(9_999, Millisecond, Nanosecond),
            9_999_999_999
        );
        assert_eq!(convert_watermark(-1, Millisecond, Second), -1);
        assert_eq!(convert_watermark(0, Millisecond, Second), -1);
        assert_eq!(convert_watermark(999, Millisecond, Second), 0);
        for ends in [NO_WATERMARK, END_OF_INPUT] {
            assert_eq!(convert_watermark(ends, Nanosecond, Second), ends);
            assert_eq!(convert_watermark(ends, Second, Nanosecond), ends);
        }
        // Saturates short of the ends instead of overflowing.
        assert_eq!(
            convert_watermark(EventTime::MAX - 1, Second, Nanosecond),
            END_OF_INPUT - 1
        );
        // For any event after the watermark, its cast is after the result.
        for watermark in [-3_000_001i64, -1, 0, 1, 999_999, 1_000_000, 5_123_456_789] {
            let result = convert_watermark(watermark, Nanosecond, Millisecond);
            for event in watermark + 1..watermark + 3_000_000 {
                if event % 250_000 == 0 || event == watermark + 1 {
                    assert!(event.div_euclid(1_000_000) > result, "{watermark} {event}");
                }
            }
        }
    }
}
