//! `bars`: tumbling time buckets per key.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{Array, ArrayRef, Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};

use crate::derive::agg::{check_unique, Agg, Aggs, Emitted};
use crate::derive::groups::{Groups, Touched};
use crate::derive::op::{Delta, DeltaReader, OpInput, OpOutput, Operator, SourceKind};
use crate::error::Result;

/// The name of the bar start column of [`EngineHandle::bars`](crate::EngineHandle::bars)'s tables.
///
/// ```
/// assert_eq!(tickertable::derive::BAR_START_COLUMN, "BarStart");
/// ```
pub const BAR_START_COLUMN: &str = "BarStart";
const NONE: i64 = i64::MIN;

/// The operator of [`EngineHandle::bars`](crate::EngineHandle::bars): runs on the closed
/// bars' table, and hands the open bars to the open table as side output.
pub(crate) struct BarsOp {
    schema: SchemaRef,
    fields: Vec<Field>,
    time: usize,
    time_type: DataType,
    /// The bar length in the time column's unit.
    interval: i64,
    groups: Groups,
    aggs: Aggs,
    reader: DeltaReader,
    delta: Delta,
    ids: Vec<u32>,
    touched: Touched,
    /// Each group's open bar start (`NONE`: no open bar).
    open: Vec<i64>,
    closed_groups: Vec<u32>,
    closed_starts: Vec<i64>,
    closed: Emitted,
    opened: Emitted,
}

impl BarsOp {
    /// # Errors
    ///
    /// As [`Aggs::new`].
    pub(crate) fn new(
        table: &str,
        source: &SchemaRef,
        key: &[usize],
        time: usize,
        interval: i64,
        aggs: &[Agg],
    ) -> Result<Self> {
        let (aggs, fields) = Aggs::new(table, source, aggs, false)?;
        let time_type = source.field(time).data_type().clone();
        let mut all: Vec<Field> = key.iter().map(|&k| source.field(k).clone()).collect();
        all.push(Field::new(BAR_START_COLUMN, time_type.clone(), false));
        all.extend(fields.iter().cloned());
        let schema = Arc::new(Schema::new(all));
        check_unique(&schema)?;
        Ok(Self {
            groups: Groups::new(source, key)?,
            schema,
            fields,
            time,
            time_type,
            interval,
            aggs,
            reader: DeltaReader::new(SourceKind::Append),
            delta: Delta::default(),
            ids: Vec::new(),
            touched: Touched::default(),
            open: Vec::new(),
            closed_groups: Vec::new(),
            closed_starts: Vec::new(),
            closed: Emitted::default(),
            opened: Emitted::default(),
        })
    }

    /// The schema of both tables: the key columns, the bar's start, the aggregates.
    pub(crate) fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn batch(
        &self,
        groups: &[u32],
        starts: Vec<i64>,
        emitted: &mut Emitted,
    ) -> Result<RecordBatch> {
        let mut cols = self.groups.keys(groups)?;
        let starts: ArrayRef = Arc::new(Int64Array::from(starts));
        cols.push(arrow_cast::cast(&starts, &self.time_type)?);
        cols.extend(emitted.finish(&self.fields)?);
        Ok(RecordBatch::try_new(self.schema.clone(), cols)?)
    }
}

impl Operator for BarsOp {
    fn run(&mut self, input: &OpInput<'_>, out: &mut OpOutput) -> Result<()> {
        self.reader.read(input, &mut self.delta);
        if self.delta.new.is_empty() {
            return Ok(());
        }
        self.touched.begin(self.groups.len());
        self.closed_groups.clear();
        self.closed_starts.clear();
        for part in &self.delta.new {
            self.groups.ids(&part.batch, &mut self.ids)?;
            let n = self.groups.len();
            self.aggs.grow(n);
            if self.open.len() < n {
                self.open.resize(n, NONE);
            }
            let times = arrow_cast::cast(part.batch.column(self.time), &DataType::Int64)?;
            let times = times.as_primitive::<Int64Type>();
            let prepared = self.aggs.prepare(&part.batch)?;
            for (r, &g) in self.ids.iter().enumerate() {
                if times.is_null(r) {
                    continue;
                }
                let t = times.value(r);
                let start = t - t.rem_euclid(self.interval);
                let gi = g as usize;
                let open = self.open[gi];
                if open != NONE && start < open {
                    // Late: its bar has closed already.
                    continue;
                }
                if open != NONE && start > open {
                    self.aggs.emit(g, &mut self.closed);
                    self.closed_groups.push(g);
                    self.closed_starts.push(open);
                    self.aggs.reset(g);
                }
                self.open[gi] = start;
                self.aggs.add_row(&prepared, r, g);
                self.touched.touch(g);
            }
        }
        if !self.closed_groups.is_empty() {
            let groups = std::mem::take(&mut self.closed_groups);
            let starts = std::mem::take(&mut self.closed_starts);
            let mut closed = std::mem::take(&mut self.closed);
            out.batches.push(self.batch(&groups, starts, &mut closed)?);
            self.closed = closed;
            self.closed_groups = groups;
        }
        if !self.touched.list.is_empty() {
            let list = std::mem::take(&mut self.touched.list);
            let mut opened = std::mem::take(&mut self.opened);
            for &g in &list {
                self.aggs.emit(g, &mut opened);
            }
            let starts = list.iter().map(|&g| self.open[g as usize]).collect();
            out.side.push(self.batch(&list, starts, &mut opened)?);
            self.opened = opened;
            self.touched.list = list;
        }
        Ok(())
    }
}

/// The open table's operator: takes the open bars its source (the closed bars' table)
/// handed on.
pub(crate) struct SideFeed;

impl Operator for SideFeed {
    fn run(&mut self, input: &OpInput<'_>, out: &mut OpOutput) -> Result<()> {
        out.batches.extend(input.side.iter().cloned());
        Ok(())
    }
}
