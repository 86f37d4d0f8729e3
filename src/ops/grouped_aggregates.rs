//! Grouped aggregation state for one window, built from DataFusion's own
//! group interning (`GroupValues`) and accumulators (`GroupsAccumulator`,
//! or `Accumulator` through DataFusion's adapter where an aggregate has no
//! grouped form). Every DataFusion aggregate and user UDAF works here.

use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, BooleanArray, UInt32Array};
use arrow::datatypes::Field;
use arrow::record_batch::RecordBatch;
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{EmitTo, GroupsAccumulator};
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;
use datafusion::physical_expr::GroupsAccumulatorAdapter;
use datafusion::physical_plan::aggregates::group_values::GroupValues;

pub use super::aggregate_spec::AggregateSpec;
use super::batched_groups::BatchedGroupsAccumulator;
use super::gather::gather;
use super::percentile_digests::{plan_digests, DigestPlan, PercentileDigests};
use super::row_accumulators::RowAccumulator;
use super::short_string_keys::new_key_values;
use super::{evaluate, evaluate_mask};
use crate::error::Result;

/// The spec's expressions evaluated on one batch.
#[derive(Debug, Clone)]
pub struct AggregateInput {
    keys: Vec<ArrayRef>,
    arguments: Vec<Vec<ArrayRef>>,
    filters: Vec<Option<BooleanArray>>,
}

impl AggregateInput {
    /// Evaluates every key, argument and filter on `batch`.
    pub fn evaluate(spec: &AggregateSpec, batch: &RecordBatch) -> Result<Self> {
        let keys = spec
            .keys
            .iter()
            .map(|e| evaluate(e.as_ref(), batch))
            .collect::<Result<Vec<_>>>()?;
        let arguments = spec
            .arguments
            .iter()
            .map(|args| {
                args.iter()
                    .map(|e| evaluate(e.as_ref(), batch))
                    .collect::<Result<Vec<_>>>()
            })
            .collect::<Result<Vec<_>>>()?;
        let filters = spec
            .filters
            .iter()
            .map(|f| {
                f.as_ref()
                    .map(|e| evaluate_mask(e.as_ref(), batch))
                    .transpose()
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            keys,
            arguments,
            filters,
        })
    }

    /// The rows of a changelog batch to add and those to take back out
    /// (`retract` true): the same columns, each aggregate's filter narrowed
    /// to one side.
    pub fn split_changes(&self, retract: &BooleanArray) -> Result<(Self, Self)> {
        let keep = arrow::compute::not(retract)?;
        let side = |mask: &BooleanArray| -> Result<Self> {
            let filters = self
                .filters
                .iter()
                .map(|filter| match filter {
                    Some(filter) => Ok(Some(arrow::compute::and(filter, mask)?)),
                    None => Ok(Some(mask.clone())),
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(Self {
                keys: self.keys.clone(),
                arguments: self.arguments.clone(),
                filters,
            })
        };
        Ok((side(&keep)?, side(retract)?))
    }

    /// Evaluated key columns.
    pub fn keys(&self) -> &[ArrayRef] {
        &self.keys
    }

    /// Evaluated arguments, per aggregate.
    pub fn arguments(&self) -> &[Vec<ArrayRef>] {
        &self.arguments
    }

    /// Evaluated `FILTER` masks, per aggregate.
    pub fn filters(&self) -> &[Option<BooleanArray>] {
        &self.filters
    }

    /// The arguments and filters (not the keys) of the rows at `indices`,
    /// in that order: put each group's rows together, then feed each group
    /// a slice ([`apply_run`]).
    pub fn regroup(&self, indices: &UInt32Array) -> Result<Self> {
        let pick = |a: &ArrayRef| gather(a, indices);
        Ok(Self {
            keys: Vec::new(),
            arguments: self
                .arguments
                .iter()
                .map(|args| args.iter().map(pick).collect::<Result<Vec<_>>>())
                .collect::<Result<_>>()?,
            filters: self
                .filters
                .iter()
                .map(|f| {
                    f.as_ref()
                        .map(|mask| -> Result<BooleanArray> {
                            let mask: ArrayRef = Arc::new(mask.clone());
                            Ok(gather(&mask, indices)?.as_boolean().clone())
                        })
                        .transpose()
                })
                .collect::<Result<_>>()?,
        })
    }

    /// The rows at `indices`, keys included.
    pub fn take(&self, indices: &UInt32Array) -> Result<Self> {
        let mut taken = self.regroup(indices)?;
        taken.keys = self
            .keys
            .iter()
            .map(|a| gather(a, indices))
            .collect::<Result<_>>()?;
        Ok(taken)
    }
}

/// Intermediate aggregation state: group keys plus each accumulator's state
/// columns, one row per group.
#[derive(Debug, Clone)]
pub struct PartialState {
    /// Key columns (none for a single group).
    pub keys: Vec<ArrayRef>,
    /// Per aggregate: its state columns.
    pub states: Vec<Vec<ArrayRef>>,
    /// Number of groups.
    pub num_groups: usize,
}

/// Interns group keys to dense group indices.
enum KeyInterner {
    /// DataFusion's group value store for the key columns.
    Keys(Box<dyn GroupValues>),
    /// No key columns (e.g. `GROUP BY window_start, window_end` only): one group.
    Single { has_group: bool },
}

/// The grouped state behind one aggregate function.
enum Slot {
    /// Its own grouped accumulator.
    Own(Box<dyn GroupsAccumulator>),
    /// Percentile digests it owns and shares with later percentiles of the
    /// same column.
    Digests(PercentileDigests),
    /// Another percentile of an earlier aggregate's digests.
    Shared { owner: usize, percentile: f64 },
}

impl Slot {
    /// The accumulator this slot updates, if it has its own.
    fn accumulator(&mut self) -> Option<&mut dyn GroupsAccumulator> {
        match self {
            Slot::Own(a) => Some(a.as_mut()),
            Slot::Digests(d) => Some(d),
            Slot::Shared { .. } => None,
        }
    }
}

/// One grouped accumulator per aggregate function over dense group indices
/// (percentiles of one column share theirs). The interning of groups is
/// the caller's: window keys ([`GroupedAggregates`]) or sessions.
pub struct Accumulators {
    slots: Vec<Slot>,
}

impl Accumulators {
    /// No groups yet.
    pub fn try_new(spec: &AggregateSpec) -> Result<Self> {
        let slots = spec
            .aggregates
            .iter()
            .zip(plan_digests(spec))
            .map(|(expr, plan)| {
                Ok(match plan {
                    DigestPlan::None => Slot::Own(create_accumulator(expr)?),
                    DigestPlan::Owner {
                        percentile,
                        max_size,
                        data_type,
                    } => Slot::Digests(PercentileDigests::new(percentile, max_size, data_type)),
                    DigestPlan::Shared { owner, percentile } => Slot::Shared { owner, percentile },
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { slots })
    }

    /// The state columns [`Self::take_state`] gives, per aggregate:
    /// DataFusion's, and the pending values of shared percentile digests.
    pub fn state_fields(spec: &AggregateSpec) -> Result<Vec<Vec<Field>>> {
        spec.aggregates
            .iter()
            .zip(plan_digests(spec))
            .map(|(aggregate, plan)| {
                let mut fields: Vec<Field> = aggregate
                    .state_fields()?
                    .iter()
                    .map(|f| f.as_ref().clone())
                    .collect();
                if plan != DigestPlan::None {
                    fields.push(PercentileDigests::pending_field());
                }
                Ok(fields)
            })
            .collect()
    }

    /// How many state columns each aggregate has in [`Self::state_fields`].
    pub fn state_widths(spec: &AggregateSpec) -> Result<Vec<usize>> {
        Ok(Self::state_fields(spec)?.iter().map(Vec::len).collect())
    }

    /// Approximate memory held, in bytes.
    pub fn size(&self) -> usize {
        self.slots
            .iter()
            .map(|slot| match slot {
                Slot::Own(a) => a.size(),
                Slot::Digests(d) => d.size(),
                Slot::Shared { .. } => 0,
            })
            .sum()
    }

    /// Adds the rows of `input` to groups `group_indices` (one per row) of
    /// `total_groups`.
    pub fn update(
        &mut self,
        input: &AggregateInput,
        group_indices: &[usize],
        total_groups: usize,
    ) -> Result<()> {
        for (i, slot) in self.slots.iter_mut().enumerate() {
            let Some(accumulator) = slot.accumulator() else {
                continue;
            };
            accumulator.update_batch(
                &input.arguments[i],
                group_indices,
                input.filters[i].as_ref(),
                total_groups,
            )?;
        }
        Ok(())
    }

    /// Takes every group's intermediate state out (DataFusion's `state()`,
    /// per aggregate), leaving no groups.
    pub fn take_state(&mut self) -> Result<Vec<Vec<ArrayRef>>> {
        // A shared percentile's state columns repeat its owner's (the
        // checkpoint layout has state columns for every aggregate).
        let mut states: Vec<Vec<ArrayRef>> = Vec::with_capacity(self.slots.len());
        for slot in &mut self.slots {
            let state = match slot {
                Slot::Shared { owner, .. } => states[*owner].clone(),
                _ => slot
                    .accumulator()
                    .map(|a| a.state(EmitTo::All))
                    .transpose()?
                    .unwrap_or_default(),
            };
            states.push(state);
        }
        Ok(states)
    }

    /// Merges state rows (from [`Self::take_state`]) into groups
    /// `group_indices` (one per row) of `total_groups`.
    pub fn merge_state(
        &mut self,
        states: &[Vec<ArrayRef>],
        group_indices: &[usize],
        total_groups: usize,
    ) -> Result<()> {
        if group_indices.is_empty() {
            return Ok(());
        }
        for (slot, columns) in self.slots.iter_mut().zip(states) {
            if let Some(accumulator) = slot.accumulator() {
                accumulator.merge_batch(columns, group_indices, total_groups)?;
            }
        }
        Ok(())
    }

    /// Every group's final value, one column per aggregate, leaving no groups.
    pub fn evaluate(&mut self) -> Result<Vec<ArrayRef>> {
        // Each digest owner answers its shared percentiles too.
        let mut values: Vec<Option<ArrayRef>> = vec![None; self.slots.len()];
        for i in 0..self.slots.len() {
            let shared: Vec<(usize, f64)> = self
                .slots
                .iter()
                .enumerate()
                .filter_map(|(j, slot)| match slot {
                    Slot::Shared { owner, percentile } if *owner == i => Some((j, *percentile)),
                    _ => None,
                })
                .collect();
            match &mut self.slots[i] {
                Slot::Own(a) => values[i] = Some(a.evaluate(EmitTo::All)?),
                Slot::Digests(digests) => {
                    let mut percentiles = vec![digests.percentile()];
                    percentiles.extend(shared.iter().map(|(_, p)| *p));
                    let columns = digests.evaluate_percentiles(EmitTo::All, &percentiles)?;
                    let targets = std::iter::once(i).chain(shared.iter().map(|(j, _)| *j));
                    for (target, column) in targets.zip(columns) {
                        values[target] = Some(column);
                    }
                }
                Slot::Shared { .. } => {}
            }
        }
        values
            .into_iter()
            .map(|v| v.ok_or_else(|| crate::err!(Internal, "shared percentile without owner")))
            .collect()
    }
}

/// Aggregation state of one window: interned keys plus one accumulator per
/// aggregate function (percentiles of one column share theirs).
pub struct GroupedAggregates {
    interner: KeyInterner,
    accumulators: Accumulators,
    group_indices: Vec<usize>,
}

impl std::fmt::Debug for GroupedAggregates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupedAggregates")
            .field("groups", &self.num_groups())
            .finish()
    }
}

impl GroupedAggregates {
    /// Empty state for `spec`.
    pub fn try_new(spec: &AggregateSpec) -> Result<Self> {
        let interner = if spec.keys.is_empty() {
            KeyInterner::Single { has_group: false }
        } else {
            KeyInterner::Keys(new_key_values(&spec.key_schema)?)
        };
        Ok(Self {
            interner,
            accumulators: Accumulators::try_new(spec)?,
            group_indices: Vec::new(),
        })
    }

    /// Number of groups seen.
    pub fn num_groups(&self) -> usize {
        match &self.interner {
            KeyInterner::Keys(values) => values.len(),
            KeyInterner::Single { has_group } => usize::from(*has_group),
        }
    }

    /// Approximate memory held, in bytes.
    pub fn size(&self) -> usize {
        let keys = match &self.interner {
            KeyInterner::Keys(values) => values.size(),
            KeyInterner::Single { .. } => 0,
        };
        keys + self.accumulators.size()
    }

    /// Adds rows to their groups.
    pub fn update(&mut self, input: &AggregateInput, num_rows: usize) -> Result<()> {
        if num_rows == 0 {
            return Ok(());
        }
        match &mut self.interner {
            KeyInterner::Keys(values) => values.intern(&input.keys, &mut self.group_indices)?,
            KeyInterner::Single { has_group } => {
                *has_group = true;
                self.group_indices.clear();
                self.group_indices.resize(num_rows, 0);
            }
        }
        let total_groups = self.num_groups();
        self.accumulators
            .update(input, &self.group_indices, total_groups)
    }

    /// Takes the intermediate state out (DataFusion's `state()`: the form
    /// that partial aggregates exchange), leaving this empty.
    pub fn take_state(&mut self) -> Result<PartialState> {
        let num_groups = self.num_groups();
        let keys = match &mut self.interner {
            KeyInterner::Keys(values) => emit_all(values.as_mut())?,
            KeyInterner::Single { has_group } => {
                *has_group = false;
                Vec::new()
            }
        };
        Ok(PartialState {
            keys,
            states: self.accumulators.take_state()?,
            num_groups,
        })
    }

    /// Merges intermediate state (from [`Self::take_state`]) into this.
    pub fn merge_state(&mut self, state: &PartialState) -> Result<()> {
        if state.num_groups == 0 {
            return Ok(());
        }
        match &mut self.interner {
            KeyInterner::Keys(values) => values.intern(&state.keys, &mut self.group_indices)?,
            KeyInterner::Single { has_group } => {
                *has_group = true;
                self.group_indices.clear();
                self.group_indices.resize(state.num_groups, 0);
            }
        }
        let total_groups = self.num_groups();
        self.accumulators
            .merge_state(&state.states, &self.group_indices, total_groups)
    }

    /// A copy of the intermediate state, leaving this unchanged. DataFusion's
    /// `state()` is destructive, so the state is taken and merged back.
    pub fn snapshot(&mut self) -> Result<PartialState> {
        let state = self.take_state()?;
        self.merge_state(&state)?;
        Ok(state)
    }

    /// Final results: the key columns and one value column per aggregate,
    /// one row per group.
    pub fn emit(mut self) -> Result<(Vec<ArrayRef>, Vec<ArrayRef>)> {
        let keys = match &mut self.interner {
            KeyInterner::Keys(values) => values.emit(EmitTo::All)?,
            KeyInterner::Single { .. } => Vec::new(),
        };
        Ok((keys, self.accumulators.evaluate()?))
    }
}

/// Every group's key columns, leaving `values` empty and ready for new
/// keys. DataFusion's multi-column group values keep their hash table
/// after `emit(EmitTo::All)` (its aggregation clears them before reuse):
/// interning again without clearing would look up groups that are gone.
pub fn emit_all(values: &mut dyn GroupValues) -> Result<Vec<ArrayRef>> {
    let keys = values.emit(EmitTo::All)?;
    values.clear_shrink(keys.first().map_or(0, |k| k.len()));
    Ok(keys)
}

/// Grouped accumulator where the aggregate has one; DataFusion's adapter
/// over per-group `Accumulator`s otherwise (as `AggregateExec` does), fed
/// in runs of several pushes (see [`BatchedGroupsAccumulator`]).
fn create_accumulator(expr: &Arc<AggregateFunctionExpr>) -> Result<Box<dyn GroupsAccumulator>> {
    if expr.groups_accumulator_supported() {
        return Ok(expr.create_groups_accumulator()?);
    }
    let expr = Arc::clone(expr);
    let adapter = GroupsAccumulatorAdapter::new(move || expr.create_accumulator());
    Ok(Box::new(BatchedGroupsAccumulator::new(Box::new(adapter))))
}

/// One accumulator per aggregate, for state that is not grouped (an
/// updating group, a refining window group), readable after every push.
pub fn create_accumulators(spec: &AggregateSpec) -> Result<Vec<RowAccumulator>> {
    match spec.retractions() {
        Some(retractions) => Ok(retractions
            .iter()
            .map(|r| RowAccumulator::retracting(r.create()))
            .collect()),
        None => spec.row_folds().create(&spec.aggregates),
    }
}

/// Feeds rows `offset..offset + len` of `input` to per-aggregate
/// accumulators, honouring each aggregate's `FILTER (WHERE ...)`.
pub fn apply_run(
    accumulators: &mut [RowAccumulator],
    input: &AggregateInput,
    offset: usize,
    len: usize,
) -> Result<()> {
    for (i, accumulator) in accumulators.iter_mut().enumerate() {
        accumulator.update_run(&input.arguments[i], input.filters[i].as_ref(), offset, len)?;
    }
    Ok(())
}

/// Takes rows `offset..offset + len` of `input` back out of retracting
/// accumulators, honouring each aggregate's `FILTER (WHERE ...)`.
pub fn retract_run(
    accumulators: &mut [RowAccumulator],
    input: &AggregateInput,
    offset: usize,
    len: usize,
) -> Result<()> {
    for (i, accumulator) in accumulators.iter_mut().enumerate() {
        accumulator.retract_run(&input.arguments[i], input.filters[i].as_ref(), offset, len)?;
    }
    Ok(())
}

/// The current value of each accumulator (`evaluate` leaves the state in place).
pub fn evaluate_accumulators(accumulators: &mut [RowAccumulator]) -> Result<Vec<ScalarValue>> {
    accumulators.iter_mut().map(|a| a.value()).collect()
}
