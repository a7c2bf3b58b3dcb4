//! A subscription's bounded queue of events: what the cycle pushes and a subscriber pops.
//!
//! See the [`subscribe`](crate::subscribe) module docs for the lagging and closing rules.

use std::collections::VecDeque;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::subscribe::update::TableUpdate;
use crate::sync::{AtomicBool, Condvar, Mutex, MutexGuard, Ordering};
use crate::table::snapshot::TableSnapshot;

/// One item of a [`Subscription`](crate::Subscription).
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

/// Why [`Subscription::try_recv`](crate::Subscription::try_recv) returned nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TryRecvError {
    /// No event is queued now.
    Empty,
    /// The subscription has ended: the table closed or failed, or the engine shut down.
    Ended,
}

/// Why [`Subscription::recv_timeout`](crate::Subscription::recv_timeout) returned nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecvTimeoutError {
    /// No event arrived in time.
    Timeout,
    /// The subscription has ended.
    Ended,
}

/// A subscription's queue, shared by the subscriber and the table's registry.
pub(crate) struct Queue {
    state: Mutex<QueueState>,
    ready: Condvar,
    /// Set by the subscription's drop; the cycle prunes. `Release`/`Acquire` pairs the drop
    /// with the prune.
    dropped: AtomicBool,
    options: SubscriptionOptions,
}

struct QueueState {
    queue: VecDeque<Event>,
    queued_rows: usize,
    lagged: u64,
    ended: bool,
    waker: Option<Waker>,
}

impl QueueState {
    /// The next queued event, keeping the queued-row count in step.
    fn pop(&mut self) -> Option<Event> {
        let e = self.queue.pop_front()?;
        if let Event::Update(u) = &e {
            self.queued_rows -= u.num_added();
        }
        Some(e)
    }
}

impl Queue {
    /// A queue holding `first` (the subscription's snapshot).
    pub(crate) fn new(options: SubscriptionOptions, first: Event) -> Self {
        let mut queue = VecDeque::with_capacity(16);
        queue.push_back(first);
        Self {
            state: Mutex::new(QueueState {
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

    pub(crate) fn is_dropped(&self) -> bool {
        self.dropped.load(Ordering::Acquire)
    }

    pub(crate) fn set_dropped(&self) {
        self.dropped.store(true, Ordering::Release);
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
        Self::notify(&self.ready, st);
    }

    /// Ends the queue, after an optional last event.
    pub(crate) fn end(&self, last: Option<Event>) {
        let mut st = self.state.lock();
        if st.ended {
            return;
        }
        if let Some(e) = last {
            st.queue.push_back(e);
        }
        st.ended = true;
        Self::notify(&self.ready, st);
    }

    /// Ends the queue and throws away what it holds (a server ending a stalled stream).
    #[cfg(feature = "flight")]
    pub(crate) fn abandon(&self) {
        let mut st = self.state.lock();
        st.queue.clear();
        st.queued_rows = 0;
        st.ended = true;
        Self::notify(&self.ready, st);
    }

    /// Whether the queue has ended.
    #[cfg(feature = "flight")]
    pub(crate) fn is_ended(&self) -> bool {
        self.state.lock().ended
    }

    fn notify(ready: &Condvar, mut st: MutexGuard<'_, QueueState>) {
        let waker = st.waker.take();
        drop(st);
        ready.notify_all();
        if let Some(w) = waker {
            w.wake();
        }
    }

    pub(crate) fn lagged(&self) -> u64 {
        self.state.lock().lagged
    }

    pub(crate) fn len(&self) -> usize {
        self.state.lock().queue.len()
    }

    pub(crate) fn recv(&self) -> Option<Event> {
        let mut st = self.state.lock();
        loop {
            if let Some(e) = st.pop() {
                return Some(e);
            }
            if st.ended {
                return None;
            }
            self.ready.wait(&mut st);
        }
    }

    pub(crate) fn try_recv(&self) -> Result<Event, TryRecvError> {
        let mut st = self.state.lock();
        if let Some(e) = st.pop() {
            return Ok(e);
        }
        Err(if st.ended {
            TryRecvError::Ended
        } else {
            TryRecvError::Empty
        })
    }

    pub(crate) fn recv_timeout(&self, timeout: Duration) -> Result<Event, RecvTimeoutError> {
        // A timeout too long to add to an `Instant` waits without a deadline.
        let deadline = Instant::now().checked_add(timeout);
        let mut st = self.state.lock();
        loop {
            if let Some(e) = st.pop() {
                return Ok(e);
            }
            if st.ended {
                return Err(RecvTimeoutError::Ended);
            }
            match deadline {
                Some(d) if Instant::now() >= d => return Err(RecvTimeoutError::Timeout),
                Some(d) => {
                    self.ready.wait_until(&mut st, d);
                }
                None => self.ready.wait(&mut st),
            }
        }
    }

    pub(crate) fn poll_next(&self, cx: &Context<'_>) -> Poll<Option<Event>> {
        let mut st = self.state.lock();
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
