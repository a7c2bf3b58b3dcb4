//! Consuming changes: listeners (push, on the cycle thread) and subscriptions (pull, queued).
//!
//! Every cycle that changes a table makes one [`TableUpdate`] for it. The cycle hands it to the
//! table's listeners, in registration order, then queues it (an `Arc`, never a copy) on every
//! subscription. Neither can stall the cycle: a listener that panics is removed, and a
//! subscription that falls behind gets [`Event::Lagged`] with a fresh snapshot.
//!
//! # Lagging
//!
//! The queue is bounded by a number of updates and a number of queued rows. When the cycle
//! would go past either bound, it never waits: it throws the queue away and leaves one
//! [`Event::Lagged`] carrying how many updates were missed and the table's snapshot at that
//! step. Updates after that snapshot follow it, so a subscriber that resets its mirror to the
//! snapshot is exact again. Memory per subscriber is bounded by the queue bounds plus one
//! snapshot (which shares its chunks with the table).
//!
//! # Closing
//!
//! When the table fails, the subscription yields [`Event::Failed`] and then ends. When the
//! table is closed or the engine shuts down, it ends after the queued events. Dropping a
//! [`Subscription`] unsubscribes.

pub(crate) mod listener;
pub(crate) mod subscription;
pub(crate) mod update;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

pub use listener::{Listener, ListenerHandle, ListenerId};
pub use subscription::{Event, RecvTimeoutError, Subscription, SubscriptionOptions, TryRecvError};
pub use update::TableUpdate;

use crate::error::{panic_message, Error};
use crate::sync::Ordering;
use crate::table::snapshot::TableSnapshot;
use crate::table::TableShared;
use listener::ListenerEntry;
use subscription::SubShared;

/// A table's listeners and subscriptions. Guarded by `TableShared::registry`; lock order:
/// global lock → registry → a subscription's own queue.
#[derive(Default)]
pub(crate) struct Registry {
    pub(crate) next_listener: u64,
    pub(crate) listeners: Vec<ListenerEntry>,
    pub(crate) subscribers: Vec<Arc<SubShared>>,
    pub(crate) failure: Option<Arc<Error>>,
    /// The table closed or failed, or the engine shut down: nothing more is delivered.
    pub(crate) ended: bool,
}

/// Delivers one update to a table's listeners and subscriptions. Runs on the cycle thread.
///
/// Cost O(listeners + subscriptions); a panicking listener is removed and its error pushed to
/// `errors`.
pub(crate) fn deliver(
    table: &TableShared,
    update: &Arc<TableUpdate>,
    snapshot: &TableSnapshot,
    errors: &mut Vec<Error>,
) {
    let mut reg = table.registry.lock();
    reg.listeners.retain_mut(|entry| {
        if entry.status.removed.load(Ordering::Acquire) {
            return false;
        }
        let call = catch_unwind(AssertUnwindSafe(|| entry.listener.on_update(update)));
        match call {
            Ok(()) => true,
            Err(payload) => {
                let message = panic_message(payload.as_ref());
                *entry.status.failure.lock() = Some(message.clone());
                entry.status.removed.store(true, Ordering::Release);
                errors.push(Error::ListenerPanicked {
                    table: table.name.to_string(),
                    listener: entry.id.as_u64(),
                    message,
                });
                false
            }
        }
    });
    reg.subscribers.retain(|s| {
        if s.dropped.load(Ordering::Acquire) {
            return false;
        }
        s.push_update(update, snapshot);
        true
    });
}

/// Ends delivery for a table: listeners get `on_failure` for a failure, subscriptions get
/// [`Event::Failed`] and end.
pub(crate) fn end(table: &TableShared, failure: Option<&Arc<Error>>, errors: &mut Vec<Error>) {
    let mut reg = table.registry.lock();
    if reg.ended {
        return;
    }
    reg.ended = true;
    reg.failure = failure.cloned();
    if let Some(err) = failure {
        for entry in &mut reg.listeners {
            if entry.status.removed.load(Ordering::Acquire) {
                continue;
            }
            if let Err(payload) = catch_unwind(AssertUnwindSafe(|| entry.listener.on_failure(err)))
            {
                let message = panic_message(payload.as_ref());
                *entry.status.failure.lock() = Some(message.clone());
                entry.status.removed.store(true, Ordering::Release);
                errors.push(Error::ListenerPanicked {
                    table: table.name.to_string(),
                    listener: entry.id.as_u64(),
                    message,
                });
            }
        }
    }
    for s in reg.subscribers.drain(..) {
        s.end(failure.cloned().map(Event::Failed));
    }
    reg.listeners.clear();
}
