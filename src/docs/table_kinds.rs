//! # Table kinds
//!
//! | kind | after a cycle that appended `[e0, e1)` | like |
//! |---|---|---|
//! | `Append` | `start` never moves | Deephaven `DynamicTableWriter`, `blink_to_append_only`; `DolphinDB` `streamTable` |
//! | `Blink` | `start = e0` (a cycle with no rows empties it) | Deephaven `table_publisher` |
//! | `Ring { capacity }` | `start = max(start, e1 - capacity)` | Deephaven `ring_table`, Perspective `limit` |
//!
//! An update of these kinds is two ranges and the added rows: `removed` (a prefix of the old
//! window) and `added` (the end of the new one). There are no shifts and no modifications.
//!
//! ## Keyed tables
//!
//! `Keyed { capacity }` (`DolphinDB` keyed tables and `upsert!`, Perspective `index`, `ClickZetta`
//! CDC) is not a window over a log: it holds one row per live key at positions `0..n`. A
//! cycle's update has `removed` (a suffix: the table shrank), `modified` (positions rewritten
//! in place, with their new rows and the columns written) and `added` (the new end).
//!
//! - Rows are in slot order, not key or arrival order: a new key takes a slot freed in the
//!   same cycle or goes at the end, and deleting a key moves the last row into its slot (that
//!   row is reported modified, every column written). Sort by key to show key order.
//! - A partial upsert (a batch with some columns, or a row writer's row with unset columns)
//!   keeps the other columns of an existing key and puts nulls in them for a new key, so it
//!   may only leave out nullable columns; `DolphinDB` fills nulls, Perspective leaves cells
//!   empty, tickertable refuses the write at the call if a column could not hold the null.
//! - Within a cycle the last write to a key wins; a key inserted and deleted in the same cycle
//!   never shows. Across writers, "last" is the cycle's drain order (see
//!   [`graph::cycle`](crate::graph)); the multithreaded writer routes each key to one thread so
//!   its writes stay in the order they were made.
//! - With a capacity (a ring and a key together, which Perspective refuses) the table keeps the
//!   `capacity` most recently written keys; the least recently written are deleted at the end
//!   of the cycle that goes past it.
//! - Derived tables (`ring_table`, `tail`, `blink_to_append_only`) of a keyed table are
//!   refused for now.
//! - A cycle costs O(keys written), not O(table size): the rows are in chunks of 4,096, and a
//!   chunk column a cycle changes is written in place into its spare, the column's version
//!   before its last change, which no snapshot holds any more (double buffering). Snapshots
//!   are never mutated: a spare someone still holds (an old snapshot, an update a subscriber
//!   has not taken), or one a write does not fit (a string changing length), is left alone and
//!   that chunk column is rebuilt instead, at O(4,096 rows). The price is memory: a chunk
//!   column that changes keeps two versions.
//! - [`Table::get`](crate::Table::get) reads a key's current row (one hash probe);
//!   [`TableSnapshot::rows_in_key_order`](crate::TableSnapshot::rows_in_key_order) reads the
//!   rows in key order.
//!
//! ## Differences from the systems users know
//!
//! - Rows appended and evicted in the same cycle (a ring fed more than its capacity at once)
//!   are in no update and never stored; `added` then starts past the old end.
//! - A snapshot's step is the step of the table's last change, not the engine's current step.
//! - `blink_to_append_only` with a limit stops taking rows at the limit, as Deephaven's size
//!   limit does; the refused rows are counted in `CycleStats::rows_dropped`.
//! - `tail(n)` of a blink table is a blink table of each cycle's last `n` rows; of any other
//!   table it is a ring of capacity `n`.
//! - Tables live as long as their engine; there is no table removal yet.
