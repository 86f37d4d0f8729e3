//! Feeds aggregates that have no grouped form in larger runs.
//!
//! DataFusion's `GroupsAccumulatorAdapter` calls one `Accumulator` per group
//! with that group's rows of each batch. A streaming push brings only a few
//! rows per group (W4: ~10 of 10k rows for 1k keys), and some accumulators
//! pay a fixed price per call far above the per-row price: the t-digest
//! behind `approx_percentile_cont` re-merges all its centroids on every
//! call. [`BatchedGroupsAccumulator`] queues the rows of successive pushes
//! and hands them over as one batch when enough have gathered or when
//! anything reads the state, so each group's accumulator sees long runs.
//! Rows keep their order, so results are those of the same rows arriving in
//! fewer, larger pushes.

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray};
use arrow::compute::concat;
use datafusion::common::Result;
use datafusion::logical_expr::{EmitTo, GroupsAccumulator};

/// Rows queued before they are handed over; bounds the memory held (a few
/// MB for numeric arguments) while giving each of 1k groups runs of ~60.
const MAX_PENDING_ROWS: usize = 1 << 16;
/// Pushes queued before they are handed over, for streams of tiny pushes.
const MAX_PENDING_PUSHES: usize = 1024;

/// One `update_batch` call waiting to be handed over.
struct QueuedCall {
    arguments: Vec<ArrayRef>,
    filter: Option<BooleanArray>,
    rows: usize,
}

/// Queues `update_batch` calls for an inner accumulator (see the module docs).
pub struct BatchedGroupsAccumulator {
    inner: Box<dyn GroupsAccumulator>,
    /// The queued calls, in order.
    calls: Vec<QueuedCall>,
    /// Group index of every queued row, in order.
    group_indices: Vec<usize>,
    total_num_groups: usize,
}

impl BatchedGroupsAccumulator {
    /// Queues calls to `inner`.
    pub fn new(inner: Box<dyn GroupsAccumulator>) -> Self {
        Self {
            inner,
            calls: Vec::new(),
            group_indices: Vec::new(),
            total_num_groups: 0,
        }
    }

    /// Hands every queued row to the inner accumulator in one call.
    fn flush(&mut self) -> Result<()> {
        if self.calls.is_empty() {
            return Ok(());
        }
        let mut calls = std::mem::take(&mut self.calls);
        let group_indices = std::mem::take(&mut self.group_indices);
        let (arguments, filter) = if calls.len() == 1 {
            let only = calls.swap_remove(0);
            (only.arguments, only.filter)
        } else {
            let columns = calls[0].arguments.len();
            let arguments = (0..columns)
                .map(|c| {
                    let parts: Vec<&dyn Array> = calls
                        .iter()
                        .map(|call| call.arguments[c].as_ref())
                        .collect();
                    Ok(concat(&parts)?)
                })
                .collect::<Result<Vec<_>>>()?;
            (arguments, combined_filter(&calls)?)
        };
        let result = self.inner.update_batch(
            &arguments,
            &group_indices,
            filter.as_ref(),
            self.total_num_groups,
        );
        // Reuse the index buffer's allocation for the next run.
        self.group_indices = group_indices;
        self.group_indices.clear();
        result
    }
}

/// One mask for calls that were queued separately, as the inner
/// accumulator would have seen them one by one (a null drops its row); a
/// call without a mask keeps all its rows. `None` when no call had a mask.
fn combined_filter(calls: &[QueuedCall]) -> Result<Option<BooleanArray>> {
    if calls.iter().all(|call| call.filter.is_none()) {
        return Ok(None);
    }
    let masks: Vec<BooleanArray> = calls
        .iter()
        .map(|call| {
            call.filter
                .clone()
                .unwrap_or_else(|| BooleanArray::from(vec![true; call.rows]))
        })
        .collect();
    let parts: Vec<&dyn Array> = masks.iter().map(|mask| mask as &dyn Array).collect();
    Ok(Some(concat(&parts)?.as_boolean().clone()))
}

impl GroupsAccumulator for BatchedGroupsAccumulator {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        if group_indices.is_empty() {
            return Ok(());
        }
        self.calls.push(QueuedCall {
            arguments: values.to_vec(),
            filter: opt_filter.cloned(),
            rows: group_indices.len(),
        });
        self.group_indices.extend_from_slice(group_indices);
        self.total_num_groups = self.total_num_groups.max(total_num_groups);
        if self.group_indices.len() >= MAX_PENDING_ROWS || self.calls.len() >= MAX_PENDING_PUSHES {
            self.flush()?;
        }
        Ok(())
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        self.flush()?;
        self.inner.evaluate(emit_to)
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        self.flush()?;
        self.inner.state(emit_to)
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        // Queued rows came first: order matters to some aggregates.
        self.flush()?;
        self.total_num_groups = self.total_num_groups.max(total_num_groups);
        self.inner
            .merge_batch(values, group_indices, total_num_groups)
    }

    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        // Stateless: queued rows play no part.
        self.inner.convert_to_state(values, opt_filter)
    }

    fn size(&self) -> usize {
        let queued: usize = self
            .calls
            .iter()
            .map(|call| {
                call.arguments
                    .iter()
                    .map(|a| a.get_array_memory_size())
                    .sum::<usize>()
                    + call
                        .filter
                        .as_ref()
                        .map_or(0, |f| f.get_array_memory_size())
            })
            .sum();
        self.inner.size() + queued + self.group_indices.capacity() * std::mem::size_of::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use arrow::array::{AsArray, Int64Array, StringArray};
    use arrow::datatypes::Int64Type;
    use datafusion::common::ScalarValue;
    use datafusion::logical_expr::Accumulator;
    use datafusion::physical_expr::GroupsAccumulatorAdapter;

    use super::*;

    /// Writes down every value it is given, in order, and counts its calls:
    /// any reordering, lost row or ignored filter shows in the text.
    #[derive(Debug)]
    struct Recorder {
        seen: String,
        calls: Arc<AtomicUsize>,
    }

    impl Accumulator for Recorder {
        fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
            self.calls.fetch_add(1, Ordering::Relaxed);
            for v in values[0].as_primitive::<Int64Type>().iter() {
                self.seen
                    .push_str(&v.map_or("null".into(), |v| v.to_string()));
                self.seen.push(' ');
            }
            Ok(())
        }
        fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
            for s in states[0].as_string::<i32>().iter().flatten() {
                self.seen.push_str(&format!("[{s}] "));
            }
            Ok(())
        }
        fn state(&mut self) -> Result<Vec<ScalarValue>> {
            Ok(vec![ScalarValue::from(self.seen.clone())])
        }
        fn evaluate(&mut self) -> Result<ScalarValue> {
            Ok(ScalarValue::from(self.seen.clone()))
        }
        fn size(&self) -> usize {
            std::mem::size_of_val(self) + self.seen.capacity()
        }
    }

    fn adapter(calls: &Arc<AtomicUsize>) -> Box<dyn GroupsAccumulator> {
        let calls = Arc::clone(calls);
        Box::new(GroupsAccumulatorAdapter::new(move || {
            Ok(Box::new(Recorder {
                seen: String::new(),
                calls: Arc::clone(&calls),
            }))
        }))
    }

    /// A deterministic stream of pushes: varying sizes, groups, nulls and
    /// filters (some pushes with a mask with nulls in it, some without).
    type Push = (ArrayRef, Vec<usize>, Option<BooleanArray>, usize);

    fn pushes() -> Vec<Push> {
        let mut seed = 7u64;
        let mut next = move |n: u64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) % n
        };
        let mut groups = 1;
        (0..300)
            .map(|p| {
                let rows = next(400) as usize;
                groups = (groups + next(3) as usize).min(50);
                let values: ArrayRef = Arc::new(Int64Array::from_iter(
                    (0..rows).map(|i| (next(10) != 0).then_some((p * 1000 + i) as i64)),
                ));
                let indices = (0..rows).map(|_| next(groups as u64) as usize).collect();
                // Nulls in a mask sit over true bits: they must still drop the row.
                let filter = (p % 3 == 0).then(|| {
                    let picks: Vec<u64> = (0..rows).map(|_| next(5)).collect();
                    let bits = picks.iter().map(|&k| k != 1).collect::<Vec<_>>();
                    let valid = picks.iter().map(|&k| k != 0).collect::<Vec<_>>();
                    BooleanArray::new(bits.into(), Some(valid.into()))
                });
                (values, indices, filter, groups)
            })
            .collect()
    }

    fn run(accumulator: &mut dyn GroupsAccumulator, pushes: &[Push]) -> Vec<ArrayRef> {
        let mut outputs = Vec::new();
        for (i, (values, indices, filter, groups)) in pushes.iter().enumerate() {
            accumulator
                .update_batch(&[Arc::clone(values)], indices, filter.as_ref(), *groups)
                .unwrap();
            // A state read and a merge mid-stream: queued rows go first.
            if i == 150 {
                outputs.extend(accumulator.state(EmitTo::All).unwrap());
            }
            if i == 200 {
                let merged: ArrayRef = Arc::new(StringArray::from(vec!["merged"; 3]));
                accumulator
                    .merge_batch(&[merged], &[0, 2, 1], *groups)
                    .unwrap();
            }
        }
        outputs.push(accumulator.evaluate(EmitTo::All).unwrap());
        outputs
    }

    #[test]
    fn queued_pushes_give_what_the_accumulator_gives_push_by_push() {
        let pushes = pushes();
        let (direct_calls, batched_calls) = (Arc::default(), Arc::default());
        let direct = run(adapter(&direct_calls).as_mut(), &pushes);
        let mut batched = BatchedGroupsAccumulator::new(adapter(&batched_calls));
        let queued = run(&mut batched, &pushes);
        assert_eq!(direct, queued);
        let text = queued
            .last()
            .unwrap()
            .as_string::<i32>()
            .value(1)
            .to_string();
        assert!(text.contains("[merged]") && text.contains("null"), "{text}");
        // ~60k rows in 300 pushes: a handful of runs instead of one per push.
        let (direct_calls, batched_calls) = (
            direct_calls.load(Ordering::Relaxed),
            batched_calls.load(Ordering::Relaxed),
        );
        assert!(
            batched_calls * 10 < direct_calls,
            "{batched_calls} vs {direct_calls}"
        );
    }

    #[test]
    fn queued_rows_count_in_the_reported_size() {
        let calls = Arc::default();
        let mut batched = BatchedGroupsAccumulator::new(adapter(&calls));
        let empty = batched.size();
        let values: ArrayRef = Arc::new(Int64Array::from_iter_values(0..10_000));
        batched
            .update_batch(&[values], &vec![0; 10_000], None, 1)
            .unwrap();
        assert_eq!(calls.load(Ordering::Relaxed), 0);
        assert!(batched.size() >= empty + 80_000);
    }
}
