//! Waiting for visibility: until a step is published, or until everything staged before now
//! is visible.
//!
//! A cycle records the step it computes as *begun* right after it takes the global lock and
//! before it drains anything, and publishes the step when its updates are out. A writer that
//! staged rows and then reads begun step `k` knows that cycle `k + 1` (or a later one) will
//! drain them: that cycle had not taken the lock when the rows were staged. So waiting until
//! step `k + 1` is published waits exactly for the rows' cycle, never for a period more than
//! needed, and never returns early.
//!
//! A cycle notifies waiters only when there are some: a waiter counts itself in
//! `Core::visible_waiters` and then reads the step, a cycle stores the step and then reads
//! the count, all `SeqCst`. So either the waiter sees the new step, or the cycle sees the
//! waiter and notifies it under `Core::visible`, which the waiter holds from before it
//! counted itself until it sleeps: no wake-up is lost, and a cycle with no waiter takes no
//! lock for them.

use std::time::{Duration, Instant};

use crate::graph::Core;
use crate::graph::{cycle, on_cycle_thread};
use crate::step::Step;
use crate::sync::{AtomicU64, Ordering};

/// How often a waiter looks at the step again (a hang guard; cycles notify).
const SLICE: Duration = Duration::from_millis(50);

/// Waits until step `step` is published, at most `timeout`. Returns whether it was. A
/// shut-down engine publishes no more steps, so waiting ends there.
pub(crate) fn wait_for_step(core: &Core, step: Step, timeout: Duration) -> bool {
    let deadline = Instant::now().checked_add(timeout);
    let mut guard = core.visible.lock();
    let _counted = Counted::new(&core.visible_waiters);
    loop {
        if Step(core.step.load(Ordering::SeqCst)) >= step {
            return true;
        }
        if core.is_shut_down() && !core.shutting_down_cycles() {
            return false;
        }
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            return false;
        }
        let wait = deadline.map_or(SLICE, |d| (d - now).min(SLICE));
        core.visible_cv.wait_for(&mut guard, wait);
    }
}

/// Counts a waiter while it lives.
struct Counted<'a>(&'a AtomicU64);

impl<'a> Counted<'a> {
    fn new(count: &'a AtomicU64) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        Self(count)
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Makes everything staged before this call visible and returns the step it is visible at:
/// runs a cycle on a manual engine; on an engine with a cycle thread, asks for a cycle now
/// and waits for the first one that drains after this call. On the cycle thread (a listener
/// or `on_flush`) it cannot wait for a cycle and returns the current step at once.
pub(crate) fn sync(core: &std::sync::Arc<Core>) -> Step {
    if on_cycle_thread() {
        return core.step();
    }
    if !core.config.threaded {
        return if core.is_shut_down() {
            core.step()
        } else {
            cycle::run(core)
        };
    }
    // SeqCst with the store in the cycle: see the module docs.
    let target = Step(core.begun.load(Ordering::SeqCst) + 1);
    loop {
        request_refresh(core);
        if wait_for_step(core, target, SLICE) || core.is_shut_down() {
            return core.step();
        }
    }
}

/// Asks the cycle thread to run the next cycle now; requests before it starts coalesce.
pub(crate) fn request_refresh(core: &Core) {
    let mut w = core.wake.lock();
    if !w.refresh {
        w.refresh = true;
        core.wake_cv.notify_one();
    }
}
