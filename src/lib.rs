//! tickertable: a live, in-memory ticking-table engine over Apache Arrow.
//!
//! Producer threads append rows; a periodic update-graph **cycle**, holding one global lock,
//! makes each cycle's rows visible all at once; listeners and subscriptions receive each
//! cycle's changes.
//!
//! # Table kinds
//!
//! Every table is a window over a log of rows. [`TableKind::Append`] keeps every row,
//! [`TableKind::Blink`] shows only the latest cycle's rows, and [`TableKind::Ring`] keeps the
//! newest `capacity` rows. [`TableKind::Keyed`] holds one row per key: writes upsert or
//! delete by key, and updates carry modified rows with their modified columns. Derived tables ([`EngineHandle::ring_table`],
//! [`EngineHandle::blink_to_append_only`], [`EngineHandle::tail`]) update in the same cycle as
//! their source, and so do the derived tables that compute ([`derive`](mod@derive)):
//! [`EngineHandle::last_by`], [`EngineHandle::filter`] (a predicate of [`expr`]),
//! [`EngineHandle::agg_by`] and time [`EngineHandle::bars`], each at O(rows changed).
//!
//! # The cycle
//!
//! An [`Engine`] runs a cycle every period (100 ms by default), on request
//! ([`EngineHandle::request_refresh`]), as soon as rows arrive ([`Builder::low_latency`]), or
//! only when told ([`Builder::manual`] + [`EngineHandle::run_cycle`]). A cycle drains what
//! writers staged, applies retention, publishes snapshots and delivers updates, all at one
//! [`Step`]. It costs O(rows changed), never O(table size).
//!
//! # Publishing
//!
//! [`TablePublisher::add`] stages a whole Arrow `RecordBatch` (not copied);
//! [`RowWriter::write_row`] builds rows in Arrow builders, one writer per thread, with
//! transactions. Anything that does not fit the schema is refused with a structured [`Error`]
//! and nothing of it is applied.
//!
//! # Reading and subscribing
//!
//! [`Table::snapshot`] is lock-free and consistent at one step. [`Table::listen`] runs a
//! callback on the cycle thread; [`Table::subscribe`] gives a bounded, gapless queue (a
//! snapshot, then every update) that is a blocking iterator and a `Stream`, and that lags
//! instead of stalling the cycle.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use arrow_array::{Float64Array, RecordBatch, StringArray};
//! use arrow_schema::{DataType, Field, Schema};
//! use tickertable::{Engine, Event, PublisherOptions};
//!
//! let engine = Engine::builder().manual().build()?;
//! let schema = Arc::new(Schema::new(vec![
//!     Field::new("Sym", DataType::Utf8, false),
//!     Field::new("Price", DataType::Float64, false),
//! ]));
//! let (trades, publisher) = engine.table_publisher("trades", schema.clone(), PublisherOptions::default())?;
//! let last3 = engine.ring_table("last3", &trades, 3)?;
//! let sub = last3.subscribe()?;
//!
//! for (sym, px) in [("AAPL", 187.5), ("MSFT", 411.0), ("AAPL", 187.6), ("NVDA", 903.1)] {
//!     publisher.add(RecordBatch::try_new(schema.clone(), vec![
//!         Arc::new(StringArray::from(vec![sym])),
//!         Arc::new(Float64Array::from(vec![px])),
//!     ])?)?;
//! }
//! engine.run_cycle();
//! assert_eq!(trades.num_rows(), 4); // blink: this cycle's rows
//! assert_eq!(last3.num_rows(), 3);  // ring: the newest 3
//!
//! engine.run_cycle();
//! assert_eq!(trades.num_rows(), 0); // no rows this cycle: the blink table is empty
//! assert_eq!(last3.num_rows(), 3);
//!
//! assert!(matches!(sub.try_recv(), Ok(Event::Snapshot(s)) if s.is_empty()));
//! match sub.try_recv() {
//!     Ok(Event::Update(u)) => assert_eq!((u.removed(), u.added()), (0..0, 1..4)),
//!     other => panic!("{other:?}"),
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(rustdoc::broken_intra_doc_links)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod derive;
pub mod docs;
pub mod durable;
pub mod engine;
pub mod error;
pub mod expr;
#[cfg(feature = "flight")]
pub mod flight;
pub mod graph;
#[cfg(feature = "kafka")]
pub mod kafka;
pub mod mirror;
pub mod publish;
pub mod schema;
mod step;
pub mod subscribe;
pub(crate) mod sync;
pub mod table;
#[cfg(any(test, feature = "test-util"))]
pub mod test_util;

pub use derive::{Agg, AggKind, AggParseError, Bars, IntoPredicate};
pub use durable::{Durability, LogStats, LoggedTable, ReplayReport, SyncPolicy, TableLogStats};
pub use engine::{Builder, Engine, EngineHandle, View};
pub use error::{Error, ErrorCode, RemoteErrorKind, Result, TransactionError, TryPublishError};
pub use expr::{BoundExpr, Expr, ExprError};
pub use graph::{CycleStats, EngineStats, TableStats, CYCLE_BUCKETS};
pub use mirror::{Mirror, Replaced};
pub use publish::{
    DynamicTableWriter, DynamicWriterOptions, ErrorRecord, FlushMode, MultithreadedTableWriter,
    MultithreadedWriterOptions, MultithreadedWriterStatus, PublisherOptions, RowWriter,
    TablePublisher, ThreadStatus, TryInsertError, WriteTarget,
};
pub use schema::{OwnedValue, Value};
pub use step::Step;
pub use subscribe::{
    Event, Listener, ListenerHandle, ListenerId, RecvTimeoutError, Subscription,
    SubscriptionOptions, TableUpdate, TryRecvError,
};
pub use table::keyed::{OP_COLUMN, OP_METADATA};
pub use table::snapshot::TableSnapshot;
pub use table::{Column, RowRef, Table, TableId, TableKind};

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
