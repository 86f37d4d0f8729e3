//! Numbers for group keys that last across batches.
//!
//! An operator that keeps state per key between pushes (open sessions)
//! indexes it by the key's number. A push interns its key columns once
//! (for a single short string key, [`super::short_string_keys`]: one probe
//! by view per row) and reaches each row's state by index: no row encoding
//! and no hashing of encoded keys per push. Each key is stored once, when
//! new (a single string key as its text; other keys as comparable rows),
//! and turned back into columns only for output and snapshots.
//!
//! Keys come and go (a session key goes quiet), so the owner hands back the
//! ones it still uses from time to time ([`KeyIds::compact`]); the others
//! are dropped and the rest renumbered (the owner remaps what it holds),
//! so memory follows the live keys.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, UInt32Array};
use arrow::datatypes::{DataType, Schema, SchemaRef};
use arrow::row::{RowConverter, Rows, SortField};
use datafusion::physical_plan::aggregates::group_values::GroupValues;

use super::gather::gather;
use super::short_string_keys::new_key_values;
use crate::codec::string_views::StringViewColumn;
use crate::err;
use crate::error::Result;

/// Fewest keys before a compaction is considered.
const MIN_REVIEW: usize = 1024;

/// Persistent key numbers (see the module docs).
pub struct KeyIds {
    /// `None` when there are no key columns: every row has key 0.
    store: Option<Store>,
    /// Number of keys at which [`KeyIds::compact`] next looks for dead keys.
    review_at: usize,
    /// Scratch of [`KeyIds::group`]: a rank per key number, `usize::MAX`
    /// between calls.
    rank: Vec<usize>,
}

/// A batch's rows grouped by key (see [`KeyIds::group`]).
#[derive(Debug, PartialEq, Eq)]
pub struct KeyRuns {
    /// The distinct key numbers, in order of first appearance.
    pub keys: Vec<usize>,
    /// Row positions, key by key (ascending within a key).
    pub order: Vec<u32>,
    /// Per key: where its rows start in `order`, and how many there are.
    pub runs: Vec<(usize, usize)>,
}

struct Store {
    schema: SchemaRef,
    /// Key columns -> number.
    values: Box<dyn GroupValues>,
    /// Each number's key, in number order.
    keys: StoredKeys,
}

impl Store {
    fn try_new(schema: SchemaRef) -> Result<Self> {
        let keys = match schema.fields().as_ref() {
            [field] if field.data_type() == &DataType::Utf8View => StoredKeys::Text {
                text: String::new(),
                ends: Vec::new(),
                valid: Vec::new(),
            },
            _ => {
                let fields = schema.fields().iter();
                let converter = RowConverter::new(
                    fields
                        .map(|f| SortField::new(f.data_type().clone()))
                        .collect(),
                )?;
                StoredKeys::Rows {
                    rows: converter.empty_rows(0, 0),
                    converter,
                }
            }
        };
        Ok(Self {
            values: new_key_values(&schema)?,
            keys,
            schema,
        })
    }
}

/// The keys behind the numbers.
enum StoredKeys {
    /// One string column (the usual key): each key's text, end to end.
    /// Kept apart from arrow_row, whose any-type decoder is one of the
    /// largest functions for V8 to compile on a query's first results.
    Text {
        text: String,
        /// Where each key's text ends in `text`.
        ends: Vec<usize>,
        valid: Vec<bool>,
    },
    /// Any other key columns, as comparable rows.
    Rows { converter: RowConverter, rows: Rows },
}

impl StoredKeys {
    fn len(&self) -> usize {
        match self {
            Self::Text { ends, .. } => ends.len(),
            Self::Rows { rows, .. } => rows.num_rows(),
        }
    }

    /// Appends the keys at `rows` of `columns`.
    fn append(&mut self, columns: &[ArrayRef], rows: &UInt32Array) -> Result<()> {
        match self {
            Self::Text { text, ends, valid } => {
                let column = columns
                    .first()
                    .and_then(|column| column.as_string_view_opt())
                    .ok_or_else(|| err!(Internal, "a string key column was expected"))?;
                for row in rows.values().iter().map(|&row| row as usize) {
                    if row >= column.len() {
                        return Err(err!(Internal, "key row {row} of {}", column.len()));
                    }
                    let is_valid = column.is_valid(row);
                    if is_valid {
                        text.push_str(column.value(row));
                    }
                    ends.push(text.len());
                    valid.push(is_valid);
                }
            }
            Self::Rows {
                converter,
                rows: stored,
            } => {
                let columns = columns
                    .iter()
                    .map(|column| gather(column, rows))
                    .collect::<Result<Vec<_>>>()?;
                converter.append(stored, &columns)?;
            }
        }
        Ok(())
    }

    /// The key columns of `ids` (each below `len`), in that order.
    fn columns(&self, ids: &[usize]) -> Result<Vec<ArrayRef>> {
        match self {
            Self::Text { text, ends, valid } => {
                let mut column = StringViewColumn::with_capacity(ids.len());
                for &id in ids {
                    if !valid[id] {
                        column.append_null();
                        continue;
                    }
                    let start = id.checked_sub(1).map_or(0, |before| ends[before]);
                    column
                        .append_value(&text[start..ends[id]])
                        .ok_or_else(|| err!(Execution, "keys past 4 GiB of text in one output"))?;
                }
                Ok(vec![Arc::new(column.finish())])
            }
            Self::Rows { converter, rows } => {
                Ok(converter.convert_rows(ids.iter().map(|&id| rows.row(id)))?)
            }
        }
    }
}

impl KeyIds {
    /// Numbers for keys of `key_schema` (no fields: one key for all rows).
    pub fn try_new(key_schema: &Schema) -> Result<Self> {
        let store = if key_schema.fields().is_empty() {
            None
        } else {
            Some(Store::try_new(Arc::new(key_schema.clone()))?)
        };
        Ok(Self {
            store,
            review_at: MIN_REVIEW,
            rank: Vec::new(),
        })
    }

    /// How many keys have a number (numbers are `0..len`).
    pub fn len(&self) -> usize {
        self.store.as_ref().map_or(1, |store| store.keys.len())
    }

    /// Whether no key has a number yet (never true without key columns).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sets `ids[row]` to the number of each row's key; keys not seen
    /// before get the next numbers, in order of first appearance.
    pub fn intern(&mut self, keys: &[ArrayRef], rows: usize, ids: &mut Vec<usize>) -> Result<()> {
        let Some(store) = &mut self.store else {
            ids.clear();
            ids.resize(rows, 0);
            return Ok(());
        };
        // Checked first: numbers given by `values` must get their stored key.
        let expected = store.schema.fields();
        if keys.len() != expected.len()
            || keys
                .iter()
                .zip(expected.iter())
                .any(|(column, field)| column.data_type() != field.data_type())
        {
            return Err(err!(Internal, "key columns do not match the key schema"));
        }
        let known = store.keys.len();
        store.values.intern(keys, ids)?;
        let now = store.values.len();
        if now == known {
            return Ok(());
        }
        // The new keys' first rows, in number order, appended encoded.
        let mut first = vec![u32::MAX; now - known];
        for (row, &id) in ids.iter().enumerate() {
            if let Some(slot) = id.checked_sub(known).and_then(|new| first.get_mut(new)) {
                if *slot == u32::MAX {
                    *slot = row as u32;
                }
            }
        }
        store.keys.append(keys, &UInt32Array::from(first))
    }

    /// Interns the batch's keys and groups its rows by them, keys in order
    /// of first appearance (so changes come out in the order their rows
    /// arrived): a counting sort over the batch's distinct keys.
    pub fn group(&mut self, keys: &[ArrayRef], rows: usize) -> Result<KeyRuns> {
        let mut ids = Vec::with_capacity(rows);
        self.intern(keys, rows, &mut ids)?;
        self.runs(&ids)
    }

    /// Groups positions of `ids` (key numbers given by [`KeyIds::intern`])
    /// by key, keys in order of first appearance.
    pub fn runs(&mut self, ids: &[usize]) -> Result<KeyRuns> {
        if let Some(bad) = ids.iter().find(|&&id| id >= self.len()) {
            return Err(err!(Internal, "key number {bad} was never given"));
        }
        let known = self.len();
        let rank = &mut self.rank;
        if rank.len() < known {
            rank.resize(known, usize::MAX);
        }
        let (mut distinct, mut counts) = (Vec::new(), Vec::<usize>::new());
        for &id in ids {
            if rank[id] == usize::MAX {
                rank[id] = distinct.len();
                distinct.push(id);
                counts.push(0);
            }
            counts[rank[id]] += 1;
        }
        let mut runs = Vec::with_capacity(counts.len());
        let mut start = 0;
        for &count in &counts {
            runs.push((start, count));
            start += count;
        }
        let mut next: Vec<usize> = runs.iter().map(|&(start, _)| start).collect();
        let mut order = vec![0u32; ids.len()];
        for (row, &id) in ids.iter().enumerate() {
            let at = &mut next[rank[id]];
            order[*at] = row as u32;
            *at += 1;
        }
        for &id in &distinct {
            rank[id] = usize::MAX;
        }
        Ok(KeyRuns {
            keys: distinct,
            order,
            runs,
        })
    }

    /// The key columns of `ids`, in that order (no columns without keys).
    pub fn columns(&self, ids: &[usize]) -> Result<Vec<ArrayRef>> {
        let Some(store) = &self.store else {
            return Ok(Vec::new());
        };
        let len = store.keys.len();
        if let Some(bad) = ids.iter().find(|&&id| id >= len) {
            return Err(err!(Internal, "key number {bad} of {len}"));
        }
        store.keys.columns(ids)
    }

    /// When the key count has grown enough since the last review, drops the
    /// keys `live` rejects and renumbers the rest; `None` when nothing
    /// changed. Reviews come at doubling counts, so their scans cost O(1)
    /// per key. Compaction only saves memory: if rebuilding the numbers
    /// fails, the old ones stay valid and it is tried again at the next review.
    pub fn compact(&mut self, live: impl Fn(usize) -> bool) -> Option<Renumbering> {
        let len = self.len();
        let store = self.store.as_mut()?;
        if len < self.review_at {
            return None;
        }
        let kept: Vec<usize> = (0..len).filter(|&id| live(id)).collect();
        if kept.len() * 2 > len {
            self.review_at = MIN_REVIEW.max(2 * len);
            return None;
        }
        let Ok((fresh, new_ids)) = Store::rebuild(store, &kept) else {
            self.review_at = MIN_REVIEW.max(2 * len);
            return None;
        };
        *store = fresh;
        self.review_at = MIN_REVIEW.max(2 * kept.len());
        self.rank.truncate(kept.len());
        let mut renumbered = vec![None; len];
        for (&old, new) in kept.iter().zip(new_ids) {
            renumbered[old] = Some(new);
        }
        Some(Renumbering {
            new: renumbered,
            len: kept.len(),
        })
    }
}

/// How a compaction renumbered the keys, for whatever refers to them.
#[derive(Debug, PartialEq, Eq)]
pub struct Renumbering {
    /// The new number of each old one (`None`: dropped).
    new: Vec<Option<usize>>,
    /// How many keys are left.
    len: usize,
}

impl Renumbering {
    /// The new number of old key `key` (`None`: dropped).
    pub fn get(&self, key: usize) -> Option<usize> {
        self.new.get(key).copied().flatten()
    }

    /// Per-key `items` (indexed by old number) at their new numbers;
    /// dropped keys' items go.
    pub fn items<T: Default>(&self, items: Vec<T>) -> Vec<T> {
        let mut kept: Vec<T> = Vec::new();
        kept.resize_with(self.len, T::default);
        for (key, item) in items.into_iter().enumerate() {
            if let Some(new) = self.get(key) {
                kept[new] = item;
            }
        }
        kept
    }

    /// `map`'s values (key numbers) renumbered; entries of dropped keys go.
    pub fn values<K: Ord>(&self, map: BTreeMap<K, usize>) -> BTreeMap<K, usize> {
        map.into_iter()
            .filter_map(|(at, key)| Some((at, self.get(key)?)))
            .collect()
    }
}

impl Store {
    /// A store of only the keys numbered `kept`, and the new number of each.
    /// Distinct keys usually get numbers in order, but not always
    /// (DataFusion's multi-column group values number hash collisions
    /// last), so the new numbers are read back, not assumed.
    fn rebuild(&self, kept: &[usize]) -> Result<(Self, Vec<usize>)> {
        let columns = self.keys.columns(kept)?;
        let mut fresh = Self::try_new(Arc::clone(&self.schema))?;
        let mut new_ids = Vec::with_capacity(kept.len());
        if !kept.is_empty() {
            fresh.values.intern(&columns, &mut new_ids)?;
            if fresh.values.len() != kept.len() {
                return Err(err!(Internal, "compacted keys were not distinct"));
            }
            // Stored keys in number order: row `rows[n]` of `columns` is key `n`.
            let mut rows = vec![0u32; kept.len()];
            for (row, &id) in new_ids.iter().enumerate() {
                rows[id] = row as u32;
            }
            fresh.keys.append(&columns, &UInt32Array::from(rows))?;
        }
        Ok((fresh, new_ids))
    }
}

/// A group with its key number.
pub type KeyedGroup<'a, G> = (usize, &'a mut G);

/// State `G` per key, indexed by key number, for operators whose groups
/// come and go (a window's groups, groups past their TTL): numbers of keys
/// without a group are dropped as they accumulate ([`GroupsByKey::compact`]).
pub struct GroupsByKey<G> {
    keys: KeyIds,
    groups: Vec<Option<G>>,
    count: usize,
}

impl<G> GroupsByKey<G> {
    /// No groups, for keys of `key_schema`.
    pub fn try_new(key_schema: &Schema) -> Result<Self> {
        Ok(Self {
            keys: KeyIds::try_new(key_schema)?,
            groups: Vec::new(),
            count: 0,
        })
    }

    /// Groups from a snapshot: `key_columns` row `i` is the key of
    /// `groups[i]`; returns them with each group's key number. Two groups
    /// of one key are a corrupt snapshot.
    pub fn restore(
        key_schema: &Schema,
        key_columns: &[ArrayRef],
        groups: Vec<G>,
    ) -> Result<(Self, Vec<usize>)> {
        let mut restored = Self::try_new(key_schema)?;
        let mut ids = Vec::with_capacity(groups.len());
        restored.keys.intern(key_columns, groups.len(), &mut ids)?;
        restored.groups.resize_with(restored.keys.len(), || None);
        for (&id, group) in ids.iter().zip(groups) {
            if restored.groups[id].replace(group).is_some() {
                return Err(err!(
                    CorruptCheckpoint,
                    "two groups of one key in a snapshot"
                ));
            }
            restored.count += 1;
        }
        Ok((restored, ids))
    }

    /// Interns the batch's keys and groups its rows by them (see [`KeyIds::group`]).
    pub fn group(&mut self, keys: &[ArrayRef], rows: usize) -> Result<KeyRuns> {
        let runs = self.keys.group(keys, rows)?;
        if self.groups.len() < self.keys.len() {
            self.groups.resize_with(self.keys.len(), || None);
        }
        Ok(runs)
    }

    /// Sets `ids[row]` to each row's key number (see [`KeyIds::intern`]).
    pub fn intern(&mut self, keys: &[ArrayRef], rows: usize, ids: &mut Vec<usize>) -> Result<()> {
        self.keys.intern(keys, rows, ids)?;
        if self.groups.len() < self.keys.len() {
            self.groups.resize_with(self.keys.len(), || None);
        }
        Ok(())
    }

    /// Groups positions of `ids` by key (see [`KeyIds::runs`]).
    pub fn runs(&mut self, ids: &[usize]) -> Result<KeyRuns> {
        self.keys.runs(ids)
    }

    /// The group of key number `key`.
    pub fn get(&self, key: usize) -> Option<&G> {
        self.groups.get(key)?.as_ref()
    }

    /// The group of key number `key`, to change.
    pub fn get_mut(&mut self, key: usize) -> Option<&mut G> {
        self.groups.get_mut(key)?.as_mut()
    }

    /// Gives key number `key` (from [`GroupsByKey::group`]) a group, or
    /// returns the one it has.
    pub fn get_or_insert(&mut self, key: usize, new: impl FnOnce() -> Result<G>) -> Result<&mut G> {
        let slot = self
            .groups
            .get_mut(key)
            .ok_or_else(|| err!(Internal, "key number {key} was never given"))?;
        if slot.is_none() {
            *slot = Some(new()?);
            self.count += 1;
        }
        slot.as_mut()
            .ok_or_else(|| err!(Internal, "a group just set is gone"))
    }

    /// Takes the group of key number `key` away.
    pub fn remove(&mut self, key: usize) -> Option<G> {
        let group = self.groups.get_mut(key)?.take();
        self.count -= usize::from(group.is_some());
        group
    }

    /// Groups held.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether no group is held.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Every group with its key number, in number order.
    pub fn iter(&self) -> impl Iterator<Item = (usize, &G)> {
        self.groups
            .iter()
            .enumerate()
            .filter_map(|(key, group)| Some((key, group.as_ref()?)))
    }

    /// Every group with its key number, in number order, to change.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (usize, &mut G)> {
        self.groups
            .iter_mut()
            .enumerate()
            .filter_map(|(key, group)| Some((key, group.as_mut()?)))
    }

    /// The key columns of key numbers `ids`, in that order.
    pub fn columns(&self, ids: &[usize]) -> Result<Vec<ArrayRef>> {
        self.keys.columns(ids)
    }

    /// Every group, ordered by `order` (e.g. when it was opened), with the
    /// key columns of those groups row for row: what a snapshot writes.
    pub fn in_order<K: Ord>(
        &mut self,
        order: impl Fn(&G) -> K,
    ) -> Result<(Vec<ArrayRef>, Vec<KeyedGroup<'_, G>>)> {
        let mut groups: Vec<(usize, &mut G)> = self
            .groups
            .iter_mut()
            .enumerate()
            .filter_map(|(key, group)| Some((key, group.as_mut()?)))
            .collect();
        groups.sort_by_key(|(_, group)| order(group));
        let keys: Vec<usize> = groups.iter().map(|(key, _)| *key).collect();
        Ok((self.keys.columns(&keys)?, groups))
    }

    /// Drops the numbers of keys without a group once enough have built up
    /// (see [`KeyIds::compact`]); returns the renumbering for whatever
    /// else refers to keys by number.
    pub fn compact(&mut self) -> Option<Renumbering> {
        let groups = &self.groups;
        let renumbered = self
            .keys
            .compact(|key| groups.get(key).is_some_and(Option::is_some))?;
        self.groups = renumbered.items(std::mem::take(&mut self.groups));
        Some(renumbered)
    }
}

impl<G> std::fmt::Debug for GroupsByKey<G> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupsByKey")
            .field("groups", &self.count)
            .field("keys", &self.keys.len())
            .finish()
    }
}

impl std::fmt::Debug for KeyIds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyIds").field("keys", &self.len()).finish()
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{Array, Int64Array, StringViewArray};
    use arrow::datatypes::{DataType, Field};

    use super::*;

    fn schema() -> Schema {
        Schema::new(vec![
            Field::new("k", DataType::Utf8View, true),
            Field::new("n", DataType::Int64, true),
        ])
    }

    fn batch(keys: &[Option<&str>], numbers: &[Option<i64>]) -> Vec<ArrayRef> {
        vec![
            Arc::new(StringViewArray::from(keys.to_vec())),
            Arc::new(Int64Array::from(numbers.to_vec())),
        ]
    }

    /// The key of each row, decoded back from its number.
    fn decoded(ids: &KeyIds, numbers: &[usize]) -> Vec<(Option<String>, Option<i64>)> {
        let columns = ids.columns(numbers).unwrap();
        let k = columns[0]
            .as_any()
            .downcast_ref::<StringViewArray>()
            .unwrap();
        let n = columns[1].as_any().downcast_ref::<Int64Array>().unwrap();
        (0..k.len())
            .map(|i| {
                (
                    k.is_valid(i).then(|| k.value(i).to_string()),
                    n.is_valid(i).then(|| n.value(i)),
                )
            })
            .collect()
    }

    #[test]
    fn numbers_last_across_batches_and_decode_to_their_keys() {
        let mut ids = KeyIds::try_new(&schema()).unwrap();
        let mut numbers = Vec::new();
        let long = "a key longer than twelve bytes";
        let first = batch(
            &[Some("a"), None, Some("a"), Some(long)],
            &[Some(1), Some(2), Some(1), None],
        );
        ids.intern(&first, 4, &mut numbers).unwrap();
        assert_eq!(numbers, [0, 1, 0, 2]);
        let second = batch(
            &[Some(long), Some("b"), None, Some("a")],
            &[None, Some(1), Some(2), Some(2)],
        );
        ids.intern(&second, 4, &mut numbers).unwrap();
        assert_eq!(numbers, [2, 3, 1, 4]);
        assert_eq!(ids.len(), 5);
        assert_eq!(
            decoded(&ids, &[4, 0, 2, 1, 3]),
            [
                (Some("a".into()), Some(2)),
                (Some("a".into()), Some(1)),
                (Some(long.into()), None),
                (None, Some(2)),
                (Some("b".into()), Some(1)),
            ]
        );
        assert!(ids.columns(&[5]).is_err());
    }

    #[test]
    fn grouped_rows_keep_arrival_order_of_keys_and_of_rows() {
        let schema = Schema::new(vec![Field::new("k", DataType::Utf8View, true)]);
        let mut ids = KeyIds::try_new(&schema).unwrap();
        let column = |values: &[Option<&str>]| -> Vec<ArrayRef> {
            vec![Arc::new(StringViewArray::from(values.to_vec()))]
        };
        let first = column(&[
            Some("b"),
            Some("a"),
            None,
            Some("b"),
            Some("c"),
            None,
            Some("a"),
            Some("b"),
        ]);
        let grouped = ids.group(&first, 8).unwrap();
        assert_eq!(grouped.keys, [0, 1, 2, 3]);
        assert_eq!(grouped.order, [0, 3, 7, 1, 6, 2, 5, 4]);
        assert_eq!(grouped.runs, [(0, 3), (3, 2), (5, 2), (7, 1)]);
        // Later batches: known keys keep their numbers, in this batch's order.
        let grouped = ids
            .group(&column(&[Some("c"), Some("d"), Some("c"), None]), 4)
            .unwrap();
        assert_eq!(grouped.keys, [3, 4, 2]);
        assert_eq!(grouped.order, [0, 2, 1, 3]);
        assert_eq!(grouped.runs, [(0, 2), (2, 1), (3, 1)]);
        let empty = ids.group(&column(&[]), 0).unwrap();
        assert!(empty.keys.is_empty() && empty.order.is_empty());
        // Without key columns every row has key 0.
        let mut none = KeyIds::try_new(&Schema::empty()).unwrap();
        let grouped = none.group(&[], 3).unwrap();
        assert_eq!((grouped.keys, grouped.runs), (vec![0], vec![(0, 3)]));
        // Runs of given numbers (a row copied into several windows): by
        // first appearance; a number never given is an error.
        let grouped = ids.runs(&[4, 1, 4, 0, 1, 4]).unwrap();
        assert_eq!(grouped.keys, [4, 1, 0]);
        assert_eq!(grouped.order, [0, 2, 5, 1, 4, 3]);
        assert_eq!(grouped.runs, [(0, 3), (3, 2), (5, 1)]);
        assert!(ids.runs(&[0, 5]).is_err());
    }

    #[test]
    fn a_single_string_key_decodes_to_its_text_nulls_and_long_values_included() {
        let schema = Schema::new(vec![Field::new("k", DataType::Utf8View, true)]);
        let mut ids = KeyIds::try_new(&schema).unwrap();
        let long = "a key longer than twelve bytes, é and ✓";
        let values = vec![
            Some("b"),
            None,
            Some(long),
            Some(""),
            Some("b"),
            Some("twelve bytes"),
        ];
        let column: ArrayRef = Arc::new(StringViewArray::from(values.clone()));
        let mut numbers = Vec::new();
        ids.intern(&[Arc::clone(&column)], 6, &mut numbers).unwrap();
        assert_eq!(numbers, [0, 1, 2, 3, 0, 4]);
        let back = ids.columns(&[4, 3, 2, 1, 0, 2]).unwrap();
        let back = back[0].as_string_view();
        let back: Vec<Option<&str>> = back.iter().collect();
        assert_eq!(
            back,
            [
                Some("twelve bytes"),
                Some(""),
                Some(long),
                None,
                Some("b"),
                Some(long)
            ]
        );
        // A slice (offset views) interns to the same numbers.
        ids.intern(&[column.slice(2, 3)], 3, &mut numbers).unwrap();
        assert_eq!(numbers, [2, 3, 0]);
        assert_eq!(ids.len(), 5);
    }

    #[test]
    fn compaction_drops_dead_keys_and_renumbers_the_rest_in_order() {
        let schema = Schema::new(vec![Field::new("k", DataType::Utf8View, true)]);
        let mut ids = KeyIds::try_new(&schema).unwrap();
        let names: Vec<String> = (0..3000).map(|i| format!("key{i}")).collect();
        let column: ArrayRef = Arc::new(StringViewArray::from_iter_values(&names));
        let mut numbers = Vec::new();
        ids.intern(&[Arc::clone(&column)], names.len(), &mut numbers)
            .unwrap();
        // Most alive: nothing changes, and the next review is further off.
        assert_eq!(ids.compact(|id| id % 10 != 0), None);
        assert_eq!(ids.len(), 3000);
        let more: ArrayRef = Arc::new(StringViewArray::from_iter_values(
            (0..4000).map(|i| format!("more{i}")),
        ));
        ids.intern(&[more], 4000, &mut numbers).unwrap();
        // Every third of the first keys alive: dropped and renumbered.
        let renumbered = ids.compact(|id| id < 3000 && id % 3 == 0).unwrap();
        assert_eq!(ids.len(), 1000);
        assert_eq!(renumbered.get(3), Some(1));
        assert_eq!(renumbered.get(4), None);
        assert_eq!(renumbered.get(5000), None);
        let kept: Vec<usize> = (0..1000).collect();
        let keys = ids.columns(&kept).unwrap();
        let keys = keys[0].as_any().downcast_ref::<StringViewArray>().unwrap();
        assert_eq!(keys.value(1), "key3");
        // Old keys come back with their new numbers; dropped ones get new ones.
        ids.intern(&[column.slice(3, 2)], 2, &mut numbers).unwrap();
        assert_eq!(numbers, [1, 1000]);
    }

    #[test]
    fn compacted_multi_column_keys_decode_to_their_old_keys_by_new_number() {
        let mut ids = KeyIds::try_new(&schema()).unwrap();
        let names: Vec<Option<String>> = (0..3000)
            .map(|i| (i % 7 != 0).then(|| format!("k{}", i % 1500)))
            .collect();
        let numbers: Vec<Option<i64>> = (0..3000)
            .map(|i| (i % 11 != 0).then_some(i / 1500))
            .collect();
        let names: Vec<Option<&str>> = names.iter().map(|n| n.as_deref()).collect();
        let columns = batch(&names, &numbers);
        let mut first = Vec::new();
        ids.intern(&columns, 3000, &mut first).unwrap();
        let before = decoded(&ids, &(0..ids.len()).collect::<Vec<_>>());
        let len = ids.len();
        let renumbered = ids.compact(|id| id % 3 == 0).unwrap();
        assert_eq!(ids.len(), len.div_ceil(3));
        for (old, key) in before.iter().enumerate() {
            match renumbered.get(old) {
                Some(new) => assert_eq!(&decoded(&ids, &[new])[0], key, "key {old}"),
                None => assert_ne!(old % 3, 0),
            }
        }
        // Interning the same rows again finds the kept keys under their new numbers.
        let mut again = Vec::new();
        ids.intern(&columns, 3000, &mut again).unwrap();
        for (row, &old) in first.iter().enumerate() {
            if let Some(new) = renumbered.get(old) {
                assert_eq!(again[row], new, "row {row}");
            }
        }
    }

    #[test]
    fn key_columns_of_another_type_are_refused_before_anything_is_interned() {
        let mut ids = KeyIds::try_new(&schema()).unwrap();
        let wrong: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(vec![1])),
            Arc::new(Int64Array::from(vec![1])),
        ];
        assert!(ids.intern(&wrong, 1, &mut Vec::new()).is_err());
        assert!(ids.intern(&wrong[..1], 1, &mut Vec::new()).is_err());
        assert_eq!(ids.len(), 0);
    }

    #[test]
    fn without_key_columns_every_row_has_key_zero() {
        let mut ids = KeyIds::try_new(&Schema::empty()).unwrap();
        let mut numbers = vec![9];
        ids.intern(&[], 3, &mut numbers).unwrap();
        assert_eq!((numbers, ids.len()), (vec![0, 0, 0], 1));
        assert!(ids.columns(&[0]).unwrap().is_empty());
        assert_eq!(ids.compact(|_| false), None);
    }
}
