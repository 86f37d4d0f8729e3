//! SQL intervals (`INTERVAL '1' MINUTE`) as fixed durations in event-time units.

use arrow::datatypes::{IntervalMonthDayNano, TimeUnit};

use super::nanos_per_unit;
use crate::err;
use crate::error::Result;

/// Converts a SQL interval to a duration in ticks of `unit`.
///
/// Errors when the interval uses months (no fixed length), is not positive
/// when `positive` is required, or is finer than the unit can express.
pub fn interval_to_units(
    interval: IntervalMonthDayNano,
    unit: TimeUnit,
    what: &str,
) -> Result<i64> {
    if interval.months != 0 {
        return Err(err!(
            Unsupported,
            "{what} uses months or years, which have no fixed length; write it in days instead (e.g. INTERVAL '30' DAY)"
        ));
    }
    let nanos = i128::from(interval.days) * 86_400_000_000_000 + i128::from(interval.nanoseconds);
    let per_unit = i128::from(nanos_per_unit(unit));
    if nanos % per_unit != 0 {
        return Err(err!(
            SqlPlan,
            "{what} ({nanos} ns) is finer than the event-time column's unit ({unit:?})"
        ));
    }
    i64::try_from(nanos / per_unit).map_err(|_| err!(SqlPlan, "{what} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iv(months: i32, days: i32, nanoseconds: i64) -> IntervalMonthDayNano {
        IntervalMonthDayNano::new(months, days, nanoseconds)
    }

    #[test]
    fn converts_to_each_unit() {
        let minute = iv(0, 0, 60_000_000_000);
        assert_eq!(
            interval_to_units(minute, TimeUnit::Millisecond, "size").unwrap(),
            60_000
        );
        assert_eq!(
            interval_to_units(minute, TimeUnit::Second, "size").unwrap(),
            60
        );
        assert_eq!(
            interval_to_units(iv(0, 1, 0), TimeUnit::Second, "size").unwrap(),
            86_400
        );
    }

    #[test]
    fn rejects_months_and_sub_unit_precision() {
        assert!(interval_to_units(iv(1, 0, 0), TimeUnit::Millisecond, "size").is_err());
        assert!(interval_to_units(iv(0, 0, 1_500_000), TimeUnit::Millisecond, "size").is_err());
    }
}
