//! wasm-bindgen glue: converts and forwards to [`Engine`]; holds no logic.
//!
//! Results and metrics cross the boundary as JSON text (one string per
//! call, not one JS value per cell), results of `output: "arrow"` queries
//! as Arrow IPC bytes taken with `takeArrowOutputs`; events as NDJSON text,
//! Arrow IPC bytes or typed-array columns; errors as JS `Error`s with a `code`.

use std::collections::BTreeSet;
use std::sync::Mutex;

use js_sys::{Error as JsError, Reflect};
use wasm_bindgen::prelude::*;

use crate::codec::columns::{describe_layout, ColumnarRows};
use crate::codec::json::encode_metrics;
use crate::codec::output::{encode_deliveries, OutputFormat};
use crate::codec::row_columns::RowPlanes;
use crate::engine::{Engine, QueryOutput};
use crate::error::RiffleError;
use crate::plan::{LatePolicy, QueryOptions};
use crate::state::checkpoint::Checkpoint;

/// Message of the last panic, kept for JS to read after the trap.
static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);

/// Installs a panic hook that records the message. A panic aborts the wasm
/// instance (it is a bug); the JS side reads the message and refuses
/// further calls.
#[wasm_bindgen(start)]
pub fn start() {
    std::panic::set_hook(Box::new(|info| {
        if let Ok(mut last) = LAST_PANIC.lock() {
            *last = Some(info.to_string());
        }
    }));
}

/// The message of the panic that killed this instance, if any.
#[wasm_bindgen(js_name = lastPanic)]
pub fn last_panic() -> Option<String> {
    LAST_PANIC.lock().ok().and_then(|last| last.clone())
}

/// The engine as seen from JavaScript.
#[wasm_bindgen(js_name = Engine)]
pub struct WasmEngine {
    inner: Engine,
    /// Queries created with `output: "arrow"`.
    arrow_queries: BTreeSet<u32>,
    /// Arrow IPC results not yet taken by JS, numbered as the JSON refers to them.
    pending_arrow: Vec<Vec<u8>>,
    /// Planes of column-wise row deliveries not yet taken by JS.
    pending_rows: RowPlanes,
    /// Whether row batches go column-wise when their types allow.
    columnar_rows: bool,
    /// NDJSON text written here by JavaScript (`reserveInput`).
    input: Vec<u8>,
}

/// Input buffers larger than this are freed after their push.
const KEEP_INPUT_BYTES: usize = 4 << 20;

#[wasm_bindgen(js_class = Engine)]
impl WasmEngine {
    /// A new engine with no streams.
    #[wasm_bindgen(constructor)]
    pub fn new() -> Result<WasmEngine, JsValue> {
        Ok(Self {
            inner: Engine::new().map_err(to_js)?,
            arrow_queries: BTreeSet::new(),
            pending_arrow: Vec::new(),
            pending_rows: RowPlanes::default(),
            columnar_rows: true,
            input: Vec::new(),
        })
    }

    /// Runs `CREATE STREAM`, `CREATE VIEW`, `DROP VIEW` or `INSERT INTO`;
    /// returns the id of an INSERT's job.
    pub fn execute(&mut self, sql: &str) -> Result<Option<u32>, JsValue> {
        self.inner.execute(sql).map_err(to_js)
    }

    /// Closes a query: its operators and state go.
    #[wasm_bindgen(js_name = closeQuery)]
    pub fn close_query(&mut self, id: u32) -> Result<(), JsValue> {
        self.inner.close_query(id).map_err(to_js)?;
        self.arrow_queries.remove(&id);
        Ok(())
    }

    /// Registers a continuous query; returns its id. `late` is "drop" or
    /// "sideOutput"; `state_ttl_millis` bounds an updating aggregate's state;
    /// `output` is "rows" (default) or "arrow".
    #[wasm_bindgen(js_name = createQuery)]
    pub fn create_query(
        &mut self,
        sql: &str,
        late: Option<String>,
        state_ttl_millis: Option<f64>,
        allowed_lateness_millis: Option<f64>,
        output: Option<String>,
    ) -> Result<u32, JsValue> {
        let output = match output.as_deref() {
            None | Some("rows") => OutputFormat::Rows,
            Some("arrow") => OutputFormat::Arrow,
            Some(other) => {
                return Err(to_js(crate::err!(
                    InvalidInput,
                    "unknown output '{other}'; use \"rows\" or \"arrow\""
                )))
            }
        };
        let late = match late.as_deref() {
            None | Some("drop") => LatePolicy::Drop,
            Some("sideOutput") => LatePolicy::SideOutput,
            Some(other) => {
                return Err(to_js(crate::err!(
                    InvalidInput,
                    "unknown late policy '{other}'; use \"drop\" or \"sideOutput\""
                )))
            }
        };
        let state_ttl_millis = state_ttl_millis.map(millis_from_js).transpose()?;
        let allowed_lateness_millis = allowed_lateness_millis
            .map(millis_from_js)
            .transpose()?
            .unwrap_or(0);
        let options = QueryOptions {
            state_ttl_millis,
            late,
            allowed_lateness_millis,
        };
        let id = self.inner.create_query_with(sql, &options).map_err(to_js)?;
        if output == OutputFormat::Arrow {
            self.arrow_queries.insert(id);
        }
        Ok(id)
    }

    /// Column names of a query's results, as a JSON array.
    #[wasm_bindgen(js_name = queryColumns)]
    pub fn query_columns(&self, id: u32) -> Result<Vec<String>, JsValue> {
        let schema = self.inner.query_schema(id).map_err(to_js)?;
        Ok(schema.fields().iter().map(|f| f.name().clone()).collect())
    }

    /// Pushes NDJSON (or a JSON array) as UTF-8 bytes; returns the results
    /// as JSON. Bytes, not a string: JavaScript's `TextEncoder` encodes a
    /// push natively, where a string argument is copied one character at a
    /// time by the glue code (measured: 7% of an NDJSON push).
    #[wasm_bindgen(js_name = pushJson)]
    pub fn push_json(&mut self, stream: &str, utf8: &[u8]) -> Result<String, JsValue> {
        let text = std::str::from_utf8(utf8).map_err(|e| {
            to_js(crate::err!(
                InvalidInput,
                "stream '{stream}': JSON input is not valid UTF-8: {e}"
            ))
        })?;
        let outputs = self.inner.push_json(stream, text).map_err(to_js)?;
        self.encode(&outputs)
    }

    /// Room for `len` bytes of input in wasm memory; returns its address.
    /// JavaScript's `TextEncoder.encodeInto` writes NDJSON there, and
    /// `pushJsonInput` pushes it: no intermediate copy in either runtime.
    /// The address is valid until the next call into the engine.
    #[wasm_bindgen(js_name = reserveInput)]
    pub fn reserve_input(&mut self, len: usize) -> usize {
        if self.input.len() < len {
            self.input.resize(len, 0);
        }
        self.input.as_mut_ptr() as usize
    }

    /// Pushes the first `len` bytes written at `reserveInput`'s address, as
    /// `pushJson` does.
    #[wasm_bindgen(js_name = pushJsonInput)]
    pub fn push_json_input(&mut self, stream: &str, len: usize) -> Result<String, JsValue> {
        let input = std::mem::take(&mut self.input);
        let result = self.push_json(stream, &input[..len.min(input.len())]);
        if input.len() <= KEEP_INPUT_BYTES {
            self.input = input;
        }
        result
    }

    /// The declared fields of a stream and how JS hands each over
    /// column-wise, as JSON `[{name, kind}]`.
    #[wasm_bindgen(js_name = streamLayout)]
    pub fn stream_layout(&self, stream: &str) -> Result<String, JsValue> {
        let schema = self.inner.stream_schema(stream).map_err(to_js)?;
        Ok(describe_layout(&schema))
    }

    /// Pushes events as columns (see `codec::columns`); returns the results
    /// as JSON, or `undefined`, with nothing changed, when the events must
    /// be pushed as NDJSON instead.
    #[wasm_bindgen(js_name = pushColumns)]
    pub fn push_columns(
        &mut self,
        stream: &str,
        rows: u32,
        numbers: &[f64],
        codes: &[u32],
        dictionary: &str,
        dictionary_lengths: &[u32],
    ) -> Result<Option<String>, JsValue> {
        let columns = ColumnarRows {
            rows: rows as usize,
            numbers,
            codes,
            dictionary,
            dictionary_lengths,
        };
        match self.inner.push_columns(stream, &columns).map_err(to_js)? {
            Some(outputs) => self.encode(&outputs).map(Some),
            None => Ok(None),
        }
    }

    /// The numbers plane of the column-wise row deliveries since the last
    /// call (see `codec::row_columns`).
    #[wasm_bindgen(js_name = takeRowNumbers)]
    pub fn take_row_numbers(&mut self) -> Vec<f64> {
        std::mem::take(&mut self.pending_rows.numbers)
    }

    /// The string-codes plane of the column-wise row deliveries since the
    /// last call.
    #[wasm_bindgen(js_name = takeRowCodes)]
    pub fn take_row_codes(&mut self) -> Vec<u32> {
        std::mem::take(&mut self.pending_rows.codes)
    }

    /// The text plane (UTF-8) of the column-wise row deliveries since the
    /// last call: their distinct strings, one after another.
    #[wasm_bindgen(js_name = takeRowText)]
    pub fn take_row_text(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.pending_rows.text)
    }

    /// The length of each string of the text plane, in UTF-16 code units.
    #[wasm_bindgen(js_name = takeRowTextLengths)]
    pub fn take_row_text_lengths(&mut self) -> Vec<u32> {
        std::mem::take(&mut self.pending_rows.text_lengths)
    }

    /// Column-wise row deliveries on (the default) or off (every row batch
    /// as JSON rows); tests compare the two.
    #[wasm_bindgen(js_name = setColumnarRows)]
    pub fn set_columnar_rows(&mut self, on: bool) {
        self.columnar_rows = on;
    }

    /// Arrow IPC results referred to by the JSON of earlier calls
    /// (`"arrow": k` is entry `k`); the list is emptied.
    #[wasm_bindgen(js_name = takeArrowOutputs)]
    pub fn take_arrow_outputs(&mut self) -> Vec<js_sys::Uint8Array> {
        std::mem::take(&mut self.pending_arrow)
            .iter()
            .map(|bytes| js_sys::Uint8Array::from(bytes.as_slice()))
            .collect()
    }

    /// Pushes Arrow IPC stream bytes; returns the results as JSON.
    #[wasm_bindgen(js_name = pushArrow)]
    pub fn push_arrow(&mut self, stream: &str, bytes: &[u8]) -> Result<String, JsValue> {
        let outputs = self.inner.push_arrow_ipc(stream, bytes).map_err(to_js)?;
        self.encode(&outputs)
    }

    /// End of input: closes every window; returns the results as JSON.
    pub fn finish(&mut self) -> Result<String, JsValue> {
        let outputs = self.inner.finish().map_err(to_js)?;
        self.encode(&outputs)
    }

    /// Moves a stream's watermark to `millis` (epoch ms); returns results as JSON.
    #[wasm_bindgen(js_name = advanceWatermark)]
    pub fn advance_watermark(&mut self, stream: &str, millis: f64) -> Result<String, JsValue> {
        let outputs = self
            .inner
            .advance_watermark(stream, millis_from_js(millis)?)
            .map_err(to_js)?;
        self.encode(&outputs)
    }

    /// Tells the engine the wall-clock time (epoch ms); returns results as JSON.
    pub fn tick(&mut self, now_millis: f64) -> Result<String, JsValue> {
        let outputs = self
            .inner
            .tick(millis_from_js(now_millis)?)
            .map_err(to_js)?;
        self.encode(&outputs)
    }

    /// The streaming operator graph of a query, as text.
    pub fn explain(&self, sql: &str) -> Result<String, JsValue> {
        self.inner.explain(sql).map_err(to_js)
    }

    /// Whether any stream declares an idle timeout (JS then ticks a timer).
    #[wasm_bindgen(js_name = needsClock)]
    pub fn needs_clock(&self) -> bool {
        self.inner.needs_clock()
    }

    /// A checkpoint of every stream's position and every query's state, as
    /// one buffer (manifest + Arrow IPC blobs + checksums).
    pub fn checkpoint(&mut self) -> Result<Vec<u8>, JsValue> {
        Ok(self.inner.checkpoint().map_err(to_js)?.to_bytes())
    }

    /// Restores a checkpoint taken by an engine with the same streams and
    /// queries; returns `{stream: {offset, resumeToken}}` as JSON (replay from there).
    pub fn restore(&mut self, bytes: &[u8]) -> Result<String, JsValue> {
        let checkpoint = Checkpoint::from_bytes(bytes).map_err(to_js)?;
        let positions = self.inner.restore(&checkpoint).map_err(to_js)?;
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

    /// Records the application's position in a stream's source after the last push.
    #[wasm_bindgen(js_name = setResumeToken)]
    pub fn set_resume_token(&mut self, stream: &str, token: Option<String>) -> Result<(), JsValue> {
        self.inner.set_resume_token(stream, token).map_err(to_js)
    }

    /// Rows dropped by `bad_rows = 'dead_letter'` streams since the last
    /// call, as JSON `[{stream, row, reason, text}]`.
    #[wasm_bindgen(js_name = takeDeadLetters)]
    pub fn take_dead_letters(&mut self) -> String {
        let letters: Vec<serde_json::Value> = self
            .inner
            .take_dead_letters()
            .into_iter()
            .map(|(stream, row)| serde_json::json!({ "stream": stream, "row": row.row, "reason": row.reason, "text": row.text }))
            .collect();
        serde_json::Value::Array(letters).to_string()
    }

    /// A query's counters as JSON.
    #[wasm_bindgen(js_name = queryMetrics)]
    pub fn query_metrics(&self, id: u32) -> Result<String, JsValue> {
        Ok(encode_metrics(
            &self.inner.query_metrics(id).map_err(to_js)?,
        ))
    }
}

impl WasmEngine {
    /// Results as JSON; Arrow queries' results join the pending buffers.
    fn encode(&mut self, outputs: &[QueryOutput]) -> Result<String, JsValue> {
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
        )
        .map_err(to_js)?;
        self.pending_arrow.extend(encoded.arrow);
        Ok(encoded.json)
    }
}

fn millis_from_js(millis: f64) -> Result<i64, JsValue> {
    if !millis.is_finite() {
        return Err(to_js(crate::err!(
            InvalidInput,
            "a time must be a finite number of epoch milliseconds, got {millis}"
        )));
    }
    // Saturating float-to-int conversion: absurd values clamp, never wrap.
    Ok(millis.floor() as i64)
}

fn to_js(error: RiffleError) -> JsValue {
    let js = JsError::new(error.message());
    js.set_name("RiffleError");
    let _ = Reflect::set(&js, &"code".into(), &error.code().as_str().into());
    js.into()
}
