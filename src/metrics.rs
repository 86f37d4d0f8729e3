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
    /// Each join of the query, in plan order.
    pub joins: Vec<JoinMetrics>,
    /// Each lookup join (a stream joined with a table), in plan order.
    pub lookups: Vec<LookupMetrics>,
}

/// Counters of one lookup join.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LookupMetrics {
    /// The table it reads.
    pub table: String,
    /// Stream rows that reached it.
    pub rows_in: u64,
    /// Of those, rows that found their table row (and met the condition).
    pub rows_matched: u64,
}

/// Counters of one join.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JoinMetrics {
    /// Its left input.
    pub left: JoinSideMetrics,
    /// Its right input.
    pub right: JoinSideMetrics,
}

/// Counters of one input of a join.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JoinSideMetrics {
    /// Rows that reached the join on this side.
    pub rows_in: u64,
    /// Of those, rows dropped as late.
    pub late_rows_dropped: u64,
    /// Rows of this side the join holds now.
    pub rows_held: usize,
}
