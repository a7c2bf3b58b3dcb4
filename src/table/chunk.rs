//! Chunked storage: a persistent deque of Arrow `RecordBatch`es addressed by row position.
//!
//! A [`ChunkLog`] holds the rows at positions `[start, end)` as a sequence of [`Chunk`]s, each
//! an immutable `RecordBatch` tagged with the position of its first row. Appending pushes a
//! chunk; eviction pops whole chunks and slices the first one (`RecordBatch::slice` is O(1)).
//! The sequence is an `imbl::Vector` (an RRB tree), so a snapshot clones it in O(1) and shares
//! every chunk with the table: publishing a snapshot each cycle never copies rows and never
//! costs O(table size).

use std::ops::Range;
use std::sync::Arc;

use arrow_array::RecordBatch;

/// One stored `RecordBatch` and the position of its first row.
#[derive(Debug, Clone)]
pub(crate) struct Chunk {
    pub(crate) start: u64,
    pub(crate) batch: RecordBatch,
}

impl Chunk {
    pub(crate) fn end(&self) -> u64 {
        self.start + self.batch.num_rows() as u64
    }
}

/// A table's chunks. Each is behind an `Arc` so the copy-on-write of a tree node shared with
/// a snapshot copies pointers, not `RecordBatch`es (whose clone allocates a column `Vec`).
pub(crate) type Chunks = imbl::Vector<Arc<Chunk>>;

/// The rows `[start, end)` of a table, in chunks.
#[derive(Debug, Clone, Default)]
pub(crate) struct ChunkLog {
    chunks: Chunks,
    start: u64,
    end: u64,
}

impl ChunkLog {
    pub(crate) fn rows(&self) -> Range<u64> {
        self.start..self.end
    }

    pub(crate) fn chunks(&self) -> &Chunks {
        &self.chunks
    }

    /// Appends rows at positions `[end, end + batch.num_rows())`. O(1) amortised.
    pub(crate) fn push(&mut self, batch: RecordBatch) {
        let n = batch.num_rows() as u64;
        if n > 0 {
            self.chunks.push_back(Arc::new(Chunk {
                start: self.end,
                batch,
            }));
        }
        self.end += n;
    }

    /// Moves `end` forward over rows that are not stored (they were evicted before they
    /// were ever stored). Only valid when the log is empty after the skip.
    pub(crate) fn skip_to(&mut self, end: u64) {
        debug_assert!(end >= self.end);
        self.end = end;
        self.evict_to(end);
    }

    /// Drops the rows before `new_start`. O(chunks dropped + 1).
    pub(crate) fn evict_to(&mut self, new_start: u64) {
        if new_start <= self.start {
            return;
        }
        let new_start = new_start.min(self.end);
        while let Some(front) = self.chunks.front() {
            if front.end() <= new_start {
                self.chunks.pop_front();
            } else {
                if front.start < new_start {
                    let skip = usize::try_from(new_start - front.start)
                        .expect("invariant: a chunk's length fits in usize");
                    let len = front.batch.num_rows() - skip;
                    let sliced = Chunk {
                        start: new_start,
                        batch: front.batch.slice(skip, len),
                    };
                    self.chunks.set(0, Arc::new(sliced));
                }
                break;
            }
        }
        self.start = new_start;
    }
}

/// The chunks of `chunks` that hold positions in `range`, sliced to it, in order.
///
/// Cost O(log chunks + chunks returned); no row is copied.
pub(crate) fn slice_chunks(chunks: &Chunks, range: Range<u64>) -> Vec<RecordBatch> {
    let mut out = Vec::new();
    if range.is_empty() || chunks.is_empty() {
        return out;
    }
    // First chunk whose end is past range.start.
    let first = match chunks.binary_search_by(|c| {
        if c.end() <= range.start {
            std::cmp::Ordering::Less
        } else if c.start > range.start {
            std::cmp::Ordering::Greater
        } else {
            std::cmp::Ordering::Equal
        }
    }) {
        Ok(i) | Err(i) => i,
    };
    // A focus narrowed to the tail starts there in O(log chunks); `iter().skip` would walk.
    for chunk in chunks.focus().narrow(first..) {
        if chunk.start >= range.end {
            break;
        }
        let from = range.start.max(chunk.start);
        let to = range.end.min(chunk.end());
        if from < to {
            let offset = usize::try_from(from - chunk.start).expect("invariant: fits usize");
            let len = usize::try_from(to - from).expect("invariant: fits usize");
            out.push(chunk.batch.slice(offset, len));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::Int64Array;
    use arrow_schema::{DataType, Field, Schema};

    use super::*;

    fn batch(values: Range<i64>) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
        RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from_iter_values(values))]).unwrap()
    }

    fn values(batches: &[RecordBatch]) -> Vec<i64> {
        batches
            .iter()
            .flat_map(|b| {
                let a = b.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
                a.values().to_vec()
            })
            .collect()
    }

    fn all(log: &ChunkLog) -> Vec<i64> {
        values(
            &log.chunks()
                .iter()
                .map(|c| c.batch.clone())
                .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn smoke() {
        let mut log = ChunkLog::default();
        log.push(batch(0..3));
        log.push(batch(3..5));
        assert_eq!(log.rows(), 0..5);
        assert_eq!(all(&log), vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn evict_pops_whole_chunks_and_slices_the_first() {
        let mut log = ChunkLog::default();
        log.push(batch(0..3));
        log.push(batch(3..5));
        log.push(batch(5..9));
        log.evict_to(4);
        assert_eq!(log.rows(), 4..9);
        assert_eq!(log.chunks().len(), 2);
        assert_eq!(log.chunks()[0].start, 4);
        assert_eq!(all(&log), vec![4, 5, 6, 7, 8]);
        log.evict_to(9);
        assert!(log.chunks().is_empty());
        assert_eq!(log.rows(), 9..9);
    }

    #[test]
    fn empty_batches_take_no_chunk() {
        let mut log = ChunkLog::default();
        log.push(batch(0..0));
        assert!(log.chunks().is_empty());
        assert_eq!(log.rows(), 0..0);
    }

    #[test]
    fn slice_chunks_returns_exactly_the_range() {
        let mut log = ChunkLog::default();
        for i in 0..10 {
            log.push(batch(i * 10..i * 10 + 10));
        }
        log.evict_to(15);
        for (from, to) in [
            (15, 16),
            (15, 100),
            (19, 41),
            (40, 40),
            (0, 20),
            (99, 200),
            (50, 60),
        ] {
            let got = values(&slice_chunks(log.chunks(), from..to));
            let want: Vec<i64> = (from.max(15)..to.min(100))
                .map(|v| i64::try_from(v).unwrap())
                .collect();
            assert_eq!(got, want, "range {from}..{to}");
        }
        let sliced = slice_chunks(log.chunks(), 19..41);
        assert_eq!(sliced.len(), 4, "19, 20..30, 30..40, 40");
    }
}
