//! Group interning for one string key whose values are short.
//!
//! Typical stream keys (symbols, sensor, user and device ids) fit in the
//! 12 bytes a `Utf8View` value holds inline: the 16-byte view then *is* the
//! value. [`ShortStringKeys`] interns such keys by their view alone (one
//! 16-byte hash and compare per row, no byte access). DataFusion's string
//! group values, which it replaces, hash and compare the bytes of each
//! value. The first value longer than 12 bytes hands every group, in order,
//! to DataFusion's group values, which carry on from there.
//!
//! The view-to-group table is `ViewTable` (in `codec::string_views`), open addressing over group
//! numbers: in wasm a row costs a few 64-bit multiplies and loads inline in
//! the interning loop, where a generic hash map of 128-bit keys costs calls
//! (entry, hasher, 128-bit shifts) and 32-byte buckets.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, StringViewArray};
use arrow::buffer::{NullBuffer, ScalarBuffer};
use arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::Result;
use datafusion::logical_expr::EmitTo;
use datafusion::physical_plan::aggregates::group_values::{new_group_values, GroupValues};
use datafusion::physical_plan::aggregates::order::GroupOrdering;

use crate::codec::string_views::{canonical, ViewTable, INLINE};

/// Group values for a single `Utf8View` key (see the module docs).
pub struct ShortStringKeys {
    schema: SchemaRef,
    /// View (zero-padded) -> group.
    groups: ViewTable,
    /// Each group's view, in group order (`0` for the null group).
    views: Vec<u128>,
    null_group: Option<usize>,
    /// DataFusion's group values, once a long value came.
    long: Option<Box<dyn GroupValues>>,
}

impl ShortStringKeys {
    /// Group values for `schema`'s single `Utf8View` column; `None` for
    /// other schemas.
    pub fn for_schema(schema: &SchemaRef) -> Option<Self> {
        match schema.fields().as_ref() {
            [field] if field.data_type() == &DataType::Utf8View => Some(Self {
                schema: Arc::clone(schema),
                groups: ViewTable::new(),
                views: Vec::new(),
                null_group: None,
                long: None,
            }),
            _ => None,
        }
    }

    /// The groups so far as a column, in group order (inline views need
    /// no data buffers).
    fn column(&self) -> Result<StringViewArray> {
        let nulls = self
            .null_group
            .map(|null| NullBuffer::from_iter((0..self.views.len()).map(|group| group != null)));
        Ok(StringViewArray::try_new(
            ScalarBuffer::from(self.views.clone()),
            vec![],
            nulls,
        )?)
    }

    /// Hands the groups (in order, so indices stay) to DataFusion's group values.
    fn go_long(&mut self) -> Result<&mut Box<dyn GroupValues>> {
        let mut values = new_group_values(Arc::clone(&self.schema), &GroupOrdering::None)?;
        if !self.views.is_empty() {
            let column: ArrayRef = Arc::new(self.column()?);
            let mut groups = Vec::new();
            values.intern(&[column], &mut groups)?;
        }
        self.groups = ViewTable::new();
        self.views = Vec::new();
        self.null_group = None;
        Ok(self.long.insert(values))
    }
}

impl GroupValues for ShortStringKeys {
    fn intern(&mut self, cols: &[ArrayRef], groups: &mut Vec<usize>) -> Result<()> {
        if let Some(long) = self.long.as_mut() {
            return long.intern(cols, groups);
        }
        let Some(column) = cols.first().and_then(|c| c.as_string_view_opt()) else {
            return datafusion::common::internal_err!("short string keys got no Utf8View column");
        };
        let views = column.views();
        // Group numbers are u32 in the table (far beyond wasm's memory).
        let too_many = self.views.len() + views.len() >= u32::MAX as usize;
        if too_many || views.iter().any(|&view| (view as u32) > INLINE) {
            return self.go_long()?.intern(cols, groups);
        }
        groups.clear();
        groups.reserve(views.len());
        let nulls = column.nulls().filter(|nulls| nulls.null_count() > 0);
        for (row, &view) in views.iter().enumerate() {
            if nulls.is_some_and(|nulls| nulls.is_null(row)) {
                let next = self.views.len();
                let group = *self.null_group.get_or_insert(next);
                if group == next {
                    self.views.push(0);
                }
                groups.push(group);
                continue;
            }
            let view = canonical(view);
            groups.push(self.groups.intern(view, &mut self.views, self.null_group));
        }
        Ok(())
    }

    fn size(&self) -> usize {
        match &self.long {
            Some(long) => long.size(),
            None => self.groups.size() + self.views.capacity() * 16,
        }
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn len(&self) -> usize {
        match &self.long {
            Some(long) => long.len(),
            None => self.views.len(),
        }
    }

    fn emit(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        if let Some(long) = self.long.as_mut() {
            return long.emit(emit_to);
        }
        let column = self.column()?;
        let emitted = match emit_to {
            EmitTo::All => {
                self.groups.rebuild(&[], None);
                self.views.clear();
                self.null_group = None;
                column
            }
            EmitTo::First(n) => {
                // The rest move down by `n`.
                self.views.drain(..n);
                self.null_group = self.null_group.and_then(|g| g.checked_sub(n));
                self.groups.rebuild(&self.views, self.null_group);
                column.slice(0, n)
            }
        };
        Ok(vec![Arc::new(emitted)])
    }

    fn clear_shrink(&mut self, num_rows: usize) {
        match self.long.as_mut() {
            Some(long) => long.clear_shrink(num_rows),
            None => {
                self.groups = ViewTable::with_capacity(num_rows);
                self.views.clear();
                self.views.shrink_to(num_rows);
                self.null_group = None;
            }
        }
    }
}

/// DataFusion's group values for `schema`, or [`ShortStringKeys`] for a
/// single string key.
pub fn new_key_values(schema: &SchemaRef) -> Result<Box<dyn GroupValues>> {
    match ShortStringKeys::for_schema(schema) {
        Some(keys) => Ok(Box::new(keys)),
        None => new_group_values(Arc::clone(schema), &GroupOrdering::None),
    }
}

#[cfg(test)]
mod tests {
    use arrow::datatypes::{Field, Schema};

    use super::*;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![Field::new("k", DataType::Utf8View, true)]))
    }

    fn column(values: &[Option<&str>]) -> ArrayRef {
        Arc::new(StringViewArray::from(values.to_vec()))
    }

    /// Interns `batches` with both and checks they agree group for group.
    fn agree(batches: &[Vec<Option<&str>>]) {
        let mut ours = new_key_values(&schema()).unwrap();
        let mut theirs = new_group_values(schema(), &GroupOrdering::None).unwrap();
        for batch in batches {
            let (mut a, mut b) = (Vec::new(), Vec::new());
            ours.intern(&[column(batch)], &mut a).unwrap();
            theirs.intern(&[column(batch)], &mut b).unwrap();
            assert_eq!(a, b, "{batch:?}");
            assert_eq!(ours.len(), theirs.len());
        }
        let (a, b) = (
            ours.emit(EmitTo::First(2)).unwrap(),
            theirs.emit(EmitTo::First(2)).unwrap(),
        );
        assert_eq!(a[0].as_string_view(), b[0].as_string_view());
        let (a, b) = (
            ours.emit(EmitTo::All).unwrap(),
            theirs.emit(EmitTo::All).unwrap(),
        );
        assert_eq!(a[0].as_string_view(), b[0].as_string_view());
        assert!(ours.is_empty());
        // Emptied, it starts again from group 0.
        let mut groups = Vec::new();
        ours.intern(&[column(&[Some("z"), Some("y"), Some("z")])], &mut groups)
            .unwrap();
        assert_eq!(groups, [0, 1, 0]);
    }

    #[test]
    fn short_keys_group_as_datafusion_groups_them() {
        agree(&[
            vec![
                Some("a"),
                Some("bb"),
                None,
                Some("a"),
                Some(""),
                Some("twelve_bytes"),
            ],
            vec![
                None,
                Some("bb"),
                Some("c"),
                Some(""),
                Some("twelve_bytes"),
                Some("twelve_byte"),
            ],
        ]);
    }

    #[test]
    fn a_long_key_hands_the_groups_over_in_order() {
        // The third batch brings a 13-byte key: groups so far keep their
        // indices in DataFusion's group values, nulls included.
        agree(&[
            vec![Some("k1"), None, Some("k2")],
            vec![Some("k2"), Some("k3")],
            vec![
                Some("k3"),
                Some("thirteen_byte"),
                Some("k1"),
                None,
                Some("k4"),
            ],
            vec![Some("k4"), Some("a much longer key than twelve bytes")],
        ]);
    }

    #[test]
    fn many_keys_grow_the_table_and_still_agree() {
        // Thousands of keys (the table doubles many times), an empty string
        // and a null (both view 0 apart from the null bit), keys seen again
        // in later batches and emits of the first groups.
        let keys: Vec<String> = (0..5000)
            .map(|i| format!("k{}", i * 7919 % 10007))
            .collect();
        let batch = |from: usize, to: usize| -> Vec<Option<&str>> {
            (from..to)
                .map(|i| match i % 97 {
                    0 => None,
                    1 => Some(""),
                    _ => Some(keys[i % keys.len()].as_str()),
                })
                .collect()
        };
        agree(&[batch(0, 3000), batch(2000, 9000), batch(0, 100)]);
        let mut ours = new_key_values(&schema()).unwrap();
        let mut theirs = new_group_values(schema(), &GroupOrdering::None).unwrap();
        for _ in 0..3 {
            let (mut a, mut b) = (Vec::new(), Vec::new());
            ours.intern(&[column(&batch(0, 4000))], &mut a).unwrap();
            theirs.intern(&[column(&batch(0, 4000))], &mut b).unwrap();
            assert_eq!(a, b);
            let (a, b) = (
                ours.emit(EmitTo::First(1000)).unwrap(),
                theirs.emit(EmitTo::First(1000)).unwrap(),
            );
            assert_eq!(a[0].as_string_view(), b[0].as_string_view());
        }
    }

    #[test]
    fn bytes_past_a_short_value_do_not_matter() {
        // arrow's checked constructors refuse such views, but unchecked
        // ones (and other producers) may leave garbage after the value.
        let clean = StringViewArray::from(vec![
            "",
            "a",
            "abc",
            "abcd",
            "abcde",
            "abcdefgh",
            "abcdefghijk",
            "abcdefghijkl",
        ]);
        for &view in clean.views() {
            let len = view as u32;
            let garbage = u128::MAX.checked_shl(32 + 8 * len).unwrap_or(0);
            assert_eq!(canonical(view | garbage), view, "length {len}");
            assert_eq!(canonical(view), view);
        }
    }

    #[test]
    fn other_schemas_get_datafusions_group_values() {
        let two = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Utf8View, true),
            Field::new("b", DataType::Utf8View, true),
        ]));
        assert!(ShortStringKeys::for_schema(&two).is_none());
        let utf8 = Arc::new(Schema::new(vec![Field::new("a", DataType::Utf8, true)]));
        assert!(ShortStringKeys::for_schema(&utf8).is_none());
        assert!(ShortStringKeys::for_schema(&schema()).is_some());
    }
}
