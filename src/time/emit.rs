//! When a query emits results: the `EMIT` clause's meaning, used by the
//! operators (the SQL front end parses it, in `sql::emit`).

/// When a query emits results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmitMode {
    /// Once per window, when the watermark closes it (append-only).
    OnWindowClose,
    /// A changelog whenever results change (per push).
    OnUpdate,
    /// A changelog of what changed, at most every `millis` of wall-clock
    /// time (Timeplus's `EMIT PERIODIC`); closing windows emit at once.
    Every {
        /// The period in milliseconds.
        millis: i64,
    },
}

impl EmitMode {
    /// How results come out, for EXPLAIN.
    pub fn describe(&self) -> String {
        match self {
            EmitMode::OnUpdate => "emit changelog on update".to_string(),
            EmitMode::OnWindowClose => "emit on window close, then updates".to_string(),
            EmitMode::Every { millis } => format!(
                "emit changes every {} and on window close",
                crate::time::format_duration(*millis, arrow::datatypes::TimeUnit::Millisecond)
            ),
        }
    }
}
