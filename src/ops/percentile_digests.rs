//! `approx_percentile_cont` and `approx_median` in grouped form, one
//! t-digest per group shared by every percentile of the same column.
//!
//! DataFusion has no grouped form of this aggregate: its adapter keeps one
//! boxed `Accumulator` per group and, on each call, takes the group's rows,
//! sorts them and merges them into that group's digest. A dashboard asking
//! for p50, p90 and p99 of one column builds three identical digests.
//! [`PercentileDigests`] keeps one `TDigest` per group (DataFusion's own
//! type and merge code), buffers each group's values and merges them in
//! long runs, as [`super::batched_groups`] does for the adapter, and answers
//! every percentile of the same column, `FILTER` and digest size from that
//! one digest. Results are those of DataFusion's accumulator given the same
//! runs of values.
//!
//! A t-digest depends on how its values were cut into runs, so the state
//! carries the buffered values as they are (DataFusion's six state columns
//! plus a list of pending values): a checkpoint neither merges them early
//! nor loses them, and a restored engine continues exactly like one that
//! was never stopped. Runs are cut by the number of values buffered, never
//! by pushes or checkpoints.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float32Array, Float64Array, ListArray, UInt64Array,
};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Field, Float32Type, Float64Type, UInt64Type};
use datafusion::common::{exec_err, Result, ScalarValue};
use datafusion::logical_expr::{EmitTo, GroupsAccumulator};
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;
use datafusion::physical_expr::expressions::Literal;
use datafusion::physical_expr::PhysicalExpr;
use datafusion_functions_aggregate_common::tdigest::{Centroid, TDigest, DEFAULT_MAX_SIZE};

use super::aggregate_spec::AggregateSpec;

/// Values buffered (over all groups) before they are merged into digests:
/// bounds the memory held (512 KB) while giving 1k groups runs of ~60.
const MAX_PENDING_VALUES: usize = 1 << 16;

/// How an aggregate of a spec is computed, as far as digests go.
#[derive(Debug, Clone, PartialEq)]
pub enum DigestPlan {
    /// Not an `approx_percentile_cont` this module handles.
    None,
    /// Owns the digests; answers its own percentile and its `Shared` ones.
    Owner {
        /// Its own percentile (descending order already folded in).
        percentile: f64,
        /// Most centroids a digest keeps.
        max_size: usize,
        /// Argument and result type (Float64 or Float32).
        data_type: DataType,
    },
    /// Reads the digests of aggregate `owner` at `percentile`.
    Shared {
        /// Index of the owning aggregate (always earlier).
        owner: usize,
        /// Its own percentile.
        percentile: f64,
    },
}

/// What a percentile aggregate reads: two with equal parameters can share digests.
struct DigestSource {
    value: Arc<dyn PhysicalExpr>,
    filter: Option<Arc<dyn PhysicalExpr>>,
    max_size: usize,
    data_type: DataType,
}

impl DigestSource {
    fn same_as(&self, other: &DigestSource) -> bool {
        let same_filter = match (&self.filter, &other.filter) {
            (None, None) => true,
            (Some(a), Some(b)) => a.as_ref() == b.as_ref(),
            _ => false,
        };
        self.value.as_ref() == other.value.as_ref()
            && same_filter
            && self.max_size == other.max_size
            && self.data_type == other.data_type
    }
}

/// Which aggregates of `spec` run on shared digests.
pub fn plan_digests(spec: &AggregateSpec) -> Vec<DigestPlan> {
    let mut owners: Vec<(usize, DigestSource)> = Vec::new();
    let mut plans = Vec::with_capacity(spec.aggregates.len());
    for (i, expr) in spec.aggregates.iter().enumerate() {
        let Some((source, percentile)) = digest_source(expr, spec.filters[i].as_ref()) else {
            plans.push(DigestPlan::None);
            continue;
        };
        if let Some((owner, _)) = owners.iter().find(|(_, s)| s.same_as(&source)) {
            plans.push(DigestPlan::Shared {
                owner: *owner,
                percentile,
            });
        } else {
            plans.push(DigestPlan::Owner {
                percentile,
                max_size: source.max_size,
                data_type: source.data_type.clone(),
            });
            owners.push((i, source));
        }
    }
    plans
}

/// The digest parameters and percentile of an `approx_percentile_cont`
/// with literal arguments, or an `approx_median` (its 0.5), on
/// Float64/Float32; `None` for anything else (DataFusion's own accumulator
/// then runs, with its own checks).
fn digest_source(
    expr: &AggregateFunctionExpr,
    filter: Option<&Arc<dyn PhysicalExpr>>,
) -> Option<(DigestSource, f64)> {
    if expr.is_distinct() {
        return None;
    }
    let args = expr.expressions();
    let literal = |i: usize| {
        args.get(i)?
            .downcast_ref::<Literal>()
            .map(|l| l.value().clone())
    };
    let (percentile, max_size) = match (expr.fun().name(), args.len()) {
        ("approx_median", 1) => (0.5, DEFAULT_MAX_SIZE),
        ("approx_percentile_cont", 2 | 3) => {
            let percentile = match literal(1)? {
                ScalarValue::Float64(Some(p)) if (0.0..=1.0).contains(&p) => p,
                _ => return None,
            };
            let max_size = match literal(2) {
                None if args.len() == 2 => DEFAULT_MAX_SIZE,
                Some(ScalarValue::Int64(Some(n))) if n > 0 => usize::try_from(n).ok()?,
                Some(ScalarValue::UInt64(Some(n))) if n > 0 => usize::try_from(n).ok()?,
                _ => return None,
            };
            // WITHIN GROUP (ORDER BY x DESC) asks for the complementary
            // percentile, as DataFusion's accumulator computes it.
            let descending = expr
                .order_bys()
                .first()
                .is_some_and(|s| s.options.descending);
            (
                if descending {
                    1.0 - percentile
                } else {
                    percentile
                },
                max_size,
            )
        }
        _ => return None,
    };
    let data_type = expr.field().data_type().clone();
    if !matches!(data_type, DataType::Float64 | DataType::Float32) {
        return None;
    }
    let source = DigestSource {
        value: Arc::clone(&args[0]),
        filter: filter.cloned(),
        max_size,
        data_type,
    };
    Some((source, percentile))
}

/// One t-digest per group (see the module docs).
pub struct PercentileDigests {
    /// The owning aggregate's own percentile.
    percentile: f64,
    max_size: usize,
    data_type: DataType,
    digests: Vec<TDigest>,
    /// Each group's values not yet in its digest.
    pending: Vec<Vec<f64>>,
    /// Groups with pending values.
    touched: Vec<usize>,
    pending_values: usize,
    /// Bytes held by the digests (tracked, not summed per call).
    digest_bytes: usize,
}

impl PercentileDigests {
    /// Digests answering `percentile` first (the owner's plan).
    pub fn new(percentile: f64, max_size: usize, data_type: DataType) -> Self {
        Self {
            percentile,
            max_size,
            data_type,
            digests: Vec::new(),
            pending: Vec::new(),
            touched: Vec::new(),
            pending_values: 0,
            digest_bytes: 0,
        }
    }

    /// The owning aggregate's own percentile.
    pub fn percentile(&self) -> f64 {
        self.percentile
    }

    fn resize(&mut self, total_num_groups: usize) {
        if self.digests.len() < total_num_groups {
            let fresh = TDigest::new(self.max_size);
            self.digest_bytes += fresh.size() * (total_num_groups - self.digests.len());
            self.digests.resize(total_num_groups, fresh);
            self.pending.resize_with(total_num_groups, Vec::new);
        }
    }

    fn buffer(&mut self, group: usize, value: f64) {
        let pending = &mut self.pending[group];
        if pending.is_empty() {
            self.touched.push(group);
        }
        pending.push(value);
        self.pending_values += 1;
    }

    /// Merges every group's pending values into its digest, sorted, as
    /// DataFusion's accumulator merges one call's values.
    fn flush(&mut self) {
        for group in std::mem::take(&mut self.touched) {
            let pending = &mut self.pending[group];
            pending.sort_unstable_by(f64::total_cmp);
            let digest = &mut self.digests[group];
            self.digest_bytes -= digest.size();
            *digest = digest.merge_sorted_f64(pending);
            self.digest_bytes += digest.size();
            pending.clear();
        }
        self.pending_values = 0;
    }

    /// Removes the groups `emit_to` names: their digests and values not
    /// yet merged.
    fn take(&mut self, emit_to: EmitTo) -> (Vec<TDigest>, Vec<Vec<f64>>) {
        let digests = emit_to.take_needed(&mut self.digests);
        let pending = emit_to.take_needed(&mut self.pending);
        self.digest_bytes -= digests.iter().map(TDigest::size).sum::<usize>();
        self.pending_values -= pending.iter().map(Vec::len).sum::<usize>();
        let taken = digests.len();
        self.touched.retain_mut(|group| {
            let kept = *group >= taken;
            *group = group.wrapping_sub(taken);
            kept
        });
        (digests, pending)
    }

    /// The field of the pending values column, after DataFusion's state columns.
    pub fn pending_field() -> Field {
        Field::new_list(
            "pending",
            Field::new_list_field(DataType::Float64, true),
            true,
        )
    }

    /// The percentiles `percentiles` of the groups `emit_to` names, one
    /// column each, removing those groups.
    pub fn evaluate_percentiles(
        &mut self,
        emit_to: EmitTo,
        percentiles: &[f64],
    ) -> Result<Vec<ArrayRef>> {
        self.flush();
        let (digests, _) = self.take(emit_to);
        percentiles
            .iter()
            .map(|&p| {
                let values = digests
                    .iter()
                    .map(|d| (d.count() > 0.0).then(|| d.estimate_quantile(p)));
                Ok(match self.data_type {
                    DataType::Float32 => Arc::new(
                        values
                            .map(|v| v.map(|v| v as f32))
                            .collect::<Float32Array>(),
                    ) as ArrayRef,
                    _ => Arc::new(values.collect::<Float64Array>()) as ArrayRef,
                })
            })
            .collect()
    }

    /// State columns (DataFusion's layout) of `digests`, one row each.
    fn state_columns(&self, digests: &[TDigest]) -> Result<Vec<ArrayRef>> {
        let floats = |f: fn(&TDigest) -> f64| -> ArrayRef {
            Arc::new(Float64Array::from_iter_values(digests.iter().map(f)))
        };
        let max_sizes = UInt64Array::from_iter_values(digests.iter().map(|d| d.max_size() as u64));
        let pairs: Vec<Vec<f64>> = digests
            .iter()
            .map(|d| {
                d.centroids()
                    .iter()
                    .flat_map(|c| [c.mean(), c.weight()])
                    .collect()
            })
            .collect();
        let centroids = list_of(pairs.iter().map(Vec::as_slice))?;
        Ok(vec![
            Arc::new(max_sizes),
            floats(TDigest::sum),
            floats(TDigest::count),
            floats(TDigest::max),
            floats(TDigest::min),
            Arc::new(centroids),
        ])
    }

    /// One row of digest state, checked: checkpoints come from outside.
    fn digest_from_state(columns: &[ArrayRef], row: usize) -> Result<TDigest> {
        if columns.len() != 6 || columns.iter().any(|c| c.is_null(row)) {
            return exec_err!("invalid t-digest state: missing values");
        }
        let float = |i: usize| -> Result<f64> {
            match columns[i].as_primitive_opt::<Float64Type>() {
                Some(a) => Ok(a.value(row)),
                None => exec_err!("invalid t-digest state: column {i} is not Float64"),
            }
        };
        let Some(max_size) = columns[0].as_primitive_opt::<UInt64Type>() else {
            return exec_err!("invalid t-digest state: max_size is not UInt64");
        };
        let Some(list) = columns[5].as_list_opt::<i32>() else {
            return exec_err!("invalid t-digest state: centroids are not a list");
        };
        let centroids = list.value(row);
        let Some(centroids) = centroids.as_primitive_opt::<Float64Type>() else {
            return exec_err!("invalid t-digest state: centroids are not Float64");
        };
        if centroids.null_count() > 0 || centroids.len() % 2 != 0 {
            return exec_err!("invalid t-digest state: centroids are not (mean, weight) pairs");
        }
        let centroids = centroids
            .values()
            .chunks_exact(2)
            .map(|pair| Centroid::new(pair[0], pair[1]))
            .collect();
        let max_size = usize::try_from(max_size.value(row)).unwrap_or(usize::MAX);
        TDigest::try_from_parts(
            max_size,
            float(1)?,
            float(2)?,
            float(3)?,
            float(4)?,
            centroids,
        )
    }
}

impl std::fmt::Debug for PercentileDigests {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PercentileDigests")
            .field("groups", &self.digests.len())
            .finish()
    }
}

impl GroupsAccumulator for PercentileDigests {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.resize(total_num_groups);
        for_each_value(values, opt_filter, |row, value| {
            self.buffer(group_indices[row], value)
        })?;
        if self.pending_values >= MAX_PENDING_VALUES {
            self.flush();
        }
        Ok(())
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        let mut columns = self.evaluate_percentiles(emit_to, &[self.percentile])?;
        Ok(columns.remove(0))
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        let (digests, pending) = self.take(emit_to);
        let mut columns = self.state_columns(&digests)?;
        columns.push(Arc::new(list_of(pending.iter().map(Vec::as_slice))?));
        Ok(columns)
    }

    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        // One digest per row: of its value, or empty.
        let rows = values.first().map_or(0, |v| v.len());
        let digests = vec![TDigest::new(self.max_size); rows];
        let mut pending = vec![None; rows];
        for_each_value(values, opt_filter, |row, value| pending[row] = Some(value))?;
        let mut columns = self.state_columns(&digests)?;
        let pending = pending.iter().map(|v| v.as_slice());
        columns.push(Arc::new(list_of(pending)?));
        Ok(columns)
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        self.resize(total_num_groups);
        // DataFusion's six state columns, and this module's pending values
        // (absent from DataFusion's own state).
        let (digest_columns, pending) = match values.len() {
            6 => (values, None),
            7 => match values[6].as_list_opt::<i32>() {
                Some(list) => (&values[..6], Some(list)),
                None => return exec_err!("invalid t-digest state: pending values are not a list"),
            },
            n => return exec_err!("invalid t-digest state: {n} columns"),
        };
        // Each group's incoming digests, merged with its own in one step
        // (incoming first, as DataFusion's accumulator does). A digest
        // merged into an empty group is kept as it is, so that taking the
        // state out and merging it back changes nothing.
        let mut incoming: Vec<(usize, usize, TDigest)> = Vec::with_capacity(group_indices.len());
        for (row, &group) in group_indices.iter().enumerate() {
            incoming.push((group, row, Self::digest_from_state(digest_columns, row)?));
        }
        incoming.sort_by_key(|(group, _, _)| *group);
        for run in incoming.chunk_by(|a, b| a.0 == b.0) {
            let group = run[0].0;
            let own = &self.digests[group];
            let merged = match run {
                [(_, _, only)] if own.count() == 0.0 && own.centroids().is_empty() => only.clone(),
                _ => TDigest::merge_digests(
                    run.iter().map(|(_, _, d)| d).chain(std::iter::once(own)),
                ),
            };
            self.digest_bytes = self.digest_bytes - own.size() + merged.size();
            self.digests[group] = merged;
            if let Some(pending) = pending {
                for &(_, row, _) in run {
                    if pending.is_null(row) {
                        continue;
                    }
                    let values = pending.value(row);
                    let Some(values) = values.as_primitive_opt::<Float64Type>() else {
                        return exec_err!("invalid t-digest state: pending values are not Float64");
                    };
                    for value in values.iter().flatten() {
                        self.buffer(group, value);
                    }
                }
            }
        }
        if self.pending_values >= MAX_PENDING_VALUES {
            self.flush();
        }
        Ok(())
    }

    fn size(&self) -> usize {
        self.digest_bytes
            + self.pending.capacity() * std::mem::size_of::<Vec<f64>>()
            + self.pending_values * std::mem::size_of::<f64>()
            + self.touched.capacity() * std::mem::size_of::<usize>()
    }
}

/// A list column of Float64 values, one list per item.
fn list_of<'a>(lists: impl Iterator<Item = &'a [f64]>) -> Result<ListArray> {
    let mut lengths = Vec::new();
    let mut flat = Vec::new();
    for list in lists {
        lengths.push(list.len());
        flat.extend_from_slice(list);
    }
    Ok(ListArray::try_new(
        Arc::new(Field::new_list_field(DataType::Float64, true)),
        OffsetBuffer::from_lengths(lengths),
        Arc::new(Float64Array::from(flat)),
        None,
    )?)
}

/// Calls `f(row, value)` for each row of `values[0]` with a value that the
/// FILTER keeps (a null filter value counts as false, as in SQL).
fn for_each_value(
    values: &[ArrayRef],
    opt_filter: Option<&BooleanArray>,
    mut f: impl FnMut(usize, f64),
) -> Result<()> {
    let Some(values) = values.first() else {
        return exec_err!("approx_percentile_cont without arguments");
    };
    let keep = |row: usize| opt_filter.is_none_or(|m| m.is_valid(row) && m.value(row));
    match values.data_type() {
        DataType::Float64 => {
            let values = values.as_primitive::<Float64Type>();
            for row in 0..values.len() {
                if values.is_valid(row) && keep(row) {
                    f(row, values.value(row));
                }
            }
        }
        DataType::Float32 => {
            let values = values.as_primitive::<Float32Type>();
            for row in 0..values.len() {
                if values.is_valid(row) && keep(row) {
                    f(row, f64::from(values.value(row)));
                }
            }
        }
        other => return exec_err!("approx_percentile_cont digests got {other}"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use datafusion::functions_aggregate::approx_percentile_cont::ApproxPercentileAccumulator;
    use datafusion::logical_expr::Accumulator;

    use super::*;

    fn digests(data_type: DataType) -> PercentileDigests {
        PercentileDigests::new(0.5, DEFAULT_MAX_SIZE, data_type)
    }

    /// Pushes of (group, value) over 3 groups: nulls, a FILTER with nulls,
    /// repeated values, and a group (2) that only the last push reaches.
    fn pushes() -> Vec<(Vec<usize>, Float64Array, BooleanArray)> {
        (0..4u32)
            .map(|push| {
                let rows = 40 + 17 * push as usize;
                let groups = (0..rows)
                    .map(|r| if push == 3 && r % 5 == 0 { 2 } else { r % 2 })
                    .collect();
                let values = (0..rows)
                    .map(|r| {
                        (r % 7 != 3).then(|| ((r * 37 + push as usize * 11) % 101) as f64 / 4.0)
                    })
                    .collect();
                let filter = (0..rows)
                    .map(|r| (r % 11 != 5).then_some(r % 13 != 0))
                    .collect();
                (groups, values, filter)
            })
            .collect()
    }

    /// DataFusion's accumulator fed each group's kept values in one call.
    fn datafusion_accumulator(percentile: f64, group: usize) -> ApproxPercentileAccumulator {
        let mut values = Vec::new();
        for (groups, v, filter) in pushes() {
            for (row, &g) in groups.iter().enumerate() {
                if g == group && v.is_valid(row) && filter.is_valid(row) && filter.value(row) {
                    values.push(v.value(row));
                }
            }
        }
        let mut accumulator = ApproxPercentileAccumulator::new(percentile, DataType::Float64);
        let values: ArrayRef = Arc::new(Float64Array::from(values));
        accumulator.update_batch(&[values]).unwrap();
        accumulator
    }

    fn fed() -> PercentileDigests {
        let mut digests = digests(DataType::Float64);
        for (groups, values, filter) in pushes() {
            let values: ArrayRef = Arc::new(values);
            digests
                .update_batch(&[values], &groups, Some(&filter), 3)
                .unwrap();
        }
        digests
    }

    #[test]
    fn every_percentile_matches_datafusions_accumulator_on_the_same_values() {
        let percentiles = [0.5, 0.9, 0.0, 1.0, 0.25];
        let columns = fed()
            .evaluate_percentiles(EmitTo::All, &percentiles)
            .unwrap();
        for (column, &p) in columns.iter().zip(&percentiles) {
            let column = column.as_primitive::<Float64Type>();
            assert_eq!(column.len(), 3);
            for group in 0..3 {
                let expected = datafusion_accumulator(p, group).evaluate().unwrap();
                assert_eq!(
                    ScalarValue::Float64(Some(column.value(group))),
                    expected,
                    "p{p} group {group}"
                );
            }
        }
    }

    #[test]
    fn state_keeps_pending_values_so_a_round_trip_changes_nothing() {
        let percentiles = [0.5, 0.9, 0.1];
        let expected = fed()
            .evaluate_percentiles(EmitTo::All, &percentiles)
            .unwrap();
        // Values still pending, or half merged into digests: taking the
        // state out and merging it back (a checkpoint) must not merge them
        // early, which would change the digests.
        for flushed_first in [false, true] {
            let mut source = fed();
            if flushed_first {
                source.flush();
                let more: ArrayRef = Arc::new(Float64Array::from(vec![7.0, 1.0, 99.0]));
                source.update_batch(&[more], &[0, 2, 0], None, 3).unwrap();
            }
            let mut reference = fed();
            if flushed_first {
                reference.flush();
                let more: ArrayRef = Arc::new(Float64Array::from(vec![7.0, 1.0, 99.0]));
                reference
                    .update_batch(&[more], &[0, 2, 0], None, 3)
                    .unwrap();
            }
            let state = source.state(EmitTo::All).unwrap();
            assert_eq!(state.len(), 7);
            assert_eq!(source.pending_values, 0);
            let mut restored = digests(DataType::Float64);
            restored.merge_batch(&state, &[0, 1, 2], 3).unwrap();
            assert_eq!(restored.pending_values, reference.pending_values);
            let got = restored
                .evaluate_percentiles(EmitTo::All, &percentiles)
                .unwrap();
            let want = reference
                .evaluate_percentiles(EmitTo::All, &percentiles)
                .unwrap();
            assert_eq!(got, want, "flushed first: {flushed_first}");
            if !flushed_first {
                assert_eq!(got, expected);
            }
        }
    }

    #[test]
    fn merged_states_match_datafusions_merges() {
        let mut source = fed();
        source.flush();
        let state = source.state(EmitTo::All).unwrap();
        assert_eq!(
            source.size(),
            source.pending.capacity() * size_of::<Vec<f64>>()
                + source.touched.capacity() * size_of::<usize>()
        );
        // Merged twice into group 0 (empty) and once into group 1 (holding
        // a digest of 3.5) of a fresh set.
        let mut merged = digests(DataType::Float64);
        merged
            .update_batch(
                &[Arc::new(Float64Array::from(vec![3.5])) as ArrayRef],
                &[1],
                None,
                2,
            )
            .unwrap();
        merged.flush();
        merged.merge_batch(&state, &[0, 1, 0], 2).unwrap();
        let got = merged.evaluate_percentiles(EmitTo::All, &[0.7]).unwrap();
        let got = got[0].as_primitive::<Float64Type>();
        // DataFusion: the same states merged into accumulators.
        let state = &state[..6];
        let row = |g: usize| -> Vec<ArrayRef> { state.iter().map(|c| c.slice(g, 1)).collect() };
        let mut zero = ApproxPercentileAccumulator::new(0.7, DataType::Float64);
        let both: Vec<ArrayRef> = state
            .iter()
            .map(|c| arrow::compute::concat(&[&c.slice(0, 1), &c.slice(2, 1)]).unwrap())
            .collect();
        zero.merge_batch(&both).unwrap();
        let mut one = ApproxPercentileAccumulator::new(0.7, DataType::Float64);
        one.update_batch(&[Arc::new(Float64Array::from(vec![3.5])) as ArrayRef])
            .unwrap();
        one.merge_batch(&row(1)).unwrap();
        assert_eq!(
            ScalarValue::Float64(Some(got.value(0))),
            zero.evaluate().unwrap()
        );
        assert_eq!(
            ScalarValue::Float64(Some(got.value(1))),
            one.evaluate().unwrap()
        );
        // The same layout as DataFusion's state.
        let expected = datafusion_accumulator(0.5, 1).state().unwrap();
        for (column, scalar) in state.iter().zip(expected) {
            assert_eq!(ScalarValue::try_from_array(column, 1).unwrap(), scalar);
        }
    }

    #[test]
    fn empty_groups_are_null_and_float32_stays_float32() {
        let mut digests = digests(DataType::Float32);
        let values: ArrayRef = Arc::new(Float32Array::from(vec![Some(1.5), None, Some(2.5)]));
        digests
            .update_batch(&[values], &[0, 1, 0], None, 2)
            .unwrap();
        let got = digests.evaluate(EmitTo::All).unwrap();
        let got = got.as_primitive::<Float32Type>();
        assert_eq!(got.value(0), 2.0);
        assert!(got.is_null(1));
    }

    #[test]
    fn corrupt_state_is_an_error() {
        let mut source = fed();
        source.flush();
        let state = source.state(EmitTo::All).unwrap();
        let with = |i: usize, column: ArrayRef| -> Vec<ArrayRef> {
            let mut state = state.clone();
            state[i] = column;
            state
        };
        let bad = [
            with(
                0,
                Arc::new(UInt64Array::from(vec![None, Some(100), Some(100)])),
            ),
            with(3, Arc::new(Float64Array::from(vec![-1.0, -1.0, -1.0]))),
            with(
                5,
                Arc::new(ListArray::new_null(
                    Arc::new(Field::new_list_field(DataType::Float64, true)),
                    3,
                )),
            ),
            with(
                5,
                Arc::new(ListArray::new(
                    Arc::new(Field::new_list_field(DataType::Float64, true)),
                    OffsetBuffer::from_lengths([1, 0, 0]),
                    Arc::new(Float64Array::from(vec![1.0])),
                    None,
                )),
            ),
            state[..5].to_vec(),
            with(6, Arc::new(Float64Array::from(vec![1.0, 2.0, 3.0]))),
            with(
                6,
                Arc::new(ListArray::new(
                    Arc::new(Field::new_list_field(DataType::Int64, true)),
                    OffsetBuffer::from_lengths([1, 0, 0]),
                    Arc::new(arrow::array::Int64Array::from(vec![1])),
                    None,
                )),
            ),
        ];
        for state in bad {
            let mut target = digests(DataType::Float64);
            assert!(target.merge_batch(&state, &[0, 0, 1], 2).is_err());
        }
    }
}
