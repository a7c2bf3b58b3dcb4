//! The slot layout of a cycle: which slots empty, which are written, and where each written
//! row and cell comes from.
//!
//! With `n` rows before the cycle, `removed` slots emptied (deleted or evicted keys) and
//! `new` keys, the table has `n2 = n - removed + new` rows after it, at slots `0..n2`:
//!
//! - a key that stays is rewritten in its slot;
//! - a new key fills an emptied slot below `n2`, lowest first, or goes at the end;
//! - a row left at or past `n2` moves into the emptied slots still open, so only the end of
//!   the table goes (the update's `removed` is a suffix).
//!
//! # Cost
//!
//! O(k log k) for k keys touched, plus with a capacity O(keys evicted × log k).

use super::recency::Recency;
use super::resolve::{Cell, Resolved};

/// Where a written row comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RowFrom {
    /// A touched key's row (index into [`Resolved::touched`]).
    Touched(usize),
    /// An untouched row moving from this slot.
    Moved(usize),
}

/// A slot written this cycle.
#[derive(Debug, Clone, Copy)]
pub(super) struct Write {
    pub(super) target: usize,
    pub(super) from: RowFrom,
}

/// Where one cell of a written row comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CellFrom {
    /// Row `row` of input batch `batch`.
    Input { batch: usize, row: usize },
    /// This slot's value before the cycle.
    Old(usize),
    /// A null: a fresh row's column that no operation gave.
    Null,
}

impl Write {
    /// Where cell `c` of this row comes from.
    pub(super) fn cell(&self, resolved: &Resolved, c: usize) -> CellFrom {
        match self.from {
            RowFrom::Moved(s) => CellFrom::Old(s),
            RowFrom::Touched(e) => match resolved.cells(e)[c].given() {
                Some((batch, row)) => CellFrom::Input { batch, row },
                None => match resolved.touched()[e] {
                    t if t.fresh => CellFrom::Null,
                    t => CellFrom::Old(
                        t.old
                            .expect("invariant: a key that is not fresh had a slot"),
                    ),
                },
            },
        }
    }

    /// Whether cell `c` keeps the slot's own value: a partial upsert of a key in its slot
    /// left column `c` out. The update reports such a cell as not modified.
    ///
    /// See also [`unchanged`](Self::unchanged).
    pub(super) fn keeps_own(&self, resolved: &Resolved, c: usize) -> bool {
        match self.from {
            RowFrom::Moved(_) => false,
            RowFrom::Touched(e) => {
                let t = resolved.touched()[e];
                !t.fresh && t.old == Some(self.target) && resolved.cells(e)[c] == Cell::KEEP
            }
        }
    }

    /// Whether cell `c` holds the same value after the cycle as before: it keeps the slot's
    /// own value, or it is a key column (`is_key`) of a key rewritten in its slot, whose
    /// bytes are the same. A chunk column whose writes all leave it unchanged is shared.
    pub(super) fn unchanged(&self, resolved: &Resolved, c: usize, is_key: bool) -> bool {
        match self.from {
            RowFrom::Moved(_) => false,
            RowFrom::Touched(e) => {
                let t = resolved.touched()[e];
                let in_place = t.old == Some(self.target);
                (in_place && is_key) || self.keeps_own(resolved, c)
            }
        }
    }
}

/// The layout of one cycle; its buffers are kept from cycle to cycle.
#[derive(Debug, Default)]
pub(super) struct Layout {
    /// Rows before the cycle.
    pub(super) n: usize,
    /// Rows after it.
    pub(super) n2: usize,
    /// Emptied slots before the cycle, ascending.
    pub(super) removals: Vec<usize>,
    /// Written slots, by target.
    pub(super) writes: Vec<Write>,
}

impl Layout {
    /// Lays out a cycle on a table of `n` rows: empties the slots of deleted keys and, with
    /// a capacity, of the least recently written keys past it (marking touched keys it evicts
    /// deleted), then places every row that is written or moves.
    pub(super) fn plan(
        &mut self,
        resolved: &mut Resolved,
        n: usize,
        capacity: Option<(usize, &Recency)>,
    ) {
        self.n = n;
        self.removals.clear();
        self.writes.clear();
        self.removals.extend(
            resolved
                .touched()
                .iter()
                .filter(|t| t.deleted)
                .filter_map(|t| t.old),
        );
        if capacity.is_some() || !self.removals.is_empty() {
            // Evictions skip touched keys, and rows may move: both ask which key a slot held.
            resolved.sort_by_old();
        }
        if let Some((capacity, recency)) = capacity {
            self.evict(resolved, n, capacity, recency);
        }
        self.removals.sort_unstable();
        let news = resolved
            .touched()
            .iter()
            .filter(|t| !t.deleted && t.old.is_none())
            .count();
        let n2 = n - self.removals.len() + news;
        self.n2 = n2;
        // Keys that stay in their slot, then new keys into the holes or at the end, then rows
        // past the new end (touched or not) into the holes left.
        for (e, t) in resolved.touched().iter().enumerate() {
            if let (false, Some(old)) = (t.deleted, t.old) {
                if old < n2 {
                    self.writes.push(Write {
                        target: old,
                        from: RowFrom::Touched(e),
                    });
                }
            }
        }
        let mut holes = self.removals.iter().copied().filter(|&s| s < n2);
        let mut end = n;
        for (e, t) in resolved.touched().iter().enumerate() {
            if t.deleted || t.old.is_some() {
                continue;
            }
            let target = holes.next().unwrap_or_else(|| {
                end += 1;
                end - 1
            });
            self.writes.push(Write {
                target,
                from: RowFrom::Touched(e),
            });
        }
        let mut removed = self.removals.iter().copied().peekable();
        for s in n2..n {
            while removed.next_if(|&x| x < s).is_some() {}
            if removed.next_if(|&x| x == s).is_some() {
                continue;
            }
            let target = holes
                .next()
                .expect("invariant: one hole per row past the new end");
            let from = match resolved.touched_at(s) {
                Some(e) => RowFrom::Touched(e),
                None => RowFrom::Moved(s),
            };
            self.writes.push(Write { target, from });
        }
        debug_assert!(holes.next().is_none());
        self.writes.sort_unstable_by_key(|w| w.target);
    }

    /// With a capacity: empties the slots of the least recently written untouched keys, and
    /// then of the least recently written touched ones, until the table fits it.
    fn evict(&mut self, resolved: &mut Resolved, n: usize, capacity: usize, recency: &Recency) {
        let news = resolved
            .touched()
            .iter()
            .filter(|t| !t.deleted && t.old.is_none())
            .count();
        let live = n - self.removals.len() + news;
        let mut excess = live.saturating_sub(capacity);
        for s in recency.oldest() {
            if excess == 0 {
                return;
            }
            if resolved.touched_at(s).is_none() {
                self.removals.push(s);
                excess -= 1;
            }
        }
        let mut order: Vec<usize> = (0..resolved.touched().len())
            .filter(|&e| !resolved.touched()[e].deleted)
            .collect();
        order.sort_unstable_by_key(|&e| resolved.touched()[e].seq);
        for e in order.into_iter().take(excess) {
            if let Some(old) = resolved.touched()[e].old {
                self.removals.push(old);
            }
            resolved.evict(e);
        }
    }

    /// The rows held both before and after the cycle: `0..kept`.
    pub(super) fn kept(&self) -> usize {
        self.n.min(self.n2)
    }

    /// The writes to slots held before and after the cycle: the update's modified rows.
    pub(super) fn modified(&self) -> &[Write] {
        let kept = self.kept();
        &self.writes[..self.writes.partition_point(|w| w.target < kept)]
    }
}
