//! Columns that lend their vectors to the Arrow arrays of a batch and take them back once
//! the batch is written.
//!
//! Arrow's builders give their buffers away to the arrays they finish, and the arrays free
//! them when the batch is dropped after writing: every batch of a build started in fresh
//! memory, and faulting it in (about 6,000 page faults per GB of input, a few µs each in a
//! VM) was paid again and again. These columns build into plain vectors, wrap them as Arrow
//! buffers without copying, keep a second handle on each, and turn the handles back into
//! vectors once the arrays are gone (see [`Lent::take_back`]).
//!
//! The arrays they make are the ones Arrow's builders make for the same values, to the
//! byte: no null buffer when every row is valid, zeros under null numbers, offsets from 0.

use std::sync::Arc;

use arrow_array::types::ArrowPrimitiveType;
use arrow_array::{ArrayRef, BooleanArray, ListArray, PrimitiveArray, StringArray};
use arrow_buffer::{
    ArrowNativeType, BooleanBuffer, Buffer, NullBuffer, OffsetBuffer, ScalarBuffer,
};
use arrow_schema::FieldRef;

/// The second handles on the buffers a column lent, in the order it lent them; `None`
/// where it lent nothing (a validity that was all set).
#[derive(Debug, Default)]
pub(crate) struct Lent {
    buffers: Vec<Option<Buffer>>,
    next: usize,
}

impl Lent {
    /// Wraps `values` as a buffer for an array and keeps a handle for [`Lent::take_back`].
    fn lend<T: ArrowNativeType>(&mut self, values: &mut Vec<T>) -> Buffer {
        let buffer = Buffer::from_vec(std::mem::take(values));
        self.buffers.push(Some(buffer.clone()));
        buffer
    }

    /// Notes that nothing was lent at this place.
    fn skip(&mut self) {
        self.buffers.push(None);
    }

    /// The vector lent at the next place, emptied, if its array is gone (else the array
    /// still shares it and it is left to the array). Places are taken back in the order
    /// they were lent.
    fn take_back<T: ArrowNativeType>(&mut self) -> Option<Vec<T>> {
        let slot = self.buffers.get_mut(self.next)?.take();
        self.next += 1;
        let mut values = slot?.into_vec::<T>().ok()?;
        values.clear();
        Some(values)
    }
}

/// Bits packed as Arrow packs them (bit `i % 8` of byte `i / 8` for row `i`): the validity
/// of a nullable column (set when the row has a value), or the values of a boolean one.
#[derive(Debug, Default)]
struct PackedBits {
    bits: Vec<u8>,
    len: usize,
    /// Rows pushed unset.
    nulls: usize,
}

impl PackedBits {
    fn push(&mut self, valid: bool) {
        if self.len.is_multiple_of(8) {
            self.bits.push(0);
        }
        if valid {
            if let Some(byte) = self.bits.last_mut() {
                *byte |= 1 << (self.len % 8);
            }
        } else {
            self.nulls += 1;
        }
        self.len += 1;
    }

    /// The bits so far as a buffer; the column starts again empty.
    fn lend_bits(&mut self, lent: &mut Lent) -> BooleanBuffer {
        let len = self.len;
        (self.len, self.nulls) = (0, 0);
        BooleanBuffer::new(lent.lend(&mut self.bits), 0, len)
    }

    /// The bits as a null buffer, or none when every row has a value (as Arrow's builders
    /// do).
    fn lend_validity(&mut self, lent: &mut Lent) -> Option<NullBuffer> {
        let nulls = self.nulls;
        if nulls == 0 {
            (self.len, self.nulls) = (0, 0);
            self.bits.clear();
            lent.skip();
            return None;
        }
        let bits = self.lend_bits(lent);
        // SAFETY: `nulls` counted exactly the unset bits among the first `len`.
        Some(unsafe { NullBuffer::new_unchecked(bits, nulls) })
    }

    fn take_back(&mut self, lent: &mut Lent) {
        if let Some(bits) = lent.take_back() {
            self.bits = bits;
        }
    }
}

/// A UTF-8 column (nullable or not) built into reusable vectors.
#[derive(Debug)]
pub(crate) struct TextColumn {
    offsets: Vec<i32>,
    values: Vec<u8>,
    validity: PackedBits,
}

impl Default for TextColumn {
    fn default() -> TextColumn {
        TextColumn {
            offsets: vec![0],
            values: Vec::new(),
            validity: PackedBits::default(),
        }
    }
}

impl TextColumn {
    /// Makes room for `rows` more rows holding `bytes` more bytes of text: exactly, as the
    /// estimate has its margin already (doubling would keep twice a batch's memory).
    pub(crate) fn reserve(&mut self, rows: usize, bytes: usize) {
        self.offsets.reserve_exact(rows);
        self.values.reserve_exact(bytes);
        self.validity.bits.reserve_exact(rows.div_ceil(8));
    }

    /// Appends a row holding `value`.
    pub(crate) fn push(&mut self, value: &str) {
        self.values.extend_from_slice(value.as_bytes());
        self.offsets.push(offset(self.values.len()));
        self.validity.push(true);
    }

    /// Appends a row holding `value`, or a null row.
    pub(crate) fn push_option(&mut self, value: Option<&str>) {
        match value {
            Some(value) => self.push(value),
            None => {
                self.offsets.push(offset(self.values.len()));
                self.validity.push(false);
            }
        }
    }

    /// The rows so far as an array; the column starts again empty.
    fn lend(&mut self, lent: &mut Lent) -> StringArray {
        let rows = self.offsets.len() - 1;
        let nulls = self.validity.lend_validity(lent);
        let offsets = ScalarBuffer::new(lent.lend(&mut self.offsets), 0, rows + 1);
        let values = lent.lend(&mut self.values);
        // SAFETY: the offsets start at 0 and only grow, each to the end of a `&str`
        // appended whole, so every slice between them is valid UTF-8 within `values`.
        let array = unsafe {
            StringArray::new_unchecked(OffsetBuffer::new_unchecked(offsets), values, nulls)
        };
        self.offsets.push(0);
        array
    }

    fn take_back(&mut self, lent: &mut Lent) {
        self.validity.take_back(lent);
        take_back_offsets(&mut self.offsets, lent);
        if let Some(values) = lent.take_back() {
            self.values = values;
        }
    }
}

/// Takes back a column's offsets from `lent`, starting again at 0.
fn take_back_offsets(offsets: &mut Vec<i32>, lent: &mut Lent) {
    if let Some(mut back) = lent.take_back::<i32>() {
        back.push(0);
        *offsets = back;
    }
}

/// An offset into a column's text. A batch holds one chunk of a few MB, and long values
/// are kept as heads, so its text stays far below `i32::MAX`; only a span whose id or
/// name alone passed 2 GB could overflow it (Arrow's builders panic there too).
fn offset(len: usize) -> i32 {
    i32::try_from(len).expect("a batch's text column stays under 2 GB")
}

/// A column of lists of strings (never null, items never null), in reusable vectors.
#[derive(Debug)]
pub(crate) struct TextListColumn {
    offsets: Vec<i32>,
    items: TextColumn,
    item_field: FieldRef,
}

impl TextListColumn {
    /// An empty column whose items are described by `item_field`.
    pub(crate) fn new(item_field: FieldRef) -> TextListColumn {
        TextListColumn {
            offsets: vec![0],
            items: TextColumn::default(),
            item_field,
        }
    }

    /// Makes room for `rows` more lists holding `items` strings of `bytes` bytes.
    pub(crate) fn reserve(&mut self, rows: usize, items: usize, bytes: usize) {
        self.offsets.reserve_exact(rows);
        self.items.reserve(items, bytes);
    }

    /// Appends a row holding `items`.
    pub(crate) fn push(&mut self, items: &[impl AsRef<str>]) {
        for item in items {
            self.items.push(item.as_ref());
        }
        self.offsets.push(offset(self.items.offsets.len() - 1));
    }

    fn lend(&mut self, lent: &mut Lent) -> ListArray {
        let rows = self.offsets.len() - 1;
        let offsets = ScalarBuffer::new(lent.lend(&mut self.offsets), 0, rows + 1);
        let items = Arc::new(self.items.lend(lent));
        // SAFETY: the offsets start at 0 and only grow, each to the number of items
        // appended so far, so they index `items` in order.
        let offsets = unsafe { OffsetBuffer::new_unchecked(offsets) };
        self.offsets.push(0);
        ListArray::new(self.item_field.clone(), offsets, items, None)
    }

    fn take_back(&mut self, lent: &mut Lent) {
        take_back_offsets(&mut self.offsets, lent);
        self.items.take_back(lent);
    }
}

/// A column of numbers (nullable or not) in reusable vectors; a null row holds zero
/// underneath, as with Arrow's builders.
#[derive(Debug, Default)]
pub(crate) struct NumberColumn<T: ArrowNativeType> {
    values: Vec<T>,
    validity: PackedBits,
}

impl<T: ArrowNativeType> NumberColumn<T> {
    /// Makes room for `rows` more rows.
    pub(crate) fn reserve(&mut self, rows: usize) {
        self.values.reserve_exact(rows);
        self.validity.bits.reserve_exact(rows.div_ceil(8));
    }

    /// Appends a row holding `value`.
    pub(crate) fn push(&mut self, value: T) {
        self.values.push(value);
        self.validity.push(true);
    }

    /// Appends a row holding `value`, or a null row.
    pub(crate) fn push_option(&mut self, value: Option<T>) {
        self.values.push(value.unwrap_or_default());
        self.validity.push(value.is_some());
    }

    fn lend<P: ArrowPrimitiveType<Native = T>>(&mut self, lent: &mut Lent) -> PrimitiveArray<P> {
        let nulls = self.validity.lend_validity(lent);
        let rows = self.values.len();
        let values = ScalarBuffer::new(lent.lend(&mut self.values), 0, rows);
        PrimitiveArray::new(values, nulls)
    }

    fn take_back(&mut self, lent: &mut Lent) {
        self.validity.take_back(lent);
        if let Some(values) = lent.take_back() {
            self.values = values;
        }
    }
}

/// A column of booleans, never null, packed in a reusable vector.
#[derive(Debug, Default)]
pub(crate) struct FlagColumn {
    bits: PackedBits,
}

impl FlagColumn {
    /// Makes room for `rows` more rows.
    pub(crate) fn reserve(&mut self, rows: usize) {
        self.bits.bits.reserve_exact(rows.div_ceil(8));
    }

    /// Appends a row holding `value`.
    pub(crate) fn push(&mut self, value: bool) {
        self.bits.push(value);
    }

    fn lend(&mut self, lent: &mut Lent) -> BooleanArray {
        BooleanArray::new(self.bits.lend_bits(lent), None)
    }

    fn take_back(&mut self, lent: &mut Lent) {
        self.bits.take_back(lent);
    }
}

/// One column of any of the kinds above, for code that walks all columns of a batch.
pub(crate) enum AnyColumn<'c> {
    /// UTF-8 text.
    Text(&'c mut TextColumn),
    /// Lists of text.
    TextList(&'c mut TextListColumn),
    /// Booleans.
    Flag(&'c mut FlagColumn),
    /// Signed 64-bit integers, as `Int64` or with the given timestamp time zone.
    I64(&'c mut NumberColumn<i64>, Option<&'static str>),
    /// Unsigned 64-bit integers.
    U64(&'c mut NumberColumn<u64>),
    /// Unsigned 32-bit integers.
    U32(&'c mut NumberColumn<u32>),
    /// 64-bit floats.
    F64(&'c mut NumberColumn<f64>),
}

impl AnyColumn<'_> {
    /// The column's rows as an array (it starts again empty); its vectors are in `lent`.
    pub(crate) fn lend(self, lent: &mut Lent) -> ArrayRef {
        use arrow_array::types::{
            Float64Type, Int64Type, TimestampNanosecondType, UInt32Type, UInt64Type,
        };
        match self {
            AnyColumn::Text(c) => Arc::new(c.lend(lent)),
            AnyColumn::TextList(c) => Arc::new(c.lend(lent)),
            AnyColumn::Flag(c) => Arc::new(c.lend(lent)),
            AnyColumn::I64(c, None) => Arc::new(c.lend::<Int64Type>(lent)),
            AnyColumn::I64(c, Some(zone)) => {
                Arc::new(c.lend::<TimestampNanosecondType>(lent).with_timezone(zone))
            }
            AnyColumn::U64(c) => Arc::new(c.lend::<UInt64Type>(lent)),
            AnyColumn::U32(c) => Arc::new(c.lend::<UInt32Type>(lent)),
            AnyColumn::F64(c) => Arc::new(c.lend::<Float64Type>(lent)),
        }
    }

    /// Takes the column's vectors back from `lent`, where its arrays are gone.
    pub(crate) fn take_back(self, lent: &mut Lent) {
        match self {
            AnyColumn::Text(c) => c.take_back(lent),
            AnyColumn::TextList(c) => c.take_back(lent),
            AnyColumn::Flag(c) => c.take_back(lent),
            AnyColumn::I64(c, _) => c.take_back(lent),
            AnyColumn::U64(c) => c.take_back(lent),
            AnyColumn::U32(c) => c.take_back(lent),
            AnyColumn::F64(c) => c.take_back(lent),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::builder::{BooleanBuilder, Int64Builder, ListBuilder, StringBuilder};
    use arrow_array::Array;
    use arrow_schema::{DataType, Field};

    #[test]
    fn text_matches_arrows_builder_and_its_vectors_come_back() {
        let rows: [Option<&str>; 11] = [
            Some("a"),
            None,
            Some(""),
            Some("héllo"),
            None,
            Some("x"),
            Some("y"),
            Some("z"),
            None,
            Some("last"),
            Some("🙂"),
        ];
        let mut column = TextColumn::default();
        for round in 0..3 {
            let mut arrow = StringBuilder::new();
            for row in &rows[..rows.len() - round] {
                column.push_option(*row);
                arrow.append_option(*row);
            }
            let mut lent = Lent::default();
            let ours = column.lend(&mut lent);
            let theirs = arrow.finish();
            assert_eq!(ours, theirs);
            assert_eq!(ours.to_data(), theirs.to_data());
            let pointer = ours.value_data().as_ptr();
            drop(ours);
            column.take_back(&mut lent);
            assert_eq!(column.values.as_ptr(), pointer, "the same vector came back");
            assert!(column.values.is_empty() && column.offsets == [0]);
        }
    }

    #[test]
    fn all_valid_rows_have_no_null_buffer_and_all_null_rows_have_one() {
        let mut column = TextColumn::default();
        column.push("a");
        let mut lent = Lent::default();
        assert!(column.lend(&mut lent).nulls().is_none());
        column.take_back(&mut lent);
        column.push_option(None);
        let mut lent = Lent::default();
        assert_eq!(column.lend(&mut lent).null_count(), 1);
    }

    #[test]
    fn a_vector_still_shared_by_its_array_is_left_to_it() {
        let mut column = NumberColumn::<i64>::default();
        column.push(7);
        let mut lent = Lent::default();
        let array = column.lend::<arrow_array::types::Int64Type>(&mut lent);
        column.take_back(&mut lent);
        assert_eq!(array.value(0), 7, "the array keeps its values");
        column.push(8);
        let mut lent = Lent::default();
        assert_eq!(
            column
                .lend::<arrow_array::types::Int64Type>(&mut lent)
                .value(0),
            8
        );
    }

    #[test]
    fn numbers_flags_and_lists_match_arrows_builders() {
        let mut numbers = NumberColumn::<i64>::default();
        let mut flags = FlagColumn::default();
        let item = Arc::new(Field::new("item", DataType::Utf8, true));
        let mut lists = TextListColumn::new(item);
        for round in 0..2 {
            let mut arrow_numbers = Int64Builder::new();
            let mut arrow_flags = BooleanBuilder::new();
            let mut arrow_lists = ListBuilder::new(StringBuilder::new());
            for i in 0..(19 + round) {
                let n = (i % 3 != 0).then_some(i as i64 * 5);
                numbers.push_option(n);
                arrow_numbers.append_option(n);
                flags.push(i % 4 == 1);
                arrow_flags.append_value(i % 4 == 1);
                let items: Vec<String> = (0..i % 3).map(|k| format!("tool{k}")).collect();
                lists.push(&items);
                for item in &items {
                    arrow_lists.values().append_value(item);
                }
                arrow_lists.append(true);
            }
            let mut lent = Lent::default();
            let n = numbers.lend::<arrow_array::types::Int64Type>(&mut lent);
            assert_eq!(n.to_data(), arrow_numbers.finish().to_data());
            let f = flags.lend(&mut lent);
            assert_eq!(f.to_data(), arrow_flags.finish().to_data());
            let l = lists.lend(&mut lent);
            assert_eq!(l.to_data(), arrow_lists.finish().to_data());
            drop((n, f, l));
            numbers.take_back(&mut lent);
            flags.take_back(&mut lent);
            lists.take_back(&mut lent);
            assert!(numbers.values.capacity() >= 19 && lists.items.values.capacity() > 0);
        }
    }
}
