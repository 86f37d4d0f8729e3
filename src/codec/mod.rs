//! Encoding at the edge: events in (NDJSON text, JavaScript columns) and
//! results out (JSON rows, Arrow IPC), metrics.

pub mod columns;
pub mod flat_json;
pub mod ipc;
pub mod json;
pub mod output;
pub mod row_columns;
pub mod string_views;
pub mod time_values;
