//! Event time: units, intervals, window assignment and watermarks.
//!
//! Event times are `i64` counts of the event-time column's own unit
//! (seconds, milliseconds, microseconds or nanoseconds since the epoch),
//! so no conversion happens per row.

pub mod interval;
pub mod watermark;
pub mod window;

use arrow::datatypes::TimeUnit;

/// An event time or watermark, in the unit of the stream's event-time column.
pub type EventTime = i64;

/// Nanoseconds in one tick of `unit`.
pub fn nanos_per_unit(unit: TimeUnit) -> i64 {
    match unit {
        TimeUnit::Second => 1_000_000_000,
        TimeUnit::Millisecond => 1_000_000,
        TimeUnit::Microsecond => 1_000,
        TimeUnit::Nanosecond => 1,
    }
}

/// Ticks of `unit` in one millisecond (0 for seconds: they cannot express one).
pub fn units_per_milli(unit: TimeUnit) -> i64 {
    match unit {
        TimeUnit::Second => 0,
        TimeUnit::Millisecond => 1,
        TimeUnit::Microsecond => 1_000,
        TimeUnit::Nanosecond => 1_000_000,
    }
}
