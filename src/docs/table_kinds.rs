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
