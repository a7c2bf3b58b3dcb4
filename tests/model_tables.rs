//! Model tests: random operation sequences applied to a manual engine and to a plain
//! `VecDeque` model of every table kind, which must agree after every cycle.
//!
//! Each test case builds a publisher-fed table and a row-writer-fed table (each of a random
//! kind: append, blink, or ring with a random capacity, often smaller than the batches), plus
//! derived tables over them (`ring_table`, `blink_to_append_only` with and without a limit,
//! `tail`), and more derived tables created mid-run, also over derived tables. Every row holds
//! a unique value from a global counter, so comparing values checks order, loss and
//! duplication at once.
//!
//! After every cycle, for every table: the snapshot's values and row range equal the model's,
//! its step is the step of the table's last change, exactly one update arrived iff the model
//! changed, and two mirrors (one fed by a listener's updates, one by a subscription's events)
//! equal the snapshot. The mirrors check each update's shape on the way: `removed` is a prefix
//! of the old window and `added` starts at its end (or past it, when everything old went).

#![allow(
    clippy::unwrap_used,
    reason = "a test's helpers panic on the unexpected, as its #[test] fns do"
)]

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::mpsc;

use proptest::prelude::*;
use tickertable::test_util::{i64_column, int_batch, int_schema, manual_engine};
use tickertable::{
    DynamicWriterOptions, Engine, Event, ListenerHandle, PublisherOptions, RowWriter, Step,
    Subscription, Table, TableKind, TablePublisher, TableSnapshot, TableUpdate, TryRecvError,
    Value,
};

// ---------------------------------------------------------------------------------------------
// The model
// ---------------------------------------------------------------------------------------------

/// A table's retention as DESIGN.md §1 states it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Retain {
    Append { limit: Option<u64> },
    Blink { cap: Option<u64> },
    Ring { capacity: u64 },
}

/// One table of the model: the window `[start, start + rows.len())` and its values.
#[derive(Debug, Clone)]
struct ModelTable {
    retain: Retain,
    start: u64,
    rows: VecDeque<i64>,
    /// The step of the last cycle that changed the window (or of the table's creation).
    last_change: u64,
}

impl ModelTable {
    fn new(retain: Retain, step: u64) -> Self {
        Self {
            retain,
            start: 0,
            rows: VecDeque::new(),
            last_change: step,
        }
    }

    fn end(&self) -> u64 {
        self.start + self.rows.len() as u64
    }

    /// Applies one cycle's input at `step`; returns the rows added (what derived tables get).
    fn apply(&mut self, step: u64, input: &[i64]) -> Vec<i64> {
        let old_start = self.start;
        let old_end = self.end();
        let held = self.rows.len() as u64;
        let accepted = match self.retain {
            Retain::Append { limit: Some(l) } => input
                .len()
                .min(usize::try_from(l.saturating_sub(held)).unwrap()),
            _ => input.len(),
        };
        let e0 = old_end;
        let e1 = e0 + accepted as u64;
        let new_start = match self.retain {
            Retain::Append { .. } => old_start,
            Retain::Blink { cap } => cap.map_or(e0, |c| e0.max(e1.saturating_sub(c))),
            Retain::Ring { capacity } => old_start.max(e1.saturating_sub(capacity)),
        };
        let mut all: VecDeque<i64> = self
            .rows
            .iter()
            .chain(&input[..accepted])
            .copied()
            .collect();
        all.drain(..usize::try_from(new_start - old_start).unwrap());
        let added_from = old_end.max(new_start);
        let added: Vec<i64> = all
            .iter()
            .skip(usize::try_from(added_from - new_start).unwrap())
            .copied()
            .collect();
        let removed_any = new_start.min(old_end) > old_start;
        if removed_any || !added.is_empty() {
            self.last_change = step;
        }
        self.rows = all;
        self.start = new_start;
        added
    }

    fn window(&self) -> Range<u64> {
        self.start..self.end()
    }

    /// The model's values at positions `range` (clamped to the window).
    fn slice(&self, range: Range<u64>) -> Vec<i64> {
        let from = range.start.clamp(self.start, self.end());
        let to = range.end.clamp(from, self.end());
        self.rows
            .iter()
            .skip(usize::try_from(from - self.start).unwrap())
            .take(usize::try_from(to - from).unwrap())
            .copied()
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Mirrors built from what the engine delivers
// ---------------------------------------------------------------------------------------------

/// A copy of a table rebuilt from its updates alone.
#[derive(Debug, Default)]
struct Mirror {
    start: u64,
    rows: VecDeque<i64>,
    last_step: Option<Step>,
}

impl Mirror {
    fn from_snapshot(snapshot: &TableSnapshot) -> Self {
        let mut m = Self::default();
        m.reset(snapshot);
        m
    }

    fn reset(&mut self, snapshot: &TableSnapshot) {
        self.start = snapshot.rows().start;
        self.rows = i64_column(snapshot.batches(), 0).into();
        self.last_step = Some(snapshot.step());
    }

    fn end(&self) -> u64 {
        self.start + self.rows.len() as u64
    }

    /// Applies an update, checking its shape against the mirror's window.
    fn apply(&mut self, u: &TableUpdate, what: &str) {
        if let Some(last) = self.last_step {
            assert!(
                u.step() > last,
                "{what}: update at {} after {last}",
                u.step()
            );
        }
        self.last_step = Some(u.step());
        let (removed, added) = (u.removed(), u.added());
        assert!(
            !removed.is_empty() || !added.is_empty(),
            "{what}: an update that changes nothing at step {}",
            u.step()
        );
        if !removed.is_empty() {
            assert_eq!(
                removed.start,
                self.start,
                "{what}: removed {removed:?} is not a prefix of {:?}",
                self.start..self.end()
            );
            assert!(
                removed.end <= self.end(),
                "{what}: removed {removed:?} goes past {:?}",
                self.start..self.end()
            );
            let n = usize::try_from(removed.end - removed.start).unwrap();
            self.rows.drain(..n);
            self.start = removed.end;
        }
        assert_eq!(u.num_removed() as u64, removed.end - removed.start);
        assert!(
            added.start >= self.end(),
            "{what}: added {added:?} overlaps the kept rows {:?}",
            self.start..self.end()
        );
        if added.start > self.end() {
            assert!(
                self.rows.is_empty(),
                "{what}: added {added:?} leaves a gap after kept rows {:?}",
                self.start..self.end()
            );
            self.start = added.start;
        }
        let values = i64_column(u.batches(), 0);
        assert_eq!(
            values.len() as u64,
            added.end - added.start,
            "{what}: the batches do not hold exactly the added rows {added:?}"
        );
        assert_eq!(u.num_added(), values.len());
        self.rows.extend(values);
    }

    fn assert_equals(&self, model: &ModelTable, what: &str) {
        assert_eq!(
            self.start..self.end(),
            model.window(),
            "{what}: mirror window"
        );
        assert!(
            self.rows.iter().eq(model.rows.iter()),
            "{what}: mirror rows {:?} != model {:?}",
            self.rows,
            model.rows
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The engine side
// ---------------------------------------------------------------------------------------------

/// One table under test with its model, its listener mirror and its subscription mirror.
struct Tracked {
    name: String,
    table: Table,
    model: ModelTable,
    /// The tracked table this one is derived from.
    source: Option<usize>,
    updates: mpsc::Receiver<TableUpdate>,
    _listener: ListenerHandle,
    listen_mirror: Mirror,
    sub: Subscription,
    /// `None` until the subscription's first event (which must be a snapshot) is read.
    sub_mirror: Option<Mirror>,
}

impl Tracked {
    fn new(name: String, table: Table, model: ModelTable, source: Option<usize>) -> Self {
        let (tx, updates) = mpsc::channel();
        let listener = table
            .listen(move |u: &TableUpdate| {
                tx.send(u.clone()).unwrap();
            })
            .unwrap();
        let listen_mirror = Mirror::from_snapshot(&table.snapshot());
        let sub = table.subscribe().unwrap();
        Self {
            name,
            table,
            model,
            source,
            updates,
            _listener: listener,
            listen_mirror,
            sub,
            sub_mirror: None,
        }
    }

    /// Checks the table against its model at `step`: `cycled` says a cycle just ran (so an
    /// update is due iff the model changed), otherwise no update may have arrived.
    fn check(&mut self, step: u64, cycled: bool) {
        let what = format!("{} ({:?})", self.name, self.model.retain);
        let what = what.as_str();

        let snap = self.table.snapshot();
        assert_eq!(snap.rows(), self.model.window(), "{what}: snapshot rows");
        assert_eq!(snap.num_rows(), self.model.rows.len(), "{what}: num_rows");
        assert_eq!(self.table.num_rows(), self.model.rows.len(), "{what}");
        assert_eq!(snap.is_empty(), self.model.rows.is_empty(), "{what}");
        let values = i64_column(snap.batches(), 0);
        assert!(
            values.iter().eq(self.model.rows.iter()),
            "{what}: snapshot values {values:?} != model {:?}",
            self.model.rows
        );
        assert_eq!(
            snap.step(),
            Step::new(self.model.last_change),
            "{what}: snapshot step is the last change"
        );
        let (s, e) = (self.model.start, self.model.end());
        for range in [
            s + 1..e,
            s.saturating_sub(1)..s + 2,
            e.saturating_sub(3)..e + 5,
        ] {
            assert_eq!(
                i64_column(&snap.slice(range.clone()), 0),
                self.model.slice(range.clone()),
                "{what}: slice {range:?}"
            );
        }

        // The listener: exactly one update per changing cycle, at that cycle's step.
        let got: Vec<TableUpdate> = self.updates.try_iter().collect();
        let due = usize::from(cycled && self.model.last_change == step);
        assert_eq!(got.len(), due, "{what}: listener updates at step {step}");
        for u in &got {
            assert_eq!(u.step(), Step::new(step), "{what}: update step");
            self.listen_mirror.apply(u, what);
        }
        self.listen_mirror
            .assert_equals(&self.model, &format!("{what} listener"));

        // The subscription: a snapshot first, then the same updates.
        let mut n_updates = 0;
        loop {
            match self.sub.try_recv() {
                Ok(Event::Snapshot(snapshot)) => {
                    assert!(
                        self.sub_mirror.is_none(),
                        "{what}: a second snapshot in the subscription"
                    );
                    self.sub_mirror = Some(Mirror::from_snapshot(&snapshot));
                }
                Ok(Event::Update(u)) => {
                    let mirror = self
                        .sub_mirror
                        .as_mut()
                        .unwrap_or_else(|| panic!("{what}: an update before the snapshot"));
                    assert_eq!(
                        u.step(),
                        Step::new(step),
                        "{what}: subscription update step"
                    );
                    mirror.apply(&u, what);
                    n_updates += 1;
                }
                Err(TryRecvError::Empty) => break,
                other => panic!("{what}: unexpected subscription event {other:?}"),
            }
        }
        assert_eq!(
            n_updates, due,
            "{what}: subscription updates at step {step}"
        );
        self.sub_mirror
            .as_ref()
            .unwrap_or_else(|| panic!("{what}: no snapshot from the subscription"))
            .assert_equals(&self.model, &format!("{what} subscription"));
    }
}

/// How a derived table is made.
#[derive(Debug, Clone, Copy)]
enum Derive {
    Ring(usize),
    AppendOnly(Option<usize>),
    Tail(usize),
}

#[derive(Debug, Clone)]
enum Op {
    /// One `TablePublisher::add` of n rows.
    Publish(usize),
    /// n rows through `RowWriter::write_row`.
    WriteRows(usize),
    /// `begin`, n rows, optionally a cycle (the rows must stay invisible), `commit`/`rollback`.
    Txn {
        rows: usize,
        commit: bool,
        cycle_inside: bool,
    },
    RunCycle,
    /// Compare snapshots with the model between cycles: staged rows are not visible.
    CheckSnapshot,
    /// Replace every subscription with a fresh one (it starts from the current snapshot).
    Resubscribe,
    /// Create a derived table of an existing table (index modulo the table count) now.
    AddDerived(usize, Derive),
}

struct Harness {
    engine: Engine,
    publisher: TablePublisher,
    writer: RowWriter,
    tables: Vec<Tracked>,
    step: u64,
    next_value: i64,
    /// Staged, not yet cycled: the publisher's rows and the row writer's committed rows.
    pending_publish: Vec<i64>,
    pending_write: Vec<i64>,
}

const PUBLISHED: usize = 0;
const WRITTEN: usize = 1;
const MAX_TABLES: usize = 16;

fn retain_of(kind: TableKind) -> Retain {
    match kind {
        TableKind::Append => Retain::Append { limit: None },
        TableKind::Blink => Retain::Blink { cap: None },
        TableKind::Ring { capacity } => Retain::Ring {
            capacity: capacity as u64,
        },
        other => panic!("no model for {other:?}"),
    }
}

impl Harness {
    fn new(publish_kind: TableKind, write_kind: TableKind) -> Self {
        let engine = manual_engine();
        let (p_table, publisher) = engine
            .table_publisher(
                "published",
                int_schema(),
                PublisherOptions::default().with_kind(publish_kind),
            )
            .unwrap();
        let dtw = engine
            .dynamic_table_writer(
                "written",
                int_schema(),
                DynamicWriterOptions::default().with_kind(write_kind),
            )
            .unwrap();
        let writer = dtw.row_writer().unwrap();
        assert_eq!(p_table.kind(), publish_kind);
        assert_eq!(dtw.table().kind(), write_kind);
        let tables = vec![
            Tracked::new(
                "published".into(),
                p_table,
                ModelTable::new(retain_of(publish_kind), 0),
                None,
            ),
            Tracked::new(
                "written".into(),
                dtw.table().clone(),
                ModelTable::new(retain_of(write_kind), 0),
                None,
            ),
        ];
        Self {
            engine,
            publisher,
            writer,
            tables,
            step: 0,
            next_value: 0,
            pending_publish: Vec::new(),
            pending_write: Vec::new(),
        }
    }

    fn values(&mut self, n: usize) -> Vec<i64> {
        let v: Vec<i64> = (self.next_value..).take(n).collect();
        self.next_value += i64::try_from(n).unwrap();
        v
    }

    fn derive(&mut self, src: usize, how: Derive) {
        if self.tables.len() >= MAX_TABLES {
            return;
        }
        let name = format!("derived{}_{how:?}_of_{}", self.tables.len(), src);
        let source = self.tables[src].table.clone();
        let source_retain = self.tables[src].model.retain;
        let (table, retain) = match how {
            Derive::Ring(cap) => (
                self.engine.ring_table(&name, &source, cap).unwrap(),
                Retain::Ring {
                    capacity: cap as u64,
                },
            ),
            Derive::AppendOnly(limit) => (
                self.engine
                    .blink_to_append_only(&name, &source, limit)
                    .unwrap(),
                Retain::Append {
                    limit: limit.map(|l| l as u64),
                },
            ),
            Derive::Tail(n) => {
                let retain = if matches!(source_retain, Retain::Blink { .. }) {
                    Retain::Blink {
                        cap: Some(n as u64),
                    }
                } else {
                    Retain::Ring { capacity: n as u64 }
                };
                (self.engine.tail(&name, &source, n).unwrap(), retain)
            }
        };
        assert_eq!(table.kind(), kind_of(retain), "{name}");
        // A derived table starts with its source's current rows, at the current step.
        let mut model = ModelTable::new(retain, self.step);
        let current: Vec<i64> = self.tables[src].model.rows.iter().copied().collect();
        model.apply(self.step, &current);
        model.last_change = self.step;
        self.tables
            .push(Tracked::new(name, table, model, Some(src)));
        // The new table is as the model says from the start.
        let step = self.step;
        self.tables.last_mut().unwrap().check(step, false);
    }

    /// Runs a cycle on the engine and on the model, then checks every table. `open` rows of
    /// the row writer are in an open transaction: staged, but not drained.
    fn run_cycle(&mut self, open: usize) {
        assert_eq!(self.writer.staged_rows(), self.pending_write.len() + open);
        self.step += 1;
        assert_eq!(self.engine.run_cycle(), Step::new(self.step));
        assert_eq!(self.engine.step(), Step::new(self.step));
        let step = self.step;
        let inputs = [
            std::mem::take(&mut self.pending_publish),
            std::mem::take(&mut self.pending_write),
        ];
        let mut added: Vec<Vec<i64>> = Vec::with_capacity(self.tables.len());
        for (i, t) in self.tables.iter_mut().enumerate() {
            let input = match t.source {
                None => inputs[i].clone(),
                Some(src) => added[src].clone(),
            };
            added.push(t.model.apply(step, &input));
        }
        for t in &mut self.tables {
            t.check(step, true);
        }
        assert_eq!(
            self.writer.staged_rows(),
            open,
            "only open rows stay staged"
        );
    }

    fn check(&mut self, cycled: bool) {
        let step = self.step;
        for t in &mut self.tables {
            t.check(step, cycled);
        }
        assert_eq!(
            self.writer.staged_rows(),
            self.pending_write.len(),
            "row writer's staged rows"
        );
    }

    fn write_rows(&mut self, n: usize) -> Vec<i64> {
        let values = self.values(n);
        for &v in &values {
            self.writer.write_row(&[Value::Int(v)]).unwrap();
        }
        values
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Publish(n) => {
                let values = self.values(n);
                self.publisher.add(int_batch(values.clone())).unwrap();
                self.pending_publish.extend(values);
            }
            Op::WriteRows(n) => {
                let values = self.write_rows(n);
                self.pending_write.extend(values);
            }
            Op::Txn {
                rows,
                commit,
                cycle_inside,
            } => {
                self.writer.begin().unwrap();
                assert!(self.writer.in_transaction());
                let values = self.write_rows(rows);
                if cycle_inside {
                    // The open transaction's rows must not show; rows before `begin` do.
                    self.run_cycle(rows);
                }
                if commit {
                    self.writer.commit().unwrap();
                    self.pending_write.extend(values);
                } else {
                    self.writer.rollback().unwrap();
                }
                assert!(!self.writer.in_transaction());
            }
            Op::RunCycle => self.run_cycle(0),
            Op::CheckSnapshot => self.check(false),
            Op::Resubscribe => {
                for t in &mut self.tables {
                    t.sub = t.table.subscribe().unwrap();
                    t.sub_mirror = None;
                }
                self.check(false);
            }
            Op::AddDerived(src, how) => self.derive(src % self.tables.len(), how),
        }
    }
}

fn kind_of(retain: Retain) -> TableKind {
    match retain {
        Retain::Append { .. } => TableKind::Append,
        Retain::Blink { .. } => TableKind::Blink,
        Retain::Ring { capacity } => TableKind::Ring {
            capacity: usize::try_from(capacity).unwrap(),
        },
    }
}

// ---------------------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------------------

fn small_capacity() -> impl Strategy<Value = usize> {
    prop_oneof![Just(1usize), 1usize..12, 12usize..40]
}

fn table_kind() -> impl Strategy<Value = TableKind> {
    prop_oneof![
        Just(TableKind::Append),
        Just(TableKind::Blink),
        small_capacity().prop_map(|capacity| TableKind::Ring { capacity }),
    ]
}

fn derive() -> impl Strategy<Value = Derive> {
    prop_oneof![
        small_capacity().prop_map(Derive::Ring),
        proptest::option::of(0usize..40).prop_map(Derive::AppendOnly),
        small_capacity().prop_map(Derive::Tail),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0usize..30).prop_map(Op::Publish),
        3 => (1usize..10).prop_map(Op::WriteRows),
        2 => (0usize..8, any::<bool>(), any::<bool>()).prop_map(|(rows, commit, cycle_inside)| {
            Op::Txn { rows, commit, cycle_inside }
        }),
        4 => Just(Op::RunCycle),
        1 => Just(Op::CheckSnapshot),
        1 => Just(Op::Resubscribe),
        1 => (any::<usize>(), derive()).prop_map(|(src, how)| Op::AddDerived(src, how)),
    ]
}

/// Derived tables made before any row: each of the three derivations of each base table.
fn initial_derived() -> impl Strategy<Value = Vec<(usize, Derive)>> {
    (
        small_capacity(),
        proptest::option::of(0usize..40),
        small_capacity(),
        small_capacity(),
        proptest::option::of(0usize..40),
        small_capacity(),
    )
        .prop_map(|(r0, l0, t0, r1, l1, t1)| {
            vec![
                (PUBLISHED, Derive::Ring(r0)),
                (PUBLISHED, Derive::AppendOnly(l0)),
                (PUBLISHED, Derive::Tail(t0)),
                (WRITTEN, Derive::Ring(r1)),
                (WRITTEN, Derive::AppendOnly(l1)),
                (WRITTEN, Derive::Tail(t1)),
            ]
        })
}

fn run_model(
    publish_kind: TableKind,
    write_kind: TableKind,
    derived: &[(usize, Derive)],
    ops: &[Op],
) {
    let mut h = Harness::new(publish_kind, write_kind);
    for &(src, how) in derived {
        h.derive(src, how);
    }
    h.check(false);
    for op in ops {
        h.apply(op);
    }
    // Two final cycles: everything staged lands, then blink tables empty.
    h.run_cycle(0);
    h.run_cycle(0);
}

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if cfg!(miri) { 4 } else { 64 });
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[test]
fn smoke() {
    run_model(
        TableKind::Ring { capacity: 3 },
        TableKind::Blink,
        &[
            (PUBLISHED, Derive::Ring(2)),
            (PUBLISHED, Derive::AppendOnly(Some(4))),
            (PUBLISHED, Derive::Tail(1)),
            (WRITTEN, Derive::Ring(2)),
            (WRITTEN, Derive::AppendOnly(None)),
            (WRITTEN, Derive::Tail(2)),
        ],
        &[
            Op::Publish(5),
            Op::WriteRows(3),
            Op::CheckSnapshot,
            Op::RunCycle,
            Op::Txn {
                rows: 2,
                commit: true,
                cycle_inside: true,
            },
            Op::RunCycle,
            Op::RunCycle,
        ],
    );
}

#[test]
fn the_model_itself_follows_the_design_table() {
    let mut ring = ModelTable::new(Retain::Ring { capacity: 4 }, 0);
    assert_eq!(ring.apply(1, &[0, 1]), vec![0, 1]);
    assert_eq!(
        ring.apply(2, &[2, 3, 4, 5, 6, 7, 8, 9, 10, 11]),
        vec![8, 9, 10, 11]
    );
    assert_eq!((ring.window(), ring.last_change), (8..12, 2));
    assert!(ring.apply(3, &[]).is_empty());
    assert_eq!(ring.last_change, 2);

    let mut blink = ModelTable::new(Retain::Blink { cap: Some(2) }, 0);
    assert_eq!(blink.apply(1, &[0, 1, 2]), vec![1, 2]);
    assert_eq!(blink.window(), 1..3);
    assert!(blink.apply(2, &[]).is_empty());
    assert_eq!((blink.window(), blink.last_change), (3..3, 2));
    blink.apply(3, &[]);
    assert_eq!(blink.last_change, 2);

    let mut append = ModelTable::new(Retain::Append { limit: Some(3) }, 0);
    assert_eq!(append.apply(1, &[0, 1]), vec![0, 1]);
    assert_eq!(append.apply(2, &[2, 3]), vec![2]);
    assert!(append.apply(3, &[4]).is_empty());
    assert_eq!((append.window(), append.last_change), (0..3, 2));
}

#[test]
fn a_ring_fed_more_than_its_capacity_in_one_cycle_matches_the_model() {
    run_model(
        TableKind::Ring { capacity: 1 },
        TableKind::Ring { capacity: 2 },
        &[
            (PUBLISHED, Derive::Ring(1)),
            (PUBLISHED, Derive::Tail(3)),
            (WRITTEN, Derive::AppendOnly(Some(0))),
        ],
        &[
            Op::Publish(7),
            Op::Publish(0),
            Op::Publish(3),
            Op::WriteRows(9),
            Op::RunCycle,
            Op::RunCycle,
            Op::Publish(1),
            Op::RunCycle,
        ],
    );
}

#[test]
fn derived_tables_made_mid_run_start_with_their_sources_rows() {
    run_model(
        TableKind::Blink,
        TableKind::Append,
        &[],
        &[
            Op::Publish(4),
            Op::WriteRows(5),
            Op::RunCycle,
            Op::AddDerived(0, Derive::Tail(2)),
            Op::AddDerived(0, Derive::AppendOnly(Some(5))),
            Op::AddDerived(7, Derive::Tail(3)),
            Op::AddDerived(3, Derive::Ring(2)),
            Op::Publish(3),
            Op::RunCycle,
            Op::RunCycle,
        ],
    );
}

#[test]
fn a_transaction_open_across_a_cycle_stays_invisible_until_commit() {
    run_model(
        TableKind::Append,
        TableKind::Blink,
        &[(WRITTEN, Derive::AppendOnly(None))],
        &[
            Op::WriteRows(2),
            Op::Txn {
                rows: 3,
                commit: true,
                cycle_inside: true,
            },
            Op::WriteRows(1),
            Op::Txn {
                rows: 4,
                commit: false,
                cycle_inside: true,
            },
            Op::RunCycle,
        ],
    );
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn every_table_kind_and_derivation_agrees_with_the_model_after_every_cycle(
        publish_kind in table_kind(),
        write_kind in table_kind(),
        derived in initial_derived(),
        ops in proptest::collection::vec(op(), 1..40),
    ) {
        run_model(publish_kind, write_kind, &derived, &ops);
    }
}
