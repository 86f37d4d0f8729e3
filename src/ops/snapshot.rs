//! Snapshot helpers shared by the stateful operators: DataFusion
//! accumulator state in and out of Arrow columns, and counters as JSON.

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{DataType, Field, Int64Type};
use arrow::record_batch::RecordBatch;
use datafusion::common::ScalarValue;
use datafusion::logical_expr::Accumulator;
use serde_json::json;

use super::graph::WindowMetrics;
use super::grouped_aggregates::{create_accumulators, AggregateSpec};
use super::row_accumulators::RowAccumulator;
use crate::error::Result;
use crate::state::meta_i64;

/// The state columns of every aggregate's `Accumulator`, named `a{i}_{field}`.
pub fn state_fields(spec: &AggregateSpec) -> Result<Vec<Field>> {
    Ok(named_state_fields(&spec.state_fields()?))
}

/// State columns side by side (`columns`) cut into each aggregate's,
/// `widths[i]` columns for aggregate `i`.
pub fn split_states(columns: &[ArrayRef], widths: &[usize]) -> Vec<Vec<ArrayRef>> {
    let mut at = 0;
    widths
        .iter()
        .map(|&width| {
            at += width;
            columns[at - width..at].to_vec()
        })
        .collect()
}

/// State columns given per aggregate, named `a{i}_{field}` and nullable.
pub fn named_state_fields(per_aggregate: &[Vec<Field>]) -> Vec<Field> {
    per_aggregate
        .iter()
        .enumerate()
        .flat_map(|(i, fields)| {
            fields.iter().map(move |field| {
                Field::new(
                    format!("a{i}_{}", field.name()),
                    field.data_type().clone(),
                    true,
                )
            })
        })
        .collect()
}

/// Number of state columns of each aggregate.
pub fn state_widths(spec: &AggregateSpec) -> Result<Vec<usize>> {
    Ok(spec.state_fields()?.iter().map(Vec::len).collect())
}

/// The state of row accumulators as one row of scalars (all aggregates'
/// state, in order). Some accumulators give their state away (`median`,
/// `array_agg`), so they are rebuilt from it: the group is left as it was.
pub fn accumulator_row(
    spec: &AggregateSpec,
    accumulators: &mut Vec<RowAccumulator>,
) -> Result<Vec<ScalarValue>> {
    let mut row = Vec::new();
    let mut widths = Vec::with_capacity(accumulators.len());
    for accumulator in accumulators.iter_mut() {
        let state = accumulator.state()?;
        widths.push(state.len());
        row.extend(state);
    }
    let columns = row
        .iter()
        .map(|value| value.to_array_of_size(1))
        .collect::<datafusion::common::Result<Vec<ArrayRef>>>()?;
    *accumulators = restore_accumulators(spec, &widths, &columns, 0)?;
    Ok(row)
}

/// Fresh accumulators with the state of `row` in `columns` merged in.
pub fn restore_accumulators(
    spec: &AggregateSpec,
    widths: &[usize],
    columns: &[ArrayRef],
    row: usize,
) -> Result<Vec<RowAccumulator>> {
    let mut accumulators = create_accumulators(spec)?;
    let mut at = 0;
    for (accumulator, width) in accumulators.iter_mut().zip(widths) {
        let state: Vec<ArrayRef> = columns[at..at + width]
            .iter()
            .map(|c| c.slice(row, 1))
            .collect();
        accumulator.merge_batch(&state)?;
        at += width;
    }
    Ok(accumulators)
}

/// Counters as JSON.
pub fn metrics_json(metrics: &WindowMetrics) -> serde_json::Value {
    json!({
        "rows_in": metrics.rows_in,
        "late_rows_dropped": metrics.late_rows_dropped,
        "windows_emitted": metrics.windows_emitted,
    })
}

/// Counters from JSON.
pub fn metrics_from_json(meta: &serde_json::Value) -> Result<WindowMetrics> {
    let metrics = meta.get("metrics").unwrap_or(&serde_json::Value::Null);
    Ok(WindowMetrics {
        rows_in: meta_i64(metrics, "rows_in")? as u64,
        late_rows_dropped: meta_i64(metrics, "late_rows_dropped")? as u64,
        windows_emitted: meta_i64(metrics, "windows_emitted")? as u64,
    })
}

/// Output fields of the aggregate values (after `groups` group columns), nullable.
pub fn value_fields(output: &arrow::datatypes::Schema, groups: usize, prefix: &str) -> Vec<Field> {
    output
        .fields()
        .iter()
        .skip(groups)
        .enumerate()
        .map(|(i, f)| Field::new(format!("{prefix}{i}"), f.data_type().clone(), true))
        .collect()
}

/// Scalars of row `row` of `columns`.
pub fn row_values(columns: &[ArrayRef], row: usize) -> Result<Vec<ScalarValue>> {
    Ok(columns
        .iter()
        .map(|c| ScalarValue::try_from_array(c, row))
        .collect::<datafusion::common::Result<Vec<_>>>()?)
}

/// Typed nulls standing in for absent values.
pub fn null_values(fields: &[Field]) -> Result<Vec<ScalarValue>> {
    Ok(fields
        .iter()
        .map(|f| ScalarValue::try_from(f.data_type()))
        .collect::<datafusion::common::Result<Vec<_>>>()?)
}

/// One keyed group of row accumulators, as written to a snapshot (its
/// key goes in the key columns, row for row).
pub struct GroupRow<'a> {
    /// Group id.
    pub id: u64,
    /// Operator-specific integers (e.g. last-touched watermark).
    pub extra: Vec<Option<i64>>,
    /// The group's accumulators.
    pub accumulators: &'a mut Vec<RowAccumulator>,
    /// Values last emitted, if any.
    pub last: Option<&'a Vec<ScalarValue>>,
    /// Operator-specific flag (e.g. changed since last emitted).
    pub flag: bool,
}

/// A group read back from a snapshot (its key is in the key columns read
/// with it, row for row).
pub struct RestoredGroup {
    /// Group id.
    pub id: u64,
    /// Operator-specific integers.
    pub extra: Vec<Option<i64>>,
    /// Accumulators with the saved state merged in.
    pub accumulators: Vec<RowAccumulator>,
    /// Values last emitted, if any.
    pub last: Option<Vec<ScalarValue>>,
    /// Operator-specific flag.
    pub flag: bool,
}

/// Snapshot layout of keyed groups: key columns, id, extras, accumulator
/// state, last emitted values, flag.
pub struct GroupLayout<'a> {
    /// Types of the key columns (see [`key_types`]).
    pub key_types: Vec<DataType>,
    /// Names of the extra integer columns.
    pub extra: &'a [&'a str],
    /// Aggregates.
    pub spec: &'a AggregateSpec,
    /// Types of the emitted values.
    pub values: Vec<Field>,
}

impl GroupLayout<'_> {
    fn key_fields(&self) -> Result<Vec<Field>> {
        Ok(self
            .key_types
            .iter()
            .enumerate()
            .map(|(i, t)| Field::new(format!("k{i}"), t.clone(), true))
            .collect())
    }

    fn fields(&self) -> Result<Vec<Field>> {
        let mut fields = self.key_fields()?;
        fields.push(Field::new("id", DataType::Int64, true));
        fields.extend(
            self.extra
                .iter()
                .map(|name| Field::new(*name, DataType::Int64, true)),
        );
        fields.extend(state_fields(self.spec)?);
        fields.push(Field::new("has_last", DataType::Boolean, true));
        fields.extend(self.values.iter().cloned());
        fields.push(Field::new("flag", DataType::Boolean, true));
        Ok(fields)
    }

    /// Writes groups as one batch; `key_columns` hold their keys (none for
    /// a layout without keys: its placeholder column is written null).
    pub fn write(&self, key_columns: Vec<ArrayRef>, groups: Vec<GroupRow>) -> Result<RecordBatch> {
        let fields = self.fields()?;
        let count = groups.len();
        let key_columns = if key_columns.is_empty() {
            vec![arrow::array::new_null_array(&DataType::Null, count)]
        } else {
            key_columns
        };
        let mut rows = Vec::with_capacity(groups.len());
        for group in groups {
            let mut row = vec![ScalarValue::Int64(Some(group.id as i64))];
            row.extend(group.extra.iter().map(|v| ScalarValue::Int64(*v)));
            row.extend(accumulator_row(self.spec, group.accumulators)?);
            match group.last {
                Some(values) => {
                    row.push(ScalarValue::Boolean(Some(true)));
                    row.extend(values.iter().cloned());
                }
                None => {
                    row.push(ScalarValue::Boolean(Some(false)));
                    row.extend(null_values(&self.values)?);
                }
            }
            row.push(ScalarValue::Boolean(Some(group.flag)));
            rows.push(row);
        }
        let key_count = self.key_fields()?.len();
        let mut columns = key_columns;
        columns.extend(crate::state::columns_from_rows(
            &fields[key_count..],
            &rows,
        )?);
        crate::state::batch(fields, columns, count)
    }

    /// Reads groups back, merging their state into fresh accumulators; with
    /// them, the key columns (row `i` is group `i`'s key).
    pub fn read(
        &self,
        batch: &RecordBatch,
        what: &str,
    ) -> Result<(Vec<ArrayRef>, Vec<RestoredGroup>)> {
        let fields = self.fields()?;
        crate::state::expect_schema(batch, &fields, what)?;
        let key_count = self.key_fields()?.len();
        let widths = state_widths(self.spec)?;
        let state_count: usize = widths.iter().sum();
        let columns = batch.columns();
        let int = |i: usize| columns[i].as_primitive::<Int64Type>();
        let extras = key_count + 1;
        let states_at = extras + self.extra.len();
        let last_at = states_at + state_count;
        let values = self.values.len();
        let mut groups = Vec::with_capacity(batch.num_rows());
        for row in 0..batch.num_rows() {
            let extra = (0..self.extra.len())
                .map(|i| {
                    let column = int(extras + i);
                    (!column.is_null(row)).then(|| column.value(row))
                })
                .collect();
            let last = if columns[last_at].as_boolean().value(row) {
                Some(row_values(
                    &columns[last_at + 1..last_at + 1 + values],
                    row,
                )?)
            } else {
                None
            };
            groups.push(RestoredGroup {
                id: int(key_count).value(row) as u64,
                extra,
                accumulators: restore_accumulators(
                    self.spec,
                    &widths,
                    &columns[states_at..last_at],
                    row,
                )?,
                last,
                flag: columns[last_at + 1 + values].as_boolean().value(row),
            });
        }
        Ok((columns[..key_count].to_vec(), groups))
    }
}

/// Key column types of a [`GroupLayout`] for keys of `key_schema` (no
/// keys at all: one `Null` placeholder column).
pub fn key_types(key_schema: &arrow::datatypes::Schema) -> Vec<DataType> {
    let mut types: Vec<DataType> = key_schema
        .fields()
        .iter()
        .map(|f| f.data_type().clone())
        .collect();
    if types.is_empty() {
        types.push(DataType::Null);
    }
    types
}
