//! Test rig: a manual engine with a blink `trades` table, a ring of its last 5 rows and an
//! append-only history (or, [`Rig::keyed`], one keyed `quotes` table); subscriptions pumped
//! into an [`App`] on a fake clock; screens drawn with `TestBackend` and read back as text
//! with times of day masked.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::{Float64Array, Int64Array, RecordBatch, StringArray, TimestampNanosecondArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::style::Style;
use ratatui::Terminal;
use tickertable::flight::MessageMeta;
use tickertable::{
    Engine, Mirror, PublisherOptions, Step, Subscription, SubscriptionOptions, TableKind,
    TablePublisher,
};

use crate::action::Action;
use crate::app::App;
use crate::source::{
    Change, DataEvent, DataSource, Embedded, Follower, Link, Period, SourceStatus,
};
use tickertable_tools::demo::trade_schema;

/// Table indices in the rig.
pub(crate) const TRADES: usize = 0;
pub(crate) const RECENT: usize = 1;
pub(crate) const HISTORY: usize = 2;
/// The one table of a keyed rig.
pub(crate) const QUOTES: usize = 0;

/// 09:30:00 on some day, in ns.
const T0_NS: i64 =
    1_700_000_000_000_000_000 / 86_400_000_000_000 * 86_400_000_000_000 + 34_200_000_000_000;

pub(crate) struct Rig {
    pub(crate) engine: Engine,
    /// The tables at start, in the App's order (a dropped one stays).
    tables: Vec<tickertable::Table>,
    publisher: TablePublisher,
    /// Each table's subscription, and its events applied to a mirror as `Embedded` does.
    subs: Vec<(Subscription, Follower)>,
    pub(crate) app: App,
    pub(crate) now: Instant,
    seq: i64,
}

impl Rig {
    pub(crate) fn new(width: u16, height: u16) -> Self {
        Self::with_options(width, height, SubscriptionOptions::default())
    }

    pub(crate) fn with_options(width: u16, height: u16, options: SubscriptionOptions) -> Self {
        let engine = Engine::builder().manual().build().unwrap();
        let (trades, publisher) = engine
            .table_publisher("trades", trade_schema(), PublisherOptions::default())
            .unwrap();
        engine.ring_table("recent", &trades, 5).unwrap();
        engine
            .blink_to_append_only("history", &trades, None)
            .unwrap();
        Self::start(engine, publisher, width, height, options)
    }

    /// A rig with one keyed table, `quotes` (see [`quote_schema`]), keyed by `Sym`, holding
    /// the `capacity` most recently written keys if given.
    pub(crate) fn keyed(width: u16, height: u16, capacity: Option<usize>) -> Self {
        let engine = tickertable::test_util::manual_engine();
        let options = PublisherOptions::default()
            .with_kind(TableKind::Keyed { capacity })
            .with_key(["Sym"]);
        let (_, publisher) = engine
            .table_publisher("quotes", quote_schema(), options)
            .unwrap();
        Self::start(
            engine,
            publisher,
            width,
            height,
            SubscriptionOptions::default(),
        )
    }

    fn start(
        engine: Engine,
        publisher: TablePublisher,
        width: u16,
        height: u16,
        options: SubscriptionOptions,
    ) -> Self {
        let source = Embedded::new(engine.handle(), "test engine");
        let subs = engine
            .tables()
            .iter()
            .map(|t| {
                let sub = t.subscribe_with(options).unwrap();
                (sub, Follower::new(t.schema().clone()))
            })
            .collect();
        let now = Instant::now();
        let app = App::new(source.describe(), source.tables(), (width, height), now);
        let tables = engine.tables();
        let mut rig = Self {
            engine,
            tables,
            publisher,
            subs,
            app,
            now,
            seq: 0,
        };
        rig.pump();
        rig.tick();
        rig
    }

    /// Stages one trade batch: `(symbol, price)` rows.
    pub(crate) fn publish(&mut self, rows: &[(&str, f64)]) {
        let batch = trade_batch(self.seq, rows);
        self.seq += rows.len() as i64;
        self.publisher.add(batch).unwrap();
    }

    /// Stages whole-row upserts into a keyed rig: `(Sym, Bid, Ask, Venue)` rows.
    pub(crate) fn upsert(&mut self, rows: &[Quote<'_>]) {
        self.publisher.upsert(quote_batch(rows)).unwrap();
    }

    /// Stages partial upserts into a keyed rig: `Sym` and `Bid` only.
    pub(crate) fn upsert_bids(&mut self, rows: &[(&str, f64)]) {
        self.publisher.upsert(bid_batch(rows)).unwrap();
    }

    /// Stages deletes of `syms` from a keyed rig.
    pub(crate) fn delete(&mut self, syms: &[&str]) {
        self.publisher.delete(key_batch(syms)).unwrap();
    }

    /// Runs a cycle, delivers its updates to the App, and ticks the clock 100 ms.
    pub(crate) fn cycle(&mut self) {
        self.engine.run_cycle();
        self.pump();
        self.tick();
    }

    /// Runs a cycle without delivering anything (the viewer falls behind).
    pub(crate) fn cycle_unread(&mut self) {
        self.engine.run_cycle();
    }

    /// Delivers every queued subscription event.
    pub(crate) fn pump(&mut self) {
        for (table, (sub, follower)) in self.subs.iter_mut().enumerate() {
            while let Ok(e) = sub.try_recv() {
                if let Some(event) = follower.follow(&e) {
                    self.app.update(Action::Data {
                        table,
                        event,
                        at: self.now,
                    });
                }
            }
        }
    }

    /// Advances the clock 100 ms and ticks with a deterministic status.
    pub(crate) fn tick(&mut self) {
        let status = self.status();
        self.tick_with(status);
    }

    /// Advances the clock 100 ms and ticks with `status`.
    pub(crate) fn tick_with(&mut self, status: SourceStatus) {
        self.now += Duration::from_millis(100);
        self.app.update(Action::Tick {
            at: self.now,
            status,
        });
    }

    /// The engine's status as the rig reports it: a 100 ms period, 250 µs cycles.
    pub(crate) fn status(&self) -> SourceStatus {
        SourceStatus {
            link: Link::Local,
            step: self.engine.step().as_u64(),
            period: Period::Configured(Duration::from_millis(100)),
            last_cycle: Some(Duration::from_micros(250)),
            ends: self
                .tables
                .iter()
                .map(|t| match t.kind() {
                    TableKind::Keyed { .. } => None,
                    _ => Some(t.snapshot().rows().end),
                })
                .collect(),
            dropped: 0,
            listed: self
                .tables
                .iter()
                .map(|t| !crate::source::is_dropped(t))
                .collect(),
        }
    }

    /// Presses a key (mapped by the App).
    pub(crate) fn key(&mut self, code: KeyCode) {
        let key = KeyEvent::new(code, KeyModifiers::NONE);
        if let Some(a) = self.app.map_key(key) {
            self.app.update(a);
        }
    }

    /// Types `text` and presses Enter.
    pub(crate) fn type_line(&mut self, text: &str) {
        for c in text.chars() {
            self.key(KeyCode::Char(c));
        }
        self.key(KeyCode::Enter);
    }

    /// Draws the screen and returns its buffer.
    pub(crate) fn draw(&mut self) -> Buffer {
        let (w, h) = self.app.size;
        let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
        self.app.prepare(self.now);
        terminal
            .draw(|f| crate::view::render(&self.app, f))
            .unwrap();
        self.app.drawn();
        terminal.backend().buffer().clone()
    }

    /// Draws the screen and returns its lines, times of day masked.
    pub(crate) fn screen(&mut self) -> Vec<String> {
        lines(&self.draw())
    }

    /// Rows the open table's row set has.
    pub(crate) fn view_len(&self) -> usize {
        let v = self.app.view.as_ref().unwrap();
        v.len(&self.app.tables[v.table()].mirror)
    }

    /// The position under the cursor.
    pub(crate) fn selected_pos(&self) -> Option<u64> {
        let v = self.app.view.as_ref().unwrap();
        v.selected_pos(&self.app.tables[v.table()].mirror)
    }
}

/// A mirror holding `batch`'s rows from position `start`, at step 1: a snapshot's rows as a
/// source hands them over.
pub(crate) fn mirror_at(start: u64, batch: &RecordBatch) -> Mirror {
    let mut m = Mirror::new(batch.schema());
    let n = batch.num_rows() as u64;
    let snapshot = MessageMeta {
        reset: true,
        rows: Some(start..start + n),
        ..meta(Step::new(1), 0..0, Vec::new(), start..start + n)
    };
    m.apply_message(&snapshot, Some(batch)).unwrap();
    m
}

/// The metadata of a live stream's message of `step` (no reset): `removed` positions, rows
/// `modified` in place (every column written), `added` positions.
pub(crate) fn meta(
    step: Step,
    removed: std::ops::Range<u64>,
    modified: Vec<u64>,
    added: std::ops::Range<u64>,
) -> MessageMeta {
    MessageMeta {
        step,
        reset: false,
        removed,
        added,
        rows: None,
        modified,
        masks: Vec::new(),
    }
}

/// Applies one message to `mirror`, as a remote source does, and gives the App's event for it.
pub(crate) fn update(
    mirror: &mut Mirror,
    meta: MessageMeta,
    batch: Option<RecordBatch>,
) -> DataEvent {
    let replaced = mirror.apply_message(&meta, batch.as_ref()).unwrap();
    DataEvent::Update {
        mirror: mirror.clone(),
        change: Box::new(Change::of_message(meta, batch, replaced)),
    }
}

/// A batch of trades `(symbol, price)`, the first one `seq` µs after 09:30.
pub(crate) fn trade_batch(seq: i64, rows: &[(&str, f64)]) -> RecordBatch {
    let n = rows.len();
    let times: Vec<i64> = (0..n as i64).map(|i| T0_NS + (seq + i) * 1_000).collect();
    RecordBatch::try_new(
        trade_schema(),
        vec![
            Arc::new(TimestampNanosecondArray::from(times)),
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))),
            Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.1))),
            Arc::new(Int64Array::from(vec![100; n])),
            Arc::new(StringArray::from(vec!["Buy"; n])),
        ],
    )
    .unwrap()
}

/// A keyed rig's row: `(Sym, Bid, Ask, Venue)`.
pub(crate) type Quote<'a> = (&'a str, f64, f64, &'a str);

/// `Sym` utf8 (the key), `Bid` and `Ask` float64, `Venue` utf8; all but the key nullable (a
/// partial upsert leaves them out).
pub(crate) fn quote_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("Sym", DataType::Utf8, false),
        Field::new("Bid", DataType::Float64, true),
        Field::new("Ask", DataType::Float64, true),
        Field::new("Venue", DataType::Utf8, true),
    ]))
}

/// Whole quote rows.
pub(crate) fn quote_batch(rows: &[Quote<'_>]) -> RecordBatch {
    RecordBatch::try_new(
        quote_schema(),
        vec![
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))),
            Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.1))),
            Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.2))),
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.3))),
        ],
    )
    .unwrap()
}

/// A partial upsert of quotes: `Sym` and `Bid` only.
pub(crate) fn bid_batch(rows: &[(&str, f64)]) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("Sym", DataType::Utf8, false),
        Field::new("Bid", DataType::Float64, true),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))),
            Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.1))),
        ],
    )
    .unwrap()
}

/// The keys of quotes to delete.
pub(crate) fn key_batch(syms: &[&str]) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![Field::new("Sym", DataType::Utf8, false)]));
    RecordBatch::try_new(
        schema,
        vec![Arc::new(StringArray::from_iter_values(
            syms.iter().copied(),
        ))],
    )
    .unwrap()
}

/// A buffer's text, one string per line, trailing spaces kept, `HH:MM:SS.ffffff` masked.
pub(crate) fn lines(buf: &Buffer) -> Vec<String> {
    let w = usize::from(buf.area.width);
    buf.content()
        .chunks(w)
        .map(|row| {
            mask_times(
                &row.iter()
                    .map(ratatui::buffer::Cell::symbol)
                    .collect::<String>(),
            )
        })
        .collect()
}

/// The buffer with every style reset: what `Buffer::with_lines` compares equal to.
pub(crate) fn unstyled(buf: &Buffer) -> Buffer {
    let mut b = buf.clone();
    b.set_style(b.area, Style::reset());
    b
}

/// Replaces each `HH:MM:SS.ffffff` with `hh:mm:ss.ffffff`.
pub(crate) fn mask_times(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let pattern = "dd:dd:dd.dddddd";
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < chars.len() {
        let fits = i + pattern.len() <= chars.len()
            && pattern.chars().zip(&chars[i..]).all(|(p, c)| match p {
                'd' => c.is_ascii_digit(),
                p => p == *c,
            });
        if fits {
            out.push_str("hh:mm:ss.ffffff");
            i += pattern.len();
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}
