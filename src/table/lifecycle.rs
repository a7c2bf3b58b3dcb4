//! A table's lifecycle: the one place that says whether a table is open, closing or closed.
//!
//! # States
//!
//! | state | the table | entered by |
//! |---|---|---|
//! | open | takes rows | creation |
//! | closing | refuses new rows; rows staged before the request are still applied, at the next cycle | a close request ([`TablePublisher::publish_failure`](crate::TablePublisher::publish_failure), [`DynamicTableWriter::close`](crate::DynamicTableWriter::close), a panicking `on_flush`), taken under the table's staging lock |
//! | closed | has ended: consumers were told, derived tables close in the same cycle | the cycle applying the request, a derived table whose source closed, engine shutdown (all under the global lock) |
//!
//! A table only moves forward, and a closed table records the step it closed at and why
//! ([`Closing`]: cleanly, or with the failure that listeners and subscriptions receive).

use std::sync::Arc;

use crate::error::Error;
use crate::step::Step;
use crate::sync::{AtomicU8, Mutex, Ordering};

/// Why a table closes.
#[derive(Debug, Clone)]
pub(crate) enum Closing {
    /// Closed by its writer, or by engine shutdown.
    Clean,
    /// Failed: listeners get `on_failure`, subscriptions `Event::Failed`.
    Failed(Arc<Error>),
}

impl Closing {
    /// The failure, if the close is one.
    pub(crate) fn failure(&self) -> Option<&Arc<Error>> {
        match self {
            Closing::Clean => None,
            Closing::Failed(e) => Some(e),
        }
    }

    /// What a derived table of a table closing this way closes with: cleanly, or failed with
    /// the source's error wrapped in its own name.
    pub(crate) fn for_derived(&self, table: &str) -> Closing {
        match self {
            Closing::Clean => Closing::Clean,
            Closing::Failed(e) => Closing::Failed(Arc::new(Error::TableFailed {
                table: table.to_owned(),
                source: e.clone(),
            })),
        }
    }
}

const OPEN: u8 = 0;
const CLOSING: u8 = 1;
const CLOSED: u8 = 2;

/// A table's lifecycle; see the [module docs](self).
#[derive(Debug)]
pub(crate) struct Lifecycle {
    /// `OPEN`, `CLOSING` or `CLOSED`, only ever increasing. Stored with `Release` after the
    /// reason is set under `inner`, loaded with `Acquire`, so whoever sees a table closing or
    /// closed also sees why.
    state: AtomicU8,
    /// A leaf lock: nothing is taken while it is held.
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    reason: Option<Closing>,
    /// A close was requested and the cycle has not taken it yet.
    requested: bool,
    closed_at: Option<Step>,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Self {
            state: AtomicU8::new(OPEN),
            inner: Mutex::new(Inner::default()),
        }
    }
}

impl Lifecycle {
    /// Whether the table takes rows. Lock-free.
    pub(crate) fn is_open(&self) -> bool {
        self.state.load(Ordering::Acquire) == OPEN
    }

    /// Whether the table has ended (the cycle closed it). Lock-free.
    pub(crate) fn has_ended(&self) -> bool {
        self.state.load(Ordering::Acquire) == CLOSED
    }

    /// Requests a close, to be applied by the next cycle after the rows staged before it.
    /// Returns whether this call moved the table out of `open` (a later request does
    /// nothing). The caller holds the table's staging lock, so a write is either staged
    /// before the request or refused after it.
    pub(crate) fn request(&self, closing: Closing) -> bool {
        let mut inner = self.inner.lock();
        if self.state.load(Ordering::Acquire) != OPEN {
            return false;
        }
        inner.reason = Some(closing);
        inner.requested = true;
        self.state.store(CLOSING, Ordering::Release);
        true
    }

    /// Takes a pending close request, for the cycle that applies it.
    pub(crate) fn take_request(&self) -> Option<Closing> {
        // A request moves the state out of open before it is taken: an open table (every
        // table, every cycle, but the closing ones) has none, and costs no lock.
        if self.is_open() {
            return None;
        }
        let mut inner = self.inner.lock();
        if !std::mem::take(&mut inner.requested) {
            return None;
        }
        inner.reason.clone()
    }

    /// Whether a close request is waiting for a cycle.
    pub(crate) fn has_request(&self) -> bool {
        !self.is_open() && self.inner.lock().requested
    }

    /// Marks the table closed at `step`. Returns `false` if it already was.
    pub(crate) fn close(&self, step: Step, closing: Closing) -> bool {
        let mut inner = self.inner.lock();
        if self.state.load(Ordering::Acquire) == CLOSED {
            return false;
        }
        inner.reason = Some(closing);
        inner.requested = false;
        inner.closed_at = Some(step);
        self.state.store(CLOSED, Ordering::Release);
        true
    }

    /// How the table closed, and at which step, once it has.
    pub(crate) fn closed(&self) -> Option<(Step, Closing)> {
        let inner = self.inner.lock();
        Some((inner.closed_at?, inner.reason.clone()?))
    }

    /// The failure the table closed with, once it has.
    pub(crate) fn failure(&self) -> Option<Arc<Error>> {
        let inner = self.inner.lock();
        inner.closed_at?;
        inner.reason.as_ref()?.failure().cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed() -> Closing {
        Closing::Failed(Arc::new(Error::EngineShutDown))
    }

    #[test]
    fn smoke() {
        let l = Lifecycle::default();
        assert!(l.is_open() && !l.has_ended());
        assert!(l.request(Closing::Clean));
        assert!(!l.is_open() && !l.has_ended());
        assert!(matches!(l.take_request(), Some(Closing::Clean)));
        assert!(l.take_request().is_none(), "a request is taken once");
        assert!(l.close(Step(3), Closing::Clean));
        assert!(l.has_ended());
        assert!(matches!(l.closed(), Some((Step(3), Closing::Clean))));
    }

    #[test]
    fn a_table_only_moves_forward() {
        let l = Lifecycle::default();
        assert!(l.request(failed()));
        assert!(!l.request(Closing::Clean), "the first request wins");
        assert!(
            l.failure().is_none(),
            "no failure before the cycle applies it"
        );
        assert!(l.close(Step(1), failed()));
        assert!(!l.close(Step(2), Closing::Clean));
        assert!(!l.request(Closing::Clean));
        assert!(l.failure().is_some());
        assert_eq!(l.closed().map(|(s, _)| s), Some(Step(1)));
    }

    #[test]
    fn a_derived_table_fails_with_its_own_name_around_the_source_error() {
        let c = failed().for_derived("child");
        let e = c.failure().expect("failed");
        assert_eq!(
            e.to_string(),
            "table \"child\" failed: the engine has shut down"
        );
        assert!(Closing::Clean.for_derived("child").failure().is_none());
    }
}
