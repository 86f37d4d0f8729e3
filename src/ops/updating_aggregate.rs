//! Updating (non-windowed) aggregates: `SELECT symbol, count(*) FROM trades
//! GROUP BY symbol` on an unbounded stream.
//!
//! Results never close, so each push emits a changelog for the groups it
//! changed: `insert` for a new group, `update_before` + `update_after` for a
//! changed one. With a state TTL, a group untouched while the watermark
//! advanced by the TTL is dropped and emitted as a `delete`, which bounds
//! the state of high-cardinality keys.
//!
//! Each group holds accumulators of its own ([`super::row_accumulators`]),
//! so its current value can be read after every push without consuming
//! the state.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, BooleanArray, UInt32Array};
use arrow::datatypes::SchemaRef;
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use datafusion::common::ScalarValue;
use datafusion::logical_expr::Accumulator;
use serde_json::json;

use super::changelog::{op, value_columns, ChangeList, Changes, Values, OP_COLUMN};
use super::graph::WindowMetrics;
use super::grouped_aggregates::{
    apply_run, create_accumulators, evaluate_accumulators, retract_run, AggregateInput,
    AggregateSpec,
};
use super::key_ids::GroupsByKey;
use super::row_accumulators::RowAccumulator;
use super::snapshot::{
    key_types, metrics_from_json, metrics_json, value_fields, GroupLayout, GroupRow,
};
use crate::error::Result;
use crate::state::OperatorState;
use crate::time::EventTime;

/// Fixed configuration, derived from the plan.
#[derive(Debug, Clone)]
pub struct UpdatingAggregateConfig {
    /// Keys and aggregates (every group column is a key).
    pub spec: AggregateSpec,
    /// Output schema (`AggregateExec`'s).
    pub output_schema: SchemaRef,
    /// Drop a group once the watermark is this many ticks past its last update.
    pub ttl: Option<i64>,
    /// Over a changelog: the input's `_op` column. `update_before` and
    /// `delete` rows are taken back out (`spec` has retracting state), and
    /// a group whose rows have all left is deleted, as Flink does.
    pub changes: Option<usize>,
}

struct Group {
    id: u64,
    accumulators: Vec<RowAccumulator>,
    /// Values last emitted.
    last: Option<Vec<ScalarValue>>,
    /// Watermark when the group was last updated.
    touched: EventTime,
    /// Over a changelog: rows added minus rows taken out.
    rows: i64,
}

/// Updating aggregate operator.
pub struct UpdatingAggregate {
    config: UpdatingAggregateConfig,
    /// Groups by key number.
    groups: GroupsByKey<Group>,
    /// Groups by (last touched watermark, id) -> key number, for TTL expiry
    /// (empty without a TTL).
    expiry: BTreeMap<(EventTime, u64), usize>,
    next_id: u64,
    metrics: WindowMetrics,
}

impl std::fmt::Debug for UpdatingAggregate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpdatingAggregate")
            .field("groups", &self.groups.len())
            .finish()
    }
}

impl UpdatingAggregate {
    /// Its keys and aggregates.
    pub fn spec(&self) -> &AggregateSpec {
        &self.config.spec
    }

    /// A new operator with the same configuration and no state.
    pub fn fresh(&self) -> Result<Self> {
        Self::try_new(self.config.clone())
    }

    /// An operator with no groups.
    pub fn try_new(config: UpdatingAggregateConfig) -> Result<Self> {
        Ok(Self {
            groups: GroupsByKey::try_new(&config.spec.key_schema)?,
            config,
            expiry: BTreeMap::new(),
            next_id: 0,
            metrics: WindowMetrics::default(),
        })
    }

    /// The operator's state: one row per group. Leaves the operator as it was.
    pub fn snapshot(&mut self) -> Result<OperatorState> {
        let layout = group_layout(&self.config);
        // Groups in the order they were opened.
        let (key_columns, groups) = self.groups.in_order(|g| g.id)?;
        let rows = groups
            .into_iter()
            .map(|(_, group)| GroupRow {
                id: group.id,
                extra: if self.config.changes.is_some() {
                    vec![Some(group.touched), Some(group.rows)]
                } else {
                    vec![Some(group.touched)]
                },
                accumulators: &mut group.accumulators,
                last: group.last.as_ref(),
                flag: false,
            })
            .collect();
        let batch = layout.write(key_columns, rows)?;
        Ok(OperatorState {
            meta: json!({ "next_id": self.next_id, "metrics": metrics_json(&self.metrics) }),
            batch: Some(batch),
        })
    }

    /// Replaces this operator's state with a snapshot's.
    pub fn restore(&mut self, snapshot: &OperatorState) -> Result<()> {
        let batch = snapshot.batch.as_ref().ok_or_else(|| {
            crate::err!(CorruptCheckpoint, "updating aggregate state has no data")
        })?;
        let layout = group_layout(&self.config);
        let (key_columns, restored) = layout.read(batch, "an updating aggregate")?;
        let restored: Vec<Group> = restored
            .into_iter()
            .map(|restored| Group {
                id: restored.id,
                accumulators: restored.accumulators,
                last: restored.last,
                touched: restored.extra[0].unwrap_or(crate::time::watermark::NO_WATERMARK),
                rows: restored.extra.get(1).copied().flatten().unwrap_or(0),
            })
            .collect();
        let (groups, _) =
            GroupsByKey::restore(&self.config.spec.key_schema, &key_columns, restored)?;
        let expiry = groups
            .iter()
            .filter(|_| self.config.ttl.is_some())
            .map(|(key, group)| ((group.touched, group.id), key))
            .collect();
        self.groups = groups;
        self.expiry = expiry;
        self.next_id = crate::state::meta_i64(&snapshot.meta, "next_id")? as u64;
        self.metrics = metrics_from_json(&snapshot.meta)?;
        Ok(())
    }

    /// Counters (windows emitted counts changelog rows here).
    pub fn metrics(&self) -> &WindowMetrics {
        &self.metrics
    }

    /// Groups held.
    pub fn groups(&self) -> usize {
        self.groups.len()
    }

    /// Approximate memory held, in bytes.
    pub fn state_size(&self) -> usize {
        self.groups
            .iter()
            .map(|(_, g)| g.accumulators.iter().map(|a| a.size()).sum::<usize>())
            .sum()
    }

    /// One line for EXPLAIN.
    pub fn describe(&self, unit: arrow::datatypes::TimeUnit) -> String {
        let ttl = match self.config.ttl {
            Some(ttl) => format!("state TTL {}", crate::time::format_duration(ttl, unit)),
            None => "no state TTL".to_string(),
        };
        format!(
            "UpdatingAggregate: group by [{}], aggregates [{}], emit changelog per push, {ttl}",
            self.config.spec.key_names(),
            self.config.spec.aggregate_names()
        )
    }

    /// Adds a batch; returns the changes to the groups it touched. A group's
    /// TTL runs from `watermark`, the watermark after the push.
    pub fn process(&mut self, batch: &RecordBatch, watermark: EventTime) -> Result<Changes> {
        let rows = batch.num_rows();
        self.metrics.rows_in += rows as u64;
        let input = AggregateInput::evaluate(&self.config.spec, batch)?;
        let grouped = self.groups.group(input.keys(), rows)?;
        // Each group's rows together: one `take` per argument for the batch.
        let order = UInt32Array::from(grouped.order);
        let input = input.regroup(&order)?;
        let retracted = match self.config.changes {
            Some(column) => Some(retractions(batch, column, &order)?),
            None => None,
        };
        let sides = match &retracted {
            Some(retract) => Some(input.split_changes(retract)?),
            None => None,
        };
        let touched = watermark;
        let mut changes = ChangeList::default();
        for (key, (offset, len)) in grouped.keys.into_iter().zip(grouped.runs) {
            // Over a changelog: how many rows of the run leave the group.
            let leaving = retracted
                .as_ref()
                .map_or(0, |r| r.slice(offset, len).true_count());
            // Flink's rule: a retraction for a group with no state is ignored.
            let existed = self.groups.get(key).is_some();
            if leaving == len && !existed {
                continue;
            }
            let (spec, next_id) = (&self.config.spec, &mut self.next_id);
            let group = self.groups.get_or_insert(key, || {
                let group = Group {
                    id: *next_id,
                    accumulators: create_accumulators(spec)?,
                    last: None,
                    touched,
                    rows: 0,
                };
                *next_id += 1;
                Ok(group)
            })?;
            match &sides {
                Some((adds, retracts)) => {
                    apply_run(&mut group.accumulators, adds, offset, len)?;
                    let mut rows = (len - leaving) as i64;
                    if existed {
                        retract_run(&mut group.accumulators, retracts, offset, len)?;
                        rows -= leaving as i64;
                    }
                    group.rows = group.rows.saturating_add(rows);
                }
                None => apply_run(&mut group.accumulators, &input, offset, len)?,
            }
            if self.config.ttl.is_some() {
                self.expiry.remove(&(group.touched, group.id));
            }
            if sides.is_some() && group.rows <= 0 {
                // Every row of the group has left: it is deleted.
                if let Some(group) = self.groups.remove(key) {
                    if group.last.is_some() {
                        changes.push(key, group.last, None);
                    }
                }
                continue;
            }
            if self.config.ttl.is_some() {
                self.expiry
                    .insert((group.touched.max(touched), group.id), key);
            }
            group.touched = group.touched.max(touched);
            let values = evaluate_accumulators(&mut group.accumulators)?;
            if group.last.as_ref() != Some(&values) {
                changes.push(key, group.last.replace(values.clone()), Some(values));
            }
        }
        let changes = self.finish(changes)?;
        if sides.is_some() {
            // Groups leave here too, not only on watermarks: free their keys.
            self.compact();
        }
        Ok(changes)
    }

    /// Drops the numbers of keys whose groups left, once enough have.
    fn compact(&mut self) {
        if let Some(renumbered) = self.groups.compact() {
            self.expiry = renumbered.values(std::mem::take(&mut self.expiry));
        }
    }

    /// Expires groups whose TTL passed under `watermark`, as deletions.
    pub fn advance(&mut self, watermark: EventTime) -> Result<Changes> {
        let mut changes = ChangeList::default();
        if let Some(ttl) = self.config.ttl {
            while let Some((&(touched, id), _)) = self.expiry.first_key_value() {
                if touched.saturating_add(ttl) > watermark {
                    break;
                }
                let Some(key) = self.expiry.remove(&(touched, id)) else {
                    break;
                };
                if let Some(group) = self.groups.remove(key) {
                    if group.last.is_some() {
                        changes.push(key, group.last, None);
                    }
                }
            }
        }
        // Changes name keys by number: built before numbers change.
        let changes = self.finish(changes)?;
        self.compact();
        Ok(changes)
    }

    fn finish(&mut self, changes: ChangeList<usize>) -> Result<Changes> {
        self.metrics.windows_emitted += changes.len() as u64;
        changes.into_changes(|keys, values| self.batch(keys, values))
    }

    fn batch(&self, keys: &[usize], values: Vec<Values>) -> Result<RecordBatch> {
        let schema = &self.config.output_schema;
        let mut columns: Vec<ArrayRef> = self.groups.columns(keys)?;
        let first = columns.len();
        columns.extend(value_columns(schema, first, &values)?);
        let options = RecordBatchOptions::new().with_row_count(Some(keys.len()));
        Ok(RecordBatch::try_new_with_options(
            Arc::clone(schema),
            columns,
            &options,
        )?)
    }
}

/// How a group is laid out in a snapshot: key, id, last-touched watermark,
/// accumulator state, last emitted values. A free function so `snapshot`
/// can hold it while borrowing the groups mutably.
fn group_layout(config: &UpdatingAggregateConfig) -> GroupLayout<'_> {
    GroupLayout {
        key_types: key_types(&config.spec.key_schema),
        extra: if config.changes.is_some() {
            &["touched", "rows"]
        } else {
            &["touched"]
        },
        spec: &config.spec,
        values: value_fields(&config.output_schema, config.spec.keys.len(), "last_"),
    }
}

/// Which rows of a changelog batch (in `order`) take a row back out:
/// `update_before` and `delete`.
fn retractions(batch: &RecordBatch, column: usize, order: &UInt32Array) -> Result<BooleanArray> {
    let ops = batch
        .columns()
        .get(column)
        .and_then(|c| c.as_string_opt::<i32>())
        .ok_or_else(|| crate::err!(Internal, "a changelog without its {OP_COLUMN} column"))?;
    let retract: BooleanArray = order
        .values()
        .iter()
        .map(|&row| {
            let op = ops.value(row as usize);
            Some(op == op::UPDATE_BEFORE || op == op::DELETE)
        })
        .collect();
    Ok(retract)
}
