//! `Utf8View` columns built without arrow's generic view builder.
//!
//! SQL's `VARCHAR` is `Utf8View` in DataFusion. arrow's `StringViewBuilder`
//! and its `Utf8` → `Utf8View` cast work one value at a time through calls
//! the size-optimised wasm build does not inline (a fifth of an Arrow push
//! with a string key). Here the views are written directly: from a pushed
//! `Utf8` column, pointing into its own value buffer (shared, not copied),
//! and value by value for the NDJSON decoder.

use arrow::array::{Array, NullBufferBuilder, StringArray, StringViewArray};
use arrow::buffer::{Buffer, NullBuffer, ScalarBuffer};
use std::hash::BuildHasher;

/// The same strings as a `Utf8View` array, sharing `array`'s value bytes.
pub fn utf8_to_view(array: &StringArray) -> StringViewArray {
    let bytes = array.values().as_slice();
    let offsets = array.value_offsets();
    let views: Vec<u128> = offsets
        .windows(2)
        .map(|pair| {
            // Offsets of a valid array are ascending and within `bytes`.
            let (start, end) = (pair[0] as usize, pair[1] as usize);
            match bytes.get(start..start + 12) {
                Some(next) if end - start <= 12 => inline_view(next, end - start),
                _ => view(&bytes[start..end], pair[0] as u32),
            }
        })
        .collect();
    // SAFETY: each view describes `bytes[start..end]` of buffer 0, which is
    // valid UTF-8 (a slice of a `StringArray` at value boundaries); inline
    // views carry their bytes; the null buffer is the array's own.
    unsafe {
        StringViewArray::new_unchecked(
            ScalarBuffer::from(views),
            vec![array.values().clone()],
            array.nulls().cloned(),
        )
    }
}

/// The column whose row `i` is `dictionary[codes[i] - 1]`, null for code 0
/// (codes already checked against the dictionary). Each distinct string
/// is stored once and every row that repeats it shares its view; `None`
/// when the distinct strings pass the 4 GiB a view can address.
pub fn from_dictionary(codes: &[u32], dictionary: &[&str]) -> Option<StringViewArray> {
    let mut data = Vec::new();
    let mut dictionary_views = Vec::with_capacity(dictionary.len() + 1);
    dictionary_views.push(0u128); // code 0: null
    for value in dictionary {
        dictionary_views.push(stored_view(&mut data, value.as_bytes())?);
    }
    let views: Vec<u128> = codes
        .iter()
        .map(|&code| dictionary_views.get(code as usize).copied())
        .collect::<Option<_>>()?;
    let nulls = codes
        .contains(&0)
        .then(|| NullBuffer::from_iter(codes.iter().map(|&code| code != 0)));
    // SAFETY: as in `StringViewColumn::finish`: every view is an inline
    // view of a `&str` or describes one copied whole into buffer 0.
    Some(unsafe {
        StringViewArray::new_unchecked(
            ScalarBuffer::from(views),
            vec![Buffer::from_vec(data)],
            nulls,
        )
    })
}

/// A `Utf8View` column built value by value: strings of up to 12 bytes
/// live in their view, longer ones in one data buffer.
#[derive(Debug)]
pub struct StringViewColumn {
    views: Vec<u128>,
    data: Vec<u8>,
    nulls: NullBufferBuilder,
}

impl StringViewColumn {
    /// An empty column with room for `rows` values.
    pub fn with_capacity(rows: usize) -> Self {
        Self {
            views: Vec::with_capacity(rows),
            data: Vec::new(),
            nulls: NullBufferBuilder::new(rows),
        }
    }

    /// Appends `value`; `None` (nothing appended) once the data buffer
    /// would pass the 4 GiB a view can address.
    #[inline(always)]
    pub fn append_value(&mut self, value: &str) -> Option<()> {
        self.views
            .push(stored_view(&mut self.data, value.as_bytes())?);
        self.nulls.append_non_null();
        Some(())
    }

    /// Appends a null.
    #[inline(always)]
    pub fn append_null(&mut self) {
        self.views.push(0);
        self.nulls.append_null();
    }

    /// The finished array.
    pub fn finish(mut self) -> StringViewArray {
        // SAFETY: every view is an inline view of a `&str` or describes
        // bytes of a `&str` copied whole into buffer 0 at its offset.
        unsafe {
            StringViewArray::new_unchecked(
                ScalarBuffer::from(self.views),
                vec![Buffer::from_vec(self.data)],
                self.nulls.finish(),
            )
        }
    }
}

/// The view of `value` in a column whose buffer 0 is `data`: values past
/// 12 bytes are appended to `data` first. `None` (nothing appended) once
/// `data` would pass the 4 GiB a view can address.
#[inline(always)]
fn stored_view(data: &mut Vec<u8>, value: &[u8]) -> Option<u128> {
    if value.len() <= 12 {
        return Some(view(value, 0));
    }
    let offset = u32::try_from(data.len()).ok()?;
    u32::try_from(data.len() + value.len()).ok()?;
    data.extend_from_slice(value);
    Some(view(value, offset))
}

/// The inline view of the first `len` (<= 12) of `next`'s 12 bytes: one
/// fixed-size load and a mask instead of a copy of `len` bytes (a call to
/// `memcpy` in wasm), for the common short string with bytes after it.
#[inline(always)]
fn inline_view(next: &[u8], len: usize) -> u128 {
    let mut raw = [0u8; 16];
    raw[4..].copy_from_slice(next);
    canonical(u128::from_le_bytes(raw) | len as u128)
}

/// Longest value held inline in a view.
pub(crate) const INLINE: u32 = 12;

/// A short value's view with the bytes past its length zeroed: arrow
/// zeroes them, but a view from outside may carry garbage there. 64-bit
/// halves, because 128-bit shifts are library calls in wasm.
pub(crate) fn canonical(view: u128) -> u128 {
    let low = view as u64;
    let high = (view >> 64) as u64;
    // Bytes 0-3 hold the length, 4-15 the value.
    let len = (view as u32).min(INLINE);
    let keep = |bits: u32| u64::MAX.checked_shr(64 - bits).unwrap_or(0);
    let low = low & keep((32 + 8 * len).min(64));
    let high = high & keep(8 * len.saturating_sub(4));
    u128::from(low) | (u128::from(high) << 64)
}

/// Arrow's view of `value`, found at `offset` of buffer 0: length and up to
/// 12 bytes inline, or length, 4-byte prefix, buffer index and offset.
#[inline(always)]
fn view(value: &[u8], offset: u32) -> u128 {
    let len = value.len();
    if len <= 12 {
        let mut raw = [0u8; 16];
        raw[..4].copy_from_slice(&(len as u32).to_le_bytes());
        raw[4..4 + len].copy_from_slice(value);
        u128::from_le_bytes(raw)
    } else {
        let prefix = u32::from_le_bytes([value[0], value[1], value[2], value[3]]);
        (len as u128) | (u128::from(prefix) << 32) | (u128::from(offset) << 96)
    }
}

/// Open-addressing table from canonical view to group: each slot holds
/// `group + 1` (0 = empty), the views themselves live in the group-ordered
/// `views` of its user (short string keys, result-row string codes). Linear probing, a power-of-two number of
/// slots, at most half of them full.
pub(crate) struct ViewTable {
    slots: Vec<u32>,
    /// Number of occupied slots.
    len: usize,
    /// Mixed into every hash, random per table, so that colliding keys
    /// cannot be chosen in advance.
    seed: u64,
}

impl ViewTable {
    /// An empty table.
    pub(crate) fn new() -> Self {
        Self::with_capacity(0)
    }

    /// An empty table sized for `groups` groups.
    pub(crate) fn with_capacity(groups: usize) -> Self {
        let slots = (groups * 2).next_power_of_two().max(64);
        Self {
            slots: vec![0; slots],
            len: 0,
            seed: foldhash::fast::RandomState::default().hash_one(0u64),
        }
    }

    /// Bytes held.
    pub(crate) fn size(&self) -> usize {
        self.slots.capacity() * 4
    }

    /// First slot to probe for `view`: the top bits of a multiplicative hash.
    fn home(&self, view: u128) -> usize {
        let low = (view as u64 ^ self.seed).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let high = ((view >> 64) as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
        let hash = (low ^ high.rotate_left(31)).wrapping_mul(0x1656_67B1_9E37_79F9);
        let bits = self.slots.len().trailing_zeros();
        (hash >> (64 - bits)) as usize
    }

    /// The group of `view`, a new one (pushed on `views`) if unseen;
    /// `null_group` is in `views` but not in the table.
    pub(crate) fn intern(
        &mut self,
        view: u128,
        views: &mut Vec<u128>,
        null_group: Option<usize>,
    ) -> usize {
        let mask = self.slots.len() - 1;
        let mut slot = self.home(view);
        loop {
            match self.slots[slot] {
                0 => break,
                group if views[group as usize - 1] == view => return group as usize - 1,
                _ => slot = (slot + 1) & mask,
            }
        }
        let group = views.len();
        views.push(view);
        self.slots[slot] = group as u32 + 1;
        self.len += 1;
        if self.len * 2 > self.slots.len() {
            let mut grown = Self {
                slots: vec![0; self.slots.len() * 2],
                len: 0,
                seed: self.seed,
            };
            grown.insert_all(views, null_group);
            *self = grown;
        }
        group
    }

    /// Empties the table and enters every group of `views` but `skip`.
    pub(crate) fn rebuild(&mut self, views: &[u128], skip: Option<usize>) {
        self.slots.fill(0);
        self.len = 0;
        self.insert_all(views, skip);
    }

    fn insert_all(&mut self, views: &[u128], skip: Option<usize>) {
        let mask = self.slots.len() - 1;
        for (group, &view) in views.iter().enumerate() {
            if Some(group) == skip {
                continue;
            }
            let mut slot = self.home(view);
            while self.slots[slot] != 0 {
                slot = (slot + 1) & mask;
            }
            self.slots[slot] = group as u32 + 1;
            self.len += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use arrow::compute::cast;
    use arrow::datatypes::DataType;

    use super::*;

    #[test]
    fn dictionary_columns_share_each_strings_bytes() {
        let dictionary = [
            "short",
            "a string longer than twelve bytes",
            "",
            "ünïcödé strings past 12",
        ];
        let codes: Vec<u32> = (0..100).map(|i| (i * 7 % 5) as u32).collect();
        let ours = from_dictionary(&codes, &dictionary).unwrap();
        ours.to_data().validate_full().unwrap();
        let expected: StringViewArray = codes
            .iter()
            .map(|&c| (c > 0).then(|| dictionary[c as usize - 1]))
            .collect();
        assert_eq!(ours, expected);
        // Two long strings, stored once each.
        assert_eq!(
            ours.data_buffers()[0].len(),
            dictionary[1].len() + dictionary[3].len()
        );
        assert!(from_dictionary(&[5], &dictionary).is_none());
    }

    #[test]
    fn built_columns_equal_arrows_builder() {
        let values: Vec<Option<String>> = (0..200)
            .map(|n| match n % 5 {
                0 => None,
                1 => Some("é中😀".repeat(n % 7)),
                _ => Some("x".repeat(n % 30)),
            })
            .collect();
        let mut ours = StringViewColumn::with_capacity(4);
        for value in &values {
            match value {
                Some(v) => ours.append_value(v).unwrap(),
                None => ours.append_null(),
            }
        }
        let ours = ours.finish();
        ours.to_data().validate_full().unwrap();
        assert_eq!(ours, StringViewArray::from(values));
        // No nulls: no null buffer at all.
        let mut plain = StringViewColumn::with_capacity(0);
        plain
            .append_value("a string longer than twelve bytes")
            .unwrap();
        assert_eq!(plain.finish().nulls(), None);
    }

    #[test]
    fn views_equal_arrows_cast_for_every_length_and_slice() {
        let values: Vec<Option<String>> = (0..40)
            .map(|n| match n % 7 {
                0 => None,
                1 => Some("é".repeat(n / 2)),
                _ => Some("abcdefghijklmnopqrstuvwxyz0123456789"[..n.min(36)].to_string()),
            })
            .collect();
        let array = StringArray::from(values);
        for (offset, len) in [(0, 40), (3, 20), (13, 0), (39, 1)] {
            let slice = array.slice(offset, len);
            let ours = utf8_to_view(&slice);
            ours.to_data().validate_full().unwrap();
            let theirs = cast(&slice, &DataType::Utf8View).unwrap();
            let theirs = theirs.as_any().downcast_ref::<StringViewArray>().unwrap();
            assert_eq!(&ours, theirs, "slice {offset}+{len}");
            assert_eq!(ours.null_count(), slice.null_count());
        }
    }
}
