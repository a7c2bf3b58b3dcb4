//! Subscriptions: a bounded, gapless queue of a table's snapshot and updates; see the
//! [`subscribe`](crate::subscribe) module docs for lagging and closing.

use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::subscribe::TableUpdate;
use crate::sync::{AtomicBool, Condvar, Mutex, Ordering};
use crate::table::snapshot::TableSnapshot;
use crate::table::{Table, TableShared};

/// One item of a [`Subscription`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event {
    /// The table at the step the subscription started; always the first event (unless it was
    /// replaced by a [`Lagged`](Event::Lagged) before it was read).
    Snapshot(TableSnapshot),
    /// The next update after the last snapshot or update.
    Update(Arc<TableUpdate>),
    /// The subscriber fell behind: `missed` updates were dropped. Reset to `snapshot`; the
    /// updates that follow apply to it.
    Lagged {
        /// How many updates were dropped.
        missed: u64,
        /// The table at the step of the last dropped update.
        snapshot: TableSnapshot,
    },
    /// The table failed; the subscription ends after this.
    Failed(Arc<Error>),
}

/// Bounds of a subscription's queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubscriptionOptions {
    capacity: usize,
    max_queued_rows: usize,
}

impl Default for SubscriptionOptions {
    fn default() -> Self {
        Self {
            capacity: 1024,
            max_queued_rows: 4 << 20,
        }
    }
}

impl SubscriptionOptions {
    /// The most updates queued before the subscriber lags (default 1024; at least 1).
    #[must_use]
    pub fn with_capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity.max(1);
        self
    }

    /// The most added rows queued before the subscriber lags (default 4Mi). An update
    /// arriving at an empty queue is always taken, however many rows it has.
    #[must_use]
    pub fn with_max_queued_rows(mut self, rows: usize) -> Self {
        self.max_queued_rows = rows;
        self
    }
}

/// Why [`Subscription::try_recv`] returned nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TryRecvError {
    /// No event is queued now.
    Empty,
    /// The subscription has ended: the table closed or failed, or the engine shut down.
    Ended,
}

/// Why [`Subscription::recv_timeout`] returned nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecvTimeoutError {
    /// No event arrived in time.
    Timeout,
    /// The subscription has ended.
    Ended,
}

pub(crate) struct SubShared {
    state: Mutex<SubState>,
    ready: Condvar,
    /// Set by the subscription's drop; the cycle prunes. `Release`/`Acquire` pairs the drop
    /// with the prune.
    pub(crate) dropped: AtomicBool,
    options: SubscriptionOptions,
}

struct SubState {
    queue: VecDeque<Event>,
    queued_rows: usize,
    lagged: u64,
    ended: bool,
    waker: Option<Waker>,
}

impl SubState {
    /// The next queued event, keeping the queued-row count in step.
    fn pop(&mut self) -> Option<Event> {
        let e = self.queue.pop_front()?;
        if let Event::Update(u) = &e {
            self.queued_rows -= u.num_added();
        }
        Some(e)
    }
}

impl SubShared {
    fn new(options: SubscriptionOptions, first: Event) -> Self {
        let mut queue = VecDeque::with_capacity(16);
        queue.push_back(first);
        Self {
            state: Mutex::new(SubState {
                queue,
                queued_rows: 0,
                lagged: 0,
                ended: false,
                waker: None,
            }),
            ready: Condvar::new(),
            dropped: AtomicBool::new(false),
            options,
        }
    }

    /// Queues an update, or replaces the queue with a `Lagged` if it would go past its bounds.
    /// Never blocks beyond the queue's own short mutex. O(1) amortised, O(queue) on lag.
    pub(crate) fn push_update(&self, update: &Arc<TableUpdate>, snapshot: &TableSnapshot) {
        let mut st = self.state.lock();
        if st.ended {
            return;
        }
        let rows = update.num_added();
        let full = st.queue.len() >= self.options.capacity
            || (!st.queue.is_empty() && st.queued_rows + rows > self.options.max_queued_rows);
        if full {
            let mut missed = 1;
            for e in &st.queue {
                match e {
                    Event::Update(_) => missed += 1,
                    Event::Lagged { missed: m, .. } => missed += m,
                    _ => {}
                }
            }
            st.queue.clear();
            st.queued_rows = 0;
            st.lagged += 1;
            st.queue.push_back(Event::Lagged {
                missed,
                snapshot: snapshot.clone(),
            });
        } else {
            st.queued_rows += rows;
            st.queue.push_back(Event::Update(update.clone()));
        }
        self.notify(st);
    }

    /// Ends the subscription, after an optional last event.
    pub(crate) fn end(&self, last: Option<Event>) {
        let mut st = self.state.lock();
        if st.ended {
            return;
        }
        if let Some(e) = last {
            st.queue.push_back(e);
        }
        st.ended = true;
        self.notify(st);
    }

    fn notify(&self, mut st: crate::sync::MutexGuard<'_, SubState>) {
        let waker = st.waker.take();
        drop(st);
        self.ready.notify_all();
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// A subscription to a table: its snapshot, then every update, in step order, without gaps.
///
/// Made by [`Table::subscribe`]. Read it as a blocking iterator (`for event in sub`), with
/// [`recv`](Self::recv) / [`try_recv`](Self::try_recv) / [`recv_timeout`](Self::recv_timeout),
/// or as a `futures::Stream`. The first event is the table's [`Event::Snapshot`] at the step the
/// subscription started; every later update follows it with nothing missed or repeated. A
/// subscriber that falls behind gets [`Event::Lagged`] (see [lagging](crate::subscribe#lagging)) and
/// never stalls the cycle. Dropping the subscription unsubscribes.
pub struct Subscription {
    shared: Arc<SubShared>,
    table: Table,
}

impl Subscription {
    /// The table subscribed to.
    pub fn table(&self) -> &Table {
        &self.table
    }

    /// How many times this subscription has lagged.
    pub fn lagged_count(&self) -> u64 {
        self.shared.state.lock().lagged
    }

    /// How many events are queued now.
    pub fn len(&self) -> usize {
        self.shared.state.lock().queue.len()
    }

    /// Whether no event is queued now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The next event, blocking until one arrives; `None` once the subscription has ended.
    pub fn recv(&self) -> Option<Event> {
        let mut st = self.shared.state.lock();
        loop {
            if let Some(e) = st.pop() {
                return Some(e);
            }
            if st.ended {
                return None;
            }
            self.shared.ready.wait(&mut st);
        }
    }

    /// The next event if one is queued.
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Empty`] or [`TryRecvError::Ended`].
    pub fn try_recv(&self) -> Result<Event, TryRecvError> {
        let mut st = self.shared.state.lock();
        if let Some(e) = st.pop() {
            return Ok(e);
        }
        Err(if st.ended {
            TryRecvError::Ended
        } else {
            TryRecvError::Empty
        })
    }

    /// The next event, waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`RecvTimeoutError::Timeout`] or [`RecvTimeoutError::Ended`].
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Event, RecvTimeoutError> {
        let deadline = Instant::now() + timeout;
        let mut st = self.shared.state.lock();
        loop {
            if let Some(e) = st.pop() {
                return Ok(e);
            }
            if st.ended {
                return Err(RecvTimeoutError::Ended);
            }
            if Instant::now() >= deadline {
                return Err(RecvTimeoutError::Timeout);
            }
            self.shared.ready.wait_until(&mut st, deadline);
        }
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
        let mut st = self.shared.state.lock();
        if let Some(e) = st.pop() {
            return Poll::Ready(Some(e));
        }
        if st.ended {
            return Poll::Ready(None);
        }
        match &st.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => st.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.shared.dropped.store(true, Ordering::Release);
        if let Some(mut reg) = self.table.shared.registry.try_lock() {
            reg.subscribers
                .retain(|s| !s.dropped.load(Ordering::Acquire));
        }
    }
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("table", &self.table.name())
            .field("queued", &self.len())
            .finish_non_exhaustive()
    }
}

/// Subscribes gaplessly: under the shared side of the global lock no cycle runs, so the
/// snapshot taken is the table's state at the current step and every later update is queued.
pub(crate) fn register(
    table: &Arc<TableShared>,
    options: SubscriptionOptions,
) -> Result<Subscription> {
    let core = table.core()?;
    // Recursive: subscribing inside `EngineHandle::read` must not queue behind a waiting cycle.
    let graph = core.graph.read_recursive();
    let snapshot = TableSnapshot::from_inner(table.snapshot.load_full());
    let shared = Arc::new(SubShared::new(options, Event::Snapshot(snapshot)));
    {
        let mut reg = table.registry.lock();
        if reg.ended || core.is_shut_down() {
            shared.end(reg.failure.clone().map(Event::Failed));
        } else {
            reg.subscribers.push(shared.clone());
        }
    }
    drop(graph);
    Ok(Subscription {
        shared,
        table: Table {
            shared: table.clone(),
        },
    })
}
