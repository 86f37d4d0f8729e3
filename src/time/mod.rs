//! Event time: units, intervals, window assignment and watermarks.
//!
//! Event times are `i64` counts of the event-time column's own unit
//! (seconds, milliseconds, microseconds or nanoseconds since the epoch),
//! so no conversion happens per row.

pub mod emit;
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

/// A duration in ticks of `unit`, for humans: `1h`, `5m`, `10s`, `250ms`, `7us`.
pub fn format_duration(ticks: i64, unit: TimeUnit) -> String {
    let nanos = i128::from(ticks) * i128::from(nanos_per_unit(unit));
    const STEPS: [(i128, &str); 6] = [
        (3_600_000_000_000, "h"),
        (60_000_000_000, "m"),
        (1_000_000_000, "s"),
        (1_000_000, "ms"),
        (1_000, "us"),
        (1, "ns"),
    ];
    for (size, suffix) in STEPS {
        if nanos != 0 && nanos % size == 0 {
            return format!("{}{suffix}", nanos / size);
        }
    }
    "0s".to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_durations_in_the_largest_exact_unit() {
        assert_eq!(format_duration(60_000, TimeUnit::Millisecond), "1m");
        assert_eq!(format_duration(1_500, TimeUnit::Millisecond), "1500ms");
        assert_eq!(format_duration(7_200, TimeUnit::Second), "2h");
        assert_eq!(format_duration(0, TimeUnit::Second), "0s");
    }
}
