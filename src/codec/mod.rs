//! Encoding at the edge: JSON in (pushed events) and out (results, metrics).

pub mod json;
