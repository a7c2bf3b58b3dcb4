//! Subscriptions: a bounded, gapless queue of a table's snapshot and updates; see the
//! [`subscribe`](crate::subscribe) module docs for lagging and closing.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use crate::error::Result;
use crate::graph::Core;
use crate::subscribe::queue::{Event, Queue, RecvTimeoutError, SubscriptionOptions, TryRecvError};
use crate::table::shared::TableShared;
use crate::table::snapshot::TableSnapshot;

/// A subscription to a table: its snapshot, then every update, in step order, without gaps.
///
/// Made by [`Table::subscribe`](crate::Table::subscribe). Read it as a blocking iterator
/// (`for event in sub`), with [`recv`](Self::recv) / [`try_recv`](Self::try_recv) /
/// [`recv_timeout`](Self::recv_timeout), or as a `futures::Stream`. The first event is the
/// table's [`Event::Snapshot`] at the step the subscription started; every later update
/// follows it with nothing missed or repeated. A subscriber that falls behind gets
/// [`Event::Lagged`] (see [lagging](crate::subscribe#lagging)) and never stalls the cycle.
/// Dropping the subscription unsubscribes.
pub struct Subscription {
    queue: Arc<Queue>,
    table: Arc<TableShared>,
}

impl Subscription {
    /// The name of the table subscribed to.
    pub fn table_name(&self) -> &str {
        &self.table.name
    }

    /// How many times this subscription has lagged.
    pub fn lagged_count(&self) -> u64 {
        self.queue.lagged()
    }

    /// How many events are queued now.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether no event is queued now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The next event, blocking until one arrives; `None` once the subscription has ended.
    pub fn recv(&self) -> Option<Event> {
        self.queue.recv()
    }

    /// The next event if one is queued.
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Empty`] or [`TryRecvError::Ended`].
    pub fn try_recv(&self) -> Result<Event, TryRecvError> {
        self.queue.try_recv()
    }

    /// The next event, waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`RecvTimeoutError::Timeout`] or [`RecvTimeoutError::Ended`].
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Event, RecvTimeoutError> {
        self.queue.recv_timeout(timeout)
    }
}

impl Subscription {
    /// The queue, for a server that must end a subscription from another task.
    #[cfg(feature = "flight")]
    pub(crate) fn queue(&self) -> Arc<Queue> {
        self.queue.clone()
    }
}

impl Iterator for Subscription {
    type Item = Event;

    fn next(&mut self) -> Option<Event> {
        self.recv()
    }
}

impl futures_core::Stream for Subscription {
    type Item = Event;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        self.queue.poll_next(cx)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.queue.set_dropped();
        if let Some(mut consumers) = self.table.consumers.try_lock() {
            consumers.prune_queues();
        }
    }
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("table", &self.table_name())
            .field("queued", &self.len())
            .finish_non_exhaustive()
    }
}

/// Subscribes gaplessly: under the shared side of the global lock no cycle runs, so the
/// snapshot taken is the table's state at the current step and every later update is queued.
/// A table that has ended gives a subscription that yields its snapshot, its failure if it
/// failed, and ends.
pub(crate) fn register(
    core: &Core,
    table: &Arc<TableShared>,
    options: SubscriptionOptions,
) -> Subscription {
    // Recursive: subscribing inside `EngineHandle::read` must not queue behind a waiting cycle.
    let graph = core.graph.read_recursive();
    let snapshot = TableSnapshot::from_inner(table.snapshot.load_full());
    let queue = Arc::new(Queue::new(options, Event::Snapshot(snapshot)));
    {
        let mut consumers = table.consumers.lock();
        if table.lifecycle.has_ended() || core.is_shut_down() {
            queue.end(table.lifecycle.failure().map(Event::Failed));
        } else {
            consumers.add_queue(queue.clone());
        }
    }
    drop(graph);
    Subscription {
        queue,
        table: table.clone(),
    }
}
