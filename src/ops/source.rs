//! The source of every query on a stream: checks pushed batches against the
//! stream's schema and advances the stream's watermark.
//!
//! A push is validated completely before anything changes, so a rejected
//! push leaves the engine exactly as it was.

use std::sync::Arc;

use arrow::array::{new_null_array, Array, ArrayRef, AsArray, Int64Array};
use arrow::compute::{cast, cast_with_options, CastOptions};
use arrow::datatypes::{DataType, Int64Type};
use arrow::record_batch::RecordBatch;

use crate::catalog::StreamDef;
use crate::err;
use crate::error::Result;
use crate::time::watermark::BoundedOutOfOrderness;
use crate::time::EventTime;

/// A validated batch with its event times and per-row watermarks.
#[derive(Debug, Clone)]
pub struct SourceBatch {
    /// Rows in the stream's schema.
    pub batch: RecordBatch,
    /// Event time of each row, in the stream's unit.
    pub event_times: Vec<EventTime>,
    /// Watermark in force before each row.
    pub row_watermarks: Arc<Int64Array>,
    /// Watermark after the whole batch.
    pub watermark: EventTime,
}

/// Per-stream ingest state.
#[derive(Debug)]
pub struct StreamSource {
    def: Arc<StreamDef>,
    watermark: BoundedOutOfOrderness,
    events_in: u64,
    finished: bool,
}

impl StreamSource {
    /// A source for `def` with no events yet.
    pub fn new(def: Arc<StreamDef>) -> Self {
        let watermark = BoundedOutOfOrderness::new(def.watermark_delay);
        Self {
            def,
            watermark,
            events_in: 0,
            finished: false,
        }
    }

    /// The stream definition.
    pub fn def(&self) -> &Arc<StreamDef> {
        &self.def
    }

    /// Events accepted so far.
    pub fn events_in(&self) -> u64 {
        self.events_in
    }

    /// The current watermark.
    pub fn watermark(&self) -> EventTime {
        self.watermark.current()
    }

    /// Validates a batch and advances the watermark over it.
    pub fn ingest(&mut self, batch: &RecordBatch) -> Result<SourceBatch> {
        if self.finished {
            return Err(err!(
                Finished,
                "stream '{}' was finished; no more events can be pushed",
                self.def.name
            ));
        }
        let batch = conform(&self.def, batch)?;
        let event_times = event_times(&self.def, &batch)?;
        // Validation done: from here on nothing fails.
        let row_watermarks = Arc::new(Int64Array::from(self.watermark.observe(&event_times)));
        self.events_in += batch.num_rows() as u64;
        Ok(SourceBatch {
            batch,
            event_times,
            row_watermarks,
            watermark: self.watermark.current(),
        })
    }

    /// End of input: the watermark jumps to the end of time.
    pub fn finish(&mut self) -> EventTime {
        self.finished = true;
        self.watermark.finish();
        self.watermark.current()
    }
}

/// Brings a batch to the stream's schema: columns matched by name, cast to
/// the declared type, absent nullable columns filled with nulls. Extra
/// columns are ignored.
pub fn conform(def: &StreamDef, batch: &RecordBatch) -> Result<RecordBatch> {
    let strict = CastOptions {
        safe: false,
        ..Default::default()
    };
    let input = batch.schema();
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(def.schema.fields().len());
    for field in def.schema.fields() {
        let column = match input.index_of(field.name()) {
            Ok(index) => {
                let column = batch.column(index);
                if column.data_type() == field.data_type() {
                    Arc::clone(column)
                } else {
                    cast_with_options(column, field.data_type(), &strict).map_err(|e| {
                        err!(
                            InvalidInput,
                            "stream '{}', field '{}': cannot convert {} to {}: {e}",
                            def.name,
                            field.name(),
                            column.data_type(),
                            field.data_type()
                        )
                    })?
                }
            }
            Err(_) if field.is_nullable() && !is_event_time(def, field.name()) => {
                new_null_array(field.data_type(), batch.num_rows())
            }
            Err(_) => {
                return Err(err!(
                    InvalidInput,
                    "stream '{}': every row needs field '{}' ({})",
                    def.name,
                    field.name(),
                    field.data_type()
                ))
            }
        };
        if !field.is_nullable() && column.null_count() > 0 {
            let row = first_null(column.as_ref());
            return Err(err!(
                InvalidInput,
                "stream '{}', row {row}: field '{}' is NOT NULL but has no value",
                def.name,
                field.name()
            ));
        }
        columns.push(column);
    }
    Ok(RecordBatch::try_new(Arc::clone(&def.schema), columns)?)
}

fn is_event_time(def: &StreamDef, name: &str) -> bool {
    def.event_time_column() == name
}

fn event_times(def: &StreamDef, batch: &RecordBatch) -> Result<Vec<EventTime>> {
    let column = batch.column(def.event_time_index);
    if column.null_count() > 0 {
        return Err(err!(
            InvalidInput,
            "stream '{}', row {}: event-time field '{}' is null or missing; every event needs a time",
            def.name,
            first_null(column.as_ref()),
            def.event_time_column()
        ));
    }
    let values = cast(column, &DataType::Int64)?;
    Ok(values.as_primitive::<Int64Type>().values().to_vec())
}

fn first_null(array: &dyn Array) -> usize {
    (0..array.len()).find(|&i| array.is_null(i)).unwrap_or(0)
}
