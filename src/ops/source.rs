//! The source of every query on a stream: checks pushed batches against the
//! stream's schema and advances the stream's watermark.
//!
//! A push is validated completely before anything changes, so a rejected
//! push leaves the engine exactly as it was.

use std::sync::Arc;

use arrow::array::BooleanArray;
use arrow::array::{new_null_array, Array, ArrayRef, AsArray, Int64Array};
use arrow::compute::{cast_with_options, filter_record_batch, CastOptions};
use arrow::datatypes::{DataType, Int64Type, SchemaRef};
use arrow::record_batch::RecordBatch;

use crate::catalog::StreamDef;
use crate::codec::string_views::utf8_to_view;
use crate::codec::time_values::{retype, to_type};
use crate::err;
use crate::error::Result;
use crate::state::checkpoint::StreamManifest;
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

/// Per-stream ingest state. Small (no rows): a push-like call works on a
/// copy and keeps it only if the whole engine took the call.
#[derive(Debug, Clone)]
pub struct StreamSource {
    def: Arc<StreamDef>,
    watermark: BoundedOutOfOrderness,
    events_in: u64,
    finished: bool,
    /// Wall-clock time (epoch ms) of the last accepted push, if known.
    last_arrival_millis: Option<i64>,
    /// The application's position after the last push, if it gave one.
    resume_token: Option<String>,
    /// Rows dropped as bad (skip / dead-letter policies).
    bad_rows: u64,
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
            last_arrival_millis: None,
            resume_token: None,
            bad_rows: 0,
        }
    }

    /// The stream definition.
    pub fn def(&self) -> &Arc<StreamDef> {
        &self.def
    }

    /// One line for EXPLAIN.
    pub fn describe(&self) -> String {
        let def = &self.def;
        let unit = def.event_time_unit;
        let mut line = format!(
            "StreamSource: {} (event time {}, watermark {} - {}",
            def.name,
            def.event_time_column(),
            def.event_time_column(),
            crate::time::format_duration(def.watermark_delay, unit)
        );
        if let Some(idle) = def.idle_timeout_millis {
            line.push_str(&format!(
                ", idle after {}",
                crate::time::format_duration(idle, arrow::datatypes::TimeUnit::Millisecond)
            ));
        }
        if !def.primary_key.is_empty() {
            line.push_str(&format!(", primary key ({})", def.primary_key.join(", ")));
        }
        if !def.connector_options.is_empty() {
            let options: Vec<String> = def
                .connector_options
                .iter()
                .map(|(key, value)| format!("'{key}' = '{value}'"))
                .collect();
            line.push_str(&format!(
                ", WITH ({}) kept, not used: rows come from pushes",
                options.join(", ")
            ));
        }
        line.push(')');
        line
    }

    /// Counts rows dropped as bad.
    pub fn count_bad_rows(&mut self, rows: u64) {
        self.bad_rows += rows;
    }

    /// Rows dropped as bad so far.
    pub fn bad_rows(&self) -> u64 {
        self.bad_rows
    }

    /// Events accepted so far.
    pub fn events_in(&self) -> u64 {
        self.events_in
    }

    /// The current watermark.
    pub fn watermark(&self) -> EventTime {
        self.watermark.current()
    }

    /// Validates a batch and advances the watermark over it. `now_millis`
    /// is the wall clock, if known, for idle detection.
    pub fn ingest(&mut self, batch: &RecordBatch, now_millis: Option<i64>) -> Result<SourceBatch> {
        if self.finished {
            return Err(err!(
                Finished,
                "stream '{}' was finished; no more events can be pushed",
                self.def.name
            ));
        }
        let batch = conform(&self.def, batch)?;
        let event_times = event_times(&self.def, &batch)?;
        if let Some(limit) = future_limit(&self.def, now_millis) {
            if let Some(row) = event_times.iter().position(|&ts| ts > limit) {
                return Err(err!(
                    InvalidInput,
                    "stream '{}', row {row}: event time is more than max_future ahead of the wall clock",
                    self.def.name
                ));
            }
        }
        // Validation done: from here on nothing fails.
        let row_watermarks = Arc::new(Int64Array::from(self.watermark.observe(&event_times)));
        self.events_in += batch.num_rows() as u64;
        if now_millis.is_some() {
            self.last_arrival_millis = now_millis;
        }
        Ok(SourceBatch {
            batch,
            event_times,
            row_watermarks,
            watermark: self.watermark.current(),
        })
    }

    /// Moves the watermark to at least `watermark` (never back). Returns
    /// the new watermark if it moved.
    pub fn advance_to(&mut self, watermark: EventTime) -> Result<Option<EventTime>> {
        if self.finished {
            return Err(err!(Finished, "stream '{}' was finished", self.def.name));
        }
        let before = self.watermark.current();
        self.watermark.advance_to(watermark);
        Ok((self.watermark.current() > before).then(|| self.watermark.current()))
    }

    /// Wall-clock tick: a stream with an idle timeout that has had no push
    /// for that long gets its watermark moved to `now - idle_timeout`, so
    /// windows close on a quiet feed. Returns the new watermark if it moved.
    pub fn on_wall_clock(&mut self, now_millis: i64) -> Option<EventTime> {
        let timeout = self.def.idle_timeout_millis?;
        if self.finished {
            return None;
        }
        let last = *self.last_arrival_millis.get_or_insert(now_millis);
        if now_millis.saturating_sub(last) < timeout {
            return None;
        }
        let target_millis = now_millis.saturating_sub(timeout);
        let target = millis_to_ticks(target_millis, self.def.event_time_unit);
        let before = self.watermark.current();
        self.watermark.advance_to(target);
        (self.watermark.current() > before).then(|| self.watermark.current())
    }

    /// Whether the stream has been quiet past its idle timeout.
    pub fn is_idle(&self, now_millis: i64) -> bool {
        match (self.def.idle_timeout_millis, self.last_arrival_millis) {
            (Some(timeout), Some(last)) => now_millis.saturating_sub(last) >= timeout,
            _ => false,
        }
    }

    /// The stream's position, for a checkpoint.
    pub fn position(&self) -> StreamManifest {
        StreamManifest {
            name: self.def.name.clone(),
            offset: self.events_in,
            watermark: self.watermark.current(),
            finished: self.finished,
            last_arrival_millis: self.last_arrival_millis,
            resume_token: self.resume_token.clone(),
        }
    }

    /// Records the application's position after the last push.
    pub fn set_resume_token(&mut self, token: Option<String>) {
        self.resume_token = token;
    }

    /// Restores a position written by [`Self::position`].
    pub fn restore(&mut self, position: &StreamManifest) {
        self.events_in = position.offset;
        self.watermark = BoundedOutOfOrderness::new(self.def.watermark_delay);
        self.watermark.advance_to(position.watermark);
        self.finished = position.finished;
        self.last_arrival_millis = position.last_arrival_millis;
        self.resume_token = position.resume_token.clone();
    }

    /// End of input: the watermark jumps to the end of time.
    pub fn finish(&mut self) -> EventTime {
        self.finished = true;
        self.watermark.finish();
        self.watermark.current()
    }
}

/// A row a push could not take, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRow {
    /// Position of the row in its push (0-based).
    pub row: usize,
    /// What is wrong with it.
    pub reason: String,
    /// The row as JSON, when known.
    pub text: Option<String>,
}

/// Splits a batch into the rows that fit the stream and those that do not
/// (missing or null event time, NOT NULL fields without a value, values that
/// do not convert to the declared type). `conform` accepts the good ones.
pub fn split_bad_rows(
    def: &StreamDef,
    batch: &RecordBatch,
    now_millis: Option<i64>,
) -> Result<(RecordBatch, Vec<BadRow>)> {
    let rows = batch.num_rows();
    let mut reasons: Vec<Option<String>> = vec![None; rows];
    let input = batch.schema();
    for field in def.schema.fields() {
        let required = !field.is_nullable() || is_event_time(def, field.name());
        let Ok(index) = input.index_of(field.name()) else {
            if required {
                for reason in reasons.iter_mut().filter(|r| r.is_none()) {
                    *reason = Some(format!("field '{}' is missing", field.name()));
                }
            }
            continue;
        };
        let column = batch.column(index);
        // Lenient (arrow's default options): a value that does not convert is null.
        let converted = to_type(column, field.data_type())?;
        for (row, reason) in reasons.iter_mut().enumerate() {
            if reason.is_some() || !converted.is_null(row) {
                continue;
            }
            if column.is_valid(row) {
                *reason = Some(format!(
                    "field '{}': value does not convert to {}",
                    field.name(),
                    field.data_type()
                ));
            } else if required {
                *reason = Some(format!("field '{}' has no value", field.name()));
            }
        }
    }
    if let Some(limit) = future_limit(def, now_millis) {
        if let Ok(index) = input.index_of(def.event_time_column()) {
            let declared = def.schema.field(def.event_time_index).data_type();
            let times = to_type(batch.column(index), declared)?;
            let times = to_type(&times, &DataType::Int64)?;
            let times = times.as_primitive::<Int64Type>();
            for (row, reason) in reasons.iter_mut().enumerate() {
                if reason.is_none() && times.is_valid(row) && times.value(row) > limit {
                    *reason = Some(format!(
                        "field '{}': more than max_future ahead of the wall clock",
                        def.event_time_column()
                    ));
                }
            }
        }
    }
    let good = BooleanArray::from_iter(reasons.iter().map(|r| Some(r.is_none())));
    let bad: Vec<BadRow> = reasons
        .into_iter()
        .enumerate()
        .filter_map(|(row, reason)| {
            reason.map(|reason| BadRow {
                row,
                reason,
                text: None,
            })
        })
        .collect();
    let kept = if bad.is_empty() {
        batch.clone()
    } else {
        filter_record_batch(batch, &good)?
    };
    Ok((kept, bad))
}

/// The latest acceptable event time (in the stream's ticks), if the stream
/// bounds it and the wall clock is known.
fn future_limit(def: &StreamDef, now_millis: Option<i64>) -> Option<EventTime> {
    let limit_millis = now_millis?.saturating_add(def.max_future_millis?);
    Some(millis_to_ticks(limit_millis, def.event_time_unit))
}

/// Brings a batch to the stream's schema: columns matched by name, cast to
/// the declared type, absent nullable columns filled with nulls. Extra
/// columns are ignored.
pub fn conform(def: &StreamDef, batch: &RecordBatch) -> Result<RecordBatch> {
    conform_to(
        &format!("stream '{}'", def.name),
        &def.schema,
        batch,
        &|name| is_event_time(def, name),
    )
}

/// [`conform`] to `schema`, for `what` (`stream 'x'`, `table 'y'`);
/// `required` columns must be present even when nullable.
pub fn conform_to(
    what: &str,
    schema: &SchemaRef,
    batch: &RecordBatch,
    required: &dyn Fn(&str) -> bool,
) -> Result<RecordBatch> {
    let strict = CastOptions {
        safe: false,
        ..Default::default()
    };
    let input = batch.schema();
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    for field in schema.fields() {
        let column = match input.index_of(field.name()) {
            Ok(index) => {
                let column = batch.column(index);
                if let Some(same) = retype(column, field.data_type()) {
                    same
                } else if let (DataType::Utf8, DataType::Utf8View) =
                    (column.data_type(), field.data_type())
                {
                    Arc::new(utf8_to_view(column.as_string::<i32>()))
                } else {
                    cast_with_options(column, field.data_type(), &strict).map_err(|e| {
                        err!(
                            InvalidInput,
                            "{what}, field '{}': cannot convert {} to {}: {e}",
                            field.name(),
                            column.data_type(),
                            field.data_type()
                        )
                    })?
                }
            }
            Err(_) if field.is_nullable() && !required(field.name()) => {
                new_null_array(field.data_type(), batch.num_rows())
            }
            Err(_) => {
                return Err(err!(
                    InvalidInput,
                    "{what}: every row needs field '{}' ({})",
                    field.name(),
                    field.data_type()
                ))
            }
        };
        if !field.is_nullable() && column.null_count() > 0 {
            let row = first_null(column.as_ref());
            return Err(err!(
                InvalidInput,
                "{what}, row {row}: field '{}' is NOT NULL but has no value",
                field.name()
            ));
        }
        columns.push(column);
    }
    Ok(RecordBatch::try_new(Arc::clone(schema), columns)?)
}

/// Epoch milliseconds in ticks of `unit` (saturating).
pub fn millis_to_ticks(millis: i64, unit: arrow::datatypes::TimeUnit) -> EventTime {
    let nanos = i128::from(millis) * 1_000_000;
    let ticks = nanos.div_euclid(i128::from(crate::time::nanos_per_unit(unit)));
    ticks.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

fn is_event_time(def: &StreamDef, name: &str) -> bool {
    def.event_time_column() == name
}

/// Each row's event time in the stream's ticks; a null one is an error.
pub fn event_times(def: &StreamDef, batch: &RecordBatch) -> Result<Vec<EventTime>> {
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
    let values = to_type(column, &DataType::Int64)?;
    Ok(values.as_primitive::<Int64Type>().values().to_vec())
}

fn first_null(array: &dyn Array) -> usize {
    (0..array.len()).find(|&i| array.is_null(i)).unwrap_or(0)
}
