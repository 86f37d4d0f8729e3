//! Window table functions: `TUMBLE(stream, ts, size [, offset])`.
//!
//! Written in the table-function style of RisingWave and Flink's window
//! TVFs. DataFusion hands the arguments over as planned expressions: the
//! stream and time column as unqualified column references, the size as an
//! interval literal.

use std::sync::{Arc, RwLock};

use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::Result as DFResult;
use datafusion::logical_expr::Expr;

use super::interval_from_expr;
use super::stream_table::StreamTableProvider;
use crate::catalog::StreamCatalog;
use crate::err;
use crate::error::{Result, RiffleError};
use crate::time::interval::interval_to_units;
use crate::time::window::TumblingWindow;

/// `TUMBLE(stream, ts, size [, offset])`: fixed-size, non-overlapping windows.
#[derive(Debug)]
pub struct TumbleFunction {
    catalog: Arc<RwLock<StreamCatalog>>,
}

impl TumbleFunction {
    /// The function, resolving stream names in `catalog`.
    pub fn new(catalog: Arc<RwLock<StreamCatalog>>) -> Self {
        Self { catalog }
    }

    fn plan(&self, args: &[Expr]) -> Result<Arc<dyn TableProvider>> {
        const USAGE: &str = "TUMBLE(stream, time_column, INTERVAL '1' MINUTE [, offset])";
        if !(3..=4).contains(&args.len()) {
            return Err(err!(SqlPlan, "TUMBLE takes 3 or 4 arguments: {USAGE}"));
        }
        let stream_name = column_name(&args[0], "the first argument of TUMBLE (the stream)")?;
        let stream = self
            .catalog
            .read()
            .map_err(|_| err!(Internal, "stream catalog lock poisoned"))?
            .get(&stream_name)?;
        let time_column = column_name(&args[1], "the second argument of TUMBLE (the time column)")?;
        if time_column != stream.event_time_column() {
            return Err(err!(
                Unsupported,
                "TUMBLE over '{time_column}': windows use the stream's event-time column, '{}' (its WATERMARK FOR column)",
                stream.event_time_column()
            ));
        }
        let unit = stream.event_time_unit;
        let size = interval_to_units(
            interval_from_expr(&args[2], "the TUMBLE size")?,
            unit,
            "the TUMBLE size",
        )?;
        if size <= 0 {
            return Err(err!(SqlPlan, "the TUMBLE size must be positive; {USAGE}"));
        }
        let offset = match args.get(3) {
            Some(expr) => interval_to_units(
                interval_from_expr(expr, "the TUMBLE offset")?,
                unit,
                "the TUMBLE offset",
            )?,
            None => 0,
        };
        Ok(Arc::new(StreamTableProvider::windowed(
            stream,
            TumblingWindow::new(size, offset, unit),
        )))
    }
}

impl TableFunctionImpl for TumbleFunction {
    fn call_with_args(&self, args: TableFunctionArgs) -> DFResult<Arc<dyn TableProvider>> {
        self.plan(args.exprs())
            .map_err(RiffleError::into_datafusion)
    }
}

fn column_name(expr: &Expr, what: &str) -> Result<String> {
    match expr {
        Expr::Column(column) if column.relation.is_none() => Ok(column.name.clone()),
        other => Err(err!(SqlPlan, "{what} must be a name, found {other}")),
    }
}
