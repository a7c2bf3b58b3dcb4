//! The one way in: every writer stages through here.
//!
//! A [`TablePublisher`](crate::TablePublisher), a multithreaded writer's local target and a
//! Flight `DoPut` stage batches with [`batches`]; a [`RowWriter`](crate::RowWriter) locks its
//! cell with [`lock_rows`] and reports what it appended with [`rows_appended`]; closing a
//! table is [`request_close`]. Each checks the input against the table (batches), applies
//! staging's one admission rule (`publish/staging.rs`), waits for room only when a cycle can
//! make some ([`may_wait`]), maps a refusal to the one error each case has, and puts the
//! table on the next cycle's list. Nothing of a refused input is staged.

use arrow_array::RecordBatch;
use arrow_buffer::Buffer;

use crate::error::Error;
use crate::graph::on_cycle_thread;
use crate::graph::Core;
use crate::publish::staging::{admit, Admit, Refused, WriterCell, WriterState, WAIT_SLICE};
use crate::sync::{MutexGuard, Ordering};
use crate::table::lifecycle::Closing;
use crate::table::shared::TableShared;

/// Whether a writer may wait for room: only when a cycle thread exists and the caller is not
/// it (a call from `on_flush` or a listener would wait for itself).
pub(crate) fn may_wait(core: &Core) -> bool {
    core.config.threaded && !on_cycle_thread()
}

/// Why batches were not staged.
#[derive(Debug)]
pub(crate) enum Rejected {
    /// A batch does not fit the table: the schema error, naming the column.
    Invalid(Error),
    /// Staging refused them.
    Refused(Refused),
}

impl Rejected {
    /// The error a caller gets.
    pub(crate) fn into_error(self, core: &Core, table: &TableShared) -> Error {
        match self {
            Rejected::Invalid(e) => e,
            Rejected::Refused(r) => refusal(core, table, r),
        }
    }
}

/// The error for a refusal by `table`'s staging.
pub(crate) fn refusal(core: &Core, table: &TableShared, refused: Refused) -> Error {
    match refused {
        Refused::Full(staged) => Error::StagingFull {
            table: table.name.to_string(),
            staged,
            limit: table.staging.limit(),
        },
        Refused::TooLarge(rows) => Error::BatchTooLarge {
            table: table.name.to_string(),
            rows,
            limit: table.staging.limit(),
        },
        Refused::Closed if core.is_shut_down() => Error::EngineShutDown,
        Refused::Closed => Error::TableClosed {
            table: table.name.to_string(),
        },
    }
}

/// Checks `batches` against `table` and stages them together: all in the same cycle, or
/// none. With `wait`, waits for room if [`may_wait`]. Returns the rows staged.
///
/// Cost O(batches × columns) for the checks; no row is copied.
///
/// # Errors
///
/// [`Rejected::Invalid`] with the schema error of the first batch that does not fit, or
/// [`Rejected::Refused`]; nothing is staged either way.
pub(crate) fn batches(
    core: &Core,
    table: &TableShared,
    batches: &[RecordBatch],
    wait: bool,
) -> Result<u64, Rejected> {
    batches_with_cursor(core, table, batches, wait, None)
}

/// [`batches`], with the source cursor of the feed they came from (a Kafka source's next
/// offsets), drained with them and logged in the same record by a durable table (see
/// `durable::format`). Batches without rows stage nothing, the cursor included.
///
/// # Errors
///
/// As [`batches`].
pub(crate) fn batches_with_cursor(
    core: &Core,
    table: &TableShared,
    batches: &[RecordBatch],
    wait: bool,
    cursor: Option<Buffer>,
) -> Result<u64, Rejected> {
    if table.is_derived() {
        return Err(Rejected::Invalid(Error::DerivedTable {
            table: table.name.to_string(),
        }));
    }
    let mut checked = Vec::with_capacity(batches.len());
    let mut rows = 0;
    for b in batches {
        let b = table.check_input(b).map_err(Rejected::Invalid)?;
        rows += b.num_rows();
        checked.push(b);
    }
    if rows == 0 {
        // Nothing to stage, but a closed table still says so.
        return if table.lifecycle.is_open() && !core.is_shut_down() {
            Ok(0)
        } else {
            Err(Rejected::Refused(Refused::Closed))
        };
    }
    let wait = wait && may_wait(core);
    let notify = table
        .staging
        .push(
            checked,
            rows,
            wait,
            &table.lifecycle,
            core.shut_down_flag(),
            cursor,
        )
        .map_err(Rejected::Refused)?;
    if notify {
        core.mark_dirty(table.id);
    }
    Ok(rows as u64)
}

/// Locks a row writer's cell for `n` more rows: refuses on close, shutdown or a full
/// buffer, waiting for a cycle when that is possible (never inside a transaction, which must
/// fit the buffer whole).
///
/// # Errors
///
/// [`Error::TableClosed`], [`Error::EngineShutDown`], [`Error::StagingFull`] or
/// [`Error::BatchTooLarge`] (more rows at once than the limit).
pub(crate) fn lock_rows<'a>(
    core: &Core,
    table: &TableShared,
    cell: &'a WriterCell,
    n: usize,
) -> Result<MutexGuard<'a, WriterState>, Error> {
    let limit = table.staging.limit();
    let mut st = cell.state.lock();
    loop {
        if !table.lifecycle.is_open() || core.shut_down_flag().load(Ordering::Acquire) {
            return Err(refusal(core, table, Refused::Closed));
        }
        let staged = st.staged();
        match admit(staged, n, limit) {
            Admit::Take => return Ok(st),
            Admit::TooLarge => return Err(refusal(core, table, Refused::TooLarge(n))),
            Admit::Full if st.in_txn || !may_wait(core) => {
                return Err(refusal(core, table, Refused::Full(staged)));
            }
            Admit::Full => {}
        }
        st.waiters += 1;
        cell.space.wait_for(&mut st, WAIT_SLICE);
        st.waiters -= 1;
    }
}

/// Records rows a row writer appended to its locked cell, putting the table on the next
/// cycle's list when they are its first committed rows since the last drain.
pub(crate) fn rows_appended(core: &Core, table: &TableShared, st: &mut WriterState) {
    if st.rows_appended() {
        core.mark_dirty(table.id);
    }
}

/// Requests a close of `table`, applied by the next cycle after the rows staged before it.
/// A second request does nothing.
pub(crate) fn request_close(core: &Core, table: &TableShared, closing: Closing) {
    if table.staging.close(&table.lifecycle, closing) {
        core.mark_dirty(table.id);
    }
}
