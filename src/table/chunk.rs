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

/// The number of positions in `r`. Rows in memory always fit `usize` on the 64-bit targets
/// the crate runs on, so the cast cannot truncate there.
#[allow(clippy::cast_possible_truncation)]
pub(crate) fn range_len(r: &Range<u64>) -> usize {
    (r.end - r.start) as usize
}

/// Chunks with fewer rows than this are coalesced at the end of a table
/// ([`ChunkLog::push_coalescing`]).
pub(crate) const SMALL_CHUNK_ROWS: usize = 4096;

/// How many small chunks [`ChunkLog::push_coalescing`] lets gather at the end before it
/// merges them into one: one `concat` per this many small appends, not one per append.
const SMALL_RUN: usize = 8;

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
    /// The small chunks at the end appended since the last merge, not merged yet.
    unmerged: usize,
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

    /// Appends rows as [`push`](Self::push) does, then coalesces small chunks at the end so
    /// tables written a few rows per cycle keep close to their Arrow data size and a bounded
    /// number of chunks.
    ///
    /// Chunks of [`SMALL_CHUNK_ROWS`] rows or more (a publisher's batches, usually) are never
    /// touched: they stay as they were published, uncopied. Small chunks gather at the end
    /// until there are [`SMALL_RUN`] of them, which are then merged into one; then two merged
    /// chunks at the end merge while the older is no larger than the newer, as a binary
    /// counter does. So a row is copied at most `1 + log2(SMALL_CHUNK_ROWS)` times over its
    /// life (amortised O(rows appended) per cycle), a table ends in at most `SMALL_RUN - 1`
    /// unmerged and `log2(SMALL_CHUNK_ROWS)` merged small chunks, and a table written a few
    /// rows a cycle pays about one `concat` per four cycles. Small chunks left before a large
    /// one (fewer than `SMALL_RUN`) stay as they are.
    pub(crate) fn push_coalescing(&mut self, batch: RecordBatch) {
        let n = batch.num_rows();
        self.push(batch);
        if n == 0 {
            return;
        }
        if n >= SMALL_CHUNK_ROWS {
            self.unmerged = 0;
            return;
        }
        self.unmerged += 1;
        if self.unmerged < SMALL_RUN {
            return;
        }
        let run = self.unmerged.min(self.chunks.len());
        self.unmerged = 0;
        self.merge_last(run);
        while self.chunks.len() >= 2 {
            let last = &self.chunks[self.chunks.len() - 1];
            let prev = &self.chunks[self.chunks.len() - 2];
            let (p, l) = (prev.batch.num_rows(), last.batch.num_rows());
            if p >= SMALL_CHUNK_ROWS || l >= SMALL_CHUNK_ROWS || p > l {
                break;
            }
            if !self.merge_last(2) {
                break;
            }
        }
    }

    /// Merges the last `k` chunks into one. Returns false, leaving them, if they do not
    /// concatenate (chunks of one table always do).
    fn merge_last(&mut self, k: usize) -> bool {
        let len = self.chunks.len();
        if k < 2 || len < k {
            return true;
        }
        let first = &self.chunks[len - k];
        let batches: Vec<&RecordBatch> = (len - k..len).map(|i| &self.chunks[i].batch).collect();
        let Ok(merged) = arrow_select::concat::concat_batches(&first.batch.schema(), batches)
        else {
            return false;
        };
        let start = first.start;
        for _ in 0..k {
            self.chunks.pop_back();
        }
        self.chunks.push_back(Arc::new(Chunk {
            start,
            batch: merged,
        }));
        true
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
        self.unmerged = self.unmerged.min(self.chunks.len());
    }
}

impl ChunkLog {
    /// Drops the rows at and after `end` (a keyed table shrinking). O(chunks dropped + 1).
    pub(crate) fn truncate_to(&mut self, end: u64) {
        if end >= self.end {
            return;
        }
        let end = end.max(self.start);
        while let Some(back) = self.chunks.back() {
            if back.start >= end {
                self.chunks.pop_back();
            } else {
                if back.end() > end {
                    let len = usize::try_from(end - back.start)
                        .expect("invariant: a chunk's length fits in usize");
                    let sliced = Chunk {
                        start: back.start,
                        batch: back.batch.slice(0, len),
                    };
                    let last = self.chunks.len() - 1;
                    self.chunks.set(last, Arc::new(sliced));
                }
                break;
            }
        }
        self.end = end;
        // What is left at the end is not a run appended since the last merge.
        self.unmerged = 0;
    }

    /// Replaces chunk `index` with `batch`, which holds the rows from the same start; a
    /// longer last chunk moves `end`. O(log chunks).
    pub(crate) fn replace(&mut self, index: usize, batch: RecordBatch) {
        let start = self.chunks[index].start;
        debug_assert!(
            index + 1 == self.chunks.len()
                || start + batch.num_rows() as u64 == self.chunks[index + 1].start,
            "a chunk in the middle keeps its length"
        );
        self.end = self.end.max(start + batch.num_rows() as u64);
        self.chunks.set(index, Arc::new(Chunk { start, batch }));
    }

    /// Applies an update made by a keyed table (or any table): removes `removed` (a prefix or
    /// a suffix of the rows), replaces the rows at `modified` with `modified_batch`'s, and
    /// appends `added`'s rows. Cost O(chunks touched × chunk length).
    ///
    /// Returns the chunks the modified rows replaced, as they were (position of the first row,
    /// batch), in position order: what a viewer compares new cells with.
    ///
    /// # Errors
    ///
    /// A message saying what does not fit the rows held.
    pub(crate) fn apply_update(
        &mut self,
        removed: Range<u64>,
        modified: &[u64],
        modified_batch: Option<&RecordBatch>,
        added: Range<u64>,
        batches: &[RecordBatch],
    ) -> Result<Vec<(u64, RecordBatch)>, String> {
        let mut replaced = Vec::new();
        if !removed.is_empty() {
            if removed.start == self.start && removed.end <= self.end {
                self.evict_to(removed.end);
            } else if removed.end == self.end && removed.start >= self.start {
                self.truncate_to(removed.start);
            } else {
                return Err(format!(
                    "removed rows {removed:?} are neither a prefix nor a suffix of {:?}",
                    self.rows()
                ));
            }
        }
        if !modified.is_empty() {
            let batch = modified_batch.ok_or("modified positions without their rows")?;
            if batch.num_rows() != modified.len() {
                return Err("modified positions and rows differ in number".to_owned());
            }
            self.patch(modified, batch, &mut replaced)?;
        }
        if added.start > self.end {
            if !self.chunks.is_empty() {
                return Err("a gap in positions".to_owned());
            }
            self.skip_to(added.start);
        } else if added.start < self.end {
            return Err("rows added before the end of the rows held".to_owned());
        }
        let n: u64 = batches.iter().map(|b| b.num_rows() as u64).sum();
        if n != added.end - added.start {
            return Err("the added rows do not match their range".to_owned());
        }
        for b in batches {
            self.push(b.clone());
        }
        Ok(replaced)
    }

    /// Replaces the rows at `positions` (ascending, held) with `batch`'s rows, in order,
    /// rebuilding only the chunks they fall in.
    fn patch(
        &mut self,
        positions: &[u64],
        batch: &RecordBatch,
        replaced: &mut Vec<(u64, RecordBatch)>,
    ) -> Result<(), String> {
        if positions.windows(2).any(|w| w[0] >= w[1]) {
            return Err("modified positions are not ascending".to_owned());
        }
        if positions.first().is_some_and(|&p| p < self.start)
            || positions.last().is_some_and(|&p| p >= self.end)
        {
            return Err("modified positions outside the rows held".to_owned());
        }
        let mut i = 0;
        while i < positions.len() {
            let index = chunk_index(&self.chunks, positions[i]);
            let chunk = self.chunks[index].clone();
            let mut j = i;
            while j < positions.len() && positions[j] < chunk.end() {
                j += 1;
            }
            let mut indices: Vec<(usize, usize)> =
                (0..chunk.batch.num_rows()).map(|r| (0, r)).collect();
            for (k, &p) in positions[i..j].iter().enumerate() {
                let row = usize::try_from(p - chunk.start).expect("invariant: fits usize");
                indices[row] = (1, i + k);
            }
            let columns = (0..chunk.batch.num_columns())
                .map(|c| {
                    arrow_select::interleave::interleave(
                        &[chunk.batch.column(c).as_ref(), batch.column(c).as_ref()],
                        &indices,
                    )
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| e.to_string())?;
            let rebuilt =
                RecordBatch::try_new(chunk.batch.schema(), columns).map_err(|e| e.to_string())?;
            replaced.push((chunk.start, chunk.batch.clone()));
            self.chunks.set(
                index,
                Arc::new(Chunk {
                    start: chunk.start,
                    batch: rebuilt,
                }),
            );
            i = j;
        }
        Ok(())
    }
}

/// The index of the chunk holding `pos` (which must be held). O(log chunks).
pub(crate) fn chunk_index(chunks: &Chunks, pos: u64) -> usize {
    match chunks.binary_search_by(|c| {
        if c.end() <= pos {
            std::cmp::Ordering::Less
        } else if c.start > pos {
            std::cmp::Ordering::Greater
        } else {
            std::cmp::Ordering::Equal
        }
    }) {
        Ok(i) | Err(i) => i,
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
    let first = chunk_index(chunks, range.start);
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
    fn small_chunks_coalesce_like_a_binary_counter_and_big_ones_stay() {
        let mut log = ChunkLog::default();
        for i in 0..1000 {
            log.push_coalescing(batch(i..i + 1));
        }
        assert_eq!(all(&log), (0..1000).collect::<Vec<_>>());
        // 1000 = 0b1111101000: one chunk per set bit.
        let sizes: Vec<usize> = log.chunks().iter().map(|c| c.batch.num_rows()).collect();
        assert_eq!(sizes, vec![512, 256, 128, 64, 32, 8]);
        let starts: Vec<u64> = log.chunks().iter().map(|c| c.start).collect();
        assert_eq!(starts, vec![0, 512, 768, 896, 960, 992]);
        let big = i64::try_from(SMALL_CHUNK_ROWS).unwrap();
        log.push_coalescing(batch(1000..1000 + big));
        log.push_coalescing(batch(1000 + big..1000 + 2 * big));
        let n = log.chunks().len();
        assert_eq!(log.chunks()[n - 1].batch.num_rows(), SMALL_CHUNK_ROWS);
        assert_eq!(log.chunks()[n - 2].batch.num_rows(), SMALL_CHUNK_ROWS);
        assert_eq!(log.rows(), 0..u64::try_from(1000 + 2 * big).unwrap());
    }

    #[test]
    fn small_chunks_gather_a_run_before_one_merge() {
        let mut log = ChunkLog::default();
        for i in 0..7 {
            log.push_coalescing(batch(i..i + 1));
        }
        assert_eq!(log.chunks().len(), 7, "a run of 7 waits");
        log.push_coalescing(batch(7..8));
        let sizes: Vec<usize> = log.chunks().iter().map(|c| c.batch.num_rows()).collect();
        assert_eq!(sizes, vec![8], "the 8th merges the run");
        // A large chunk ends a run: the small ones before it stay as they are.
        log.push_coalescing(batch(8..11));
        let big = i64::try_from(SMALL_CHUNK_ROWS).unwrap();
        log.push_coalescing(batch(11..11 + big));
        let sizes: Vec<usize> = log.chunks().iter().map(|c| c.batch.num_rows()).collect();
        assert_eq!(sizes, vec![8, 3, SMALL_CHUNK_ROWS]);
        assert_eq!(all(&log), (0..11 + big).collect::<Vec<_>>());
    }

    #[test]
    fn the_chunk_count_of_a_row_at_a_time_table_stays_logarithmic() {
        let mut log = ChunkLog::default();
        for i in 0..20_000 {
            log.push_coalescing(batch(i..i + 1));
            assert!(log.chunks().len() <= 2 * 13 + 20_000 / SMALL_CHUNK_ROWS);
        }
        assert_eq!(all(&log), (0..20_000).collect::<Vec<_>>());
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
