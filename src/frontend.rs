//! What the JavaScript API needs on top of the [`Engine`], in native Rust
//! so that `cargo test` reaches it: query options given as strings and
//! numbers, result delivery (JSON text, column planes of rows, pending
//! Arrow IPC of `output: "arrow"` queries), and positions, dead letters and
//! metrics as JSON. `src/wasm` only converts arguments and forwards here.

use std::collections::BTreeSet;

use crate::codec::json::encode_metrics;
use crate::codec::output::{encode_deliveries, OutputFormat};
use crate::codec::row_columns::RowPlanes;
use crate::engine::{Engine, QueryId, QueryOutput};
use crate::err;
use crate::error::Result;
use crate::plan::{LatePolicy, QueryOptions};
use crate::state::checkpoint::Checkpoint;

/// An engine with the delivery state of its JavaScript side.
#[derive(Debug)]
pub struct Frontend {
    engine: Engine,
    /// Queries created with `output: "arrow"`.
    arrow_queries: BTreeSet<QueryId>,
    /// Arrow IPC results not yet taken, numbered as the JSON refers to them.
    pending_arrow: Vec<Vec<u8>>,
    /// Planes of column-wise row deliveries not yet taken.
    pending_rows: RowPlanes,
    /// Whether row batches go column-wise when their types allow.
    columnar_rows: bool,
}

impl Frontend {
    /// A new engine with no streams.
    pub fn new() -> Result<Self> {
        Ok(Self {
            engine: Engine::new()?,
            arrow_queries: BTreeSet::new(),
            pending_arrow: Vec::new(),
            pending_rows: RowPlanes::default(),
            columnar_rows: true,
        })
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The engine, to push to or change.
    pub fn engine_mut(&mut self) -> &mut Engine {
        &mut self.engine
    }

    /// Registers a query with the options of `engine.query(sql, options)`:
    /// `late` "drop" or "sideOutput", `stateTtlMs`, `allowedLatenessMs`,
    /// `output` "rows" or "arrow". Returns its id.
    pub fn create_query(
        &mut self,
        sql: &str,
        late: Option<&str>,
        state_ttl_millis: Option<f64>,
        allowed_lateness_millis: Option<f64>,
        output: Option<&str>,
    ) -> Result<QueryId> {
        let output = match output {
            None | Some("rows") => OutputFormat::Rows,
            Some("arrow") => OutputFormat::Arrow,
            Some(other) => {
                return Err(err!(
                    InvalidInput,
                    "unknown output '{other}'; use \"rows\" or \"arrow\""
                ))
            }
        };
        let late = match late {
            None | Some("drop") => LatePolicy::Drop,
            Some("sideOutput") => LatePolicy::SideOutput,
            Some(other) => {
                return Err(err!(
                    InvalidInput,
                    "unknown late policy '{other}'; use \"drop\" or \"sideOutput\""
                ))
            }
        };
        let options = QueryOptions {
            state_ttl_millis: state_ttl_millis.map(millis_from_js).transpose()?,
            late,
            allowed_lateness_millis: allowed_lateness_millis
                .map(millis_from_js)
                .transpose()?
                .unwrap_or(0),
        };
        let id = self.engine.create_query_with(sql, &options)?;
        if output == OutputFormat::Arrow {
            self.arrow_queries.insert(id);
        }
        Ok(id)
    }

    /// Closes a query (or INSERT INTO job): its operators and state go.
    pub fn close_query(&mut self, id: QueryId) -> Result<()> {
        self.engine.close_query(id)?;
        self.arrow_queries.remove(&id);
        Ok(())
    }

    /// Results as JSON text; the results of Arrow queries join the pending
    /// Arrow outputs (`"arrow": k` names entry `k`), row batches that go
    /// column-wise the pending row planes.
    pub fn deliver(&mut self, outputs: &[QueryOutput]) -> Result<String> {
        let arrow_queries = &self.arrow_queries;
        let format = |query| match arrow_queries.contains(&query) {
            true => OutputFormat::Arrow,
            false => OutputFormat::Rows,
        };
        let planes = self.columnar_rows.then_some(&mut self.pending_rows);
        let encoded = encode_deliveries(
            outputs.iter().map(|o| (o.query, o.late, &o.batch)),
            format,
            self.pending_arrow.len(),
            planes,
        )?;
        self.pending_arrow.extend(encoded.arrow);
        Ok(encoded.json)
    }

    /// The pending Arrow outputs, which are then empty.
    pub fn take_arrow_outputs(&mut self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.pending_arrow)
    }

    /// The pending row planes, to take from.
    pub fn row_planes(&mut self) -> &mut RowPlanes {
        &mut self.pending_rows
    }

    /// Column-wise row deliveries on (the default) or off (every row batch
    /// as JSON rows).
    pub fn set_columnar_rows(&mut self, on: bool) {
        self.columnar_rows = on;
    }

    /// Restores a checkpoint (bytes as `checkpoint()` wrote them); returns
    /// `{stream: {offset, resumeToken}}` as JSON: replay from there.
    pub fn restore(&mut self, bytes: &[u8]) -> Result<String> {
        let checkpoint = Checkpoint::from_bytes(bytes)?;
        let positions = self.engine.restore(&checkpoint)?;
        let map: serde_json::Map<String, serde_json::Value> = positions
            .into_iter()
            .map(|p| {
                let position =
                    serde_json::json!({ "offset": p.offset, "resumeToken": p.resume_token });
                (p.name, position)
            })
            .collect();
        Ok(serde_json::Value::Object(map).to_string())
    }

    /// Rows dropped by `bad_rows = 'dead_letter'` streams since the last
    /// call, as JSON `[{stream, row, reason, text}]`.
    pub fn take_dead_letters(&mut self) -> String {
        let letters: Vec<serde_json::Value> = self
            .engine
            .take_dead_letters()
            .into_iter()
            .map(|(stream, row)| {
                serde_json::json!({ "stream": stream, "row": row.row, "reason": row.reason, "text": row.text })
            })
            .collect();
        serde_json::Value::Array(letters).to_string()
    }

    /// A query's counters as JSON.
    pub fn query_metrics(&self, id: QueryId) -> Result<String> {
        Ok(encode_metrics(&self.engine.query_metrics(id)?))
    }
}

/// A JavaScript time or duration (epoch ms, or ms) as whole milliseconds:
/// finite numbers only; absurd values clamp, never wrap.
pub fn millis_from_js(millis: f64) -> Result<i64> {
    if !millis.is_finite() {
        return Err(err!(
            InvalidInput,
            "a time must be a finite number of epoch milliseconds, got {millis}"
        ));
    }
    // Saturating float-to-int conversion.
    Ok(millis.floor() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    const DDL: &str = "CREATE STREAM s (k VARCHAR, v BIGINT, ts TIMESTAMP, WATERMARK FOR ts AS ts)";
    const QUERY: &str = "SELECT k, window_start, count(*) AS n FROM TUMBLE(s, ts, INTERVAL '1' SECOND) GROUP BY k, window_start";

    #[test]
    fn options_are_checked_and_a_refused_query_changes_nothing() {
        let mut frontend = Frontend::new().unwrap();
        frontend.engine_mut().execute(DDL).unwrap();
        for (late, ttl, output, says) in [
            (Some("later"), None, None, "late policy"),
            (None, Some(f64::NAN), None, "finite"),
            (None, None, Some("csv"), "unknown output"),
        ] {
            let error = frontend
                .create_query(QUERY, late, ttl, None, output)
                .unwrap_err();
            assert_eq!(error.code(), ErrorCode::InvalidInput, "{error}");
            assert!(error.message().contains(says), "{error}");
        }
        assert_eq!(
            frontend
                .create_query(QUERY, None, None, None, None)
                .unwrap(),
            0
        );
        assert_eq!(millis_from_js(1e300).unwrap(), i64::MAX);
        assert_eq!(millis_from_js(-0.5).unwrap(), -1);
    }

    #[test]
    fn arrow_results_wait_in_order_and_rows_go_column_wise() {
        let mut frontend = Frontend::new().unwrap();
        frontend.engine_mut().execute(DDL).unwrap();
        let rows = frontend
            .create_query(QUERY, None, None, None, None)
            .unwrap();
        let arrow = frontend
            .create_query(QUERY, None, None, None, Some("arrow"))
            .unwrap();
        let push = |frontend: &mut Frontend, ts: i64| {
            let text = format!("{{\"k\":\"a\",\"v\":1,\"ts\":{ts}}}");
            let outputs = frontend.engine_mut().push_json("s", &text).unwrap();
            frontend.deliver(&outputs).unwrap()
        };
        push(&mut frontend, 100);
        let json = push(&mut frontend, 2_500);
        assert!(json.contains(&format!("\"query\":{arrow}")), "{json}");
        assert!(json.contains("\"arrow\":0"), "{json}");
        assert!(json.contains(&format!("\"query\":{rows}")), "{json}");
        let json = push(&mut frontend, 4_000);
        assert!(
            json.contains("\"arrow\":1"),
            "numbered after the pending one: {json}"
        );
        let taken = frontend.take_arrow_outputs();
        assert_eq!(taken.len(), 2);
        assert!(frontend.take_arrow_outputs().is_empty());
        // Row results went column-wise: their planes hold the numbers.
        assert!(!std::mem::take(&mut frontend.row_planes().numbers).is_empty());
        frontend.close_query(arrow).unwrap();
        let json = push(&mut frontend, 6_000);
        assert!(!json.contains("\"arrow\""), "{json}");
        assert_eq!(
            frontend.close_query(arrow).unwrap_err().code(),
            ErrorCode::UnknownQuery
        );
    }
}
