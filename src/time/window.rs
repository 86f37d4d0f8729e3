//! Window assignment: which window an event time falls in, and when a
//! window is complete.
//!
//! Windows are aligned to the epoch plus an optional offset, like Flink's
//! and RisingWave's `TUMBLE` and DataFusion's `date_bin`:
//! `start = offset + floor((ts - offset) / size) * size`, `end = start + size`.

use arrow::datatypes::TimeUnit;

use super::{units_per_milli, EventTime};

/// A tumbling window: fixed size, no overlap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TumblingWindow {
    size: i64,
    offset: i64,
    /// How far below the end a watermark may be and still close the window.
    /// Watermarks have millisecond resolution (as in Flink): a window closes
    /// once `W >= end - 1 ms`, i.e. no event before its end can still come.
    close_slack: i64,
}

impl TumblingWindow {
    /// A window of `size` ticks shifted by `offset` ticks, in `unit`.
    /// `size` must be positive (checked by the SQL front end).
    pub fn new(size: i64, offset: i64, unit: TimeUnit) -> Self {
        debug_assert!(size > 0);
        Self {
            size,
            offset: offset.rem_euclid(size),
            close_slack: units_per_milli(unit),
        }
    }

    /// Window size in ticks.
    pub fn size(&self) -> i64 {
        self.size
    }

    /// Start of the window holding `ts`.
    pub fn start_of(&self, ts: EventTime) -> EventTime {
        let shifted = i128::from(ts) - i128::from(self.offset);
        let start = i128::from(ts) - shifted.rem_euclid(i128::from(self.size));
        clamp(start)
    }

    /// End (exclusive) of the window starting at `start`.
    pub fn end_of(&self, start: EventTime) -> EventTime {
        start.saturating_add(self.size)
    }

    /// Whether the window starting at `start` is complete under `watermark`.
    pub fn is_closed(&self, start: EventTime, watermark: EventTime) -> bool {
        let end = i128::from(start) + i128::from(self.size);
        i128::from(watermark) >= end - i128::from(self.close_slack)
    }
}

fn clamp(value: i128) -> i64 {
    value.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assigns_epoch_aligned_windows_including_negative_times() {
        let w = TumblingWindow::new(60_000, 0, TimeUnit::Millisecond);
        assert_eq!(w.start_of(0), 0);
        assert_eq!(w.start_of(59_999), 0);
        assert_eq!(w.start_of(60_000), 60_000);
        assert_eq!(w.start_of(-1), -60_000);
    }

    #[test]
    fn offset_shifts_the_grid() {
        let w = TumblingWindow::new(60, 15, TimeUnit::Second);
        assert_eq!(w.start_of(14), -45);
        assert_eq!(w.start_of(15), 15);
    }

    #[test]
    fn closes_when_the_watermark_reaches_the_last_millisecond() {
        let w = TumblingWindow::new(60_000, 0, TimeUnit::Millisecond);
        assert!(!w.is_closed(0, 59_998));
        assert!(w.is_closed(0, 59_999));
        let s = TumblingWindow::new(60, 0, TimeUnit::Second);
        assert!(!s.is_closed(0, 59));
        assert!(s.is_closed(0, 60));
    }

    #[test]
    fn extreme_times_do_not_overflow() {
        let w = TumblingWindow::new(60_000, 0, TimeUnit::Millisecond);
        assert!(w.start_of(i64::MIN) <= i64::MIN + 60_000);
        assert_eq!(w.end_of(w.start_of(i64::MAX)), i64::MAX);
        assert!(w.is_closed(0, i64::MAX));
        assert!(!w.is_closed(i64::MAX - 10, i64::MAX - 100));
    }
}
