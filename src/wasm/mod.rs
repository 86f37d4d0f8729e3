//! wasm-bindgen glue: converts and forwards to [`Frontend`] (and its
//! [`Engine`]); holds no logic of its own.
//!
//! Results and metrics cross the boundary as JSON text (one string per
//! call, not one JS value per cell), results of `output: "arrow"` queries
//! as Arrow IPC bytes taken with `takeArrowOutputs`; events as NDJSON text,
//! Arrow IPC bytes or typed-array columns; errors as JS `Error`s with a `code`.

use std::sync::Mutex;

use js_sys::{Error as JsError, Reflect};
use wasm_bindgen::prelude::*;

use crate::codec::columns::{describe_layout, ColumnarRows};
#[cfg(doc)]
use crate::engine::Engine;
use crate::engine::QueryOutput;
use crate::error::{Result, RiffleError};
use crate::frontend::{millis_from_js, Frontend};

/// Message of the last panic, kept for JS to read after the trap.
static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);

/// Installs a panic hook that records the message. A panic aborts the wasm
/// instance (it is a bug); the JS side reads the message and refuses
/// further calls. Shipped builds (scripts/build.sh) trap at the panic
/// without running the hook, so only `wasm-dev` builds keep the message.
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
    inner: Frontend,
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
            inner: Frontend::new().map_err(to_js)?,
            input: Vec::new(),
        })
    }

    /// Runs `CREATE STREAM`, `CREATE VIEW`, `DROP VIEW` or `INSERT INTO`;
    /// returns the id of an INSERT's job.
    pub fn execute(&mut self, sql: &str) -> Result<Option<u32>, JsValue> {
        self.inner.engine_mut().execute(sql).map_err(to_js)
    }

    /// Closes a query: its operators and state go.
    #[wasm_bindgen(js_name = closeQuery)]
    pub fn close_query(&mut self, id: u32) -> Result<(), JsValue> {
        self.inner.close_query(id).map_err(to_js)
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
        self.inner
            .create_query(
                sql,
                late.as_deref(),
                state_ttl_millis,
                allowed_lateness_millis,
                output.as_deref(),
            )
            .map_err(to_js)
    }

    /// Column names of a query's results, as a JSON array.
    #[wasm_bindgen(js_name = queryColumns)]
    pub fn query_columns(&self, id: u32) -> Result<Vec<String>, JsValue> {
        let schema = self.inner.engine().query_schema(id).map_err(to_js)?;
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
        let outputs = self.inner.engine_mut().push_json(stream, text);
        self.deliver(outputs)
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
        let schema = self.inner.engine().stream_schema(stream).map_err(to_js)?;
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
        match self
            .inner
            .engine_mut()
            .push_columns(stream, &columns)
            .map_err(to_js)?
        {
            Some(outputs) => self.deliver(Ok(outputs)).map(Some),
            None => Ok(None),
        }
    }

    /// The numbers plane of the column-wise row deliveries since the last
    /// call (see `codec::row_columns`).
    #[wasm_bindgen(js_name = takeRowNumbers)]
    pub fn take_row_numbers(&mut self) -> Vec<f64> {
        std::mem::take(&mut self.inner.row_planes().numbers)
    }

    /// The string-codes plane of the column-wise row deliveries since the
    /// last call.
    #[wasm_bindgen(js_name = takeRowCodes)]
    pub fn take_row_codes(&mut self) -> Vec<u32> {
        std::mem::take(&mut self.inner.row_planes().codes)
    }

    /// The text plane (UTF-8) of the column-wise row deliveries since the
    /// last call: their distinct strings, one after another.
    #[wasm_bindgen(js_name = takeRowText)]
    pub fn take_row_text(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.inner.row_planes().text)
    }

    /// The length of each string of the text plane, in UTF-16 code units.
    #[wasm_bindgen(js_name = takeRowTextLengths)]
    pub fn take_row_text_lengths(&mut self) -> Vec<u32> {
        std::mem::take(&mut self.inner.row_planes().text_lengths)
    }

    /// Column-wise row deliveries on (the default) or off (every row batch
    /// as JSON rows); tests compare the two.
    #[wasm_bindgen(js_name = setColumnarRows)]
    pub fn set_columnar_rows(&mut self, on: bool) {
        self.inner.set_columnar_rows(on);
    }

    /// Arrow IPC results referred to by the JSON of earlier calls
    /// (`"arrow": k` is entry `k`); the list is emptied.
    #[wasm_bindgen(js_name = takeArrowOutputs)]
    pub fn take_arrow_outputs(&mut self) -> Vec<js_sys::Uint8Array> {
        self.inner
            .take_arrow_outputs()
            .iter()
            .map(|bytes| js_sys::Uint8Array::from(bytes.as_slice()))
            .collect()
    }

    /// Pushes Arrow IPC stream bytes; returns the results as JSON.
    #[wasm_bindgen(js_name = pushArrow)]
    pub fn push_arrow(&mut self, stream: &str, bytes: &[u8]) -> Result<String, JsValue> {
        let outputs = self.inner.engine_mut().push_arrow_ipc(stream, bytes);
        self.deliver(outputs)
    }

    /// End of input: closes every window; returns the results as JSON.
    pub fn finish(&mut self) -> Result<String, JsValue> {
        let outputs = self.inner.engine_mut().finish();
        self.deliver(outputs)
    }

    /// Moves a stream's watermark to `millis` (epoch ms); returns results as JSON.
    #[wasm_bindgen(js_name = advanceWatermark)]
    pub fn advance_watermark(&mut self, stream: &str, millis: f64) -> Result<String, JsValue> {
        let millis = millis_from_js(millis).map_err(to_js)?;
        let outputs = self.inner.engine_mut().advance_watermark(stream, millis);
        self.deliver(outputs)
    }

    /// Tells the engine the wall-clock time (epoch ms); returns results as JSON.
    pub fn tick(&mut self, now_millis: f64) -> Result<String, JsValue> {
        let now = millis_from_js(now_millis).map_err(to_js)?;
        let outputs = self.inner.engine_mut().tick(now);
        self.deliver(outputs)
    }

    /// The streaming operator graph of a query, as text.
    pub fn explain(&self, sql: &str) -> Result<String, JsValue> {
        self.inner.engine().explain(sql).map_err(to_js)
    }

    /// Whether any stream declares an idle timeout (JS then ticks a timer).
    #[wasm_bindgen(js_name = needsClock)]
    pub fn needs_clock(&self) -> bool {
        self.inner.engine().needs_clock()
    }

    /// A checkpoint of every stream's position and every query's state, as
    /// one buffer (manifest + Arrow IPC blobs + checksums).
    pub fn checkpoint(&mut self) -> Result<Vec<u8>, JsValue> {
        Ok(self
            .inner
            .engine_mut()
            .checkpoint()
            .map_err(to_js)?
            .to_bytes())
    }

    /// Restores a checkpoint taken by an engine with the same streams and
    /// queries; returns `{stream: {offset, resumeToken}}` as JSON (replay from there).
    pub fn restore(&mut self, bytes: &[u8]) -> Result<String, JsValue> {
        self.inner.restore(bytes).map_err(to_js)
    }

    /// Records the application's position in a stream's source after the last push.
    #[wasm_bindgen(js_name = setResumeToken)]
    pub fn set_resume_token(&mut self, stream: &str, token: Option<String>) -> Result<(), JsValue> {
        self.inner
            .engine_mut()
            .set_resume_token(stream, token)
            .map_err(to_js)
    }

    /// Rows dropped by `bad_rows = 'dead_letter'` streams since the last
    /// call, as JSON `[{stream, row, reason, text}]`.
    #[wasm_bindgen(js_name = takeDeadLetters)]
    pub fn take_dead_letters(&mut self) -> String {
        self.inner.take_dead_letters()
    }

    /// Inserts or replaces rows of a table by key, from JSON objects
    /// (NDJSON or one array) as UTF-8 bytes; returns what changed as JSON
    /// `{inserted, updated, deleted}`.
    #[wasm_bindgen(js_name = upsertJson)]
    pub fn upsert_json(&mut self, table: &str, utf8: &[u8]) -> Result<String, JsValue> {
        let text = table_text(table, utf8)?;
        let change = self.inner.engine_mut().upsert_json(table, text);
        Ok(encode_change(change.map_err(to_js)?))
    }

    /// Inserts or replaces rows of a table from Arrow IPC stream bytes.
    #[wasm_bindgen(js_name = upsertArrow)]
    pub fn upsert_arrow(&mut self, table: &str, bytes: &[u8]) -> Result<String, JsValue> {
        let change = self.inner.engine_mut().upsert_arrow_ipc(table, bytes);
        Ok(encode_change(change.map_err(to_js)?))
    }

    /// Removes rows of a table by key, from JSON objects holding the key.
    #[wasm_bindgen(js_name = deleteJson)]
    pub fn delete_json(&mut self, table: &str, utf8: &[u8]) -> Result<String, JsValue> {
        let text = table_text(table, utf8)?;
        let change = self.inner.engine_mut().delete_json(table, text);
        Ok(encode_change(change.map_err(to_js)?))
    }

    /// Rows a table holds.
    #[wasm_bindgen(js_name = tableSize)]
    pub fn table_size(&self, table: &str) -> Result<u32, JsValue> {
        let rows = self.inner.engine().table_len(table).map_err(to_js)?;
        Ok(u32::try_from(rows).unwrap_or(u32::MAX))
    }

    /// A query's counters as JSON.
    #[wasm_bindgen(js_name = queryMetrics)]
    pub fn query_metrics(&self, id: u32) -> Result<String, JsValue> {
        self.inner.query_metrics(id).map_err(to_js)
    }
}

impl WasmEngine {
    /// A push-like call's results as JSON (see [`Frontend::deliver`]).
    fn deliver(&mut self, outputs: Result<Vec<QueryOutput>>) -> Result<String, JsValue> {
        self.inner.deliver(&outputs.map_err(to_js)?).map_err(to_js)
    }
}

fn table_text<'a>(table: &str, utf8: &'a [u8]) -> Result<&'a str, JsValue> {
    std::str::from_utf8(utf8).map_err(|e| {
        to_js(crate::err!(
            InvalidInput,
            "table '{table}': JSON input is not valid UTF-8: {e}"
        ))
    })
}

fn encode_change(change: crate::table::TableChange) -> String {
    format!(
        "{{\"inserted\":{},\"updated\":{},\"deleted\":{}}}",
        change.inserted, change.updated, change.deleted
    )
}

fn to_js(error: RiffleError) -> JsValue {
    let js = JsError::new(error.message());
    js.set_name("RiffleError");
    let _ = Reflect::set(&js, &"code".into(), &error.code().as_str().into());
    js.into()
}
