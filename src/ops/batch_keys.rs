//! The distinct group keys of one batch.
//!
//! Operators that keep state per key in maps (sessions, updating and
//! refining aggregates) look each key up once per batch, not once per row.
//! DataFusion's `GroupValues` interns a batch's key columns column-wise
//! (for a string key: one hash table probe per row, no row encoding), and
//! only the distinct keys are then encoded as comparable rows for the maps.

use std::sync::Arc;

use arrow::array::{new_null_array, ArrayRef};
use arrow::datatypes::{DataType, SchemaRef};
use arrow::row::{OwnedRow, RowConverter};
use datafusion::logical_expr::EmitTo;
use datafusion::physical_plan::aggregates::group_values::{new_group_values, GroupValues};
use datafusion::physical_plan::aggregates::order::GroupOrdering;

use crate::error::Result;

/// Interns the key columns of each batch (see the module docs).
pub struct BatchKeys {
    /// `None` when there are no key columns: every row has the one key.
    values: Option<Box<dyn GroupValues>>,
}

impl BatchKeys {
    /// For key columns of `schema` (no fields: one key for all rows).
    pub fn try_new(schema: &SchemaRef) -> Result<Self> {
        let values = if schema.fields().is_empty() {
            None
        } else {
            Some(new_group_values(Arc::clone(schema), &GroupOrdering::None)?)
        };
        Ok(Self { values })
    }

    /// Sets `slots[row]` to the index of the row's key among the batch's
    /// distinct keys, and returns those keys as `converter` encodes them
    /// (in no particular order).
    pub fn intern(
        &mut self,
        keys: &[ArrayRef],
        rows: usize,
        converter: &RowConverter,
        slots: &mut Vec<usize>,
    ) -> Result<Vec<OwnedRow>> {
        let distinct = match &mut self.values {
            Some(values) => {
                values.intern(keys, slots)?;
                values.emit(EmitTo::All)?
            }
            None => {
                slots.clear();
                slots.resize(rows, 0);
                vec![new_null_array(&DataType::Null, 1)]
            }
        };
        let encoded = converter.convert_columns(&distinct)?;
        Ok(encoded.iter().map(|row| row.owned()).collect())
    }
}

impl std::fmt::Debug for BatchKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchKeys").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{Int64Array, StringViewArray};
    use arrow::datatypes::{Field, Schema};

    use super::*;
    use crate::ops::changelog::key_converter;

    #[test]
    fn rows_with_equal_keys_share_a_slot_and_slots_name_their_key() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Utf8View, true),
            Field::new("n", DataType::Int64, true),
        ]));
        let converter = key_converter(0, &schema).unwrap();
        let mut keys = BatchKeys::try_new(&schema).unwrap();
        let mut slots = Vec::new();
        for batch in 0..2 {
            let k: ArrayRef = Arc::new(StringViewArray::from(vec![
                Some("a"),
                None,
                Some("a"),
                Some("a long key past twelve bytes"),
                None,
                Some("a"),
            ]));
            let n: ArrayRef = Arc::new(Int64Array::from(vec![
                Some(1),
                Some(batch),
                Some(2),
                None,
                Some(batch),
                Some(1),
            ]));
            let columns = [k, n];
            let distinct = keys.intern(&columns, 6, &converter, &mut slots).unwrap();
            // Equal keys share a slot (the order of slots is DataFusion's).
            let same = |a: usize, b: usize| slots[a] == slots[b];
            assert!(same(0, 5) && same(1, 4), "batch {batch}: {slots:?}");
            assert!(!same(0, 1) && !same(0, 2) && !same(0, 3) && !same(2, 3));
            // Each row's slot holds exactly that row's key.
            let rows = converter.convert_columns(&columns).unwrap();
            for (row, &slot) in slots.iter().enumerate() {
                assert_eq!(rows.row(row), distinct[slot].row());
            }
            assert_eq!(distinct.len(), 4);
        }
        // Each batch starts afresh: only its own keys come back.
        let only: [ArrayRef; 2] = [
            Arc::new(StringViewArray::from(vec!["z", "z"])),
            Arc::new(Int64Array::from(vec![9, 9])),
        ];
        let distinct = keys.intern(&only, 2, &converter, &mut slots).unwrap();
        assert_eq!((slots, distinct.len()), (vec![0, 0], 1));
    }

    #[test]
    fn without_key_columns_every_row_has_the_one_key() {
        let schema = Arc::new(Schema::empty());
        let converter = key_converter(0, &schema).unwrap();
        let mut keys = BatchKeys::try_new(&schema).unwrap();
        let mut slots = vec![7];
        let distinct = keys.intern(&[], 3, &converter, &mut slots).unwrap();
        assert_eq!((slots, distinct.len()), (vec![0, 0, 0], 1));
        let placeholder = converter
            .convert_columns(&[new_null_array(&DataType::Null, 1)])
            .unwrap();
        assert_eq!(distinct[0].row(), placeholder.row(0));
    }
}
