//! Changelog output: rows tagged insert, update_before, update_after or
//! delete, for queries whose results change after they were emitted.
//!
//! An operator reports each change as an old and/or new result row (before
//! the query's HAVING and final SELECT). Both sides then go through those
//! steps, and whether each side survives decides the change kind:
//!
//! ```text
//! old passes  new passes  ->  emitted
//!    no          yes          insert(new)
//!    yes         yes          update_before(old), update_after(new)
//!    yes         no           delete(old)
//!    no          no           nothing
//! ```

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, StringArray, UInt32Array};
use arrow::compute::interleave;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, UInt32Type};
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use datafusion::common::ScalarValue;

use super::chain::StatelessChain;
use super::graph::{Operator, Output, Rows};
use crate::err;
use crate::error::Result;
use crate::state::OperatorState;

/// Name of the change-kind column added to changelog results.
pub const OP_COLUMN: &str = "_op";

/// Change kinds, as they appear in the `_op` column.
pub mod op {
    /// A new result row.
    pub const INSERT: &str = "insert";
    /// The previous version of an updated row.
    pub const UPDATE_BEFORE: &str = "update_before";
    /// The new version of an updated row.
    pub const UPDATE_AFTER: &str = "update_after";
    /// A row that left the result.
    pub const DELETE: &str = "delete";
}

/// Changes to some result rows: `old` and `new` rows in the operator's
/// output schema, with the position of the change each belongs to.
#[derive(Debug, Clone)]
pub struct Changes {
    /// Number of changes.
    pub count: usize,
    /// Previous versions, for changes that had one.
    pub old: RecordBatch,
    /// Change position of each `old` row.
    pub old_positions: UInt32Array,
    /// New versions, for changes that have one.
    pub new: RecordBatch,
    /// Change position of each `new` row.
    pub new_positions: UInt32Array,
}

/// One group's aggregate values.
pub type Values = Vec<ScalarValue>;

/// Changes collected per group key (of type `K`, e.g. a key number), in
/// order, before they become [`Changes`].
#[derive(Debug)]
pub struct ChangeList<K> {
    keys: Vec<K>,
    /// (before, after) per change.
    values: Vec<(Option<Values>, Option<Values>)>,
}

impl<K> Default for ChangeList<K> {
    fn default() -> Self {
        Self {
            keys: Vec::new(),
            values: Vec::new(),
        }
    }
}

impl<K: Clone> ChangeList<K> {
    /// Records a change of the group `key` from `before` to `after`.
    pub fn push(&mut self, key: K, before: Option<Values>, after: Option<Values>) {
        self.keys.push(key);
        self.values.push((before, after));
    }

    /// Number of changes.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Splits the changes into old and new rows; `batch` builds rows of the
    /// operator's output schema from group keys and their values.
    pub fn into_changes(
        self,
        batch: impl Fn(&[K], Vec<Values>) -> Result<RecordBatch>,
    ) -> Result<Changes> {
        let count = self.keys.len();
        let (mut old_keys, mut old_values, mut old_positions) =
            (Vec::new(), Vec::new(), Vec::new());
        let (mut new_keys, mut new_values, mut new_positions) =
            (Vec::new(), Vec::new(), Vec::new());
        for (position, (key, (before, after))) in self.keys.into_iter().zip(self.values).enumerate()
        {
            if let Some(values) = before {
                old_keys.push(key.clone());
                old_values.push(values);
                old_positions.push(position as u32);
            }
            if let Some(values) = after {
                new_keys.push(key);
                new_values.push(values);
                new_positions.push(position as u32);
            }
        }
        Ok(Changes {
            count,
            old: batch(&old_keys, old_values)?,
            old_positions: UInt32Array::from(old_positions),
            new: batch(&new_keys, new_values)?,
            new_positions: UInt32Array::from(new_positions),
        })
    }
}

/// Builds one value column per aggregate from per-group values; aggregates
/// start at column `first` of `schema`.
pub fn value_columns(schema: &Schema, first: usize, values: &[Values]) -> Result<Vec<ArrayRef>> {
    schema
        .fields()
        .iter()
        .enumerate()
        .skip(first)
        .map(|(i, field)| {
            let column = values.iter().map(|v| &v[i - first]);
            if let Some(array) = common_column(field.data_type(), column.clone()) {
                return Ok(array);
            }
            let scalars: Vec<ScalarValue> = column.cloned().collect();
            Ok(if scalars.is_empty() {
                arrow::array::new_empty_array(field.data_type())
            } else {
                ScalarValue::iter_to_array(scalars)?
            })
        })
        .collect()
}

/// The column of `scalars` for the usual aggregate result types, built
/// directly (DataFusion's `iter_to_array` goes through a generic builder
/// per value); `None` for other types or a scalar of another type.
fn common_column<'a>(
    data_type: &DataType,
    scalars: impl Iterator<Item = &'a ScalarValue>,
) -> Option<ArrayRef> {
    use arrow::datatypes::{Float64Type, Int64Type, UInt64Type};
    match data_type {
        DataType::Int64 => primitive_column::<Int64Type>(scalars, |v| match v {
            ScalarValue::Int64(x) => Some(*x),
            _ => None,
        }),
        DataType::UInt64 => primitive_column::<UInt64Type>(scalars, |v| match v {
            ScalarValue::UInt64(x) => Some(*x),
            _ => None,
        }),
        DataType::Float64 => primitive_column::<Float64Type>(scalars, |v| match v {
            ScalarValue::Float64(x) => Some(*x),
            _ => None,
        }),
        _ => None,
    }
}

/// The column of `scalars` whose values `value` reads (`None`: another type).
fn primitive_column<'a, T: arrow::datatypes::ArrowPrimitiveType>(
    scalars: impl Iterator<Item = &'a ScalarValue>,
    value: fn(&ScalarValue) -> Option<Option<T::Native>>,
) -> Option<ArrayRef> {
    // Values and a null mask side by side: collecting `Option`s into an
    // array goes through a generic builder per value (a tenth of a push).
    let (rows, _) = scalars.size_hint();
    let mut values = Vec::with_capacity(rows);
    let mut nulls = arrow::array::NullBufferBuilder::new(rows);
    for scalar in scalars {
        match value(scalar)? {
            Some(v) => {
                values.push(v);
                nulls.append_non_null();
            }
            None => {
                values.push(T::Native::default());
                nulls.append_null();
            }
        }
    }
    let array = arrow::array::PrimitiveArray::<T>::new(values.into(), nulls.finish());
    Some(Arc::new(array))
}

/// The result schema plus the `_op` column.
pub fn with_op_column(schema: &Schema) -> SchemaRef {
    let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new(OP_COLUMN, DataType::Utf8, false));
    Arc::new(Schema::new(fields))
}

/// The schema of a changelog without its `_op` column (the last).
pub fn without_op_column(schema: &Schema) -> Result<SchemaRef> {
    let fields = schema.fields();
    match fields.last() {
        Some(last) if last.name() == OP_COLUMN => {
            Ok(Arc::new(Schema::new(fields[..fields.len() - 1].to_vec())))
        }
        _ => Err(err!(Internal, "a changelog without its {OP_COLUMN} column")),
    }
}

/// Reads a changelog batch (its change kind in the last column) back into
/// changes, in order: an `update_before` and the `update_after` right after
/// it are one change; any other row is a change of its own.
pub fn changes_of(batch: &RecordBatch) -> Result<Changes> {
    let width = batch.num_columns();
    let ops = width
        .checked_sub(1)
        .and_then(|last| batch.column(last).as_string_opt::<i32>())
        .ok_or_else(|| err!(Internal, "a changelog without its {OP_COLUMN} column"))?;
    let rows = batch.project(&(0..width - 1).collect::<Vec<_>>())?;
    let (mut old_rows, mut old_positions) = (Vec::new(), Vec::new());
    let (mut new_rows, mut new_positions) = (Vec::new(), Vec::new());
    let mut count = 0u32;
    let mut row = 0;
    while row < ops.len() {
        match ops.value(row) {
            op::INSERT | op::UPDATE_AFTER => {
                new_rows.push(row as u32);
                new_positions.push(count);
            }
            op::UPDATE_BEFORE => {
                old_rows.push(row as u32);
                old_positions.push(count);
                if row + 1 < ops.len() && ops.value(row + 1) == op::UPDATE_AFTER {
                    row += 1;
                    new_rows.push(row as u32);
                    new_positions.push(count);
                }
            }
            op::DELETE => {
                old_rows.push(row as u32);
                old_positions.push(count);
            }
            other => return Err(err!(Internal, "unknown change kind '{other}'")),
        }
        count += 1;
        row += 1;
    }
    // Column by column with an explicit row count: a query may read none
    // of the changelog's columns (`SELECT 1 FROM view`).
    let take = |indices: Vec<u32>| -> Result<RecordBatch> {
        let indices = UInt32Array::from(indices);
        let columns = rows
            .columns()
            .iter()
            .map(|column| arrow::compute::take(column.as_ref(), &indices, None))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let options = RecordBatchOptions::new().with_row_count(Some(indices.len()));
        Ok(RecordBatch::try_new_with_options(
            rows.schema(),
            columns,
            &options,
        )?)
    };
    Ok(Changes {
        count: count as usize,
        old: take(old_rows)?,
        old_positions: UInt32Array::from(old_positions),
        new: take(new_rows)?,
        new_positions: UInt32Array::from(new_positions),
    })
}

/// Stateless steps (`WHERE`, `SELECT` expressions) over a changelog: both
/// sides of each change go through them, and which sides survive decides
/// the change kind (see the table at the top), so the result is the
/// changelog of the steps applied to the table the input describes.
#[derive(Debug, Clone)]
pub struct ChangelogChainNode {
    chain: StatelessChain,
    /// The chain's output plus `_op`.
    schema: SchemaRef,
}

impl ChangelogChainNode {
    /// A node running `chain` over a changelog; `schema` is its output
    /// schema plus `_op`.
    pub fn new(chain: StatelessChain, schema: SchemaRef) -> Self {
        Self { chain, schema }
    }
}

impl Operator for ChangelogChainNode {
    fn may_fail(&self) -> bool {
        self.chain.may_fail()
    }

    fn process(&mut self, _input: usize, rows: Rows, out: &mut Output) -> Result<()> {
        let changes = changes_of(&rows.batch)?;
        if let Some(batch) = changelog(changes, &self.chain, &self.schema)? {
            out.emit(batch);
        }
        Ok(())
    }

    fn restored(&self, _state: Option<&OperatorState>) -> Result<Box<dyn Operator>> {
        Ok(Box::new(self.clone()))
    }

    fn describe(&self) -> String {
        format!("ChangelogSteps: {}", self.chain.describe().join(" ▸ "))
    }

    fn output_schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }
}

/// Runs both sides of `changes` through `post` and builds the changelog
/// batch in `schema` (the result schema plus `_op`), in change order.
pub fn changelog(
    changes: Changes,
    post: &StatelessChain,
    schema: &SchemaRef,
) -> Result<Option<RecordBatch>> {
    if changes.count == 0 {
        return Ok(None);
    }
    let (old, old_pos) = post.apply(
        changes.old,
        vec![Arc::new(changes.old_positions) as ArrayRef],
    )?;
    let (new, new_pos) = post.apply(
        changes.new,
        vec![Arc::new(changes.new_positions) as ArrayRef],
    )?;
    let positions = |arrays: Vec<ArrayRef>| -> Vec<u32> {
        arrays
            .first()
            .map(|a| a.as_primitive::<UInt32Type>().values().to_vec())
            .unwrap_or_default()
    };
    let mut old_row: Vec<Option<usize>> = vec![None; changes.count];
    for (row, position) in positions(old_pos).into_iter().enumerate() {
        old_row[position as usize] = Some(row);
    }
    let mut new_row: Vec<Option<usize>> = vec![None; changes.count];
    for (row, position) in positions(new_pos).into_iter().enumerate() {
        new_row[position as usize] = Some(row);
    }
    // (source batch: 0 old / 1 new, row) and the change kind, in order.
    let mut picks: Vec<(usize, usize)> = Vec::new();
    let mut ops: Vec<&str> = Vec::new();
    for (old, new) in old_row.into_iter().zip(new_row) {
        match (old, new) {
            (None, Some(n)) => {
                picks.push((1, n));
                ops.push(op::INSERT);
            }
            (Some(o), Some(n)) => {
                picks.extend([(0, o), (1, n)]);
                ops.extend([op::UPDATE_BEFORE, op::UPDATE_AFTER]);
            }
            (Some(o), None) => {
                picks.push((0, o));
                ops.push(op::DELETE);
            }
            (None, None) => {}
        }
    }
    if picks.is_empty() {
        return Ok(None);
    }
    let mut columns = Vec::with_capacity(schema.fields().len());
    for i in 0..old.num_columns() {
        let sources: [&dyn Array; 2] = [old.column(i).as_ref(), new.column(i).as_ref()];
        columns.push(interleave(&sources, &picks)?);
    }
    columns.push(Arc::new(StringArray::from(ops)) as ArrayRef);
    Ok(Some(RecordBatch::try_new(Arc::clone(schema), columns)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changelog_read_back_into_changes_rebuilds_itself() {
        let schema = with_op_column(&Schema::new(vec![
            Field::new("k", DataType::Utf8, true),
            Field::new("n", DataType::Int64, true),
        ]));
        let ops = [
            op::INSERT,
            op::UPDATE_BEFORE,
            op::UPDATE_AFTER,
            op::DELETE,
            // A lone update_before is a change of its own.
            op::UPDATE_BEFORE,
            op::UPDATE_BEFORE,
            op::UPDATE_AFTER,
        ];
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(StringArray::from(vec!["a", "a", "a", "b", "c", "d", "d"])),
                Arc::new(arrow::array::Int64Array::from(vec![1, 1, 2, 5, 3, 4, 6])),
                Arc::new(StringArray::from(ops.to_vec())),
            ],
        )
        .unwrap();
        let changes = changes_of(&batch).unwrap();
        assert_eq!(changes.count, 5);
        assert_eq!(changes.old_positions.values(), &[1, 2, 3, 4]);
        assert_eq!(changes.new_positions.values(), &[0, 1, 4]);
        // Through no steps: the same rows, a lone update_before as a delete.
        let rebuilt = changelog(changes, &StatelessChain::default(), &schema)
            .unwrap()
            .unwrap();
        assert_eq!(rebuilt.columns()[..2], batch.columns()[..2]);
        let kinds = rebuilt.column(2).as_string::<i32>();
        let kinds: Vec<&str> = kinds.iter().flatten().collect();
        assert_eq!(
            kinds,
            [
                op::INSERT,
                op::UPDATE_BEFORE,
                op::UPDATE_AFTER,
                op::DELETE,
                op::DELETE,
                op::UPDATE_BEFORE,
                op::UPDATE_AFTER
            ]
        );
        // Not a changelog: an internal error, not a panic.
        assert!(changes_of(&batch.project(&[0, 1]).unwrap()).is_err());
    }

    #[test]
    fn value_columns_equal_datafusions_for_common_and_other_types() {
        let schema = Schema::new(vec![
            Field::new("key", DataType::Utf8, true),
            Field::new("n", DataType::Int64, true),
            Field::new("u", DataType::UInt64, true),
            Field::new("x", DataType::Float64, true),
            Field::new("s", DataType::Utf8, true),
            Field::new("d", DataType::Decimal128(10, 2), true),
        ]);
        let rows: Vec<Values> = (0..5)
            .map(|i| {
                let some = i % 3 != 1;
                vec![
                    ScalarValue::Int64(some.then_some(i * 7 - 9)),
                    ScalarValue::UInt64(some.then_some(i as u64 * 1_000)),
                    ScalarValue::Float64(some.then_some(i as f64 / 3.0)),
                    ScalarValue::Utf8(some.then(|| format!("v{i}"))),
                    ScalarValue::Decimal128(some.then_some(i as i128 * 125), 10, 2),
                ]
            })
            .collect();
        let columns = value_columns(&schema, 1, &rows).unwrap();
        for (i, column) in columns.iter().enumerate() {
            let theirs = ScalarValue::iter_to_array(rows.iter().map(|row| row[i].clone())).unwrap();
            assert_eq!(column.as_ref(), theirs.as_ref(), "column {i}");
            assert_eq!(column.data_type(), schema.field(i + 1).data_type());
        }
        // No rows: empty columns of the field types.
        let empty = value_columns(&schema, 1, &[]).unwrap();
        assert!(empty
            .iter()
            .zip(schema.fields().iter().skip(1))
            .all(|(c, f)| c.is_empty() && c.data_type() == f.data_type()));
        // A scalar of another type is left to DataFusion (whose column then
        // has that type, and the batch fails to build as before).
        let odd = vec![vec![
            ScalarValue::Float64(Some(1.5)),
            ScalarValue::UInt64(None),
            ScalarValue::Float64(None),
            ScalarValue::Utf8(None),
            ScalarValue::Decimal128(None, 10, 2),
        ]];
        let columns = value_columns(&schema, 1, &odd).unwrap();
        assert_eq!(columns[0].data_type(), &DataType::Float64);
    }
}
