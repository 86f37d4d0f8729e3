//! `Utf8` → `Utf8View` for pushed Arrow columns.
//!
//! SQL's `VARCHAR` is `Utf8View` in DataFusion, while Arrow writers
//! (apache-arrow in JavaScript, pyarrow by default) send `Utf8`. arrow's
//! cast goes through a generic view builder one value at a time, which the
//! size-optimised wasm build leaves slow (a fifth of an Arrow push with a
//! string key). Every view here points into the column's own value buffer,
//! which is shared, not copied.

use arrow::array::{Array, StringArray, StringViewArray};
use arrow::buffer::ScalarBuffer;

/// The same strings as a `Utf8View` array, sharing `array`'s value bytes.
pub fn utf8_to_view(array: &StringArray) -> StringViewArray {
    let bytes = array.values().as_slice();
    let offsets = array.value_offsets();
    let views: Vec<u128> = offsets
        .windows(2)
        .map(|pair| {
            // Offsets of a valid array are ascending and within `bytes`.
            let (start, end) = (pair[0] as usize, pair[1] as usize);
            view(&bytes[start..end], pair[0] as u32)
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

#[cfg(test)]
mod tests {
    use arrow::compute::cast;
    use arrow::datatypes::DataType;

    use super::*;

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
