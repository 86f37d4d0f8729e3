//! Tables the application holds (`CREATE TABLE ... PRIMARY KEY`): rows
//! keyed by their primary key, changed by `upsert` and `delete` calls and
//! read by lookup joins as they stand when an event is processed.
//!
//! Rows stay in the Arrow batches they arrived in; an index maps each key
//! (in arrow's row format) to its batch and row. A replaced or deleted row
//! is only marked dead, and batches are merged once dead rows outnumber
//! live ones or batches pile up, so a one-row upsert costs one small batch.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;

use arrow::array::AsArray;
use arrow::array::{Array, ArrayRef, BooleanArray};
use arrow::compute::{concat_batches, filter_record_batch, interleave};
use arrow::datatypes::DataType;
use arrow::record_batch::RecordBatch;
use arrow::row::{RowConverter, SortField};
use datafusion::common::HashMap;

use crate::catalog::TableDef;
use crate::err;
use crate::error::Result;

/// A table shared by the engine (which changes it) and the lookup joins
/// that read it; the engine is single-threaded and never changes a table
/// during a push.
pub type SharedTable = Rc<RefCell<LookupTable>>;

/// Every table of an engine, by name.
pub type Tables = BTreeMap<String, SharedTable>;

/// Merge batches past this many, so lookups gather from few arrays.
const MAX_BATCHES: usize = 32;

/// Where a row lives: (batch, row).
type Position = (u32, u32);

/// The rows of one table.
#[derive(Debug)]
pub struct LookupTable {
    def: Arc<TableDef>,
    codec: KeyCodec,
    index: HashMap<Box<[u8]>, Position>,
    batches: Vec<RecordBatch>,
    /// Per batch, per row: whether the row is the current one for its key.
    alive: Vec<Vec<bool>>,
    live: usize,
}

/// What an upsert or delete changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TableChange {
    /// Rows with a key the table did not hold.
    pub inserted: usize,
    /// Rows that replaced the row of their key.
    pub updated: usize,
    /// Rows removed.
    pub deleted: usize,
}

impl LookupTable {
    /// An empty table of `def`.
    pub fn new(def: Arc<TableDef>) -> Result<Self> {
        let types: Vec<&DataType> = def
            .primary_key
            .iter()
            .map(|&i| def.schema.field(i).data_type())
            .collect();
        Ok(Self {
            codec: KeyCodec::new(&types)?,
            def,
            index: HashMap::default(),
            batches: Vec::new(),
            alive: Vec::new(),
            live: 0,
        })
    }

    /// The table's definition.
    pub fn def(&self) -> &Arc<TableDef> {
        &self.def
    }

    /// Rows held.
    pub fn len(&self) -> usize {
        self.live
    }

    /// Whether the table holds no rows.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Approximate bytes held (the batches, dead rows included).
    pub fn bytes(&self) -> usize {
        self.batches
            .iter()
            .map(RecordBatch::get_array_memory_size)
            .sum::<usize>()
            + self.index.len() * 32
    }

    /// Checks that `batch` (in the table's schema) can be upserted: a NULL
    /// in a key column is refused, naming the row. Changes nothing.
    pub fn check_rows(&self, batch: &RecordBatch) -> Result<()> {
        if batch.schema().fields() != self.def.schema.fields() {
            return Err(err!(
                Internal,
                "rows for table '{}' are not in its schema",
                self.def.name
            ));
        }
        self.check_keys(&self.key_columns(batch))
    }

    fn check_keys(&self, keys: &[ArrayRef]) -> Result<()> {
        for (column, &field) in keys.iter().zip(&self.def.primary_key) {
            if let Some(row) = (0..column.len()).find(|&i| column.is_null(i)) {
                return Err(err!(
                    InvalidInput,
                    "table '{}': row {row} has no value for primary key column '{}'",
                    self.def.name,
                    self.def.schema.field(field).name()
                ));
            }
        }
        Ok(())
    }

    fn key_columns(&self, batch: &RecordBatch) -> Vec<ArrayRef> {
        self.def
            .primary_key
            .iter()
            .map(|&i| Arc::clone(batch.column(i)))
            .collect()
    }

    /// Inserts or replaces rows by key; of several rows with one key, the
    /// last wins. Checked first ([`Self::check_rows`]): a refused batch
    /// changes nothing.
    pub fn upsert(&mut self, batch: &RecordBatch) -> Result<TableChange> {
        self.check_rows(batch)?;
        let mut change = TableChange::default();
        if batch.num_rows() == 0 {
            return Ok(change);
        }
        let fits = |n: usize| u32::try_from(n).is_ok_and(|n| n < u32::MAX);
        if !fits(self.batches.len() + 1) || !fits(batch.num_rows()) {
            return Err(err!(
                InvalidInput,
                "table '{}': too many rows in one call",
                self.def.name
            ));
        }
        let key_columns = self.key_columns(batch);
        let at = self.batches.len() as u32;
        let mut alive = vec![true; batch.num_rows()];
        let Self {
            codec,
            index,
            alive: held,
            live,
            ..
        } = self;
        codec.each(&key_columns, |row, key| {
            // Keys were checked: none is NULL.
            let Some(key) = key else { return };
            match index.get_mut(key) {
                Some(position) => {
                    let (b, r) = *position;
                    if b == at {
                        // An earlier row of this same batch: the last wins.
                        alive[r as usize] = false;
                    } else {
                        held[b as usize][r as usize] = false;
                        change.updated += 1;
                    }
                    *position = (at, row as u32);
                }
                None => {
                    index.insert(key.into(), (at, row as u32));
                    change.inserted += 1;
                    *live += 1;
                }
            }
        })?;
        self.batches.push(batch.clone());
        self.alive.push(alive);
        self.maybe_compact();
        Ok(change)
    }

    /// Removes the rows with the keys in `keys` (one array per key column,
    /// in key order, of the key's types); absent keys are ignored.
    pub fn delete(&mut self, keys: &[ArrayRef]) -> Result<TableChange> {
        if keys.len() != self.def.primary_key.len() {
            return Err(err!(Internal, "delete keys do not match the primary key"));
        }
        self.check_keys(keys)?;
        let mut change = TableChange::default();
        let Self {
            codec,
            index,
            alive,
            live,
            ..
        } = self;
        codec.each(keys, |_, key| {
            if let Some((b, r)) = key.and_then(|key| index.remove(key)) {
                alive[b as usize][r as usize] = false;
                *live -= 1;
                change.deleted += 1;
            }
        })?;
        self.maybe_compact();
        Ok(change)
    }

    /// For each row of `keys` (arrays of the key's types, in key order):
    /// where its row is, or `None` (no row, or a NULL in the key).
    pub fn find(&self, keys: &[ArrayRef]) -> Result<Vec<Option<(usize, usize)>>> {
        let mut found = Vec::with_capacity(keys.first().map_or(0, |k| k.len()));
        self.codec.each(keys, |_, key| {
            found.push(
                key.and_then(|key| self.index.get(key))
                    .map(|&(b, r)| (b as usize, r as usize)),
            );
        })?;
        Ok(found)
    }

    /// Column `column` (of the table's schema) of the rows at `at`.
    pub fn column(&self, column: usize, at: &[(usize, usize)]) -> Result<ArrayRef> {
        if self.batches.is_empty() {
            return Ok(arrow::array::new_empty_array(
                self.def.schema.field(column).data_type(),
            ));
        }
        let arrays: Vec<&dyn Array> = self
            .batches
            .iter()
            .map(|b| b.column(column).as_ref())
            .collect();
        Ok(interleave(&arrays, at)?)
    }

    /// The rows held, as one batch (for checkpoints), in arrival order.
    pub fn snapshot(&self) -> Result<RecordBatch> {
        let live: Vec<RecordBatch> = self
            .batches
            .iter()
            .zip(&self.alive)
            .map(|(batch, alive)| live_rows(batch, alive))
            .collect::<Result<_>>()?;
        Ok(concat_batches(&self.def.schema, &live)?)
    }

    /// Replaces the contents with `batch`, rows a checkpoint held: in the
    /// table's schema, keys present and unique. Checked before anything
    /// changes.
    pub fn restore(&mut self, batch: &RecordBatch) -> Result<()> {
        let mut restored = Self::new(Arc::clone(&self.def))?;
        let corrupt = |what: String| {
            err!(
                CorruptCheckpoint,
                "the checkpoint's rows of table '{}' {what}",
                self.def.name
            )
        };
        if batch.schema().fields() != self.def.schema.fields() {
            return Err(corrupt("are not in the table's schema".into()));
        }
        restored
            .upsert(batch)
            .map_err(|e| corrupt(format!("are not valid: {}", e.message())))?;
        if restored.len() != batch.num_rows() {
            return Err(corrupt("repeat a key".into()));
        }
        *self = restored;
        Ok(())
    }

    /// Merges batches once dead rows outnumber live ones, or batches pile
    /// up; the index then points into the merged batch. Best effort: when
    /// merging fails (memory), the table stays as it was, unmerged.
    fn maybe_compact(&mut self) {
        let rows: usize = self.alive.iter().map(Vec::len).sum();
        let dead = rows - self.live;
        let wasteful = dead > self.live && dead > 1024;
        if !wasteful && self.batches.len() <= MAX_BATCHES {
            return;
        }
        if self.live == 0 {
            self.batches.clear();
            self.alive.clear();
            self.index.clear();
            return;
        }
        // Past MAX_BATCHES with little waste, a large first batch is kept
        // and only the ones after it merged: a stream of small upserts does
        // not copy the whole table every few calls.
        let first_live = self
            .alive
            .first()
            .map_or(0, |a| a.iter().filter(|&&v| v).count());
        let keep_first = !wasteful && first_live * 2 > self.live;
        let from = usize::from(keep_first);
        let merged = self.batches[from..]
            .iter()
            .zip(&self.alive[from..])
            .map(|(batch, alive)| live_rows(batch, alive))
            .collect::<Result<Vec<_>>>()
            .and_then(|live| Ok(concat_batches(&self.def.schema, &live)?));
        let Ok(merged) = merged else { return };
        // The index moves first (`each` fails, if at all, before it calls
        // back: then nothing changed), then the batches.
        let at = from as u32;
        let key_columns = self.key_columns(&merged);
        let index = &mut self.index;
        let moved = self.codec.each(&key_columns, |row, key| {
            if let Some(position) = key.and_then(|key| index.get_mut(key)) {
                *position = (at, row as u32);
            }
        });
        if moved.is_err() {
            return;
        }
        self.batches.truncate(from);
        self.alive.truncate(from);
        self.alive.push(vec![true; merged.num_rows()]);
        self.batches.push(merged);
    }
}

/// How key values become the index's bytes: one string column by its own
/// UTF-8 bytes (no encoding: the common case, a user id or a symbol),
/// anything else in arrow's row format.
#[derive(Debug)]
enum KeyCodec {
    Utf8,
    LargeUtf8,
    Utf8View,
    Rows(RowConverter),
}

impl KeyCodec {
    fn new(types: &[&DataType]) -> Result<Self> {
        Ok(match types {
            [DataType::Utf8] => Self::Utf8,
            [DataType::LargeUtf8] => Self::LargeUtf8,
            [DataType::Utf8View] => Self::Utf8View,
            _ => Self::Rows(RowConverter::new(
                types.iter().map(|&t| SortField::new(t.clone())).collect(),
            )?),
        })
    }

    /// Calls `f` with each row's position and key bytes (`None`: a NULL in
    /// the key, which matches nothing).
    fn each(&self, keys: &[ArrayRef], mut f: impl FnMut(usize, Option<&[u8]>)) -> Result<()> {
        let strings = |f: &mut dyn FnMut(usize, Option<&[u8]>),
                       values: &mut dyn Iterator<Item = Option<&str>>| {
            for (row, value) in values.enumerate() {
                f(row, value.map(str::as_bytes));
            }
        };
        let shape = || err!(Internal, "table keys of an unexpected type");
        match (self, keys) {
            (Self::Utf8, [column]) => {
                let values = column.as_string_opt::<i32>().ok_or_else(shape)?;
                strings(&mut f, &mut values.iter());
            }
            (Self::LargeUtf8, [column]) => {
                let values = column.as_string_opt::<i64>().ok_or_else(shape)?;
                strings(&mut f, &mut values.iter());
            }
            (Self::Utf8View, [column]) => {
                let values = column.as_string_view_opt().ok_or_else(shape)?;
                strings(&mut f, &mut values.iter());
            }
            (Self::Rows(converter), _) => {
                let rows = converter.convert_columns(keys)?;
                let mut usable = vec![true; rows.num_rows()];
                for array in keys {
                    if let Some(nulls) = array.logical_nulls() {
                        for (i, valid) in nulls.iter().enumerate() {
                            usable[i] &= valid;
                        }
                    }
                }
                for (row, key) in rows.iter().enumerate() {
                    f(row, usable[row].then(|| key.as_ref()));
                }
            }
            _ => return Err(shape()),
        }
        Ok(())
    }
}

fn live_rows(batch: &RecordBatch, alive: &[bool]) -> Result<RecordBatch> {
    if alive.iter().all(|&a| a) {
        return Ok(batch.clone());
    }
    Ok(filter_record_batch(
        batch,
        &BooleanArray::from(alive.to_vec()),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};

    fn table() -> LookupTable {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("name", DataType::Utf8, true),
        ]));
        LookupTable::new(Arc::new(TableDef {
            name: "users".into(),
            schema,
            primary_key: vec![0],
            connector_options: Vec::new(),
        }))
        .unwrap()
    }

    fn rows(t: &LookupTable, ids: &[Option<i64>], names: &[&str]) -> RecordBatch {
        RecordBatch::try_new(
            Arc::clone(&t.def.schema),
            vec![
                Arc::new(Int64Array::from(ids.to_vec())),
                Arc::new(StringArray::from(names.to_vec())),
            ],
        )
        .unwrap()
    }

    fn name_of(t: &LookupTable, id: i64) -> Option<String> {
        let keys: Vec<ArrayRef> = vec![Arc::new(Int64Array::from(vec![id]))];
        let at = t.find(&keys).unwrap()[0]?;
        let column = t.column(1, &[at]).unwrap();
        let names = column.as_any().downcast_ref::<StringArray>().unwrap();
        Some(names.value(0).to_string())
    }

    #[test]
    fn upserts_replace_by_key_and_the_last_row_of_a_batch_wins() {
        let mut t = table();
        let b = rows(&t, &[Some(1), Some(2), Some(1)], &["a", "b", "c"]);
        let change = t.upsert(&b).unwrap();
        assert_eq!((change.inserted, change.updated), (2, 0));
        assert_eq!(t.len(), 2);
        assert_eq!(name_of(&t, 1).as_deref(), Some("c"));
        let b = rows(&t, &[Some(2)], &["B"]);
        assert_eq!(t.upsert(&b).unwrap().updated, 1);
        assert_eq!(name_of(&t, 2).as_deref(), Some("B"));
        let deleted = t
            .delete(&[Arc::new(Int64Array::from(vec![1, 7])) as ArrayRef])
            .unwrap();
        assert_eq!(deleted.deleted, 1);
        assert_eq!(name_of(&t, 1), None);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn a_null_key_is_refused_and_changes_nothing() {
        let mut t = table();
        t.upsert(&rows(&t, &[Some(1)], &["a"])).unwrap();
        let bad = rows(&t, &[Some(2), None], &["b", "x"]);
        let error = t.upsert(&bad).unwrap_err();
        assert!(error.message().contains("row 1"), "{error}");
        assert_eq!(t.len(), 1);
        assert_eq!(name_of(&t, 2), None);
    }

    #[test]
    fn many_small_upserts_and_deletes_stay_compact_and_correct() {
        let mut t = table();
        let mut expected = std::collections::BTreeMap::new();
        for i in 0..5_000i64 {
            let id = (i * 7919) % 300;
            if i % 5 == 4 {
                t.delete(&[Arc::new(Int64Array::from(vec![id])) as ArrayRef])
                    .unwrap();
                expected.remove(&id);
            } else {
                let name = format!("n{i}");
                t.upsert(&rows(&t, &[Some(id)], &[name.as_str()])).unwrap();
                expected.insert(id, name);
            }
            assert!(t.batches.len() <= MAX_BATCHES + 1);
        }
        assert_eq!(t.len(), expected.len());
        for id in 0..300 {
            assert_eq!(name_of(&t, id), expected.get(&id).cloned(), "id {id}");
        }
        let snapshot = t.snapshot().unwrap();
        assert_eq!(snapshot.num_rows(), expected.len());
        let mut restored = table();
        restored.restore(&snapshot).unwrap();
        for id in 0..300 {
            assert_eq!(name_of(&restored, id), expected.get(&id).cloned());
        }
    }

    #[test]
    fn a_restored_batch_that_repeats_a_key_is_corrupt() {
        let mut t = table();
        t.upsert(&rows(&t, &[Some(5)], &["keep"])).unwrap();
        let twice = rows(&t, &[Some(1), Some(1)], &["a", "b"]);
        let error = t.restore(&twice).unwrap_err();
        assert_eq!(error.code(), crate::ErrorCode::CorruptCheckpoint);
        assert_eq!(name_of(&t, 5).as_deref(), Some("keep"));
    }
}
