//! Riffle: streaming SQL for the edge.
//!
//! DataFusion parses, plans and evaluates; Riffle's streaming operators own
//! event time and state. Events are pushed synchronously; each push runs to
//! completion and returns the results it completed.
//!
//! ```
//! use riffle::Engine;
//!
//! let mut engine = Engine::new().unwrap();
//! engine.execute("CREATE STREAM trades (symbol VARCHAR, price DOUBLE, ts TIMESTAMP, \
//!                 WATERMARK FOR ts AS ts - INTERVAL '2' SECOND)").unwrap();
//! let q = engine.create_query("SELECT symbol, window_start, count(*) AS n \
//!     FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE) GROUP BY symbol, window_start").unwrap();
//! let out = engine.push_json("trades", r#"{"symbol":"A","price":1.5,"ts":1000}"#).unwrap();
//! assert!(out.is_empty()); // the window [0, 60 s) is still open
//! let out = engine.finish().unwrap();
//! assert_eq!(out[0].query, q);
//! assert_eq!(out[0].batch.num_rows(), 1);
//! ```
//!
//! Layers, each depending only on those below it:
//! `wasm` (bindings) → `engine` → `plan` → `sql` / `ops` → `codec`, `time`, `catalog`, `metrics`, `error`.

#![deny(missing_docs)]

pub mod catalog;
pub mod codec;
pub mod engine;
pub mod error;
pub mod frontend;
pub mod metrics;
pub mod ops;
pub mod plan;
pub mod sql;
pub mod state;
pub mod table;
pub mod time;
pub mod wasm;

pub use engine::{Engine, QueryId, QueryOutput};
pub use error::{ErrorCode, RiffleError};
pub use metrics::{JoinMetrics, JoinSideMetrics, LookupMetrics, QueryMetrics};
pub use plan::{LatePolicy, QueryOptions};
