//! The fast path of NDJSON decoding: flat objects.
//!
//! Almost every event stream is one flat JSON object per line whose declared
//! fields hold numbers, strings, booleans or nulls. For that shape this
//! module reads the text once, straight into one Arrow builder per declared
//! field, where arrow-json first builds a tape of every value and then walks
//! it per column (about 70% of an NDJSON push, BENCHMARKS.md).
//!
//! It decodes only what it is certain to decode exactly as arrow-json does,
//! and answers `None` for anything else: a nested value or a string in a
//! declared number field, a fraction in an integer field, an escaped key,
//! a repeated field, a timestamp string the parser rejects, malformed
//! JSON, ... The caller then decodes the same text with arrow-json, which
//! decides and reports as before. `None` changes nothing and costs one
//! scan up to the first surprise. Fields not declared are skipped (as
//! arrow-json ignores them), after checking they are well-formed JSON.

use std::sync::Arc;

use arrow::array::timezone::Tz;
use arrow::array::{
    ArrayRef, BooleanBuilder, Float32Builder, Float64Builder, Int64Builder, StringBuilder,
    TimestampMillisecondBuilder,
};
use arrow::compute::{cast_with_options, CastOptions};
use arrow::datatypes::{DataType, Schema};
use arrow::record_batch::RecordBatch;

use super::string_views::StringViewColumn;
use super::time_values::{decoding_schema, timestamp_string_millis};

/// Deepest nesting skipped in undeclared fields; deeper goes to arrow-json.
const MAX_SKIP_DEPTH: usize = 32;

/// Most declared fields tracked per row (one bit each).
const MAX_FIELDS: usize = 64;

/// Decodes `text` (NDJSON: objects separated by JSON whitespace) into the
/// batch arrow-json would build in `decoding_schema(schema)`, or `None`
/// when some input needs arrow-json's judgement (see the module docs).
pub fn decode_flat_ndjson(schema: &Schema, text: &str) -> Option<RecordBatch> {
    let target = decoding_schema(schema);
    if target.fields().len() > MAX_FIELDS {
        return None;
    }
    // A rough row count sizes the builders: one object per line is the norm.
    let rows_hint = text.len() / 40 + 1;
    let mut columns = target
        .fields()
        .iter()
        .map(|f| Column::new(f.data_type(), rows_hint))
        .collect::<Option<Vec<Column>>>()?;
    let names: Vec<&[u8]> = target
        .fields()
        .iter()
        .map(|f| f.name().as_bytes())
        .collect();
    let mut reader = Reader {
        text,
        bytes: text.as_bytes(),
        at: 0,
    };
    let all_fields: u64 = if names.len() == MAX_FIELDS {
        u64::MAX
    } else {
        (1u64 << names.len()) - 1
    };
    loop {
        reader.skip_whitespace();
        match reader.peek() {
            None => break,
            Some(b'{') => reader.at += 1,
            Some(_) => return None,
        }
        let mut filled = 0u64;
        // Fields usually come in the same order on every line: try the one
        // after the last match first.
        let mut next_field = 0usize;
        reader.skip_whitespace();
        if reader.peek() == Some(b'}') {
            reader.at += 1;
        } else {
            loop {
                reader.skip_whitespace();
                let key = reader.plain_string()?;
                reader.skip_whitespace();
                reader.expect(b':')?;
                reader.skip_whitespace();
                match find_field(&names, key, next_field) {
                    Some(index) => {
                        let bit = 1u64 << index;
                        if filled & bit != 0 {
                            return None; // repeated field: arrow-json decides which wins
                        }
                        filled |= bit;
                        columns[index].append(&mut reader)?;
                        next_field = index + 1;
                    }
                    None => reader.skip_value(0)?,
                }
                reader.skip_whitespace();
                match reader.next()? {
                    b',' => continue,
                    b'}' => break,
                    _ => return None,
                }
            }
        }
        // Objects are separated by whitespace, or the text ends.
        if let Some(b) = reader.peek() {
            if !is_whitespace(b) {
                return None;
            }
        }
        let mut missing = all_fields & !filled;
        while missing != 0 {
            let index = missing.trailing_zeros() as usize;
            columns[index].append_null();
            missing &= missing - 1;
        }
    }
    let arrays = columns
        .into_iter()
        .zip(target.fields().iter())
        .map(|(column, field)| column.finish(field.data_type()))
        .collect::<Option<Vec<ArrayRef>>>()?;
    RecordBatch::try_new(target, arrays).ok()
}

/// The index of the field named `key`, trying `guess` first.
#[inline(always)]
fn find_field(names: &[&[u8]], key: &[u8], guess: usize) -> Option<usize> {
    if guess < names.len() && same_bytes(names[guess], key) {
        return Some(guess);
    }
    (0..names.len()).find(|&i| same_bytes(names[i], key))
}

/// Byte-wise equality without a memcmp call: field names are short, and
/// the size-optimised build would not inline an iterator chain.
#[inline(always)]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Exact powers of ten in f64, for Clinger's fast path.
const POWERS_OF_TEN: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

#[inline(always)]
fn is_whitespace(b: u8) -> bool {
    matches!(b, b' ' | b'\n' | b'\r' | b'\t')
}

/// One declared field being built, in its decoding type.
enum Column {
    /// Every integer type, range-checked per value, cast at the end.
    Integer(Int64Builder, IntegerRange),
    Float64(Float64Builder),
    Float32(Float32Builder),
    Boolean(BooleanBuilder),
    Utf8(StringBuilder),
    Utf8View(StringViewColumn),
    /// Milliseconds; strings parsed in the field's time zone.
    Timestamp(TimestampMillisecondBuilder, Option<Tz>),
}

/// The values an integer type holds.
#[derive(Clone, Copy)]
struct IntegerRange {
    min: i64,
    max: i64,
}

impl Column {
    /// A builder for a field of `data_type`; `None` for types left to arrow-json.
    fn new(data_type: &DataType, rows: usize) -> Option<Self> {
        let integer = |min: i64, max: i64| {
            Some(Column::Integer(
                Int64Builder::with_capacity(rows),
                IntegerRange { min, max },
            ))
        };
        match data_type {
            DataType::Int8 => integer(i8::MIN.into(), i8::MAX.into()),
            DataType::Int16 => integer(i16::MIN.into(), i16::MAX.into()),
            DataType::Int32 => integer(i32::MIN.into(), i32::MAX.into()),
            DataType::Int64 => integer(i64::MIN, i64::MAX),
            DataType::UInt8 => integer(0, u8::MAX.into()),
            DataType::UInt16 => integer(0, u16::MAX.into()),
            DataType::UInt32 => integer(0, u32::MAX.into()),
            DataType::UInt64 => integer(0, i64::MAX),
            DataType::Float64 => Some(Column::Float64(Float64Builder::with_capacity(rows))),
            DataType::Float32 => Some(Column::Float32(Float32Builder::with_capacity(rows))),
            DataType::Boolean => Some(Column::Boolean(BooleanBuilder::with_capacity(rows))),
            DataType::Utf8 => Some(Column::Utf8(StringBuilder::with_capacity(rows, rows * 8))),
            DataType::Utf8View => Some(Column::Utf8View(StringViewColumn::with_capacity(rows))),
            DataType::Timestamp(_, zone) => {
                let zone = match zone {
                    Some(name) => Some(name.parse::<Tz>().ok()?),
                    None => None,
                };
                Some(Column::Timestamp(
                    TimestampMillisecondBuilder::with_capacity(rows),
                    zone,
                ))
            }
            _ => None,
        }
    }

    fn append_null(&mut self) {
        match self {
            Column::Integer(b, _) => b.append_null(),
            Column::Float64(b) => b.append_null(),
            Column::Float32(b) => b.append_null(),
            Column::Boolean(b) => b.append_null(),
            Column::Utf8(b) => b.append_null(),
            Column::Utf8View(b) => b.append_null(),
            Column::Timestamp(b, _) => b.append_null(),
        }
    }

    /// Reads one value at the reader's position into the column.
    fn append(&mut self, reader: &mut Reader<'_>) -> Option<()> {
        if reader.peek() == Some(b'n') {
            reader.literal(b"null").then_some(())?;
            self.append_null();
            return Some(());
        }
        match self {
            Column::Integer(builder, range) => {
                let value = reader.integer()?;
                if value < range.min || value > range.max {
                    return None;
                }
                builder.append_value(value);
            }
            Column::Float64(builder) => {
                builder.append_value(reader.float()?);
            }
            Column::Float32(builder) => {
                let value: f32 = reader.number()?.parse().ok()?;
                if !value.is_finite() {
                    return None;
                }
                builder.append_value(value);
            }
            Column::Boolean(builder) => {
                if reader.literal(b"true") {
                    builder.append_value(true);
                } else if reader.literal(b"false") {
                    builder.append_value(false);
                } else {
                    return None;
                }
            }
            Column::Utf8(builder) => {
                let mut scratch = String::new();
                builder.append_value(reader.string(&mut scratch)?);
            }
            Column::Utf8View(builder) => {
                let mut scratch = String::new();
                builder.append_value(reader.string(&mut scratch)?)?;
            }
            Column::Timestamp(builder, zone) => {
                if reader.peek() == Some(b'"') {
                    let mut scratch = String::new();
                    let text = reader.string(&mut scratch)?;
                    builder.append_value(timestamp_string_millis(zone.as_ref(), text)?);
                } else {
                    builder.append_value(reader.integer()?);
                }
            }
        }
        Some(())
    }

    /// The finished array in `data_type` (the field's decoding type).
    fn finish(self, data_type: &DataType) -> Option<ArrayRef> {
        Some(match self {
            Column::Integer(mut b, _) => {
                let array: ArrayRef = Arc::new(b.finish());
                if data_type == &DataType::Int64 {
                    array
                } else {
                    // Every value was checked against the type's range.
                    let strict = CastOptions {
                        safe: false,
                        ..Default::default()
                    };
                    cast_with_options(&array, data_type, &strict).ok()?
                }
            }
            Column::Float64(mut b) => Arc::new(b.finish()),
            Column::Float32(mut b) => Arc::new(b.finish()),
            Column::Boolean(mut b) => Arc::new(b.finish()),
            Column::Utf8(mut b) => Arc::new(b.finish()),
            Column::Utf8View(b) => Arc::new(b.finish()),
            Column::Timestamp(mut b, _) => Arc::new(b.finish().with_data_type(data_type.clone())),
        })
    }
}

/// A cursor over the input; every method answers `None` on input it does
/// not accept, leaving the decision to arrow-json.
struct Reader<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    // Tiny and on every byte: inlined even in the size-optimised build.
    #[inline(always)]
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    #[inline(always)]
    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.at += 1;
        Some(b)
    }

    #[inline(always)]
    fn expect(&mut self, b: u8) -> Option<()> {
        (self.next()? == b).then_some(())
    }

    #[inline(always)]
    fn skip_whitespace(&mut self) {
        while self.peek().is_some_and(is_whitespace) {
            self.at += 1;
        }
    }

    /// Consumes `word` if the input continues with it.
    #[inline(always)]
    fn literal(&mut self, word: &[u8]) -> bool {
        if self.bytes[self.at..].starts_with(word) {
            self.at += word.len();
            true
        } else {
            false
        }
    }

    /// A string without escapes (object keys), its quotes consumed.
    fn plain_string(&mut self) -> Option<&'a [u8]> {
        self.expect(b'"')?;
        let start = self.at;
        loop {
            match self.next()? {
                b'"' => return Some(&self.bytes[start..self.at - 1]),
                b'\\' => return None,
                b if b < 0x20 => return None,
                _ => {}
            }
        }
    }

    /// A string value, unescaped into `scratch` when it has escapes.
    fn string<'s>(&mut self, scratch: &'s mut String) -> Option<&'s str>
    where
        'a: 's,
    {
        self.expect(b'"')?;
        let start = self.at;
        loop {
            match self.next()? {
                b'"' => {
                    // Quotes are ASCII, so both ends are character boundaries.
                    return self.text.get(start..self.at - 1);
                }
                b'\\' => {
                    scratch.push_str(self.text.get(start..self.at - 1)?);
                    self.unescape_rest(scratch)?;
                    return Some(scratch.as_str());
                }
                b if b < 0x20 => return None,
                _ => {}
            }
        }
    }

    /// The rest of a string whose first backslash was just consumed.
    fn unescape_rest(&mut self, out: &mut String) -> Option<()> {
        let mut escaped = true;
        loop {
            if escaped {
                escaped = false;
                let c = match self.next()? {
                    b'"' => '"',
                    b'\\' => '\\',
                    b'/' => '/',
                    b'b' => '\u{8}',
                    b'f' => '\u{c}',
                    b'n' => '\n',
                    b'r' => '\r',
                    b't' => '\t',
                    b'u' => {
                        let high = self.hex4()?;
                        let code = match high {
                            0xD800..=0xDBFF => {
                                // A surrogate pair; a lone half goes to arrow-json.
                                self.expect(b'\\')?;
                                self.expect(b'u')?;
                                let low = self.hex4()?;
                                if !(0xDC00..=0xDFFF).contains(&low) {
                                    return None;
                                }
                                0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
                            }
                            0xDC00..=0xDFFF => return None,
                            _ => high,
                        };
                        char::from_u32(code)?
                    }
                    _ => return None,
                };
                out.push(c);
                continue;
            }
            let start = self.at;
            loop {
                match self.next()? {
                    b'"' => {
                        out.push_str(self.text.get(start..self.at - 1)?);
                        return Some(());
                    }
                    b'\\' => {
                        out.push_str(self.text.get(start..self.at - 1)?);
                        escaped = true;
                        break;
                    }
                    b if b < 0x20 => return None,
                    _ => {}
                }
            }
        }
    }

    fn hex4(&mut self) -> Option<u32> {
        let digits = self.bytes.get(self.at..self.at + 4)?;
        let text = std::str::from_utf8(digits).ok()?;
        if !digits.iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        self.at += 4;
        u32::from_str_radix(text, 16).ok()
    }

    /// The text of a JSON number (strict grammar), consumed.
    fn number(&mut self) -> Option<&'a str> {
        let start = self.at;
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        match self.next()? {
            b'0' => {}
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            self.at_least_one_digit()?;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            self.at_least_one_digit()?;
        }
        self.text.get(start..self.at)
    }

    #[inline(always)]
    fn digits(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.at += 1;
        }
    }

    #[inline(always)]
    fn at_least_one_digit(&mut self) -> Option<()> {
        if !self.peek()?.is_ascii_digit() {
            return None;
        }
        self.digits();
        Some(())
    }

    /// A JSON number that is an integer in i64 (no fraction or exponent).
    fn integer(&mut self) -> Option<i64> {
        let start = self.at;
        let negative = self.peek() == Some(b'-');
        if negative {
            self.at += 1;
        }
        let first = self.at;
        let mut magnitude: i64 = match self.next()? {
            b'0' => 0,
            b @ b'1'..=b'9' => i64::from(b - b'0'),
            _ => return None,
        };
        if magnitude != 0 {
            // Epoch timestamps have 10-19 digits: eight at a time first.
            while let Some(eight) = self.eight_digits() {
                magnitude = magnitude.wrapping_mul(100_000_000).wrapping_add(eight);
                self.at += 8;
            }
            while let Some(b @ b'0'..=b'9') = self.peek() {
                // Wraps only past 18 digits, which are parsed again below
                // (no overflow checks here: on wasm32 they cost a call).
                magnitude = magnitude.wrapping_mul(10).wrapping_add(i64::from(b - b'0'));
                self.at += 1;
            }
        }
        if matches!(self.peek(), Some(b'.' | b'e' | b'E' | b'0'..=b'9')) {
            return None; // a fraction, an exponent or a leading zero
        }
        if self.at - first > 18 {
            return self.text.get(start..self.at)?.parse().ok();
        }
        Some(if negative { -magnitude } else { magnitude })
    }

    /// The value of the next eight bytes if they are all ASCII digits
    /// (SWAR: one 64-bit load and three multiplications instead of eight
    /// steps).
    #[inline(always)]
    fn eight_digits(&self) -> Option<i64> {
        let chunk = self.bytes.get(self.at..self.at + 8)?;
        let word = u64::from_le_bytes(chunk.try_into().ok()?);
        // Each byte is 0x30..=0x39: high nibble 3, and adding 6 does not carry into it.
        let digits = word.wrapping_sub(0x3030_3030_3030_3030);
        let carried = word.wrapping_add(0x0606_0606_0606_0606);
        if (word & 0xF0F0_F0F0_F0F0_F0F0) | ((carried & 0xF0F0_F0F0_F0F0_F0F0) >> 4)
            != 0x3333_3333_3333_3333
        {
            return None;
        }
        // Pairs, then quads, then all eight (first digit in the low byte).
        let pairs = (digits.wrapping_mul(10) + (digits >> 8)) & 0x00FF_00FF_00FF_00FF;
        let quads = (pairs.wrapping_mul(100) + (pairs >> 16)) & 0x0000_FFFF_0000_FFFF;
        Some((quads.wrapping_mul(10_000) + (quads >> 32)) as i64 & 0xFFFF_FFFF)
    }

    /// A JSON number as the nearest f64, as a correctly rounding parser
    /// gives it.
    fn float(&mut self) -> Option<f64> {
        let start = self.at;
        let text = self.number()?;
        // Clinger's fast path: up to 15 digits and a power of ten up to
        // 22 are exact f64s, so one multiplication or division rounds
        // correctly. Anything else goes to the full parser.
        let (mut mantissa, mut digits, mut fraction_digits) = (0u64, 0u32, 0i32);
        let mut in_fraction = false;
        let mut exponent_at = None;
        for (i, b) in text.bytes().enumerate() {
            match b {
                b'0'..=b'9' => {
                    mantissa = mantissa.wrapping_mul(10).wrapping_add(u64::from(b - b'0'));
                    digits += 1;
                    fraction_digits += i32::from(in_fraction);
                }
                b'.' => in_fraction = true,
                b'e' | b'E' => {
                    exponent_at = Some(i + 1);
                    break;
                }
                _ => {} // the sign
            }
        }
        let exponent = match exponent_at {
            Some(at) => text.get(at..)?.parse::<i32>().ok(),
            None => Some(0),
        };
        let power = exponent.map(|e| e.saturating_sub(fraction_digits));
        let value = match power {
            Some(power) if digits <= 15 && (-22..=22).contains(&power) => {
                let scale = POWERS_OF_TEN[power.unsigned_abs() as usize];
                let magnitude = mantissa as f64;
                let magnitude = if power < 0 {
                    magnitude / scale
                } else {
                    magnitude * scale
                };
                if self.bytes[start] == b'-' {
                    -magnitude
                } else {
                    magnitude
                }
            }
            _ => text.parse().ok()?,
        };
        value.is_finite().then_some(value)
    }

    /// Checks and skips any JSON value.
    fn skip_value(&mut self, depth: usize) -> Option<()> {
        if depth > MAX_SKIP_DEPTH {
            return None;
        }
        match self.peek()? {
            b'"' => {
                let mut scratch = String::new();
                self.string(&mut scratch).map(|_| ())
            }
            b'{' => {
                self.at += 1;
                self.skip_whitespace();
                if self.peek() == Some(b'}') {
                    self.at += 1;
                    return Some(());
                }
                loop {
                    self.skip_whitespace();
                    let mut scratch = String::new();
                    self.string(&mut scratch)?;
                    self.skip_whitespace();
                    self.expect(b':')?;
                    self.skip_whitespace();
                    self.skip_value(depth + 1)?;
                    self.skip_whitespace();
                    match self.next()? {
                        b',' => continue,
                        b'}' => return Some(()),
                        _ => return None,
                    }
                }
            }
            b'[' => {
                self.at += 1;
                self.skip_whitespace();
                if self.peek() == Some(b']') {
                    self.at += 1;
                    return Some(());
                }
                loop {
                    self.skip_whitespace();
                    self.skip_value(depth + 1)?;
                    self.skip_whitespace();
                    match self.next()? {
                        b',' => continue,
                        b']' => return Some(()),
                        _ => return None,
                    }
                }
            }
            b't' => self.literal(b"true").then_some(()),
            b'f' => self.literal(b"false").then_some(()),
            b'n' => self.literal(b"null").then_some(()),
            _ => self.number().map(|_| ()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::json::decode_ndjson_with_arrow;
    use arrow::datatypes::{Field, TimeUnit};

    #[test]
    fn integers_of_every_length_parse_as_str_parse_does() {
        let mut texts: Vec<String> = Vec::new();
        for len in 1..=20 {
            let digits: String = "9876543210123456789012".chars().take(len).collect();
            texts.push(digits.clone());
            texts.push(format!("-{digits}"));
            texts.push("1".to_string() + &"0".repeat(len - 1));
            texts.push("12345678".repeat(3)[..len].to_string());
        }
        texts.extend(
            [
                "9223372036854775807",
                "-9223372036854775808",
                "9223372036854775808",
            ]
            .map(String::from),
        );
        for text in &texts {
            // Followed by a delimiter, by a non-digit inside an 8-byte
            // window, and by nothing.
            for tail in [",\"x\":1}", "}", "", "a1234567", ":"] {
                let input = format!("{text}{tail}");
                let mut reader = Reader {
                    text: &input,
                    bytes: input.as_bytes(),
                    at: 0,
                };
                let got = reader.integer();
                let want = text.parse::<i64>().ok();
                assert_eq!(got, want, "{input}");
                if got.is_some() {
                    assert_eq!(reader.at, text.len(), "{input}");
                }
            }
        }
    }

    fn schema() -> Schema {
        Schema::new(vec![
            Field::new("s", DataType::Utf8, true),
            Field::new("v", DataType::Utf8View, true),
            Field::new("x", DataType::Float64, true),
            Field::new("f", DataType::Float32, true),
            Field::new("n", DataType::Int32, true),
            Field::new("i", DataType::Int64, true),
            Field::new("u", DataType::UInt8, true),
            Field::new("b", DataType::Boolean, true),
            Field::new("t", DataType::Timestamp(TimeUnit::Millisecond, None), true),
            Field::new(
                "z",
                DataType::Timestamp(TimeUnit::Nanosecond, Some("+02:00".into())),
                true,
            ),
        ])
    }

    const STRINGS: &[&str] = &[
        r#""AAPL""#,
        r#""""#,
        r#""é😀 wide""#,
        r#""a\"b\\c\/d""#,
        r#""tab\tnew\nline\r\b\f""#,
        r#""\u00e9\u0041""#,
        r#""\ud83d\ude00 pair""#,
        r#""a string longer than twelve bytes""#,
        r#""\ud83d lone""#,
        r#""\x bad escape""#,
        "12",
        "true",
        "null",
        "[\"a\"]",
    ];
    const FLOATS: &[&str] = &[
        "1.5",
        "-0",
        "0",
        "1e3",
        "-2.5E-3",
        "0.1",
        "123456789012345678901234567890",
        "2.2250738585072011e-308",
        "123.456",
        "-98765.4321e-3",
        "9007199254740993",
        "1e22",
        "1e23",
        "4.35",
        "0.000001",
        "1e400",
        "\"1.5\"",
        "null",
        "01",
        "-",
        ".5",
        "1.",
        "{}",
    ];
    const INTEGERS: &[&str] = &[
        "7",
        "0",
        "-0",
        "255",
        "-3",
        "2147483647",
        "-2147483648",
        "2147483648",
        "256",
        "9223372036854775807",
        "9223372036854775808",
        "1.0",
        "1e2",
        "\"5\"",
        "null",
    ];
    const BOOLEANS: &[&str] = &["true", "false", "null", "false", "1", "\"true\"", "tru"];
    const TIMES: &[&str] = &[
        "1700000000000",
        "-5",
        "0",
        r#""2024-01-01T00:00:00Z""#,
        r#""2024-01-01T10:20:30.123+05:00""#,
        r#""2024-01-01 00:00:00""#,
        r#""garbage""#,
        "1.7e12",
        "1700000000000.9",
        "null",
    ];
    const OTHERS: &[&str] = &[
        r#"{"a":[1,{"b":null}],"c":"\u0041"}"#,
        "[]",
        "{}",
        r#""x""#,
        "-3.5e2",
        "false",
        "[1,]",
        "{\"a\" 1}",
    ];

    /// xorshift64*: a fixed, seeded sequence of choices.
    struct Random(u64);
    impl Random {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n
        }
        fn pick<'a>(&mut self, pool: &[&'a str], clean: bool) -> &'a str {
            // Clean documents draw from the first values of each pool,
            // which the fast path takes; others mostly do too, so that
            // whitespace and rarer values meet in documents it accepts.
            let any = !clean && self.below(12) == 0;
            let limit = if any { pool.len() } else { pool.len().min(4) };
            pool[self.below(limit)]
        }
    }

    fn line(random: &mut Random, clean: bool) -> String {
        let fields: [(&str, &[&str]); 11] = [
            ("s", STRINGS),
            ("v", STRINGS),
            ("x", FLOATS),
            ("f", FLOATS),
            ("n", INTEGERS),
            ("i", INTEGERS),
            ("u", INTEGERS),
            ("b", BOOLEANS),
            ("t", TIMES),
            ("z", TIMES),
            ("other", OTHERS),
        ];
        let spaces = [" ", "", "\t", " \r\n "];
        let mut members = Vec::new();
        for (name, pool) in fields {
            if random.below(5) == 0 {
                continue; // absent
            }
            let space = if clean { "" } else { spaces[random.below(4)] };
            members.push(format!(
                "\"{name}\"{space}:{space}{}",
                random.pick(pool, clean)
            ));
        }
        // Shuffle: arrow-json matches by name, not position.
        for i in (1..members.len()).rev() {
            members.swap(i, random.below(i + 1));
        }
        if !clean && random.below(20) == 0 && !members.is_empty() {
            members.push(members[0].clone()); // repeated field
        }
        let mut text = format!("{{{}}}", members.join(","));
        if !clean && random.below(30) == 0 {
            text.push_str(["]", ",", "x", "{"][random.below(4)]);
        }
        text
    }

    #[test]
    fn decodes_exactly_what_arrow_json_decodes() {
        let schema = schema();
        let mut random = Random(0x9E37_79B9_7F4A_7C15);
        let (mut fast, mut clean_fast, mut clean_total) = (0, 0, 0);
        for case in 0..4000 {
            let clean = case % 2 == 0;
            let lines = 1 + random.below(3);
            let separator = ["\n", "\r\n", " ", "\n\n"][random.below(4)];
            let text: Vec<String> = (0..lines).map(|_| line(&mut random, clean)).collect();
            let text = text.join(separator);
            let reference = decode_ndjson_with_arrow(&schema, &text);
            let decoded = decode_flat_ndjson(&schema, &text);
            if let Some(batch) = &decoded {
                fast += 1;
                let reference = reference.unwrap_or_else(|e| {
                    panic!("arrow-json rejects what the fast path took: {text}\n{e}")
                });
                assert_eq!(batch, &reference, "{text}");
            }
            if clean {
                clean_total += 1;
                clean_fast += usize::from(decoded.is_some());
            }
        }
        // The comparison means something only if the fast path decided often.
        assert!(fast > 2500, "fast path took {fast} of 4000");
        assert!(
            clean_fast * 10 > clean_total * 8,
            "fast path took {clean_fast} of {clean_total} clean documents"
        );
    }

    #[test]
    fn leaves_uncertain_input_to_arrow_json() {
        let schema = schema();
        for text in [
            r#"{"n": 1.0}"#,
            r#"{"n": "5"}"#,
            r#"{"x": {"nested": 1}}"#,
            r#"{"s": "\ud83d"}"#,
            r#"{"n": 1, "n": 2}"#,
            r#"{"s\u0041": "escaped key"}"#,
            r#"{"t": "not a time"}"#,
            r#"[{"n": 1}]"#,
            r#"{"n": 1}{"n": 2}"#,
            r#"{"n": 1,}"#,
        ] {
            assert!(decode_flat_ndjson(&schema, text).is_none(), "{text}");
        }
    }

    #[test]
    fn skips_undeclared_fields_and_fills_missing_ones_with_nulls() {
        let schema = schema();
        let text =
            "{\"extra\": {\"deep\": [1, [2, {\"x\": \"}\"}]]}, \"n\": 4}\n\n  {\"s\": \"a\\nb\"}\n";
        let batch = decode_flat_ndjson(&schema, text).expect("fast path");
        assert_eq!(batch, decode_ndjson_with_arrow(&schema, text).unwrap());
        assert_eq!(batch.num_rows(), 2);
        assert_eq!(decode_flat_ndjson(&schema, "").unwrap().num_rows(), 0);
    }
}
