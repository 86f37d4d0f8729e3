//! Stream definitions: what `CREATE STREAM` declares.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, IntervalMonthDayNano, Schema, SchemaRef, TimeUnit};

use crate::err;
use crate::error::Result;
use crate::time::interval::interval_to_units;

/// A declared stream: schema, event-time column and watermark delay.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamDef {
    /// Stream name (normalised like a SQL identifier).
    pub name: String,
    /// Columns, in declaration order.
    pub schema: SchemaRef,
    /// Index of the event-time column in `schema`.
    pub event_time_index: usize,
    /// Unit of the event-time column.
    pub event_time_unit: TimeUnit,
    /// Tolerated disorder in ticks of `event_time_unit`.
    pub watermark_delay: i64,
    /// Wall-clock milliseconds without events after which the watermark
    /// follows the wall clock (`WITH (idle_timeout = INTERVAL '5' SECOND)`).
    pub idle_timeout_millis: Option<i64>,
    /// What a push does with rows that do not fit (`WITH (bad_rows = 'skip')`).
    pub bad_rows: BadRowPolicy,
    /// Rows whose event time is more than this many milliseconds ahead of
    /// the wall clock are bad rows (`WITH (max_future = INTERVAL '1' HOUR)`),
    /// so one absurd timestamp cannot push the watermark past everything.
    pub max_future_millis: Option<i64>,
    /// A view (`CREATE VIEW`): its rows come from its query, not from
    /// pushes; its watermark is its query's.
    pub is_view: bool,
    /// Whether `event_time_index` names an event-time column. Always for a
    /// stream; for a view, when its query passes one through (the stream's
    /// event-time column, or a window aggregate's `window_time`).
    pub has_event_time: bool,
    /// A view whose query gives a changelog (GROUP BY without a window, or
    /// EMIT ON UPDATE): its rows carry their change kind in a last `_op`
    /// column that `schema` leaves out, so SQL over it sees the result's
    /// own columns.
    pub is_changelog: bool,
    /// Flink's connector options (`WITH ('connector' = 'kafka', ...)`), kept
    /// as written for `explain()`: rows come from pushes, not from them.
    pub connector_options: Vec<(String, String)>,
    /// `PRIMARY KEY (...)` columns (normalised), if declared: a row is a
    /// new version of the earlier rows with the same key.
    pub primary_key: Vec<String>,
}

/// What a push does with rows that do not fit the stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum BadRowPolicy {
    /// Reject the whole push with a typed error naming the row (default).
    #[default]
    Reject,
    /// Drop bad rows, count them, keep the good ones.
    Skip,
    /// Drop bad rows and hand them to the application with the reason.
    DeadLetter,
}

impl StreamDef {
    /// Checks the event-time column and builds the definition.
    pub fn try_new(
        name: String,
        schema: SchemaRef,
        event_time_column: &str,
        watermark_delay: IntervalMonthDayNano,
    ) -> Result<Self> {
        let (index, field) = schema.column_with_name(event_time_column).ok_or_else(|| {
            err!(
                SqlPlan,
                "WATERMARK FOR names column '{event_time_column}', which stream '{name}' does not declare"
            )
        })?;
        let unit = match field.data_type() {
            DataType::Timestamp(unit, _) => *unit,
            // BIGINT event time holds epoch milliseconds, the JavaScript convention.
            DataType::Int64 => TimeUnit::Millisecond,
            other => {
                return Err(err!(
                    Unsupported,
                    "event-time column '{event_time_column}' has type {other}; declare it as TIMESTAMP or as BIGINT (epoch milliseconds)"
                ))
            }
        };
        let delay = interval_to_units(watermark_delay, unit, "the watermark delay")?;
        if delay < 0 {
            return Err(err!(SqlPlan, "the watermark delay must not be negative"));
        }
        Ok(Self {
            name,
            schema,
            event_time_index: index,
            event_time_unit: unit,
            watermark_delay: delay,
            idle_timeout_millis: None,
            bad_rows: BadRowPolicy::Reject,
            max_future_millis: None,
            is_view: false,
            has_event_time: true,
            is_changelog: false,
            connector_options: Vec::new(),
            primary_key: Vec::new(),
        })
    }

    /// The definition of view `name`, whose query gives rows in `schema`
    /// with event times in `unit`, in column `event_time` if it has one;
    /// a `changelog` view's rows carry `_op` after the columns of `schema`.
    pub fn view(
        name: String,
        schema: SchemaRef,
        unit: TimeUnit,
        event_time: Option<usize>,
        changelog: bool,
    ) -> Self {
        Self {
            name,
            schema,
            event_time_index: event_time.unwrap_or(0),
            event_time_unit: unit,
            watermark_delay: 0,
            idle_timeout_millis: None,
            bad_rows: BadRowPolicy::Reject,
            max_future_millis: None,
            is_view: true,
            has_event_time: event_time.is_some(),
            is_changelog: changelog,
            connector_options: Vec::new(),
            primary_key: Vec::new(),
        }
    }

    /// "a stream" or "a view", for messages.
    pub fn kind_name(&self) -> &'static str {
        if self.is_view {
            "a view"
        } else {
            "a stream"
        }
    }

    /// Name of the event-time column.
    pub fn event_time_column(&self) -> &str {
        self.schema.field(self.event_time_index).name()
    }

    /// Type of `window_start` / `window_end`: the event-time column's
    /// timestamp type, or millisecond timestamps for BIGINT event time.
    pub fn window_type(&self) -> DataType {
        match self.schema.field(self.event_time_index).data_type() {
            DataType::Timestamp(unit, tz) => DataType::Timestamp(*unit, tz.clone()),
            _ => DataType::Timestamp(TimeUnit::Millisecond, None),
        }
    }

    /// The stream's schema followed by the three window columns that window
    /// table functions add (Flink's `window_start`, `window_end`,
    /// `window_time`). They are nullable: DataFusion's physical planner
    /// rejects a nullability mismatch with the expressions that fill them.
    pub fn windowed_schema(&self) -> SchemaRef {
        let time_type = self.window_type();
        let mut fields: Vec<Field> = self
            .schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        fields.push(Field::new(WINDOW_START, time_type.clone(), true));
        fields.push(Field::new(WINDOW_END, time_type.clone(), true));
        fields.push(Field::new(WINDOW_TIME, time_type, true));
        Arc::new(Schema::new(fields))
    }
}

/// Column added by window table functions: inclusive window start.
pub const WINDOW_START: &str = "window_start";
/// Column added by window table functions: exclusive window end.
pub const WINDOW_END: &str = "window_end";
/// Column added by window table functions: the window's event time,
/// `window_end` minus 1 ms (Flink's), the event time of its results.
pub const WINDOW_TIME: &str = "window_time";

/// All streams of one engine, shared with the SQL front end's table functions.
#[derive(Debug, Default)]
pub struct StreamCatalog {
    streams: HashMap<String, Arc<StreamDef>>,
    /// Tables (`CREATE TABLE ... PRIMARY KEY` without a watermark): their
    /// definitions; the engine holds their rows.
    tables: HashMap<String, Arc<TableDef>>,
}

impl StreamCatalog {
    /// Adds a stream or view; errors when the name is taken.
    pub fn insert(&mut self, def: StreamDef) -> Result<Arc<StreamDef>> {
        self.check_name_free(&def.name)?;
        let def = Arc::new(def);
        self.streams.insert(def.name.clone(), Arc::clone(&def));
        Ok(def)
    }

    /// Adds a table; errors when the name is taken.
    pub fn insert_table(&mut self, def: TableDef) -> Result<Arc<TableDef>> {
        self.check_name_free(&def.name)?;
        let def = Arc::new(def);
        self.tables.insert(def.name.clone(), Arc::clone(&def));
        Ok(def)
    }

    /// Streams, views and tables share one namespace.
    fn check_name_free(&self, name: &str) -> Result<()> {
        if let Some(existing) = self.streams.get(name) {
            return Err(err!(
                StreamExists,
                "{} named '{name}' already exists",
                existing.kind_name()
            ));
        }
        if self.tables.contains_key(name) {
            return Err(err!(StreamExists, "a table named '{name}' already exists"));
        }
        Ok(())
    }

    /// A table by name.
    pub fn table(&self, name: &str) -> Option<Arc<TableDef>> {
        self.tables.get(name).cloned()
    }

    /// Removes a stream or view.
    pub fn remove(&mut self, name: &str) -> Option<Arc<StreamDef>> {
        self.streams.remove(name)
    }

    /// Looks a stream (or view) up by name.
    pub fn get(&self, name: &str) -> Result<Arc<StreamDef>> {
        self.streams.get(name).cloned().ok_or_else(|| {
            let mut known: Vec<&str> = self.streams.keys().map(String::as_str).collect();
            known.sort_unstable();
            err!(
                UnknownStream,
                "unknown stream '{name}'; declare it with CREATE STREAM {name} (...) first (streams: {})",
                if known.is_empty() { "none".to_string() } else { known.join(", ") }
            )
        })
    }
}

/// A declared table (`CREATE TABLE t (..., PRIMARY KEY (k))` without a
/// watermark): rows the application holds and changes by key, which
/// streams are joined with as they stand (a lookup join).
#[derive(Debug, Clone, PartialEq)]
pub struct TableDef {
    /// Table name (normalised like a SQL identifier).
    pub name: String,
    /// Columns, in declaration order.
    pub schema: SchemaRef,
    /// Indices in `schema` of the primary key's columns, in key order.
    pub primary_key: Vec<usize>,
    /// Flink's connector options, kept as written for `explain()`.
    pub connector_options: Vec<(String, String)>,
}

impl TableDef {
    /// The primary key's column names, in key order.
    pub fn key_names(&self) -> Vec<&str> {
        self.primary_key
            .iter()
            .map(|&i| self.schema.field(i).name().as_str())
            .collect()
    }
}
