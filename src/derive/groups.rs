//! Groups: dense ids for the distinct values of a table's key columns.

use std::hash::BuildHasher;

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, RecordBatch, StringArray};
use arrow_row::{RowConverter, SortField};
use arrow_schema::{DataType, Schema};
use hashbrown::HashTable;

use crate::error::Result;

/// Dense group ids (`0..len`) for the distinct values of the key columns `key` of a schema,
/// in order of first sight; with no key columns every row is in the one group 0. A group's
/// key is kept as bytes in one arena, so a new group costs no allocation of its own: a single
/// `Utf8` key column (the usual symbol) as a validity byte and the string's bytes, read
/// straight from the column; any other key as its Arrow row bytes. Ids are never reused:
/// memory is O(distinct keys ever seen).
pub(crate) struct Groups {
    key: Vec<usize>,
    encoding: Encoding,
    hasher: foldhash::fast::RandomState,
    index: HashTable<u32>,
    bytes: Vec<u8>,
    /// Group `g`'s key bytes are `bytes[offsets[g]..offsets[g + 1]]`.
    offsets: Vec<usize>,
    /// Group `g`'s hash, kept so the index grows without hashing the keys again.
    hashes: Vec<u64>,
}

/// How a group's key is kept as bytes.
enum Encoding {
    /// One `Utf8` column: `[0]` for a null, else `1` then the string's bytes.
    Utf8,
    /// Any other key columns: Arrow's row format.
    Rows(RowConverter),
}

/// The byte that starts a valid `Utf8` key.
const VALID: u8 = 1;

impl std::fmt::Debug for Groups {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Groups")
            .field("key", &self.key)
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

impl Groups {
    /// Groups over the columns `key` of `schema`.
    ///
    /// # Errors
    ///
    /// An Arrow error if a key column's type cannot be a key.
    pub(crate) fn new(schema: &Schema, key: &[usize]) -> Result<Self> {
        let encoding = if matches!(key, [k] if schema.field(*k).data_type() == &DataType::Utf8) {
            Encoding::Utf8
        } else {
            let fields = key
                .iter()
                .map(|&k| SortField::new(schema.field(k).data_type().clone()))
                .collect();
            Encoding::Rows(RowConverter::new(fields)?)
        };
        Ok(Self {
            key: key.to_vec(),
            encoding,
            hasher: foldhash::fast::RandomState::default(),
            index: HashTable::new(),
            bytes: Vec::new(),
            offsets: vec![0],
            hashes: Vec::new(),
        })
    }

    /// How many groups there are.
    pub(crate) fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    fn key_of(&self, g: u32) -> &[u8] {
        let g = g as usize;
        &self.bytes[self.offsets[g]..self.offsets[g + 1]]
    }

    /// The group of each row of `batch` (a batch of the schema the groups were made for),
    /// new groups made as met; `out` is cleared first. Cost O(rows).
    ///
    /// # Errors
    ///
    /// An Arrow error converting the key columns.
    pub(crate) fn ids(&mut self, batch: &RecordBatch, out: &mut Vec<u32>) -> Result<()> {
        out.clear();
        if self.key.is_empty() {
            // No key columns: every row is in the one group 0, whose key is empty.
            if self.len() == 0 && batch.num_rows() > 0 {
                self.offsets.push(0);
                self.hashes.push(0);
            }
            out.resize(batch.num_rows(), 0);
            return Ok(());
        }
        match &self.encoding {
            Encoding::Utf8 => {
                let col = batch.column(self.key[0]).as_string::<i32>();
                out.reserve(col.len());
                for i in 0..col.len() {
                    let key = col.is_valid(i).then(|| col.value(i).as_bytes());
                    let g = self.group_of_str(key);
                    out.push(g);
                }
            }
            Encoding::Rows(converter) => {
                let cols: Vec<ArrayRef> =
                    self.key.iter().map(|&k| batch.column(k).clone()).collect();
                let rows = converter.convert_columns(&cols)?;
                out.reserve(rows.num_rows());
                for row in &rows {
                    let bytes = row.data();
                    let h = self.hasher.hash_one(bytes);
                    let g = self.find_or_insert(
                        h,
                        |k| k == bytes,
                        |arena| {
                            arena.extend_from_slice(bytes);
                        },
                    );
                    out.push(g);
                }
            }
        }
        Ok(())
    }

    /// The group of a `Utf8` key (`None` for a null).
    fn group_of_str(&mut self, key: Option<&[u8]>) -> u32 {
        match key {
            Some(s) => self.find_or_insert(
                self.hasher.hash_one(s),
                |k| k.first() == Some(&VALID) && &k[1..] == s,
                |arena| {
                    arena.push(VALID);
                    arena.extend_from_slice(s);
                },
            ),
            None => self.find_or_insert(
                self.hasher.hash_one(()),
                |k| k == [0],
                |arena| {
                    arena.push(0);
                },
            ),
        }
    }

    /// The group whose key bytes `is_key` accepts (of hash `h`), made by `write` (which
    /// appends the key's bytes to the arena) if there is none.
    fn find_or_insert(
        &mut self,
        hash: u64,
        is_key: impl Fn(&[u8]) -> bool,
        write: impl FnOnce(&mut Vec<u8>),
    ) -> u32 {
        let (b, o) = (&self.bytes, &self.offsets);
        let key_of = |g: u32| &b[o[g as usize]..o[g as usize + 1]];
        if let Some(&g) = self.index.find(hash, |&g| is_key(key_of(g))) {
            return g;
        }
        let g = u32::try_from(self.len()).expect("invariant: fewer than 2^32 groups");
        write(&mut self.bytes);
        self.offsets.push(self.bytes.len());
        self.hashes.push(hash);
        let hashes = &self.hashes;
        self.index.insert_unique(hash, g, |&x| hashes[x as usize]);
        g
    }

    /// The key columns of groups `groups`, in that order. Cost O(groups).
    ///
    /// # Errors
    ///
    /// An Arrow error decoding the keys.
    pub(crate) fn keys(&self, groups: &[u32]) -> Result<Vec<ArrayRef>> {
        if self.key.is_empty() {
            return Ok(Vec::new());
        }
        match &self.encoding {
            Encoding::Utf8 => {
                let strs = groups.iter().map(|&g| {
                    let k = self.key_of(g);
                    (k[0] == VALID).then(|| {
                        std::str::from_utf8(&k[1..]).expect("invariant: stored from a str")
                    })
                });
                Ok(vec![Arc::new(strs.collect::<StringArray>())])
            }
            Encoding::Rows(converter) => {
                let parser = converter.parser();
                let rows = groups.iter().map(|&g| parser.parse(self.key_of(g)));
                Ok(converter.convert_rows(rows)?)
            }
        }
    }
}

/// The groups a cycle touched, each once, in order of first touch. O(1) per touch.
#[derive(Debug, Default)]
pub(crate) struct Touched {
    /// Per group, the cycle number that last touched it.
    stamp: Vec<u64>,
    cycle: u64,
    pub(crate) list: Vec<u32>,
}

impl Touched {
    /// Starts a cycle.
    pub(crate) fn begin(&mut self, groups: usize) {
        self.cycle += 1;
        self.list.clear();
        if self.stamp.len() < groups {
            self.stamp.resize(groups, 0);
        }
    }

    /// Marks group `g`; returns whether this is its first touch this cycle.
    pub(crate) fn touch(&mut self, g: u32) -> bool {
        let i = g as usize;
        if i >= self.stamp.len() {
            self.stamp.resize((i + 1).max(self.stamp.len() * 2), 0);
        }
        if self.stamp[i] == self.cycle {
            return false;
        }
        self.stamp[i] = self.cycle;
        self.list.push(g);
        true
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::cast::AsArray;
    use arrow_array::{Int64Array, RecordBatch, StringArray};
    use arrow_schema::{DataType, Field, Schema};

    use super::Groups;

    fn batch(syms: &[Option<&str>], ns: &[i64]) -> RecordBatch {
        let schema = Schema::new(vec![
            Field::new("Sym", DataType::Utf8, true),
            Field::new("N", DataType::Int64, false),
        ]);
        RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(StringArray::from(syms.to_vec())),
                Arc::new(Int64Array::from(ns.to_vec())),
            ],
        )
        .expect("batch")
    }

    #[test]
    fn a_string_key_keeps_null_empty_and_values_apart_and_gives_them_back() {
        let b = batch(
            &[Some("a"), None, Some(""), Some("a"), None, Some("bc")],
            &[0; 6],
        );
        let mut groups = Groups::new(&b.schema(), &[0]).expect("groups");
        let mut ids = Vec::new();
        groups.ids(&b, &mut ids).expect("ids");
        assert_eq!(ids, [0, 1, 2, 0, 1, 3]);
        let again = batch(&[Some("bc"), Some("z"), None], &[0; 3]);
        groups.ids(&again, &mut ids).expect("ids");
        assert_eq!(ids, [3, 4, 1]);
        let keys = groups.keys(&[4, 1, 2, 0]).expect("keys");
        let keys = keys[0].as_string::<i32>();
        let back: Vec<Option<&str>> = keys.iter().collect();
        assert_eq!(back, [Some("z"), None, Some(""), Some("a")]);
    }

    #[test]
    fn other_keys_use_the_row_format() {
        let b = batch(&[Some("a"), Some("a"), Some("b"), Some("a")], &[1, 2, 1, 1]);
        let mut groups = Groups::new(&b.schema(), &[0, 1]).expect("groups");
        let mut ids = Vec::new();
        groups.ids(&b, &mut ids).expect("ids");
        assert_eq!(ids, [0, 1, 2, 0]);
        let by_n = Groups::new(&b.schema(), &[1]);
        let mut by_n = by_n.expect("groups");
        by_n.ids(&b, &mut ids).expect("ids");
        assert_eq!(ids, [0, 1, 0, 0]);
        let keys = by_n.keys(&[1, 0]).expect("keys");
        assert_eq!(
            keys[0]
                .as_primitive::<arrow_array::types::Int64Type>()
                .values(),
            &[2, 1]
        );
    }
}
