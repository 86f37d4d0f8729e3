//! Lookup joins: each stream row meets the row of a table (fed by the
//! application) with its primary key, as the table stands when the row is
//! processed (Flink's lookup join, with the table held in the engine).
//!
//! The node has one input, the stream; rows keep their event time, per-row
//! watermark and origin, so the output can feed a window. It holds no state
//! of its own: a change to the table affects rows processed after it, never
//! results already emitted.
//!
//! Per batch: evaluate the stream's key expressions, find each key's row
//! (at most one: the key is the table's primary key), gather the matched
//! rows, run the steps DataFusion put above the table's scan (a pushed-down
//! filter, a projection) and the join's residual condition on the pairs,
//! then keep the stream rows the join kind keeps.

use std::rc::Rc;
use std::sync::Arc;

use arrow::array::{new_null_array, Array, ArrayRef, BooleanArray, UInt32Array};
use arrow::compute::kernels::boolean::and_kleene;
use arrow::compute::kernels::cmp::{eq, not_distinct};
use arrow::compute::{cast, filter, filter_record_batch, interleave, not, nullif};
use arrow::datatypes::{DataType, SchemaRef};
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use datafusion::common::JoinSide;
use datafusion::physical_expr::PhysicalExprRef;
use datafusion::physical_plan::joins::utils::JoinFilter;

use super::chain::StatelessChain;
use super::gather::gather;
use super::graph::{Operator, Output, Rows};
use crate::err;
use crate::error::Result;
use crate::metrics::LookupMetrics;
use crate::state::{meta_i64, OperatorState};
use crate::table::SharedTable;

/// Which stream rows a lookup join keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LookupKind {
    /// Rows with a match, with it (`JOIN`).
    Inner,
    /// Every row, with its match or NULLs (`LEFT JOIN`).
    Outer,
    /// Rows with a match, without its columns (`EXISTS`, `IN`).
    Semi,
    /// Rows without a match (`NOT EXISTS`).
    Anti,
}

/// What a lookup join does, as planned.
#[derive(Debug)]
pub struct LookupJoinSpec {
    /// Which stream rows it keeps.
    pub kind: LookupKind,
    /// The stream's side in DataFusion's join (0: left, 1: right).
    pub stream_side: usize,
    /// Per primary key column, in key order: the stream's value of it.
    pub probe_keys: Vec<PhysicalExprRef>,
    /// Table columns the scan reads, in its output order.
    pub projection: Vec<usize>,
    /// Schema of the scan's output.
    pub scan_schema: SchemaRef,
    /// Steps DataFusion put between the table's scan and the join.
    pub table_steps: StatelessChain,
    /// Equalities beyond the primary key: (stream's value, table side's
    /// value), checked on candidate pairs.
    pub extra_keys: Vec<[PhysicalExprRef; 2]>,
    /// Whether those equalities hold between NULLs (`IS NOT DISTINCT FROM`).
    pub nulls_equal: bool,
    /// The join's condition beyond the keys, on candidate pairs.
    pub filter: Option<JoinFilter>,
    /// Output columns: (DataFusion side, column there).
    pub columns: Vec<(usize, usize)>,
    /// Schema of the output.
    pub output_schema: SchemaRef,
}

/// The graph node of a lookup join.
#[derive(Debug)]
pub struct LookupJoin {
    spec: Arc<LookupJoinSpec>,
    table: SharedTable,
    /// The primary key's types, which the probe keys are looked up as.
    key_types: Vec<DataType>,
    rows_in: u64,
    rows_matched: u64,
}

impl LookupJoin {
    /// The join of `spec` reading `table`.
    pub fn new(spec: LookupJoinSpec, table: SharedTable) -> Self {
        let key_types = {
            let table = table.borrow();
            let def = table.def();
            def.primary_key
                .iter()
                .map(|&i| def.schema.field(i).data_type().clone())
                .collect()
        };
        Self {
            spec: Arc::new(spec),
            table,
            key_types,
            rows_in: 0,
            rows_matched: 0,
        }
    }

    /// For each stream row: its surviving match's row in `matched` (the
    /// table side's rows after steps and condition), if any.
    fn matches(&self, batch: &RecordBatch) -> Result<(Vec<Option<u32>>, RecordBatch)> {
        let spec = &self.spec;
        let keys = spec
            .probe_keys
            .iter()
            .zip(&self.key_types)
            .map(|(expr, to)| looked_up_as(super::evaluate(expr.as_ref(), batch)?, to))
            .collect::<Result<Vec<_>>>()?;
        let table = self.table.borrow();
        let found = table.find(&keys)?;
        let mut probe = Vec::new();
        let mut at = Vec::new();
        for (row, position) in found.into_iter().enumerate() {
            if let Some(position) = position {
                probe.push(row as u32);
                at.push(position);
            }
        }
        let columns = spec
            .projection
            .iter()
            .map(|&c| table.column(c, &at))
            .collect::<Result<Vec<_>>>()?;
        drop(table);
        let options = RecordBatchOptions::new().with_row_count(Some(at.len()));
        let scanned =
            RecordBatch::try_new_with_options(Arc::clone(&spec.scan_schema), columns, &options)?;
        let carried: Vec<ArrayRef> = vec![Arc::new(UInt32Array::from(probe))];
        let (mut matched, carried) = spec.table_steps.apply(scanned, carried)?;
        let mut probe = carried
            .first()
            .and_then(|a| a.as_any().downcast_ref::<UInt32Array>())
            .cloned()
            .ok_or_else(|| err!(Internal, "lookup rows lost their stream row"))?;
        if spec.filter.is_some() || !spec.extra_keys.is_empty() {
            let verdict = self.condition(batch, &probe, &matched)?;
            matched = filter_record_batch(&matched, &verdict)?;
            probe = filter(&probe, &verdict)?
                .as_any()
                .downcast_ref::<UInt32Array>()
                .cloned()
                .ok_or_else(|| err!(Internal, "lookup rows lost their stream row"))?;
        }
        let mut per_row = vec![None; batch.num_rows()];
        for (i, row) in probe.values().iter().enumerate() {
            per_row[*row as usize] = Some(i as u32);
        }
        Ok((per_row, matched))
    }

    /// The extra equalities and the residual condition on each (stream
    /// row, table row) pair: true where the pair survives.
    fn condition(
        &self,
        batch: &RecordBatch,
        probe: &UInt32Array,
        matched: &RecordBatch,
    ) -> Result<BooleanArray> {
        let spec = &self.spec;
        let mut verdict = BooleanArray::from(vec![true; probe.len()]);
        if !spec.extra_keys.is_empty() {
            let stream_rows = arrow::compute::take_record_batch(batch, probe)?;
            for [stream, table] in &spec.extra_keys {
                let left = super::evaluate(stream.as_ref(), &stream_rows)?;
                let right = super::evaluate(table.as_ref(), matched)?;
                let equal = if spec.nulls_equal {
                    not_distinct(&left, &right)?
                } else {
                    eq(&left, &right)?
                };
                verdict = and_kleene(&verdict, &equal)?;
            }
        }
        if let Some(condition) = &spec.filter {
            let stream = if spec.stream_side == 0 {
                JoinSide::Left
            } else {
                JoinSide::Right
            };
            let columns = condition
                .column_indices()
                .iter()
                .map(|c| match c.side {
                    JoinSide::None => Err(err!(Internal, "a join filter column of neither side")),
                    side if side == stream => gather(batch.column(c.index), probe),
                    _ => Ok(Arc::clone(matched.column(c.index))),
                })
                .collect::<Result<Vec<_>>>()?;
            let options = RecordBatchOptions::new().with_row_count(Some(probe.len()));
            let pairs = RecordBatch::try_new_with_options(
                Arc::clone(condition.schema()),
                columns,
                &options,
            )?;
            let met = super::evaluate_mask(condition.expression().as_ref(), &pairs)?;
            verdict = and_kleene(&verdict, &met)?;
        }
        // NULL (unknown) is not true.
        Ok(if verdict.null_count() > 0 {
            arrow::compute::prep_null_mask_filter(&verdict)
        } else {
            verdict
        })
    }
}

/// `keys` (a stream's key values) as the primary key's type: a value the
/// key type cannot hold exactly (1.5 for an integer key, 2^40 for an INT
/// key) matches nothing, as it equals no key.
fn looked_up_as(keys: ArrayRef, to: &DataType) -> Result<ArrayRef> {
    if keys.data_type() == to {
        return Ok(keys);
    }
    let converted = cast(&keys, to)?;
    let back = cast(&converted, keys.data_type())?;
    let exact = eq(&back, &keys)?;
    Ok(nullif(&converted, &not(&exact)?)?)
}

impl Operator for LookupJoin {
    fn may_fail(&self) -> bool {
        let spec = &self.spec;
        spec.filter.is_some()
            || spec.table_steps.may_fail()
            || spec
                .extra_keys
                .iter()
                .flatten()
                .any(super::fallible::expr_may_fail)
            || spec.probe_keys.iter().any(super::fallible::expr_may_fail)
    }

    fn process(&mut self, _input: usize, rows: Rows, out: &mut Output) -> Result<()> {
        let n = rows.batch.num_rows();
        if n == 0 {
            return Ok(());
        }
        let (per_row, matched) = self.matches(&rows.batch)?;
        let found = per_row.iter().filter(|m| m.is_some()).count();
        let kind = self.spec.kind;
        // The stream rows kept, in order (`None`: all of them).
        let keep: Option<UInt32Array> = match kind {
            LookupKind::Outer => None,
            LookupKind::Inner | LookupKind::Semi if found == n => None,
            LookupKind::Inner | LookupKind::Semi => Some(
                (0..n as u32)
                    .filter(|&i| per_row[i as usize].is_some())
                    .collect(),
            ),
            LookupKind::Anti if found == 0 => None,
            LookupKind::Anti => Some(
                (0..n as u32)
                    .filter(|&i| per_row[i as usize].is_none())
                    .collect(),
            ),
        };
        let kept = keep.as_ref().map_or(n, UInt32Array::len);
        if kept == 0 {
            self.rows_in += n as u64;
            return Ok(());
        }
        let spec = &self.spec;
        let columns = spec
            .columns
            .iter()
            .map(|&(side, c)| {
                if side == spec.stream_side {
                    let column = rows.batch.column(c);
                    return match &keep {
                        Some(keep) => gather(column, keep),
                        None => Ok(Arc::clone(column)),
                    };
                }
                let column = matched.column(c);
                match kind {
                    // Matches are in stream-row order, one per kept row.
                    LookupKind::Inner => Ok(Arc::clone(column)),
                    _ => {
                        let nulls = new_null_array(column.data_type(), 1);
                        let at: Vec<(usize, usize)> = per_row
                            .iter()
                            .map(|m| m.map_or((1, 0), |i| (0, i as usize)))
                            .collect();
                        Ok(interleave(&[column.as_ref(), nulls.as_ref()], &at)?)
                    }
                }
            })
            .collect::<Result<Vec<_>>>()?;
        let options = RecordBatchOptions::new().with_row_count(Some(kept));
        let batch =
            RecordBatch::try_new_with_options(Arc::clone(&spec.output_schema), columns, &options)?;
        self.rows_in += n as u64;
        self.rows_matched += found as u64;
        out.forward(rows.with_rows_at(batch, keep.as_ref())?);
        Ok(())
    }

    // Only its counters: the table's rows are the engine's, checkpointed
    // once however many joins read them.
    fn state_kind(&self) -> Option<&'static str> {
        Some("lookup")
    }

    fn snapshot(&mut self) -> Result<Option<OperatorState>> {
        Ok(Some(OperatorState {
            meta: serde_json::json!({
                "rows_in": self.rows_in,
                "rows_matched": self.rows_matched,
            }),
            batch: None,
        }))
    }

    fn restored(&self, state: Option<&OperatorState>) -> Result<Box<dyn Operator>> {
        let (rows_in, rows_matched) = match state {
            Some(state) => {
                let count = |key: &str| {
                    u64::try_from(meta_i64(&state.meta, key)?).map_err(|_| {
                        err!(CorruptCheckpoint, "lookup join counter '{key}' is negative")
                    })
                };
                let (rows_in, rows_matched) = (count("rows_in")?, count("rows_matched")?);
                if rows_matched > rows_in {
                    return Err(err!(
                        CorruptCheckpoint,
                        "a lookup join matched more rows than reached it"
                    ));
                }
                (rows_in, rows_matched)
            }
            None => (0, 0),
        };
        Ok(Box::new(Self {
            spec: Arc::clone(&self.spec),
            table: Rc::clone(&self.table),
            key_types: self.key_types.clone(),
            rows_in,
            rows_matched,
        }))
    }

    fn metrics(&self) -> super::graph::OperatorMetrics {
        super::graph::OperatorMetrics {
            lookups: vec![LookupMetrics {
                table: self.table.borrow().def().name.clone(),
                rows_in: self.rows_in,
                rows_matched: self.rows_matched,
            }],
            ..Default::default()
        }
    }

    fn describe(&self) -> String {
        let spec = &self.spec;
        let table = self.table.borrow();
        let def = table.def();
        let keys: Vec<String> = spec
            .probe_keys
            .iter()
            .zip(def.key_names())
            .map(|(probe, key)| format!("{probe} = {}.{key}", def.name))
            .collect();
        let mut line = format!(
            "LookupJoin: {:?} table={} on [{}]",
            spec.kind,
            def.name,
            keys.join(", ")
        );
        if let Some(filter) = &spec.filter {
            line.push_str(&format!(" filter {}", filter.expression()));
        }
        for step in spec.table_steps.describe() {
            line.push_str(&format!(" ▸ table {step}"));
        }
        line
    }

    fn output_schema(&self) -> SchemaRef {
        Arc::clone(&self.spec.output_schema)
    }
}
