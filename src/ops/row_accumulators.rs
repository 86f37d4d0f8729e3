//! One group's aggregate state that can be read after every push: the
//! state of a refining window group or of an updating aggregate's group.
//!
//! `count` (of any type), and `sum`, `min`, `max` and `avg` of 64-bit
//! numbers (what dashboards mostly ask for) fold each group's run of rows
//! in a typed loop; every other aggregate keeps DataFusion's own
//! `Accumulator`, fed a slice per run. A group gets its run of a push in
//! one call ([`RowAccumulator::update_run`]),
//! which for DataFusion's accumulators means slicing every argument and
//! calling through a trait object for a handful of rows: with one group per
//! key and window, that was a fifth of an `EMIT ON UPDATE` push.
//!
//! The folded aggregates keep DataFusion's state layout, results and
//! semantics (nulls skipped, wrapping integer sums, floats ordered by IEEE
//! 754 totalOrder like arrow's kernels), so snapshots read and write them
//! through the [`Accumulator`] trait either way. Float sums add row by row,
//! as DataFusion's grouped (batch) accumulators do.

use std::fmt::Debug;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, PrimitiveArray};
use arrow::datatypes::{
    ArrowNativeTypeOp, ArrowPrimitiveType, DataType, Float64Type, Int64Type, UInt64Type,
};
use datafusion::common::ScalarValue;
use datafusion::functions_aggregate::average::Avg;
use datafusion::functions_aggregate::count::Count;
use datafusion::functions_aggregate::min_max::{Max, Min};
use datafusion::functions_aggregate::sum::Sum;
use datafusion::logical_expr::{Accumulator, AggregateUDFImpl};
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;

use super::retracting::RetractingAccumulator;
use crate::err;
use crate::error::{Result, RiffleError};

/// One aggregate's state for one group.
#[derive(Debug)]
pub struct RowAccumulator(Kind);

#[derive(Debug)]
enum Kind {
    /// A typed fold (count, sum, min, max, avg of 64-bit numbers).
    Folded(Fold),
    /// Any other aggregate: DataFusion's accumulator.
    Other(Box<dyn Accumulator>),
    /// An aggregate over a changelog, which rows can leave again.
    Retracting(Box<RetractingAccumulator>),
}

impl RowAccumulator {
    /// The state of `expr` for a new group: a copy of `fold`, or else
    /// DataFusion's accumulator.
    fn new(expr: &AggregateFunctionExpr, fold: Option<&Fold>) -> Result<Self> {
        Ok(Self(match fold {
            Some(fold) => Kind::Folded(fold.clone()),
            None => Kind::Other(expr.create_accumulator()?),
        }))
    }

    /// The state of `expr` for a new group (queries make theirs with [`RowFolds::create`]).
    #[cfg(test)]
    fn try_new(expr: &AggregateFunctionExpr) -> Result<Self> {
        Self::new(expr, Fold::for_aggregate(expr).as_ref())
    }

    /// A retracting state (see [`super::retracting`]).
    pub fn retracting(state: RetractingAccumulator) -> Self {
        Self(Kind::Retracting(Box::new(state)))
    }

    /// Takes rows `offset..offset + len` of `arguments` back out, those
    /// whose `filter` is true; only a retracting state can.
    pub fn retract_run(
        &mut self,
        arguments: &[ArrayRef],
        filter: Option<&BooleanArray>,
        offset: usize,
        len: usize,
    ) -> Result<()> {
        let Kind::Retracting(state) = &mut self.0 else {
            return Err(err!(
                Internal,
                "a retraction reached an aggregate that cannot take one"
            ));
        };
        let arguments = run_of(arguments, filter, offset, len)?;
        state.apply(&arguments, -1)
    }

    /// Adds rows `offset..offset + len` of `arguments`, those whose
    /// `filter` (an aggregate's `FILTER (WHERE ...)`) is true.
    pub fn update_run(
        &mut self,
        arguments: &[ArrayRef],
        filter: Option<&BooleanArray>,
        offset: usize,
        len: usize,
    ) -> Result<()> {
        match &mut self.0 {
            Kind::Folded(fold) => fold.update_run(arguments, filter, offset, len),
            Kind::Retracting(state) => state.apply(&run_of(arguments, filter, offset, len)?, 1),
            Kind::Other(accumulator) => {
                accumulator.update_batch(&run_of(arguments, filter, offset, len)?)?;
                Ok(())
            }
        }
    }

    /// The aggregate's current value; the state stays as it is.
    pub fn value(&mut self) -> Result<ScalarValue> {
        Ok(match &mut self.0 {
            Kind::Folded(fold) => fold.value(),
            Kind::Other(accumulator) => accumulator.evaluate()?,
            Kind::Retracting(state) => state.evaluate()?,
        })
    }

    fn inner(&mut self) -> &mut dyn Accumulator {
        match &mut self.0 {
            Kind::Folded(fold) => fold,
            Kind::Other(accumulator) => accumulator.as_mut(),
            Kind::Retracting(state) => state.as_mut(),
        }
    }
}

impl Accumulator for RowAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> datafusion::common::Result<()> {
        self.inner().update_batch(values)
    }

    fn evaluate(&mut self) -> datafusion::common::Result<ScalarValue> {
        self.inner().evaluate()
    }

    fn size(&self) -> usize {
        match &self.0 {
            Kind::Folded(fold) => fold.size(),
            Kind::Other(accumulator) => accumulator.size(),
            Kind::Retracting(state) => state.size(),
        }
    }

    fn state(&mut self) -> datafusion::common::Result<Vec<ScalarValue>> {
        self.inner().state()
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> datafusion::common::Result<()> {
        self.inner().merge_batch(states)
    }
}

/// Rows `offset..offset + len` of `arguments` that pass `filter`.
fn run_of(
    arguments: &[ArrayRef],
    filter: Option<&BooleanArray>,
    offset: usize,
    len: usize,
) -> Result<Vec<ArrayRef>> {
    let run = arguments.iter().map(|a| a.slice(offset, len));
    match filter {
        Some(mask) => {
            let mask = mask.slice(offset, len);
            run.map(|a| Ok(arrow::compute::filter(a.as_ref(), &mask)?))
                .collect()
        }
        None => Ok(run.collect()),
    }
}

/// How two values combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Sum,
    Min,
    Max,
}

/// A running sum, minimum or maximum of one primitive type.
#[derive(Debug)]
struct Running<T: ArrowPrimitiveType> {
    op: Op,
    value: Option<T::Native>,
}

// By hand: a derive would ask `T` (a marker type) to be `Clone`.
impl<T: ArrowPrimitiveType> Clone for Running<T> {
    fn clone(&self) -> Self {
        Self {
            op: self.op,
            value: self.value,
        }
    }
}

impl<T: ArrowPrimitiveType> Running<T> {
    fn new(op: Op) -> Self {
        Self { op, value: None }
    }

    #[inline]
    fn add(&mut self, v: T::Native) {
        self.value = Some(match self.value {
            // Sums start at zero, as DataFusion's do (so -0.0 alone sums to 0.0).
            None if self.op == Op::Sum => T::Native::ZERO.add_wrapping(v),
            None => v,
            // `is_lt` / `is_gt` order floats by totalOrder, as arrow's
            // min/max kernels and DataFusion's scalar comparison do.
            Some(current) => match self.op {
                Op::Sum => current.add_wrapping(v),
                Op::Min if v.is_lt(current) => v,
                Op::Max if v.is_gt(current) => v,
                Op::Min | Op::Max => current,
            },
        });
    }

    /// Folds in the non-null values of rows `offset..offset + len` of
    /// `values` that pass `filter`; returns how many there were.
    fn add_rows(
        &mut self,
        values: &PrimitiveArray<T>,
        filter: Option<&BooleanArray>,
        offset: usize,
        len: usize,
    ) -> u64 {
        if filter.is_none() && values.null_count() == 0 {
            for &v in &values.values()[offset..offset + len] {
                self.add(v);
            }
            return len as u64;
        }
        let mut added = 0;
        for row in offset..offset + len {
            if counts(filter, row) && values.is_valid(row) {
                self.add(values.value(row));
                added += 1;
            }
        }
        added
    }
}

/// Whether `row` passes the aggregate's filter (null counts as false, as in SQL).
#[inline]
fn counts(filter: Option<&BooleanArray>, row: usize) -> bool {
    filter.is_none_or(|mask| mask.is_valid(row) && mask.value(row))
}

/// The folded aggregates.
#[derive(Debug, Clone)]
enum Fold {
    /// `count(x)`: non-null values (`count(*)` counts a literal).
    Count(i64),
    /// `sum` / `min` / `max` of Int64.
    Int64(Running<Int64Type>),
    /// `sum` / `min` / `max` of UInt64.
    UInt64(Running<UInt64Type>),
    /// `sum` / `min` / `max` of Float64.
    Float64(Running<Float64Type>),
    /// `avg` of Float64 (DataFusion casts other numbers to Float64 first).
    Avg {
        /// Non-null values seen.
        count: u64,
        /// Their sum.
        sum: Running<Float64Type>,
    },
}

impl Fold {
    /// The fold computing `expr`, if it is one of the folded aggregates.
    fn for_aggregate(expr: &AggregateFunctionExpr) -> Option<Self> {
        if expr.is_distinct() || expr.expressions().len() != 1 {
            return None;
        }
        // DataFusion's own implementations only: a user's aggregate may be
        // registered under the same name.
        let function: &dyn AggregateUDFImpl = expr.fun().inner().as_ref();
        let output = expr.field().data_type().clone();
        let op = if function.is::<Count>() {
            return (output == DataType::Int64).then_some(Self::Count(0));
        } else if function.is::<Avg>() {
            return (output == DataType::Float64).then_some(Self::Avg {
                count: 0,
                sum: Running::new(Op::Sum),
            });
        } else if function.is::<Sum>() {
            Op::Sum
        } else if function.is::<Min>() {
            Op::Min
        } else if function.is::<Max>() {
            Op::Max
        } else {
            return None;
        };
        // Folded when the result is a 64-bit number: sum, min and max
        // return their argument's type (DataFusion widens narrower numbers
        // to these before summing; min and max take them as they are).
        match output {
            DataType::Int64 => Some(Self::Int64(Running::new(op))),
            DataType::UInt64 => Some(Self::UInt64(Running::new(op))),
            DataType::Float64 => Some(Self::Float64(Running::new(op))),
            _ => None,
        }
    }

    fn update_run(
        &mut self,
        arguments: &[ArrayRef],
        filter: Option<&BooleanArray>,
        offset: usize,
        len: usize,
    ) -> Result<()> {
        let values = arguments
            .first()
            .ok_or_else(|| err!(Internal, "an aggregate without its argument"))?;
        if offset + len > values.len() {
            return Err(err!(Internal, "aggregate rows out of range"));
        }
        match self {
            Self::Count(n) => {
                // Logical nulls, as DataFusion counts: a NULL-typed argument
                // (`count(NULL)`) has no null buffer, yet every value is null.
                let nulls = values.logical_nulls();
                let counted = match (&nulls, filter) {
                    (None, None) => len,
                    _ => (offset..offset + len)
                        .filter(|&row| {
                            counts(filter, row) && nulls.as_ref().is_none_or(|n| n.is_valid(row))
                        })
                        .count(),
                };
                *n = n.wrapping_add(counted as i64);
            }
            Self::Int64(running) => {
                running.add_rows(typed(values)?, filter, offset, len);
            }
            Self::UInt64(running) => {
                running.add_rows(typed(values)?, filter, offset, len);
            }
            Self::Float64(running) => {
                running.add_rows(typed(values)?, filter, offset, len);
            }
            Self::Avg { count, sum } => {
                let added = sum.add_rows(typed(values)?, filter, offset, len);
                *count = count.wrapping_add(added);
            }
        }
        Ok(())
    }

    /// The current value.
    fn value(&self) -> ScalarValue {
        match self {
            Self::Count(n) => ScalarValue::Int64(Some(*n)),
            // Built directly: `ScalarValue::new_primitive` goes through a
            // one-element array (half the cost of reading a group).
            Self::Int64(running) => ScalarValue::Int64(running.value),
            Self::UInt64(running) => ScalarValue::UInt64(running.value),
            Self::Float64(running) => ScalarValue::Float64(running.value),
            Self::Avg { count, sum } => ScalarValue::Float64(if *count == 0 {
                None
            } else {
                sum.value.map(|s| s / *count as f64)
            }),
        }
    }
}

/// `values` as the primitive array the fold expects.
fn typed<T: ArrowPrimitiveType>(values: &ArrayRef) -> Result<&PrimitiveArray<T>> {
    values.as_primitive_opt::<T>().ok_or_else(|| {
        err!(
            Internal,
            "aggregate argument of type {}, expected {}",
            values.data_type(),
            T::DATA_TYPE
        )
    })
}

impl Accumulator for Fold {
    fn update_batch(&mut self, values: &[ArrayRef]) -> datafusion::common::Result<()> {
        let len = values.first().map_or(0, |v| v.len());
        self.update_run(values, None, 0, len)
            .map_err(RiffleError::into_datafusion)
    }

    fn evaluate(&mut self) -> datafusion::common::Result<ScalarValue> {
        Ok(self.value())
    }

    fn size(&self) -> usize {
        size_of::<Self>()
    }

    /// DataFusion's state layout for the same aggregate.
    fn state(&mut self) -> datafusion::common::Result<Vec<ScalarValue>> {
        Ok(match self {
            Self::Avg { count, sum } => {
                vec![
                    ScalarValue::UInt64(Some(*count)),
                    ScalarValue::Float64(sum.value),
                ]
            }
            _ => vec![self.value()],
        })
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> datafusion::common::Result<()> {
        match self {
            // Counts add up: a sum of the count column.
            Self::Count(n) => {
                let counts =
                    typed::<Int64Type>(&states[0]).map_err(RiffleError::into_datafusion)?;
                for count in counts.iter().flatten() {
                    *n = n.wrapping_add(count);
                }
            }
            Self::Avg { count, sum } => {
                let counts =
                    typed::<UInt64Type>(&states[0]).map_err(RiffleError::into_datafusion)?;
                let sums: &PrimitiveArray<Float64Type> =
                    typed(&states[1]).map_err(RiffleError::into_datafusion)?;
                *count = counts.iter().flatten().fold(*count, u64::wrapping_add);
                sums.iter().flatten().for_each(|s| sum.add(s));
            }
            // A sum, minimum or maximum of partial ones is the same fold.
            _ => {
                let len = states.first().map_or(0, |s| s.len());
                self.update_run(states, None, 0, len)
                    .map_err(RiffleError::into_datafusion)?;
            }
        }
        Ok(())
    }
}

/// Which aggregates of a query fold natively, decided once per query (a
/// group's accumulators are made whenever a key opens a window).
#[derive(Debug, Clone)]
pub struct RowFolds(Vec<Option<Fold>>);

impl RowFolds {
    /// The folds of `aggregates`, in order (`None`: DataFusion's accumulator).
    pub fn of(aggregates: &[Arc<AggregateFunctionExpr>]) -> Self {
        Self(aggregates.iter().map(|a| Fold::for_aggregate(a)).collect())
    }

    /// A fresh accumulator per aggregate of `aggregates` (those `of` saw).
    pub fn create(&self, aggregates: &[Arc<AggregateFunctionExpr>]) -> Result<Vec<RowAccumulator>> {
        if aggregates.len() != self.0.len() {
            return Err(err!(Internal, "aggregates do not match their folds"));
        }
        aggregates
            .iter()
            .zip(&self.0)
            .map(|(aggregate, fold)| RowAccumulator::new(aggregate, fold.as_ref()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Float64Array, Int64Array, UInt64Array};
    use arrow::datatypes::{Field, Schema};
    use datafusion::functions_aggregate::average::avg_udaf;
    use datafusion::functions_aggregate::count::count_udaf;
    use datafusion::functions_aggregate::min_max::{max_udaf, min_udaf};
    use datafusion::functions_aggregate::sum::sum_udaf;
    use datafusion::logical_expr::AggregateUDF;
    use datafusion::physical_expr::aggregate::AggregateExprBuilder;
    use datafusion::physical_expr::expressions::col;

    /// A small deterministic generator (xorshift64*).
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    fn aggregate(
        fun: Arc<AggregateUDF>,
        data_type: DataType,
        distinct: bool,
    ) -> AggregateFunctionExpr {
        let schema = Arc::new(Schema::new(vec![Field::new("v", data_type, true)]));
        AggregateExprBuilder::new(fun, vec![col("v", &schema).unwrap()])
            .schema(schema)
            .alias("a")
            .with_distinct(distinct)
            .build()
            .unwrap()
    }

    /// Values with nulls and the awkward cases: NaN of both signs, -0.0,
    /// infinities, sums that wrap.
    fn column(data_type: &DataType, rng: &mut Rng, n: usize) -> ArrayRef {
        let null = |rng: &mut Rng| rng.below(5) == 0;
        match data_type {
            DataType::Null => Arc::new(arrow::array::NullArray::new(n)),
            DataType::Float64 => {
                let special = [
                    f64::NAN,
                    -f64::NAN,
                    -0.0,
                    0.0,
                    f64::INFINITY,
                    f64::NEG_INFINITY,
                ];
                Arc::new(Float64Array::from_iter((0..n).map(|_| {
                    (!null(rng)).then(|| match rng.below(10) {
                        0 => special[rng.below(special.len() as u64) as usize],
                        _ => (rng.below(2_000_001) as f64 - 1_000_000.0) / 7.0,
                    })
                })))
            }
            DataType::Int64 => Arc::new(Int64Array::from_iter((0..n).map(|_| {
                (!null(rng)).then(|| match rng.below(8) {
                    0 => i64::MAX - rng.below(3) as i64,
                    1 => i64::MIN + rng.below(3) as i64,
                    _ => rng.below(2_001) as i64 - 1_000,
                })
            }))),
            DataType::UInt64 => Arc::new(UInt64Array::from_iter((0..n).map(|_| {
                (!null(rng)).then(|| match rng.below(8) {
                    0 => u64::MAX - rng.below(3),
                    _ => rng.below(2_001),
                })
            }))),
            other => unreachable!("{other}"),
        }
    }

    /// Equal, or (float sums and means, which DataFusion's row accumulators
    /// add in lanes) equal to 1e-9 relative.
    /// Bit for bit (`-0.0` is not `0.0`), except float sums and means,
    /// which only `inexact` allows to differ in the last places.
    fn close(a: &ScalarValue, b: &ScalarValue, inexact: bool) -> bool {
        match (a, b) {
            (ScalarValue::Float64(Some(x)), ScalarValue::Float64(Some(y))) => {
                x.to_bits() == y.to_bits()
                    || (inexact
                        && ((x.is_nan() && y.is_nan())
                            || (*x != 0.0
                                && (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0))))
            }
            _ => a == b,
        }
    }

    fn cases() -> Vec<(Arc<AggregateUDF>, DataType)> {
        let mut cases = vec![
            (avg_udaf(), DataType::Float64),
            // Every value null with no null buffer: `count(NULL)`.
            (count_udaf(), DataType::Null),
        ];
        for t in [DataType::Int64, DataType::UInt64, DataType::Float64] {
            for fun in [count_udaf(), sum_udaf(), min_udaf(), max_udaf()] {
                cases.push((fun, t.clone()));
            }
        }
        cases
    }

    #[test]
    fn folds_agree_with_datafusion_accumulators_run_by_run() {
        let mut rng = Rng(0x5eed_1234_abcd_ef01);
        for (fun, data_type) in cases() {
            let expr = aggregate(fun, data_type.clone(), false);
            // DataFusion's row accumulators sum floats in lanes, the folds
            // row by row (as its grouped ones do).
            let inexact =
                data_type == DataType::Float64 && ["sum", "avg"].contains(&expr.fun().name());
            for _ in 0..20 {
                let n = 1 + rng.below(200) as usize;
                let values = column(&data_type, &mut rng, n);
                let filter = (rng.below(2) == 0).then(|| {
                    BooleanArray::from_iter((0..n).map(|_| match rng.below(4) {
                        0 => None,
                        1 => Some(false),
                        _ => Some(true),
                    }))
                });
                let mut ours = RowAccumulator::try_new(&expr).unwrap();
                assert!(
                    matches!(ours.0, Kind::Folded(_)),
                    "{} not folded",
                    expr.name()
                );
                let mut theirs = expr.create_accumulator().unwrap();
                let mut offset = 0;
                while offset < n {
                    let len = (1 + rng.below(12) as usize).min(n - offset);
                    ours.update_run(&[Arc::clone(&values)], filter.as_ref(), offset, len)
                        .unwrap();
                    let mut slice = values.slice(offset, len);
                    if let Some(mask) = &filter {
                        slice = arrow::compute::filter(&slice, &mask.slice(offset, len)).unwrap();
                    }
                    theirs.update_batch(&[slice]).unwrap();
                    let (a, b) = (ours.evaluate().unwrap(), theirs.evaluate().unwrap());
                    assert!(
                        close(&a, &b, inexact),
                        "{} of {data_type}: {a:?} vs {b:?}",
                        expr.name()
                    );
                    offset += len;
                }
                // The state has DataFusion's layout: each restores into the other.
                let (ours_state, theirs_state) = (ours.state().unwrap(), theirs.state().unwrap());
                let types = |s: &[ScalarValue]| s.iter().map(|v| v.data_type()).collect::<Vec<_>>();
                assert_eq!(types(&ours_state), types(&theirs_state));
                let arrays = |s: &[ScalarValue]| {
                    s.iter()
                        .map(|v| v.to_array_of_size(1).unwrap())
                        .collect::<Vec<_>>()
                };
                let mut restored = RowAccumulator::try_new(&expr).unwrap();
                restored.merge_batch(&arrays(&theirs_state)).unwrap();
                assert!(close(
                    &restored.evaluate().unwrap(),
                    &theirs.evaluate().unwrap(),
                    inexact
                ));
                let mut back = expr.create_accumulator().unwrap();
                back.merge_batch(&arrays(&ours_state)).unwrap();
                assert!(close(
                    &back.evaluate().unwrap(),
                    &ours.evaluate().unwrap(),
                    inexact
                ));
            }
        }
    }

    #[test]
    fn other_aggregates_keep_datafusions_accumulator() {
        let distinct = aggregate(sum_udaf(), DataType::Int64, true);
        assert!(matches!(
            RowAccumulator::try_new(&distinct).unwrap().0,
            Kind::Other(_)
        ));
        let min_of_int32 = aggregate(min_udaf(), DataType::Int32, false);
        let mut other = RowAccumulator::try_new(&min_of_int32).unwrap();
        assert!(matches!(other.0, Kind::Other(_)));
        let values: ArrayRef = Arc::new(arrow::array::Int32Array::from(vec![
            Some(5),
            None,
            Some(-2),
            Some(9),
        ]));
        let mask = BooleanArray::from(vec![true, true, false, true]);
        other.update_run(&[values], Some(&mask), 1, 3).unwrap();
        assert_eq!(other.evaluate().unwrap(), ScalarValue::Int32(Some(9)));
    }

    #[test]
    fn a_users_aggregate_named_like_a_builtin_keeps_its_own_accumulator() {
        // A user's "sum" that takes the maximum.
        let fake_sum = Arc::new(datafusion::logical_expr::create_udaf(
            "sum",
            vec![DataType::Float64],
            Arc::new(DataType::Float64),
            datafusion::logical_expr::Volatility::Immutable,
            Arc::new(|args| max_udaf().accumulator(args)),
            Arc::new(vec![DataType::Float64]),
        ));
        let expr = aggregate(fake_sum, DataType::Float64, false);
        let mut accumulator = RowAccumulator::try_new(&expr).unwrap();
        assert!(matches!(accumulator.0, Kind::Other(_)));
        let values: ArrayRef = Arc::new(Float64Array::from(vec![1.0, 5.0, 2.0]));
        accumulator.update_run(&[values], None, 0, 3).unwrap();
        assert_eq!(
            accumulator.value().unwrap(),
            ScalarValue::Float64(Some(5.0))
        );
    }

    #[test]
    fn float_sums_start_at_zero_like_datafusions() {
        // -0.0 alone: DataFusion's sums start at 0.0, and 0.0 + -0.0 is 0.0.
        for fun in [sum_udaf(), avg_udaf()] {
            let expr = aggregate(fun, DataType::Float64, false);
            let values: ArrayRef = Arc::new(Float64Array::from(vec![-0.0, -0.0]));
            let mut ours = RowAccumulator::try_new(&expr).unwrap();
            ours.update_run(&[Arc::clone(&values)], None, 0, 2).unwrap();
            let mut theirs = expr.create_accumulator().unwrap();
            theirs.update_batch(&[values]).unwrap();
            let (a, b) = (ours.value().unwrap(), theirs.evaluate().unwrap());
            assert!(close(&a, &b, false), "{}: {a:?} vs {b:?}", expr.name());
        }
    }

    #[test]
    fn a_mistyped_argument_is_an_error_not_a_panic() {
        let expr = aggregate(sum_udaf(), DataType::Float64, false);
        let mut sum = RowAccumulator::try_new(&expr).unwrap();
        let wrong: ArrayRef = Arc::new(Int64Array::from(vec![1, 2]));
        assert!(sum.update_run(&[Arc::clone(&wrong)], None, 0, 2).is_err());
        assert!(sum.update_run(&[wrong], None, 1, 5).is_err());
    }
}
