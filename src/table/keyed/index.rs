//! The key index: key bytes → slot, and slot → key bytes.
//!
//! A key is the `arrow-row` encoding of its key columns (so multi-column keys and every type
//! `arrow-row` supports compare as bytes). The index is a `hashbrown` table of slots keyed by
//! the hash of those bytes; the bytes themselves are kept once, by slot, in a [`KeyBytes`]
//! store, so a lookup is one hash, one probe and one comparison.
//!
//! # Memory
//!
//! Per key: a `u32` slot in the hash table (4 bytes plus a control byte, at a load factor of
//! 1/2 to 7/8), and its key bytes: in place for keys of fixed width (an `i64` key is 9 bytes),
//! or in one arena with an 8-byte start for variable-width keys (a short string costs its
//! length plus 3 bytes). Deleted keys leave dead bytes in the arena until they outweigh the
//! live ones; then it is compacted, so it never holds more than twice its live bytes.

use std::hash::BuildHasher;

use arrow_array::ArrayRef;
use arrow_row::{RowConverter, Rows, SortField};
use arrow_schema::SchemaRef;
use hashbrown::HashTable;

/// The slot type of the hash table: a keyed table holds fewer than 2^32 keys.
type Slot = u32;

/// A slot as a hash table entry.
///
/// # Panics
///
/// If the table holds 2^32 keys or more (their index alone would take over 40 GB).
fn entry(slot: usize) -> Slot {
    Slot::try_from(slot).expect("invariant: a keyed table holds fewer than 2^32 keys")
}

/// A keyed table's key index; see the [module docs](self).
pub(super) struct KeyIndex {
    converter: RowConverter,
    hasher: foldhash::fast::RandomState,
    /// Key hash → slot.
    table: HashTable<Slot>,
    /// Slot → key bytes, for slots `0..len`.
    keys: KeyBytes,
}

impl KeyIndex {
    /// An empty index for the key columns `key` of `schema`.
    ///
    /// # Panics
    ///
    /// If the key columns' types cannot be encoded as rows (checked when the table was made,
    /// by [`supports`](super::KeyedState::supports)).
    pub(super) fn new(schema: &SchemaRef, key: &[usize]) -> Self {
        let fields = key
            .iter()
            .map(|&k| SortField::new(schema.field(k).data_type().clone()))
            .collect();
        let width = key
            .iter()
            .map(|&k| schema.field(k).data_type().primitive_width().map(|w| w + 1))
            .sum::<Option<usize>>();
        Self {
            converter: RowConverter::new(fields)
                .expect("invariant: key column types were checked when the table was made"),
            hasher: foldhash::fast::RandomState::default(),
            table: HashTable::new(),
            keys: KeyBytes::new(width),
        }
    }

    /// An empty buffer of key rows, for [`append_rows`](Self::append_rows).
    pub(super) fn empty_rows(&self) -> Rows {
        self.converter.empty_rows(0, 0)
    }

    /// Appends the encodings of the key columns `columns` (in key order) to `rows`.
    /// O(rows × key width).
    ///
    /// # Errors
    ///
    /// If the columns are not the key's, in number or in type.
    pub(super) fn append_rows(
        &self,
        rows: &mut Rows,
        columns: &[ArrayRef],
    ) -> Result<(), arrow_schema::ArrowError> {
        self.converter.append(rows, columns)
    }

    /// The slot of the key in row `row` of the key columns `columns` (in key order), if the
    /// key is in the index: `None` also when the columns are not the key's, in number or in
    /// type, or `row` is past their end. O(key width), with one small allocation.
    pub(super) fn slot_of(&self, columns: &[ArrayRef], row: usize) -> Option<usize> {
        if columns.iter().any(|c| row >= c.len()) {
            return None;
        }
        let one: Vec<ArrayRef> = columns.iter().map(|c| c.slice(row, 1)).collect();
        let rows = self.converter.convert_columns(&one).ok()?;
        let key = rows.row(0);
        self.find(self.hash(key.data()), key.data())
    }

    /// The hash of key bytes.
    pub(super) fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    /// The slot of the key `key` with hash `hash`, if it is in the index.
    pub(super) fn find(&self, hash: u64, key: &[u8]) -> Option<usize> {
        self.table
            .find(hash, |&s| self.keys.get(s as usize) == key)
            .map(|&s| s as usize)
    }

    /// The number of keys.
    pub(super) fn len(&self) -> usize {
        self.table.len()
    }

    /// Removes slot `slot`'s key from the hash table; its bytes stay until the slot is written
    /// again or dropped by [`truncate`](Self::truncate).
    pub(super) fn remove(&mut self, slot: usize) {
        let hash = self.hash(self.keys.get(slot));
        let target = entry(slot);
        if let Ok(found) = self.table.find_entry(hash, |&s| s == target) {
            found.remove();
        }
        self.keys.kill(slot);
    }

    /// Moves the key in slot `from` (whose hash is `hash`) to slot `to`, whose key was removed.
    pub(super) fn move_slot(&mut self, hash: u64, from: usize, to: usize) {
        let from_entry = entry(from);
        if let Some(s) = self.table.find_mut(hash, |&s| s == from_entry) {
            *s = entry(to);
        }
        self.keys.copy(from, to);
    }

    /// Moves the key in slot `from` to slot `to`, hashing its bytes.
    pub(super) fn move_untouched(&mut self, from: usize, to: usize) {
        let hash = self.hash(self.keys.get(from));
        self.move_slot(hash, from, to);
    }

    /// Puts the new key `key` (hash `hash`) in slot `slot`, a removed slot or the next one.
    pub(super) fn insert(&mut self, hash: u64, key: &[u8], slot: usize) {
        self.keys.set(slot, key);
        let (keys, hasher) = (&self.keys, &self.hasher);
        self.table.insert_unique(hash, entry(slot), |&s| {
            hasher.hash_one(keys.get(s as usize))
        });
    }

    /// Makes room for `additional` more keys, so inserting them rehashes at most once.
    pub(super) fn reserve(&mut self, additional: usize) {
        let (keys, hasher) = (&self.keys, &self.hasher);
        self.table
            .reserve(additional, |&s| hasher.hash_one(keys.get(s as usize)));
    }

    /// Drops the key bytes of the slots from `len` on (their keys were removed or moved).
    /// Compacts the key arena when its dead bytes outweigh the live ones: O(keys) then, and
    /// amortised O(1) per byte written.
    pub(super) fn truncate(&mut self, len: usize) {
        self.keys.truncate(len);
    }

    /// The bytes of memory the index holds (hash table and key bytes), for tests and stats.
    #[cfg(test)]
    pub(super) fn allocated_bytes(&self) -> usize {
        self.table.allocation_size() + self.keys.allocated_bytes()
    }
}

/// Slot → key bytes.
#[derive(Debug)]
enum KeyBytes {
    /// Every key encodes to `width` bytes: slot `s` is `bytes[s * width..(s + 1) * width]`.
    Fixed { width: usize, bytes: Vec<u8> },
    /// Keys of any width: slot `s` starts at `starts[s]` in `arena`, with its length first
    /// (LEB128). `dead` counts the arena bytes of removed or overwritten keys.
    Arena {
        arena: Vec<u8>,
        starts: Vec<usize>,
        dead: usize,
    },
}

/// The arena is compacted only past this many dead bytes, so small tables never bother.
const COMPACT_MIN: usize = 1 << 16;

impl KeyBytes {
    /// A store for keys of `width` bytes each, or of any width.
    fn new(width: Option<usize>) -> Self {
        match width {
            Some(width) => Self::Fixed {
                width,
                bytes: Vec::new(),
            },
            None => Self::empty_arena(),
        }
    }

    fn empty_arena() -> Self {
        Self::Arena {
            arena: Vec::new(),
            starts: Vec::new(),
            dead: 0,
        }
    }

    fn len(&self) -> usize {
        match self {
            Self::Fixed { width, bytes } => bytes.len() / width,
            Self::Arena { starts, .. } => starts.len(),
        }
    }

    fn get(&self, slot: usize) -> &[u8] {
        match self {
            Self::Fixed { width, bytes } => &bytes[slot * width..(slot + 1) * width],
            Self::Arena { arena, starts, .. } => {
                let (len, at) = read_len(arena, starts[slot]);
                &arena[at..at + len]
            }
        }
    }

    /// Writes `key` into slot `slot`, a slot whose key was removed or the next one.
    fn set(&mut self, slot: usize, key: &[u8]) {
        debug_assert!(slot <= self.len());
        if let Self::Fixed { width, .. } = self {
            if key.len() != *width {
                // Not the width the key types promised: keep going with an arena.
                self.make_arena();
            }
        }
        match self {
            Self::Fixed { width, bytes } => {
                let at = slot * *width;
                if at == bytes.len() {
                    bytes.extend_from_slice(key);
                } else {
                    bytes[at..at + key.len()].copy_from_slice(key);
                }
            }
            Self::Arena { arena, starts, .. } => {
                let start = arena.len();
                write_len(arena, key.len());
                arena.extend_from_slice(key);
                if slot == starts.len() {
                    starts.push(start);
                } else {
                    starts[slot] = start;
                }
            }
        }
    }

    /// Marks slot `slot`'s key dead: it is about to be overwritten or dropped.
    fn kill(&mut self, slot: usize) {
        if let Self::Arena {
            arena,
            starts,
            dead,
        } = self
        {
            let start = starts[slot];
            let (len, at) = read_len(arena, start);
            *dead += at - start + len;
        }
    }

    /// Copies slot `from`'s key to slot `to`, whose key was killed.
    fn copy(&mut self, from: usize, to: usize) {
        match self {
            Self::Fixed { width, bytes } => {
                bytes.copy_within(from * *width..(from + 1) * *width, to * *width);
            }
            Self::Arena { starts, .. } => starts[to] = starts[from],
        }
    }

    /// Keeps slots `0..len`; compacts the arena when it is more dead than alive.
    fn truncate(&mut self, len: usize) {
        match self {
            Self::Fixed { width, bytes } => bytes.truncate(len * *width),
            Self::Arena {
                arena,
                starts,
                dead,
            } => {
                starts.truncate(len);
                if *dead > COMPACT_MIN && *dead > arena.len() - *dead {
                    let mut packed = Vec::with_capacity(arena.len() - *dead);
                    for start in starts.iter_mut() {
                        let (n, at) = read_len(arena, *start);
                        *start = packed.len();
                        write_len(&mut packed, n);
                        packed.extend_from_slice(&arena[at..at + n]);
                    }
                    *arena = packed;
                    *dead = 0;
                }
            }
        }
    }

    /// Turns a fixed-width store into an arena.
    fn make_arena(&mut self) {
        let mut arena = Self::empty_arena();
        for slot in 0..self.len() {
            arena.set(slot, self.get(slot));
        }
        *self = arena;
    }

    #[cfg(test)]
    fn allocated_bytes(&self) -> usize {
        match self {
            Self::Fixed { bytes, .. } => bytes.capacity(),
            Self::Arena { arena, starts, .. } => {
                arena.capacity() + starts.capacity() * std::mem::size_of::<usize>()
            }
        }
    }
}

/// Appends `len` as LEB128.
#[allow(clippy::cast_possible_truncation)] // each byte takes 7 bits of `len`, masked
fn write_len(out: &mut Vec<u8>, mut len: usize) {
    while len >= 0x80 {
        out.push((len & 0x7f) as u8 | 0x80);
        len >>= 7;
    }
    out.push(len as u8);
}

/// Reads a LEB128 length at `at`: the length and where the bytes after it start.
fn read_len(arena: &[u8], mut at: usize) -> (usize, usize) {
    let mut len = 0;
    let mut shift = 0;
    loop {
        let b = arena[at];
        at += 1;
        len |= usize::from(b & 0x7f) << shift;
        if b < 0x80 {
            return (len, at);
        }
        shift += 7;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{ArrayRef, Int64Array, StringArray};
    use arrow_schema::{DataType, Field, Schema};

    use super::*;

    fn index_of(data_type: DataType) -> KeyIndex {
        let schema = Arc::new(Schema::new(vec![Field::new("k", data_type, false)]));
        KeyIndex::new(&schema, &[0])
    }

    /// Encodes `column` and inserts its rows at slots `0..`.
    fn fill(index: &mut KeyIndex, column: ArrayRef) -> Rows {
        let mut rows = index.empty_rows();
        index.append_rows(&mut rows, &[column]).unwrap();
        for (slot, row) in rows.iter().enumerate() {
            index.insert(index.hash(row.data()), row.data(), slot);
        }
        rows
    }

    fn find(index: &KeyIndex, rows: &Rows, r: usize) -> Option<usize> {
        let key = rows.row(r).data();
        index.find(index.hash(key), key)
    }

    #[test]
    fn smoke() {
        let mut index = index_of(DataType::Int64);
        let rows = fill(&mut index, Arc::new(Int64Array::from(vec![5, 7, 9])));
        assert!(matches!(index.keys, KeyBytes::Fixed { width: 9, .. }));
        assert_eq!(index.len(), 3);
        assert_eq!(
            (find(&index, &rows, 0), find(&index, &rows, 2)),
            (Some(0), Some(2))
        );
        // Remove 5 (slot 0), move 9 from slot 2 into it.
        index.remove(0);
        index.move_untouched(2, 0);
        index.truncate(2);
        assert_eq!(find(&index, &rows, 0), None);
        assert_eq!(find(&index, &rows, 2), Some(0));
        assert_eq!(find(&index, &rows, 1), Some(1));
        let key: ArrayRef = Arc::new(Int64Array::from(vec![1, 9]));
        assert_eq!(index.slot_of(&[key], 1), Some(0));
    }

    #[test]
    fn keys_of_varying_width_live_in_an_arena_that_compacts() {
        let mut index = index_of(DataType::Utf8);
        let long = "x".repeat(300);
        let names: Vec<String> = (0..4000).map(|i| format!("{long}{i}")).collect();
        let rows = fill(&mut index, Arc::new(StringArray::from_iter_values(&names)));
        assert!(matches!(index.keys, KeyBytes::Arena { .. }));
        let live = index.keys.allocated_bytes();
        // Remove the first 2,500 keys; the last 1,500 move down into their slots.
        for s in 0..2500 {
            index.remove(s);
        }
        for s in 2500..4000 {
            index.move_untouched(s, s - 2500);
        }
        index.truncate(1500);
        let KeyBytes::Arena { dead, arena, .. } = &index.keys else {
            unreachable!()
        };
        assert_eq!(*dead, 0, "compacted: most of the arena was dead");
        assert!(arena.len() * 2 <= live);
        for r in 0..4000 {
            let want = (r >= 2500).then(|| r - 2500);
            assert_eq!(find(&index, &rows, r), want, "key {r}");
        }
    }

    #[test]
    fn a_fixed_store_given_another_width_turns_into_an_arena() {
        let mut keys = KeyBytes::new(Some(2));
        keys.set(0, b"ab");
        keys.set(1, b"cd");
        keys.set(2, b"long key");
        assert!(matches!(keys, KeyBytes::Arena { .. }));
        assert_eq!(
            (keys.get(0), keys.get(1), keys.get(2)),
            (&b"ab"[..], &b"cd"[..], &b"long key"[..])
        );
    }
}
