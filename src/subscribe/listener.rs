//! Listeners: callbacks on the cycle thread, and the handles that keep them registered.

use std::fmt;
use std::sync::Arc;

use crate::error::Error;
use crate::subscribe::update::TableUpdate;
use crate::sync::{AtomicBool, Mutex, Ordering};

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

/// One registered listener, shared by its handle and the table's registry.
pub(crate) struct ListenerCell {
    pub(crate) id: ListenerId,
    /// Set by the handle's drop, or by the cycle when the listener panicked or its table
    /// ended. `Release` on store, `Acquire` on load, so the cycle sees a drop made on another
    /// thread before it calls the listener again.
    removed: AtomicBool,
    failure: Mutex<Option<String>>,
    /// The callback; taken (and dropped) once the listener is removed. Locked by the cycle
    /// around each call and by the handle's drop with `try_lock` (a drop from inside the
    /// callback leaves the callback to the cycle).
    listener: Mutex<Option<Box<dyn Listener>>>,
}

impl ListenerCell {
    pub(crate) fn new(id: ListenerId, listener: Box<dyn Listener>) -> Self {
        Self {
            id,
            removed: AtomicBool::new(false),
            failure: Mutex::new(None),
            listener: Mutex::new(Some(listener)),
        }
    }

    pub(crate) fn is_removed(&self) -> bool {
        self.removed.load(Ordering::Acquire)
    }

    /// Runs `f` on the callback unless the listener was removed; a panic removes it and is
    /// returned as its message. Returns whether the listener stays registered.
    pub(crate) fn call(&self, f: impl FnOnce(&mut dyn Listener)) -> Result<bool, String> {
        let mut slot = self.listener.lock();
        let Some(listener) = slot.as_mut() else {
            return Ok(false);
        };
        if self.is_removed() {
            *slot = None;
            return Ok(false);
        }
        let call = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(listener.as_mut())));
        match call {
            Ok(()) if self.is_removed() => {
                // The handle was dropped from inside the callback.
                *slot = None;
                Ok(false)
            }
            Ok(()) => Ok(true),
            Err(payload) => {
                let message = crate::error::panic_message(payload.as_ref());
                *self.failure.lock() = Some(message.clone());
                self.removed.store(true, Ordering::Release);
                *slot = None;
                Err(message)
            }
        }
    }

    /// Drops the callback of a listener whose table ended; the handle stays active.
    pub(crate) fn end(&self) {
        *self.listener.lock() = None;
    }

    /// Removes the listener: no callback runs after this returns, unless one is running now
    /// on the cycle thread (that one finishes, then the callback is dropped).
    pub(crate) fn remove(&self) {
        self.removed.store(true, Ordering::Release);
        if let Some(mut slot) = self.listener.try_lock() {
            *slot = None;
        }
    }
}

/// A registered listener. Dropping it removes the listener; [`detach`](Self::detach) keeps it
/// for the table's life.
#[must_use = "dropping the handle removes the listener at once"]
pub struct ListenerHandle {
    cell: Arc<ListenerCell>,
    detached: bool,
}

impl ListenerHandle {
    pub(crate) fn new(cell: Arc<ListenerCell>) -> Self {
        Self {
            cell,
            detached: false,
        }
    }

    /// The listener's id.
    pub fn id(&self) -> ListenerId {
        self.cell.id
    }

    /// Whether the listener is still registered (it has not panicked).
    pub fn is_active(&self) -> bool {
        !self.cell.is_removed()
    }

    /// The panic message, if the listener panicked and was removed.
    pub fn failure(&self) -> Option<String> {
        self.cell.failure.lock().clone()
    }

    /// Keeps the listener registered after this handle is dropped.
    pub fn detach(mut self) {
        self.detached = true;
    }
}

impl Drop for ListenerHandle {
    fn drop(&mut self) {
        if !self.detached {
            // The registry prunes the entry at the table's next delivery or registration.
            self.cell.remove();
        }
    }
}

impl fmt::Debug for ListenerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ListenerHandle")
            .field("id", &self.cell.id)
            .field("active", &self.is_active())
            .finish_non_exhaustive()
    }
}
