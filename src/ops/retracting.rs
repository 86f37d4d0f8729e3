//! Aggregates that can take rows back out: the state of an aggregate over a
//! changelog, where `update_before` and `delete` rows retract what an
//! earlier `insert` or `update_after` added (Flink's retraction).
//!
//! `count`, `sum` and `avg` keep a running value and the number of rows in
//! it (a sum of no rows is NULL again). `min` and `max` keep every value
//! with its multiplicity, ordered by arrow's row format (the order of
//! arrow's sort kernels), so that retracting the current extreme finds the
//! next one; `count(DISTINCT x)` keeps the same and counts the values held.
//! Other aggregates cannot retract; the planner refuses them.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int64Array, ListArray};
use arrow::buffer::OffsetBuffer;
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Float64Type, Int64Type, UInt64Type};
use arrow::row::{RowConverter, SortField};
use datafusion::common::ScalarValue;
use datafusion::functions_aggregate::average::Avg;
use datafusion::functions_aggregate::count::Count;
use datafusion::functions_aggregate::min_max::{Max, Min};
use datafusion::functions_aggregate::sum::Sum;
use datafusion::logical_expr::{Accumulator, AggregateUDFImpl};
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;

use crate::err;
use crate::error::{Result, RiffleError};

/// Which retracting state an aggregate gets, decided at planning.
#[derive(Debug, Clone)]
pub enum Retractable {
    /// `count(x)` / `count(*)`: rows with a non-null argument.
    Count,
    /// `sum(x)` of 64-bit integers or floats (its result type).
    Sum(DataType),
    /// `avg(x)` (as DOUBLE).
    Avg,
    /// `min(x)` (`max: false`) or `max(x)` of any orderable type.
    Extreme {
        /// Whether it is `max`.
        max: bool,
        /// The argument's (and result's) type.
        data_type: DataType,
        /// Orders values; shared by every group of the aggregate.
        converter: Arc<RowConverter>,
    },
    /// `count(DISTINCT x)`: every value with its multiplicity, as for
    /// `min` / `max`; the count is how many are held.
    DistinctCount {
        /// The argument's type.
        data_type: DataType,
        /// Encodes values; shared by every group of the aggregate.
        converter: Arc<RowConverter>,
    },
}

impl Retractable {
    /// The retracting form of `expr`, or an error saying why it has none.
    pub fn of(expr: &AggregateFunctionExpr) -> Result<Self> {
        let function: &dyn AggregateUDFImpl = expr.fun().inner().as_ref();
        let output = expr.field().data_type().clone();
        let cannot = |why: &str| {
            err!(
                Unsupported,
                "{} over a changelog (the results of GROUP BY without a window, or of EMIT ON UPDATE) cannot take rows back out{why}; count, sum, avg, min and max can",
                expr.name()
            )
        };
        if expr.expressions().len() != 1 {
            return Err(cannot(""));
        }
        if expr.is_distinct() {
            if !(function.is::<Count>() && output == DataType::Int64) {
                return Err(cannot(" (DISTINCT)"));
            }
            // DataFusion's distinct count keeps a list of the argument's values.
            let data_type = match expr.state_fields()?.first().map(|f| f.data_type().clone()) {
                Some(DataType::List(item)) => item.data_type().clone(),
                _ => return Err(cannot(" (DISTINCT)")),
            };
            let converter = RowConverter::new(vec![SortField::new(data_type.clone())])
                .map_err(|_| cannot(&format!(" (values of {data_type} cannot be compared)")))?;
            return Ok(Self::DistinctCount {
                data_type,
                converter: Arc::new(converter),
            });
        }
        if function.is::<Count>() && output == DataType::Int64 {
            return Ok(Self::Count);
        }
        if function.is::<Avg>() && output == DataType::Float64 {
            return Ok(Self::Avg);
        }
        if function.is::<Sum>() {
            return match output {
                DataType::Int64 | DataType::UInt64 | DataType::Float64 => Ok(Self::Sum(output)),
                other => Err(cannot(&format!(" (a sum of {other})"))),
            };
        }
        let max = function.is::<Max>();
        if max || function.is::<Min>() {
            let converter = RowConverter::new(vec![SortField::new(output.clone())])
                .map_err(|_| cannot(&format!(" (values of {output} cannot be ordered)")))?;
            return Ok(Self::Extreme {
                max,
                data_type: output,
                converter: Arc::new(converter),
            });
        }
        Err(cannot(""))
    }

    /// Its state columns in a snapshot.
    pub fn state_fields(&self) -> Vec<Field> {
        let rows = Field::new("rows", DataType::Int64, true);
        match self {
            Self::Count => vec![rows],
            Self::Sum(DataType::Float64) | Self::Avg => vec![
                Field::new("sum", DataType::Float64, true),
                rows,
                Field::new("nan", DataType::Int64, true),
                Field::new("pos_inf", DataType::Int64, true),
                Field::new("neg_inf", DataType::Int64, true),
            ],
            Self::Sum(data_type) => vec![Field::new("sum", data_type.clone(), true), rows],
            Self::Extreme { data_type, .. } | Self::DistinctCount { data_type, .. } => vec![
                Field::new_list(
                    "values",
                    Field::new_list_field(data_type.clone(), true),
                    true,
                ),
                Field::new_list("counts", Field::new_list_field(DataType::Int64, true), true),
            ],
        }
    }

    /// A state holding no rows.
    pub fn create(&self) -> RetractingAccumulator {
        let sum = match self {
            Self::Sum(DataType::Int64)
            | Self::Count
            | Self::Extreme { .. }
            | Self::DistinctCount { .. } => Sum64::Int(0),
            Self::Sum(DataType::UInt64) => Sum64::Unsigned(0),
            Self::Sum(_) | Self::Avg => Sum64::Float(0.0),
        };
        RetractingAccumulator {
            kind: self.clone(),
            rows: 0,
            sum,
            non_finite: [0; 3],
            values: BTreeMap::new(),
        }
    }
}

/// A running sum: integers wrap, as DataFusion's sums do.
#[derive(Debug, Clone, Copy)]
enum Sum64 {
    Int(i64),
    Unsigned(u64),
    Float(f64),
}

/// One group's state of one retractable aggregate.
#[derive(Debug)]
pub struct RetractingAccumulator {
    kind: Retractable,
    /// Non-null values in the state (count's value).
    rows: i64,
    sum: Sum64,
    /// Float sums: how many NaN, +inf and -inf values are in, kept out of
    /// `sum` so that taking one out leaves the finite sum intact.
    non_finite: [i64; 3],
    /// For min / max: each value (in row format) and how many times it is in.
    values: BTreeMap<Vec<u8>, i64>,
}

impl RetractingAccumulator {
    /// Adds (`sign` 1) or takes out (`sign` -1) the non-null values of
    /// `values[0]`.
    pub fn apply(&mut self, values: &[ArrayRef], sign: i64) -> Result<()> {
        let column = values
            .first()
            .ok_or_else(|| err!(Internal, "an aggregate without its argument"))?;
        match &self.kind {
            Retractable::Count => {
                let rows = (column.len() - column.logical_null_count()) as i64;
                self.rows = self.rows.wrapping_add(sign.wrapping_mul(rows));
            }
            Retractable::Sum(data_type)
            | Retractable::Extreme { data_type, .. }
            | Retractable::DistinctCount { data_type, .. }
                if column.data_type() != data_type =>
            {
                return Err(err!(
                    Internal,
                    "a retracting aggregate of {data_type} got {}",
                    column.data_type()
                ));
            }
            Retractable::Sum(DataType::Int64) => {
                let mut sum = self.int_sum();
                for v in column.as_primitive::<Int64Type>().iter().flatten() {
                    sum = if sign > 0 {
                        sum.wrapping_add(v)
                    } else {
                        sum.wrapping_sub(v)
                    };
                    self.rows = self.rows.saturating_add(sign);
                }
                self.sum = Sum64::Int(sum);
            }
            Retractable::Sum(DataType::UInt64) => {
                let mut sum = match self.sum {
                    Sum64::Unsigned(sum) => sum,
                    _ => 0,
                };
                for v in column.as_primitive::<UInt64Type>().iter().flatten() {
                    sum = if sign > 0 {
                        sum.wrapping_add(v)
                    } else {
                        sum.wrapping_sub(v)
                    };
                    self.rows = self.rows.saturating_add(sign);
                }
                self.sum = Sum64::Unsigned(sum);
            }
            Retractable::Sum(_) | Retractable::Avg => {
                let floats = cast(column, &DataType::Float64)?;
                let mut sum = self.float_sum();
                for v in floats.as_primitive::<Float64Type>().iter().flatten() {
                    let slot = if v.is_nan() {
                        Some(0)
                    } else if v == f64::INFINITY {
                        Some(1)
                    } else if v == f64::NEG_INFINITY {
                        Some(2)
                    } else {
                        None
                    };
                    match slot {
                        Some(slot) => {
                            self.non_finite[slot] = self.non_finite[slot].saturating_add(sign)
                        }
                        None => sum += if sign > 0 { v } else { -v },
                    }
                    self.rows = self.rows.saturating_add(sign);
                }
                self.sum = Sum64::Float(sum);
            }
            Retractable::Extreme { converter, .. }
            | Retractable::DistinctCount { converter, .. } => {
                let rows = converter.convert_columns(std::slice::from_ref(column))?;
                for (index, row) in rows.iter().enumerate() {
                    if column.is_null(index) {
                        continue;
                    }
                    let key = row.as_ref().to_vec();
                    let count = self.values.entry(key).or_insert(0);
                    *count = count.saturating_add(sign);
                    if *count == 0 {
                        self.values.remove(row.as_ref());
                    }
                    self.rows = self.rows.saturating_add(sign);
                }
            }
        }
        Ok(())
    }

    fn int_sum(&self) -> i64 {
        match self.sum {
            Sum64::Int(sum) => sum,
            _ => 0,
        }
    }

    /// The float sum with the non-finite values in: NaN if a NaN or both
    /// infinities are, an infinity if one is.
    fn float_value(&self) -> f64 {
        match self.non_finite {
            [nan, pos, neg] if nan > 0 || (pos > 0 && neg > 0) => f64::NAN,
            [_, pos, _] if pos > 0 => f64::INFINITY,
            [_, _, neg] if neg > 0 => f64::NEG_INFINITY,
            _ => self.float_sum(),
        }
    }

    fn float_sum(&self) -> f64 {
        match self.sum {
            Sum64::Float(sum) => sum,
            _ => 0.0,
        }
    }

    /// The current minimum or maximum: the smallest (largest) value held a
    /// positive number of times.
    fn extreme(
        &self,
        max: bool,
        converter: &RowConverter,
        data_type: &DataType,
    ) -> Result<ScalarValue> {
        let mut held = self.values.iter().filter(|(_, &count)| count > 0);
        let found = if max { held.next_back() } else { held.next() };
        let Some((key, _)) = found else {
            return Ok(ScalarValue::try_from(data_type)?);
        };
        let parser = converter.parser();
        let columns = converter.convert_rows([parser.parse(key)])?;
        Ok(ScalarValue::try_from_array(&columns[0], 0)?)
    }

    fn state_values(
        &self,
        converter: &RowConverter,
        data_type: &DataType,
    ) -> Result<Vec<ScalarValue>> {
        let parser = converter.parser();
        let held: Vec<(&Vec<u8>, &i64)> = self.values.iter().collect();
        let values = if held.is_empty() {
            arrow::array::new_empty_array(data_type)
        } else {
            converter
                .convert_rows(held.iter().map(|(key, _)| parser.parse(key)))?
                .swap_remove(0)
        };
        let counts: ArrayRef =
            Arc::new(Int64Array::from_iter_values(held.iter().map(|(_, c)| **c)));
        let list = |values: ArrayRef| -> Result<ScalarValue> {
            let field = Arc::new(Field::new_list_field(values.data_type().clone(), true));
            let offsets = OffsetBuffer::from_lengths([values.len()]);
            Ok(ScalarValue::List(Arc::new(ListArray::try_new(
                field, offsets, values, None,
            )?)))
        };
        Ok(vec![list(values)?, list(counts)?])
    }
}

impl RetractingAccumulator {
    /// The aggregate's value now.
    pub fn value(&self) -> Result<ScalarValue> {
        let empty = self.rows <= 0;
        Ok(match &self.kind {
            Retractable::Count => ScalarValue::Int64(Some(self.rows)),
            Retractable::Sum(data_type) if empty => ScalarValue::try_from(data_type)?,
            Retractable::Sum(_) => match self.sum {
                Sum64::Int(sum) => ScalarValue::Int64(Some(sum)),
                Sum64::Unsigned(sum) => ScalarValue::UInt64(Some(sum)),
                Sum64::Float(_) => ScalarValue::Float64(Some(self.float_value())),
            },
            Retractable::Avg if empty => ScalarValue::Float64(None),
            Retractable::Avg => ScalarValue::Float64(Some(self.float_value() / self.rows as f64)),
            Retractable::Extreme {
                max,
                data_type,
                converter,
            } => self.extreme(*max, converter, data_type)?,
            // Values leave the map when their count falls to zero.
            Retractable::DistinctCount { .. } => ScalarValue::Int64(Some(
                self.values.values().filter(|&&count| count > 0).count() as i64,
            )),
        })
    }

    /// Approximate memory held, in bytes.
    pub fn size(&self) -> usize {
        std::mem::size_of::<Self>()
            + self
                .values
                .keys()
                .map(|key| key.capacity() + 48)
                .sum::<usize>()
    }

    /// The state as scalars, in [`Retractable::state_fields`] order.
    pub fn state_row(&self) -> Result<Vec<ScalarValue>> {
        let rows = ScalarValue::Int64(Some(self.rows));
        Ok(match &self.kind {
            Retractable::Count => vec![rows],
            Retractable::Sum(_) | Retractable::Avg => match self.sum {
                Sum64::Int(sum) => vec![ScalarValue::Int64(Some(sum)), rows],
                Sum64::Unsigned(sum) => vec![ScalarValue::UInt64(Some(sum)), rows],
                Sum64::Float(sum) => {
                    let mut row = vec![ScalarValue::Float64(Some(sum)), rows];
                    row.extend(self.non_finite.iter().map(|&n| ScalarValue::Int64(Some(n))));
                    row
                }
            },
            Retractable::Extreme {
                data_type,
                converter,
                ..
            }
            | Retractable::DistinctCount {
                data_type,
                converter,
            } => self.state_values(converter, data_type)?,
        })
    }

    /// Adds states written by [`Self::state_row`].
    pub fn merge(&mut self, states: &[ArrayRef]) -> Result<()> {
        let corrupt = || {
            err!(
                CorruptCheckpoint,
                "a retracting aggregate's state does not fit its type"
            )
        };
        let ints = |i: usize| -> Result<&Int64Array> {
            states
                .get(i)
                .and_then(|c| c.as_primitive_opt::<Int64Type>())
                .ok_or_else(corrupt)
        };
        match &self.kind {
            Retractable::Count => {
                self.rows = saturating_sum(self.rows, ints(0)?);
            }
            Retractable::Sum(DataType::Int64) => {
                let mut sum = self.int_sum();
                for v in ints(0)?.iter().flatten() {
                    sum = sum.wrapping_add(v);
                }
                self.sum = Sum64::Int(sum);
                self.rows = saturating_sum(self.rows, ints(1)?);
            }
            Retractable::Sum(DataType::UInt64) => {
                let column = states
                    .first()
                    .and_then(|c| c.as_primitive_opt::<UInt64Type>())
                    .ok_or_else(corrupt)?;
                let mut sum = match self.sum {
                    Sum64::Unsigned(sum) => sum,
                    _ => 0,
                };
                for v in column.iter().flatten() {
                    sum = sum.wrapping_add(v);
                }
                self.sum = Sum64::Unsigned(sum);
                self.rows = saturating_sum(self.rows, ints(1)?);
            }
            Retractable::Sum(_) | Retractable::Avg => {
                let column = states
                    .first()
                    .and_then(|c| c.as_primitive_opt::<Float64Type>())
                    .ok_or_else(corrupt)?;
                self.sum =
                    Sum64::Float(column.iter().flatten().fold(self.float_sum(), |a, b| a + b));
                self.rows = saturating_sum(self.rows, ints(1)?);
                for (slot, count) in self.non_finite.iter_mut().enumerate() {
                    *count = saturating_sum(*count, ints(2 + slot)?);
                }
            }
            Retractable::Extreme { converter, .. }
            | Retractable::DistinctCount { converter, .. } => {
                let list = |i: usize| -> Result<&ListArray> {
                    states
                        .get(i)
                        .and_then(|c| c.as_list_opt::<i32>())
                        .ok_or_else(corrupt)
                };
                let (values, counts) = (list(0)?, list(1)?);
                if values.len() != counts.len() {
                    return Err(corrupt());
                }
                for row in 0..values.len() {
                    if values.is_null(row) {
                        continue;
                    }
                    let (held, times) = (values.value(row), counts.value(row));
                    let times = times.as_primitive_opt::<Int64Type>().ok_or_else(corrupt)?;
                    if held.len() != times.len() || held.null_count() > 0 {
                        return Err(corrupt());
                    }
                    let rows = converter.convert_columns(&[held])?;
                    for (key, count) in rows.iter().zip(times.iter()) {
                        let count = count.ok_or_else(corrupt)?;
                        let entry = self.values.entry(key.as_ref().to_vec()).or_insert(0);
                        // Saturating: a crafted state must not overflow.
                        *entry = entry.saturating_add(count);
                        self.rows = self.rows.saturating_add(count);
                        if *entry == 0 {
                            self.values.remove(key.as_ref());
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// `start` plus every value, saturating (states may be crafted).
fn saturating_sum(start: i64, values: &Int64Array) -> i64 {
    values.iter().flatten().fold(start, i64::saturating_add)
}

// Through DataFusion's trait, so snapshots treat it like any accumulator.
impl Accumulator for RetractingAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> datafusion::common::Result<()> {
        self.apply(values, 1).map_err(RiffleError::into_datafusion)
    }

    fn retract_batch(&mut self, values: &[ArrayRef]) -> datafusion::common::Result<()> {
        self.apply(values, -1).map_err(RiffleError::into_datafusion)
    }

    fn supports_retract_batch(&self) -> bool {
        true
    }

    fn evaluate(&mut self) -> datafusion::common::Result<ScalarValue> {
        self.value().map_err(RiffleError::into_datafusion)
    }

    fn size(&self) -> usize {
        RetractingAccumulator::size(self)
    }

    fn state(&mut self) -> datafusion::common::Result<Vec<ScalarValue>> {
        self.state_row().map_err(RiffleError::into_datafusion)
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> datafusion::common::Result<()> {
        self.merge(states).map_err(RiffleError::into_datafusion)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Float64Array, StringArray};

    fn extreme(max: bool, data_type: DataType) -> Retractable {
        Retractable::Extreme {
            max,
            converter: Arc::new(
                RowConverter::new(vec![SortField::new(data_type.clone())]).unwrap(),
            ),
            data_type,
        }
    }

    #[test]
    fn taking_out_the_extreme_finds_the_next_and_state_round_trips() {
        let kind = extreme(true, DataType::Utf8);
        let mut state = kind.create();
        let values: ArrayRef = Arc::new(StringArray::from(vec![
            Some("b"),
            Some("d"),
            None,
            Some("d"),
        ]));
        state.apply(&[values], 1).unwrap();
        assert_eq!(state.value().unwrap(), ScalarValue::Utf8(Some("d".into())));
        let out: ArrayRef = Arc::new(StringArray::from(vec!["d"]));
        state.apply(&[Arc::clone(&out)], -1).unwrap();
        assert_eq!(
            state.value().unwrap(),
            ScalarValue::Utf8(Some("d".into())),
            "d was in twice"
        );
        state.apply(&[out], -1).unwrap();
        assert_eq!(state.value().unwrap(), ScalarValue::Utf8(Some("b".into())));
        // Through a snapshot's scalars and back.
        let row = state.state_row().unwrap();
        let columns: Vec<ArrayRef> = row.iter().map(|v| v.to_array().unwrap()).collect();
        let mut restored = kind.create();
        restored.merge(&columns).unwrap();
        assert_eq!(
            restored.value().unwrap(),
            ScalarValue::Utf8(Some("b".into()))
        );
        let all: ArrayRef = Arc::new(StringArray::from(vec!["b"]));
        restored.apply(&[all], -1).unwrap();
        assert_eq!(restored.value().unwrap(), ScalarValue::Utf8(None));
    }

    #[test]
    fn sums_of_no_rows_are_null_and_crafted_states_are_refused() {
        let mut sum = Retractable::Sum(DataType::Float64).create();
        let values: ArrayRef = Arc::new(Float64Array::from(vec![1.5, 2.5]));
        sum.apply(&[Arc::clone(&values)], 1).unwrap();
        assert_eq!(sum.value().unwrap(), ScalarValue::Float64(Some(4.0)));
        sum.apply(&[values], -1).unwrap();
        assert_eq!(sum.value().unwrap(), ScalarValue::Float64(None));
        // An infinity taken back out leaves the finite sum, not NaN.
        let odd: ArrayRef = Arc::new(Float64Array::from(vec![f64::INFINITY, 1.0, f64::NAN]));
        sum.apply(&[odd], 1).unwrap();
        assert!(matches!(sum.value().unwrap(), ScalarValue::Float64(Some(v)) if v.is_nan()));
        let nan: ArrayRef = Arc::new(Float64Array::from(vec![f64::NAN]));
        sum.apply(&[nan], -1).unwrap();
        assert_eq!(
            sum.value().unwrap(),
            ScalarValue::Float64(Some(f64::INFINITY))
        );
        let inf: ArrayRef = Arc::new(Float64Array::from(vec![f64::INFINITY]));
        sum.apply(&[inf], -1).unwrap();
        assert_eq!(sum.value().unwrap(), ScalarValue::Float64(Some(1.0)));
        // A state of the wrong type, or lists of different lengths.
        let wrong: ArrayRef = Arc::new(StringArray::from(vec!["x"]));
        let error = sum
            .merge(&[Arc::clone(&wrong), Arc::clone(&wrong)])
            .unwrap_err();
        assert_eq!(error.code(), crate::error::ErrorCode::CorruptCheckpoint);
        let mut max = extreme(true, DataType::Float64).create();
        let values = ScalarValue::List(Arc::new(ListArray::new(
            Arc::new(Field::new_list_field(DataType::Float64, true)),
            OffsetBuffer::from_lengths([2]),
            Arc::new(Float64Array::from(vec![1.0, 2.0])),
            None,
        )));
        let counts = ScalarValue::List(Arc::new(ListArray::new(
            Arc::new(Field::new_list_field(DataType::Int64, true)),
            OffsetBuffer::from_lengths([1]),
            Arc::new(Int64Array::from(vec![1])),
            None,
        )));
        let error = max
            .merge(&[values.to_array().unwrap(), counts.to_array().unwrap()])
            .unwrap_err();
        assert_eq!(error.code(), crate::error::ErrorCode::CorruptCheckpoint);
    }
}
