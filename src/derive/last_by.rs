//! `last_by`: the latest row per key.

use std::collections::BTreeSet;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;

use crate::derive::filter::relabel;
use crate::derive::groups::{Groups, Touched};
use crate::derive::op::{
    delete_batch, take_rows, Delta, DeltaReader, OpInput, OpOutput, Operator, SourceKind,
};
use crate::error::Result;

const NONE: u64 = u64::MAX;

/// The operator of [`EngineHandle::last_by`](crate::EngineHandle::last_by).
pub(crate) struct LastByOp {
    schema: SchemaRef,
    key: Arc<[usize]>,
    groups: Groups,
    reader: DeltaReader,
    delta: Delta,
    ids: Vec<u32>,
    touched: Touched,
    /// Add-only sources: this cycle's pick per touched group, (part, row).
    picks: Vec<(usize, usize)>,
    /// Ring and keyed sources: each group's source positions.
    sets: Vec<BTreeSet<u64>>,
    /// The position each group's shown row came from (`NONE`: not shown).
    latest: Vec<u64>,
    /// A position written this cycle that is its group's newest (`NONE`: none).
    fresh: Vec<u64>,
    fetch: Vec<(u64, u32)>,
}

impl LastByOp {
    pub(crate) fn new(schema: SchemaRef, key: Arc<[usize]>, kind: SourceKind) -> Result<Self> {
        Ok(Self {
            groups: Groups::new(&schema, &key)?,
            schema,
            key,
            reader: DeltaReader::new(kind),
            delta: Delta::default(),
            ids: Vec::new(),
            touched: Touched::default(),
            picks: Vec::new(),
            sets: Vec::new(),
            latest: Vec::new(),
            fresh: Vec::new(),
            fetch: Vec::new(),
        })
    }

    fn run_add_only(&mut self, out: &mut OpOutput) -> Result<()> {
        self.touched.begin(self.groups.len());
        self.picks.clear();
        for (p, part) in self.delta.new.iter().enumerate().rev() {
            self.groups.ids(&part.batch, &mut self.ids)?;
            for (i, &g) in self.ids.iter().enumerate().rev() {
                if self.touched.touch(g) {
                    self.picks.push((p, i));
                }
            }
        }
        if self.picks.is_empty() {
            return Ok(());
        }
        let columns = (0..self.schema.fields().len())
            .map(|c| {
                let arrays: Vec<&dyn arrow_array::Array> = self
                    .delta
                    .new
                    .iter()
                    .map(|p| p.batch.column(c).as_ref())
                    .collect();
                arrow_select::interleave::interleave(&arrays, &self.picks)
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        out.batches
            .push(RecordBatch::try_new(self.schema.clone(), columns)?);
        Ok(())
    }

    fn run_retracting(&mut self, input: &OpInput<'_>, out: &mut OpOutput) -> Result<()> {
        self.touched.begin(self.groups.len());
        for part in &self.delta.old {
            self.groups.ids(&part.batch, &mut self.ids)?;
            for (i, &g) in self.ids.iter().enumerate() {
                let gi = g as usize;
                self.sets[gi].remove(&part.position(i));
                if self.touched.touch(g) {
                    self.fresh[gi] = NONE;
                }
            }
        }
        for part in &self.delta.new {
            self.groups.ids(&part.batch, &mut self.ids)?;
            let n = self.groups.len();
            if self.sets.len() < n {
                self.sets.resize_with(n, BTreeSet::new);
                self.latest.resize(n, NONE);
                self.fresh.resize(n, NONE);
            }
            for (i, &g) in self.ids.iter().enumerate() {
                let gi = g as usize;
                let p = part.position(i);
                if self.touched.touch(g) {
                    self.fresh[gi] = NONE;
                }
                self.sets[gi].insert(p);
                if self.sets[gi].last() == Some(&p) {
                    self.fresh[gi] = p;
                }
            }
        }
        self.fetch.clear();
        let mut deletes = Vec::new();
        for &g in &self.touched.list {
            let gi = g as usize;
            match self.sets[gi].last() {
                None => {
                    if self.latest[gi] != NONE {
                        deletes.push(g);
                        self.latest[gi] = NONE;
                    }
                }
                Some(&m) => {
                    if m != self.latest[gi] || self.fresh[gi] == m {
                        self.fetch.push((m, g));
                        self.latest[gi] = m;
                    }
                }
            }
        }
        if !deletes.is_empty() {
            let keys = self.groups.keys(&deletes)?;
            out.batches
                .push(delete_batch(&self.schema, &self.key, keys));
        }
        if !self.fetch.is_empty() {
            self.fetch.sort_unstable();
            let positions: Vec<u64> = self.fetch.iter().map(|&(p, _)| p).collect();
            let rows = take_rows(input.source.chunks(), &positions, &self.schema);
            out.batches.push(relabel(&self.schema, rows));
        }
        Ok(())
    }
}

impl Operator for LastByOp {
    fn run(&mut self, input: &OpInput<'_>, out: &mut OpOutput) -> Result<()> {
        self.reader.read(input, &mut self.delta);
        if self.reader.kind().retracts() {
            self.run_retracting(input, out)
        } else {
            self.run_add_only(out)
        }
    }
}
