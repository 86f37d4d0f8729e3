//! Encoding at the edge: events in (NDJSON text, JavaScript columns) and
//! results out (JSON rows), metrics.

pub mod columns;
pub mod json;
