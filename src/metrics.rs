//! Counters that applications read to watch a query.

/// Counters of one query, for dashboards and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryMetrics {
    /// Events accepted by the query's stream.
    pub events_in: u64,
    /// Rows of the stream dropped as bad (skip / dead-letter policies).
    pub bad_rows: u64,
    /// Events dropped because their window had closed.
    pub late_events_dropped: u64,
    /// The stream's watermark in epoch milliseconds; `None` before the
    /// first event and after the end of input.
    pub watermark_millis: Option<i64>,
    /// Whether the stream was finished.
    pub finished: bool,
    /// Windows holding state.
    pub open_windows: usize,
    /// Windows emitted so far.
    pub windows_emitted: u64,
    /// Approximate bytes of state.
    pub state_bytes: usize,
}
