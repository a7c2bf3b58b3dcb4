//! Groups: dense ids for the distinct values of a table's key columns.

use std::hash::BuildHasher;

use arrow_array::{ArrayRef, RecordBatch};
use arrow_row::{RowConverter, SortField};
use arrow_schema::Schema;
use hashbrown::HashTable;

use crate::error::Result;

/// Dense group ids (`0..len`) for the distinct values of the key columns `key` of a schema,
/// in order of first sight; with no key columns every row is in the one group 0. A group's key is kept as its Arrow row bytes in one arena, so a
/// new group costs no allocation of its own. Ids are never reused: memory is O(distinct keys
/// ever seen).
pub(crate) struct Groups {
    key: Vec<usize>,
    converter: RowConverter,
    hasher: foldhash::fast::RandomState,
    index: HashTable<u32>,
    bytes: Vec<u8>,
    /// Group `g`'s key bytes are `bytes[offsets[g]..offsets[g + 1]]`.
    offsets: Vec<usize>,
}

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
        let fields = key
            .iter()
            .map(|&k| SortField::new(schema.field(k).data_type().clone()))
            .collect();
        Ok(Self {
            key: key.to_vec(),
            converter: RowConverter::new(fields)?,
            hasher: foldhash::fast::RandomState::default(),
            index: HashTable::new(),
            bytes: Vec::new(),
            offsets: vec![0],
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
            }
            out.resize(batch.num_rows(), 0);
            return Ok(());
        }
        let cols: Vec<ArrayRef> = self.key.iter().map(|&k| batch.column(k).clone()).collect();
        let rows = self.converter.convert_columns(&cols)?;
        out.reserve(rows.num_rows());
        for row in &rows {
            let bytes = row.data();
            let h = self.hasher.hash_one(bytes);
            let (b, o) = (&self.bytes, &self.offsets);
            let key_of = |g: u32| &b[o[g as usize]..o[g as usize + 1]];
            let g = if let Some(&g) = self.index.find(h, |&g| key_of(g) == bytes) {
                g
            } else {
                let g = u32::try_from(self.len()).expect("invariant: fewer than 2^32 groups");
                self.bytes.extend_from_slice(bytes);
                self.offsets.push(self.bytes.len());
                let (b, o, hasher) = (&self.bytes, &self.offsets, &self.hasher);
                self.index.insert_unique(h, g, |&x| {
                    hasher.hash_one(&b[o[x as usize]..o[x as usize + 1]])
                });
                g
            };
            out.push(g);
        }
        Ok(())
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
        let parser = self.converter.parser();
        let rows = groups.iter().map(|&g| parser.parse(self.key_of(g)));
        Ok(self.converter.convert_rows(rows)?)
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
