//! Listeners: callbacks on the cycle thread.

use std::fmt;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::subscribe::TableUpdate;
use crate::sync::{AtomicBool, Mutex, Ordering, Weak};
use crate::table::TableShared;

/// A callback that receives each update of a table on the cycle thread.
///
/// It runs under the engine's global lock, so it must be short: no blocking I/O, no `.await`,
/// no waiting on other threads, and no calls back into the engine (creating tables, listening,
/// subscribing, `run_cycle`, `read`): those deadlock. Hand work to another thread through a
/// channel, or use a [`Subscription`](crate::Subscription) instead.
///
/// A listener that panics is removed; the engine and the other listeners go on.
///
/// Any `FnMut(&TableUpdate) + Send + 'static` closure is a listener.
pub trait Listener: Send + 'static {
    /// Called with each update of the table, in step order.
    fn on_update(&mut self, update: &TableUpdate);

    /// Called once if the table fails; no update follows.
    fn on_failure(&mut self, error: &Error) {
        let _ = error;
    }
}

impl<F> Listener for F
where
    F: FnMut(&TableUpdate) + Send + 'static,
{
    fn on_update(&mut self, update: &TableUpdate) {
        self(update);
    }
}

/// A listener's identity on its table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ListenerId(pub(crate) u64);

impl ListenerId {
    /// The id as a number.
    pub fn as_u64(self) -> u64 {
        self.0
    }
}

/// Shared between a listener's handle and its registry entry.
#[derive(Debug, Default)]
pub(crate) struct ListenerStatus {
    /// Set by the handle's drop, or by the cycle when the listener panicked. `Release` on store,
    /// `Acquire` on load, so the cycle sees the flag set by a drop on another thread before it
    /// prunes.
    pub(crate) removed: AtomicBool,
    pub(crate) failure: Mutex<Option<String>>,
}

pub(crate) struct ListenerEntry {
    pub(crate) id: ListenerId,
    pub(crate) listener: Box<dyn Listener>,
    pub(crate) status: Arc<ListenerStatus>,
}

/// A registered listener. Dropping it removes the listener; [`detach`](Self::detach) keeps it
/// for the table's life.
#[must_use = "dropping the handle removes the listener at once"]
pub struct ListenerHandle {
    id: ListenerId,
    status: Arc<ListenerStatus>,
    table: Weak<TableShared>,
    detached: bool,
}

impl ListenerHandle {
    /// The listener's id.
    pub fn id(&self) -> ListenerId {
        self.id
    }

    /// Whether the listener is still registered (it has not panicked).
    pub fn is_active(&self) -> bool {
        !self.status.removed.load(Ordering::Acquire)
    }

    /// The panic message, if the listener panicked and was removed.
    pub fn failure(&self) -> Option<String> {
        self.status.failure.lock().clone()
    }

    /// Keeps the listener registered after this handle is dropped.
    pub fn detach(mut self) {
        self.detached = true;
    }
}

impl Drop for ListenerHandle {
    fn drop(&mut self) {
        if self.detached {
            return;
        }
        self.status.removed.store(true, Ordering::Release);
        // If the cycle holds the registry (this drop runs inside a listener), it prunes the
        // entry itself at its next delivery to this table.
        if let Some(table) = self.table.upgrade() {
            if let Some(mut reg) = table.registry.try_lock() {
                reg.listeners
                    .retain(|l| !l.status.removed.load(Ordering::Acquire));
            }
        }
    }
}

impl fmt::Debug for ListenerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ListenerHandle")
            .field("id", &self.id)
            .field("active", &self.is_active())
            .finish_non_exhaustive()
    }
}

pub(crate) fn register(
    table: &Arc<TableShared>,
    listener: Box<dyn Listener>,
) -> Result<ListenerHandle> {
    let core = table.core()?;
    if core.is_shut_down() {
        return Err(Error::EngineShutDown);
    }
    let status = Arc::new(ListenerStatus::default());
    let mut reg = table.registry.lock();
    if reg.ended {
        // Nothing will ever be delivered: say so now rather than register a silent listener.
        return Err(match &reg.failure {
            Some(failure) => Error::TableFailed {
                table: table.name.to_string(),
                source: failure.clone(),
            },
            None if core.is_shut_down() => Error::EngineShutDown,
            None => Error::TableClosed {
                table: table.name.to_string(),
            },
        });
    }
    reg.next_listener += 1;
    let id = ListenerId(reg.next_listener);
    reg.listeners.push(ListenerEntry {
        id,
        listener,
        status: status.clone(),
    });
    Ok(ListenerHandle {
        id,
        status,
        table: Arc::downgrade(table),
        detached: false,
    })
}
