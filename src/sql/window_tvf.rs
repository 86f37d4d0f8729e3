//! Window table functions, in the style of Flink's window TVFs and RisingWave:
//!
//! - `TUMBLE(stream, ts, size [, offset])`
//! - `HOP(stream, ts, slide, size [, offset])`
//! - `CUMULATE(stream, ts, step, size [, offset])`
//! - `SESSION(stream, ts, gap [, max_length])`: sessions per GROUP BY key
//!
//! and Flink's `TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), ...))` forms, which
//! `sql::flink_syntax` rewrites into these before parsing.
//!
//! DataFusion hands the arguments over as planned expressions: the stream
//! and time column as unqualified column references, sizes as interval
//! literals. Each returns the stream plus `window_start` and `window_end`.

use std::sync::{Arc, RwLock};

use arrow::datatypes::TimeUnit;
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::{Result as DFResult, ScalarValue};
use datafusion::logical_expr::Expr;

use super::interval_from_expr;
use super::stream_table::StreamTableProvider;
use crate::catalog::{StreamCatalog, WINDOW_END, WINDOW_START, WINDOW_TIME};
use crate::err;
use crate::error::{Result, RiffleError};
use crate::time::interval::interval_to_units;
use crate::time::window::{SessionWindow, TumblingWindow, WindowSpec};

/// Which window table function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowKind {
    /// `TUMBLE`.
    Tumble,
    /// `HOP`.
    Hop,
    /// `CUMULATE`.
    Cumulate,
    /// `SESSION`.
    Session,
}

impl WindowKind {
    /// Every kind, for registration.
    pub const ALL: [WindowKind; 4] = [
        WindowKind::Tumble,
        WindowKind::Hop,
        WindowKind::Cumulate,
        WindowKind::Session,
    ];

    /// The SQL name.
    pub fn name(self) -> &'static str {
        match self {
            WindowKind::Tumble => "TUMBLE",
            WindowKind::Hop => "HOP",
            WindowKind::Cumulate => "CUMULATE",
            WindowKind::Session => "SESSION",
        }
    }

    fn usage(self) -> &'static str {
        match self {
            WindowKind::Tumble => "TUMBLE(stream, time_column, INTERVAL '1' MINUTE [, offset])",
            WindowKind::Hop => "HOP(stream, time_column, slide INTERVAL '10' SECOND, size INTERVAL '5' MINUTE [, offset])",
            WindowKind::Cumulate => "CUMULATE(stream, time_column, step INTERVAL '1' MINUTE, size INTERVAL '1' HOUR [, offset])",
            WindowKind::Session => "SESSION(stream, time_column, gap INTERVAL '30' SECOND [, max_length INTERVAL '1' HOUR])",
        }
    }

    fn durations(self) -> usize {
        match self {
            WindowKind::Tumble | WindowKind::Session => 1,
            WindowKind::Hop | WindowKind::Cumulate => 2,
        }
    }
}

/// A window table function bound to an engine's streams.
#[derive(Debug)]
pub struct WindowFunction {
    kind: WindowKind,
    catalog: Arc<RwLock<StreamCatalog>>,
}

impl WindowFunction {
    /// The function `kind`, resolving stream names in `catalog`.
    pub fn new(kind: WindowKind, catalog: Arc<RwLock<StreamCatalog>>) -> Self {
        Self { kind, catalog }
    }

    fn plan(&self, args: &[Expr]) -> Result<Arc<dyn TableProvider>> {
        let name = self.kind.name();
        let usage = self.kind.usage();
        let durations = self.kind.durations();
        // Flink's SESSION(TABLE t PARTITION BY k, ...) arrives as trailing
        // key columns, its form without PARTITION BY as a trailing NULL
        // (sql::flink_syntax): sessions per those keys, or over all rows.
        let mut args = args;
        let mut partition = None;
        if self.kind == WindowKind::Session && args.len() > 3 {
            let keys = args[3..]
                .iter()
                .rev()
                .take_while(|a| matches!(a, Expr::Column(_) | Expr::Literal(ScalarValue::Null, _)))
                .count();
            if keys > 0 {
                let (own, trailing) = args.split_at(args.len() - keys);
                let mut columns = Vec::new();
                for key in trailing {
                    if let Expr::Column(_) = key {
                        columns.push(column_name(key, name, "a PARTITION BY key")?);
                    }
                }
                if columns.len() != keys && keys != 1 {
                    return Err(err!(
                        SqlPlan,
                        "SESSION: PARTITION BY takes columns; {usage}"
                    ));
                }
                partition = Some(columns);
                args = own;
            }
        }
        if args.len() != 2 + durations && args.len() != 3 + durations {
            return Err(err!(
                SqlPlan,
                "{name} takes {} or {} arguments: {usage}",
                2 + durations,
                3 + durations
            ));
        }
        let stream_name = column_name(&args[0], name, "the stream")?;
        let stream = self
            .catalog
            .read()
            .map_err(|_| err!(Internal, "stream catalog lock poisoned"))?
            .get(&stream_name)?;
        let time_column = column_name(&args[1], name, "the time column")?;
        for column in [WINDOW_START, WINDOW_END, WINDOW_TIME] {
            if stream.schema.column_with_name(column).is_some() {
                return Err(err!(
                    Unsupported,
                    "{name} over '{stream_name}', which already has a column '{column}': the window adds its own; rename it in the view ({column} AS ...), as Flink requires"
                ));
            }
        }
        if stream.is_changelog {
            // As in Flink: a window's rows must be final, and a changelog's
            // are updated and retracted.
            return Err(err!(
                Unsupported,
                "{name} over view '{stream_name}', a changelog (the results of GROUP BY without a window, of EMIT ON UPDATE, or of an outer join under a state TTL): windows take rows that are final; window the stream under the view, or aggregate the view without a window"
            ));
        }
        if !stream.has_event_time {
            return Err(err!(
                Unsupported,
                "{name} over view '{stream_name}', which has no event-time column: select the stream's event-time column in the view, or window_time from its window aggregate (GROUP BY ..., window_time)"
            ));
        }
        if time_column != stream.event_time_column() {
            return Err(err!(
                Unsupported,
                "{name} over '{time_column}': windows use the event-time column of '{stream_name}', '{}' (a stream's WATERMARK FOR column; a view's event-time column or window_time)",
                stream.event_time_column()
            ));
        }
        let unit = stream.event_time_unit;
        let mut sizes = Vec::with_capacity(durations);
        for (i, arg) in args[2..2 + durations].iter().enumerate() {
            let what = format!("{name} argument {}", i + 3);
            let ticks = duration(arg, unit, &what)?;
            if ticks <= 0 {
                return Err(err!(SqlPlan, "{what} must be a positive interval; {usage}"));
            }
            sizes.push(ticks);
        }
        let last = match args.get(2 + durations) {
            Some(expr) => Some(duration(expr, unit, &format!("the last {name} argument"))?),
            None => None,
        };
        let offset = last.unwrap_or(0);
        let spec = match self.kind {
            WindowKind::Tumble => WindowSpec::Tumble(TumblingWindow::new(sizes[0], offset, unit)),
            WindowKind::Session => {
                if last.is_some_and(|max| max < sizes[0]) {
                    return Err(err!(
                        SqlPlan,
                        "SESSION: the maximum length must be at least the gap; {usage}"
                    ));
                }
                WindowSpec::Session(SessionWindow::new(sizes[0], last, unit))
            }
            WindowKind::Hop | WindowKind::Cumulate => {
                let (slice, size) = (sizes[0], sizes[1]);
                if size % slice != 0 {
                    return Err(err!(
                        Unsupported,
                        "{name}: the size must be a whole multiple of the {} ({size} vs {slice} ticks); {usage}",
                        if self.kind == WindowKind::Hop { "slide" } else { "step" }
                    ));
                }
                let slices = TumblingWindow::new(slice, offset, unit);
                if self.kind == WindowKind::Hop {
                    WindowSpec::Hop {
                        slide: slices,
                        size,
                    }
                } else {
                    WindowSpec::Cumulate {
                        step: slices,
                        size: TumblingWindow::new(size, offset, unit),
                    }
                }
            }
        };
        Ok(Arc::new(
            StreamTableProvider::windowed(stream, spec).with_session_partition(partition),
        ))
    }
}

impl TableFunctionImpl for WindowFunction {
    fn call_with_args(&self, args: TableFunctionArgs) -> DFResult<Arc<dyn TableProvider>> {
        self.plan(args.exprs())
            .map_err(RiffleError::into_datafusion)
    }
}

fn duration(expr: &Expr, unit: TimeUnit, what: &str) -> Result<i64> {
    interval_to_units(interval_from_expr(expr, what)?, unit, what)
}

fn column_name(expr: &Expr, function: &str, what: &str) -> Result<String> {
    match expr {
        Expr::Column(column) if column.relation.is_none() => Ok(column.name.clone()),
        // Inside a subquery the name resolves against the enclosing query
        // first; it still names a column of the function's own stream.
        Expr::OuterReferenceColumn(_, column) => Ok(column.name.clone()),
        other => Err(err!(
            SqlPlan,
            "{what} in {function}(...) must be a name, found {other}"
        )),
    }
}
