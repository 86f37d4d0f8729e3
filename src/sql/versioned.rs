//! `VERSIONED(stream, 'o.ts')`: a stream read as a versioned table, what
//! Flink's `stream FOR SYSTEM_TIME AS OF o.ts` becomes before parsing
//! (`sql::flink_syntax`). Each row is a new version of the rows before it
//! with the same primary key; an event-time temporal join reads the
//! version valid at the other side's time.

use std::sync::{Arc, RwLock};

use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::{Result as DFResult, ScalarValue};
use datafusion::logical_expr::Expr;

use super::lookup_table::LookupTableProvider;
use super::stream_table::StreamTableProvider;
use crate::catalog::StreamCatalog;
use crate::err;
use crate::error::{Result, RiffleError};

/// The name the rewrite calls.
pub const VERSIONED: &str = "VERSIONED";

/// The `VERSIONED` table function, bound to an engine's streams.
#[derive(Debug)]
pub struct VersionedFunction {
    catalog: Arc<RwLock<StreamCatalog>>,
}

impl VersionedFunction {
    /// The function, resolving stream names in `catalog`.
    pub fn new(catalog: Arc<RwLock<StreamCatalog>>) -> Self {
        Self { catalog }
    }

    fn plan(&self, args: &[Expr]) -> Result<Arc<dyn TableProvider>> {
        let (Some(Expr::Column(table)), Some(Expr::Literal(ScalarValue::Utf8(Some(time)), _))) =
            (args.first(), args.get(1))
        else {
            return Err(err!(
                SqlPlan,
                "FOR SYSTEM_TIME AS OF follows a stream's name: rates FOR SYSTEM_TIME AS OF o.ts AS r"
            ));
        };
        let catalog = self
            .catalog
            .read()
            .map_err(|_| err!(Internal, "stream catalog lock poisoned"))?;
        // Flink's lookup join, `JOIN users FOR SYSTEM_TIME AS OF c.proc_time
        // AS u`: a table the application fills is read as it stands when
        // each row is processed, which is what AS OF a processing time
        // means there.
        if let Some(def) = catalog.table(&table.name) {
            return Ok(Arc::new(LookupTableProvider::new(def)));
        }
        let stream = catalog.get(&table.name)?;
        if stream.is_view {
            return Err(err!(
                Unsupported,
                "FOR SYSTEM_TIME AS OF over view '{}' is not supported yet: read a stream with a PRIMARY KEY as of a time",
                stream.name
            ));
        }
        if stream.primary_key.is_empty() {
            return Err(err!(
                SqlPlan,
                "a temporal join reads '{}' by its primary key, which it has none of: declare one, e.g. PRIMARY KEY (currency) NOT ENFORCED, in its CREATE STREAM",
                stream.name
            ));
        }
        Ok(Arc::new(StreamTableProvider::versioned(
            stream,
            time.clone(),
        )))
    }
}

impl TableFunctionImpl for VersionedFunction {
    fn call_with_args(&self, args: TableFunctionArgs) -> DFResult<Arc<dyn TableProvider>> {
        self.plan(args.exprs())
            .map_err(RiffleError::into_datafusion)
    }
}
