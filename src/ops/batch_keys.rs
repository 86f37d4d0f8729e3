//! The distinct group keys of one batch.
//!
//! Operators that keep state per key in maps (sessions, updating and
//! refining aggregates) look each key up once per batch, not once per row.
//! A `GroupValues` interns a batch's key columns column-wise (for a single
//! string key, [`super::short_string_keys`]: one probe per row by the value's
//! view, no row encoding), and only the distinct keys are then encoded as
//! comparable rows for the maps.

use std::sync::Arc;

use arrow::array::{new_null_array, ArrayRef};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::row::{OwnedRow, RowConverter};
use datafusion::physical_plan::aggregates::group_values::GroupValues;

use super::grouped_aggregates::emit_all;
use super::short_string_keys::new_key_values;
use crate::error::Result;

/// Interns the key columns of each batch (see the module docs).
pub struct BatchKeys {
    /// `None` when there are no key columns: every row has the one key.
    values: Option<Box<dyn GroupValues>>,
}

impl BatchKeys {
    /// For `leading_int64` window-bound columns followed by the key columns
    /// of `key_schema`: the layout of `changelog::key_converter` with the
    /// same arguments (no columns at all: one key for all rows).
    pub fn try_new(leading_int64: usize, key_schema: &Schema) -> Result<Self> {
        let mut fields: Vec<Field> = (0..leading_int64)
            .map(|i| Field::new(format!("_bound{i}"), DataType::Int64, false))
            .collect();
        fields.extend(key_schema.fields().iter().map(|f| f.as_ref().clone()));
        let values = if fields.is_empty() {
            None
        } else {
            Some(new_key_values(&Arc::new(Schema::new(fields)))?)
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
                emit_all(values.as_mut())?
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

/// A batch's rows grouped by key (see [`BatchKeys::group`]).
#[derive(Debug)]
pub struct KeyedRows {
    /// The distinct keys, in order of first appearance.
    pub keys: Vec<OwnedRow>,
    /// Row positions, key by key (ascending within a key).
    pub order: Vec<u32>,
    /// Per key: where its rows start in `order`, and how many there are.
    pub runs: Vec<(usize, usize)>,
}

impl BatchKeys {
    /// The batch's rows grouped by key, keys in order of first appearance
    /// (so changes come out in the order their rows arrived).
    pub fn group(
        &mut self,
        keys: &[ArrayRef],
        rows: usize,
        converter: &RowConverter,
    ) -> Result<KeyedRows> {
        let mut slots = Vec::with_capacity(rows);
        let distinct = self.intern(keys, rows, converter, &mut slots)?;
        // Rank slots by first appearance, count rows per rank, then place
        // each row after the rows of earlier ranks (a counting sort).
        let mut rank = vec![usize::MAX; distinct.len()];
        let mut counts: Vec<usize> = Vec::with_capacity(distinct.len());
        for &slot in &slots {
            if rank[slot] == usize::MAX {
                rank[slot] = counts.len();
                counts.push(0);
            }
            counts[rank[slot]] += 1;
        }
        let mut runs = Vec::with_capacity(counts.len());
        let mut start = 0;
        for &count in &counts {
            runs.push((start, count));
            start += count;
        }
        let mut next: Vec<usize> = runs.iter().map(|&(start, _)| start).collect();
        let mut order = vec![0u32; slots.len()];
        for (row, &slot) in slots.iter().enumerate() {
            let at = &mut next[rank[slot]];
            order[*at] = row as u32;
            *at += 1;
        }
        let mut keys: Vec<Option<OwnedRow>> = vec![None; counts.len()];
        for (slot, key) in distinct.into_iter().enumerate() {
            if let Some(place) = keys.get_mut(rank[slot]) {
                *place = Some(key);
            }
        }
        Ok(KeyedRows {
            keys: keys.into_iter().flatten().collect(),
            order,
            runs,
        })
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

    use super::*;
    use crate::ops::changelog::key_converter;

    #[test]
    fn rows_with_equal_keys_share_a_slot_and_slots_name_their_key() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Utf8View, true),
            Field::new("n", DataType::Int64, true),
        ]));
        let converter = key_converter(0, &schema).unwrap();
        let mut keys = BatchKeys::try_new(0, &schema).unwrap();
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
    fn grouped_rows_keep_arrival_order_of_keys_and_of_rows() {
        let schema = Arc::new(Schema::new(vec![Field::new("k", DataType::Utf8View, true)]));
        let converter = key_converter(0, &schema).unwrap();
        let mut keys = BatchKeys::try_new(0, &schema).unwrap();
        let values = vec![
            Some("b"),
            Some("a"),
            None,
            Some("b"),
            Some("c"),
            None,
            Some("a"),
            Some("b"),
        ];
        let column: ArrayRef = Arc::new(StringViewArray::from(values.clone()));
        let grouped = keys.group(&[Arc::clone(&column)], 8, &converter).unwrap();
        assert_eq!(grouped.order, [0, 3, 7, 1, 6, 2, 5, 4]);
        assert_eq!(grouped.runs, [(0, 3), (3, 2), (5, 2), (7, 1)]);
        let names = converter
            .convert_rows(grouped.keys.iter().map(|k| k.row()))
            .unwrap();
        let names = names[0].as_any().downcast_ref::<StringViewArray>().unwrap();
        let names: Vec<Option<&str>> = names.iter().collect();
        assert_eq!(names, [Some("b"), Some("a"), None, Some("c")]);
        let empty = keys.group(&[column.slice(0, 0)], 0, &converter).unwrap();
        assert!(empty.keys.is_empty() && empty.order.is_empty());
    }

    #[test]
    fn without_key_columns_every_row_has_the_one_key() {
        let schema = Arc::new(Schema::empty());
        let converter = key_converter(0, &schema).unwrap();
        let mut keys = BatchKeys::try_new(0, &schema).unwrap();
        let mut slots = vec![7];
        let distinct = keys.intern(&[], 3, &converter, &mut slots).unwrap();
        assert_eq!((slots, distinct.len()), (vec![0, 0, 0], 1));
        let placeholder = converter
            .convert_columns(&[new_null_array(&DataType::Null, 1)])
            .unwrap();
        assert_eq!(distinct[0].row(), placeholder.row(0));
    }
}
