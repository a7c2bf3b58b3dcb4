//! A table's consumers as the cycle sees them: its listeners and its subscriptions' queues.

use std::sync::Arc;

use crate::error::Error;
use crate::subscribe::listener::{Listener, ListenerCell, ListenerId};
use crate::subscribe::queue::{Event, Queue};
use crate::subscribe::update::TableUpdate;
use crate::table::snapshot::TableSnapshot;

/// A table's listeners and subscription queues. Guarded by the table's registry mutex (see
/// the lock order in [`graph`](crate::graph#locking)); whether the table has ended is its
/// lifecycle's to say, checked under this mutex.
#[derive(Default)]
pub(crate) struct Registry {
    next_listener: u64,
    listeners: Vec<Arc<ListenerCell>>,
    queues: Vec<Arc<Queue>>,
}

impl Registry {
    /// Adds a listener (pruning removed ones, so an idle table does not collect them).
    pub(crate) fn add_listener(&mut self, listener: Box<dyn Listener>) -> Arc<ListenerCell> {
        self.listeners.retain(|l| !l.is_removed());
        self.next_listener += 1;
        let cell = Arc::new(ListenerCell::new(ListenerId(self.next_listener), listener));
        self.listeners.push(cell.clone());
        cell
    }

    /// Adds a subscription's queue (pruning dropped ones).
    pub(crate) fn add_queue(&mut self, queue: Arc<Queue>) {
        self.queues.retain(|q| !q.is_dropped());
        self.queues.push(queue);
    }

    /// Forgets the queues of dropped subscriptions.
    pub(crate) fn prune_queues(&mut self) {
        self.queues.retain(|q| !q.is_dropped());
    }

    /// How many listeners and subscriptions the table has now (removed listeners and dropped
    /// subscriptions not counted). O(consumers).
    pub(crate) fn counts(&self) -> (usize, usize) {
        let listeners = self.listeners.iter().filter(|l| !l.is_removed()).count();
        let queues = self.queues.iter().filter(|q| !q.is_dropped()).count();
        (listeners, queues)
    }

    /// Delivers one update: to the listeners in registration order, then to every queue.
    /// Runs on the cycle thread; cost O(listeners + subscriptions). A panicking listener is
    /// removed and its error pushed to `errors`.
    pub(crate) fn deliver(
        &mut self,
        table: &str,
        update: &Arc<TableUpdate>,
        snapshot: &TableSnapshot,
        errors: &mut Vec<Error>,
    ) {
        self.listeners
            .retain(|cell| match cell.call(|l| l.on_update(update)) {
                Ok(stays) => stays,
                Err(message) => {
                    errors.push(panicked(table, cell, message));
                    false
                }
            });
        self.queues.retain(|q| {
            if q.is_dropped() {
                return false;
            }
            q.push_update(update, snapshot);
            true
        });
    }

    /// Ends delivery: on a failure, listeners get `on_failure`; subscriptions get
    /// [`Event::Failed`] then end; every callback is dropped.
    pub(crate) fn end(
        &mut self,
        table: &str,
        failure: Option<&Arc<Error>>,
        errors: &mut Vec<Error>,
    ) {
        for cell in self.listeners.drain(..) {
            if let Some(err) = failure {
                if let Err(message) = cell.call(|l| l.on_failure(err)) {
                    errors.push(panicked(table, &cell, message));
                }
            }
            cell.end();
        }
        for q in self.queues.drain(..) {
            q.end(failure.cloned().map(Event::Failed));
        }
    }
}

fn panicked(table: &str, cell: &ListenerCell, message: String) -> Error {
    Error::ListenerPanicked {
        table: table.to_owned(),
        listener: cell.id.as_u64(),
        message,
    }
}
