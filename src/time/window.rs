//! Window assignment: which window an event time falls in, and when a
//! window is complete.
//!
//! Windows are aligned to the epoch plus an optional offset, like Flink's
//! and RisingWave's `TUMBLE` and DataFusion's `date_bin`:
//! `start = offset + floor((ts - offset) / size) * size`, `end = start + size`.
//!
//! Every window kind is cut into *slices* on a fixed grid (Flink's slicing):
//! each event updates exactly one slice, and a window is the merge of the
//! slices it covers.
//!
//! ```text
//! TUMBLE(size)          slices = windows
//! HOP(slide, size)      slices of `slide`; window [e - size, e) for each slice end e
//! CUMULATE(step, size)  slices of `step`; window [start of size-window, e) for each slice end e
//! ```

use arrow::datatypes::TimeUnit;

use super::{format_duration, units_per_milli, EventTime};

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
        // i64 arithmetic unless it would overflow: 128-bit division is a
        // library call in wasm, and this runs once per row.
        if let Some(shifted) = ts.checked_sub(self.offset) {
            if let Some(start) = ts.checked_sub(shifted.rem_euclid(self.size)) {
                return start;
            }
        }
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

    /// The latest point of this grid that, as a window end, is complete
    /// under `watermark`: every window ending there or before has fired.
    pub fn last_closed_end(&self, watermark: EventTime) -> EventTime {
        self.start_of(watermark.saturating_add(self.close_slack))
    }

    /// Whether a window (of any size) ending at `end` is complete under `watermark`.
    pub fn is_end_closed(&self, end: EventTime, watermark: EventTime) -> bool {
        i128::from(watermark) >= i128::from(end) - i128::from(self.close_slack)
    }
}

/// A session window: a key's events separated by less than `gap` form one
/// session `[first event, last event + gap)`, optionally at most
/// `max_length` long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionWindow {
    /// Inactivity that ends a session, in ticks.
    pub gap: i64,
    /// Longest session, in ticks.
    pub max_length: Option<i64>,
    close_slack: i64,
}

impl SessionWindow {
    /// A session window; `gap` must be positive (checked by the SQL front end).
    pub fn new(gap: i64, max_length: Option<i64>, unit: TimeUnit) -> Self {
        Self {
            gap,
            max_length,
            close_slack: units_per_milli(unit),
        }
    }

    /// Whether a session ending at `end` is complete under `watermark`.
    pub fn is_end_closed(&self, end: EventTime, watermark: EventTime) -> bool {
        i128::from(watermark) >= i128::from(end) - i128::from(self.close_slack)
    }
}

/// A window table function and its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowSpec {
    /// `TUMBLE(stream, ts, size [, offset])`.
    Tumble(TumblingWindow),
    /// `HOP(stream, ts, slide, size [, offset])`: windows of `size` every `slide`.
    Hop {
        /// Slices: the slide grid.
        slide: TumblingWindow,
        /// Window size in ticks, a multiple of the slide.
        size: i64,
    },
    /// `CUMULATE(stream, ts, step, size [, offset])`: windows that grow by
    /// `step` from the start of each `size` window.
    Cumulate {
        /// Slices: the step grid.
        step: TumblingWindow,
        /// The grid of full windows.
        size: TumblingWindow,
    },
    /// `SESSION(stream, ts, gap [, max_length])`: per group key.
    Session(SessionWindow),
}

impl WindowSpec {
    /// The grid that events are assigned to; `None` for sessions, which
    /// have no fixed grid.
    pub fn slices(&self) -> Option<TumblingWindow> {
        match self {
            WindowSpec::Tumble(window) => Some(*window),
            WindowSpec::Hop { slide, .. } => Some(*slide),
            WindowSpec::Cumulate { step, .. } => Some(*step),
            WindowSpec::Session(_) => None,
        }
    }

    /// The per-row window columns: the row's slice, or for sessions the
    /// row's own window `[ts, ts + gap)` before merging.
    pub fn row_bounds(&self, ts: EventTime) -> (EventTime, EventTime) {
        match self {
            WindowSpec::Session(session) => (ts, ts.saturating_add(session.gap)),
            _ => {
                let grid = self
                    .slices()
                    .unwrap_or(TumblingWindow::new(1, 0, TimeUnit::Nanosecond));
                let start = grid.start_of(ts);
                (start, grid.end_of(start))
            }
        }
    }

    /// [`Self::row_bounds`] of every time in `times`, as start and end
    /// columns: the window kind and grid are settled once, not per row.
    pub fn rows_bounds(&self, times: &[EventTime]) -> (Vec<EventTime>, Vec<EventTime>) {
        match self {
            WindowSpec::Session(session) => (
                times.to_vec(),
                times
                    .iter()
                    .map(|&ts| ts.saturating_add(session.gap))
                    .collect(),
            ),
            _ => {
                let grid = self
                    .slices()
                    .unwrap_or(TumblingWindow::new(1, 0, TimeUnit::Nanosecond));
                let mut starts = Vec::with_capacity(times.len());
                let mut ends = Vec::with_capacity(times.len());
                // Rows of a batch mostly share a slice: reuse the last one's
                // bounds while they hold (a division per row otherwise).
                let (mut start, mut end) = (1, 0);
                for &ts in times {
                    if !(start <= ts && ts < end) {
                        start = grid.start_of(ts);
                        end = grid.end_of(start);
                    }
                    starts.push(start);
                    ends.push(end);
                }
                (starts, ends)
            }
        }
    }

    /// Start of the window that ends at `end` (a slice end).
    pub fn start_for_end(&self, end: EventTime) -> EventTime {
        match self {
            WindowSpec::Tumble(window) => end.saturating_sub(window.size()),
            WindowSpec::Hop { size, .. } => end.saturating_sub(*size),
            WindowSpec::Cumulate { size, .. } => size.start_of(end.saturating_sub(1)),
            // Sessions have no fixed start for an end; not used for them.
            WindowSpec::Session(session) => end.saturating_sub(session.gap),
        }
    }

    /// End of the last window that covers the slice starting at `slice`:
    /// once that window fires, rows of the slice are late.
    pub fn last_end_covering(&self, slice: EventTime) -> EventTime {
        match self {
            WindowSpec::Tumble(window) => window.end_of(slice),
            WindowSpec::Hop { size, .. } => slice.saturating_add(*size),
            WindowSpec::Cumulate { size, .. } => size.end_of(size.start_of(slice)),
            WindowSpec::Session(session) => slice.saturating_add(session.gap),
        }
    }

    /// Whether a row is assigned to exactly one window (so per-row window
    /// columns mean what they say).
    pub fn is_tumbling(&self) -> bool {
        matches!(self, WindowSpec::Tumble(_))
    }

    /// The function with its durations, e.g. `HOP(slide 10s, size 1m)`.
    pub fn describe(&self, unit: TimeUnit) -> String {
        let d = |ticks: i64| format_duration(ticks, unit);
        let offset = |w: &TumblingWindow| {
            if w.offset == 0 {
                String::new()
            } else {
                format!(", offset {}", d(w.offset))
            }
        };
        match self {
            WindowSpec::Tumble(w) => format!("TUMBLE(size {}{})", d(w.size), offset(w)),
            WindowSpec::Hop { slide, size } => format!(
                "HOP(slide {}, size {}{})",
                d(slide.size),
                d(*size),
                offset(slide)
            ),
            WindowSpec::Cumulate { step, size } => {
                format!(
                    "CUMULATE(step {}, size {}{})",
                    d(step.size),
                    d(size.size),
                    offset(step)
                )
            }
            WindowSpec::Session(s) => match s.max_length {
                Some(max) => format!("SESSION(gap {}, max length {})", d(s.gap), d(max)),
                None => format!("SESSION(gap {})", d(s.gap)),
            },
        }
    }

    /// SQL name of the function.
    pub fn name(&self) -> &'static str {
        match self {
            WindowSpec::Tumble(_) => "TUMBLE",
            WindowSpec::Hop { .. } => "HOP",
            WindowSpec::Cumulate { .. } => "CUMULATE",
            WindowSpec::Session(_) => "SESSION",
        }
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
    fn hop_and_cumulate_windows_end_at_slice_ends() {
        let unit = TimeUnit::Second;
        let hop = WindowSpec::Hop {
            slide: TumblingWindow::new(10, 0, unit),
            size: 30,
        };
        assert_eq!(hop.row_bounds(25), (20, 30));
        assert_eq!(hop.start_for_end(30), 0);
        assert_eq!(hop.start_for_end(40), 10);
        let cumulate = WindowSpec::Cumulate {
            step: TumblingWindow::new(10, 0, unit),
            size: TumblingWindow::new(60, 0, unit),
        };
        assert_eq!(cumulate.start_for_end(10), 0);
        assert_eq!(cumulate.start_for_end(60), 0);
        assert_eq!(cumulate.start_for_end(70), 60);
    }

    #[test]
    fn extreme_times_do_not_overflow() {
        let w = TumblingWindow::new(60_000, 0, TimeUnit::Millisecond);
        assert!(w.start_of(i64::MIN) <= i64::MIN + 60_000);
        assert_eq!(w.end_of(w.start_of(i64::MAX)), i64::MAX);
        assert!(w.is_closed(0, i64::MAX));
        assert!(!w.is_closed(i64::MAX - 10, i64::MAX - 100));
    }

    #[test]
    fn bounds_of_a_column_are_the_rows_bounds() {
        let times: Vec<EventTime> = vec![
            -61_000,
            -1,
            0,
            1,
            9_999,
            10_000,
            25_000,
            // Runs in one slice, the next slice and back (the bounds of the
            // previous row are reused while they hold).
            12_999,
            13_000,
            12_999,
            2_999,
            3_000,
            i64::MAX - 3,
            i64::MAX,
            i64::MAX - 1,
            i64::MIN + 7,
            i64::MIN,
            i64::MIN + 1,
        ];
        let ms = TimeUnit::Millisecond;
        let grid = |size: i64| TumblingWindow::new(size, 0, ms);
        for window in [
            WindowSpec::Tumble(TumblingWindow::new(10_000, 3_000, ms)),
            WindowSpec::Hop {
                size: 30_000,
                slide: grid(10_000),
            },
            WindowSpec::Cumulate {
                size: grid(60_000),
                step: grid(20_000),
            },
            WindowSpec::Session(SessionWindow::new(5_000, None, ms)),
        ] {
            let (starts, ends) = window.rows_bounds(&times);
            for (i, &ts) in times.iter().enumerate() {
                assert_eq!(
                    (starts[i], ends[i]),
                    window.row_bounds(ts),
                    "{window:?} at {ts}"
                );
            }
        }
    }
}
