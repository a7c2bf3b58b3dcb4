//! Running Python callbacks from the engine, and waiting without holding the GIL.
//!
//! # The GIL and the engine's lock
//!
//! Listeners and `on_flush` callbacks run on the cycle thread under the engine's global lock,
//! and take the GIL to call Python. So the one rule that keeps the two locks deadlock-free is:
//! **no thread waits for anything the engine holds while it holds the GIL**. Every method that
//! can wait (table creation, `subscribe`, `listen`, `run_cycle`, `add` on a full buffer,
//! multithreaded `insert` under back-pressure, `wait_for_thread_completion`, a subscription's
//! `next`, shutdown) releases the GIL first (`Python::detach`). The only calls made with the GIL
//! held take locks that the cycle never holds while it needs the GIL (a row writer's own
//! buffer, a multithreaded writer's lane): that is what keeps `write_row` and `insert` cheap.
//!
//! A callback that calls back into the engine in a way that would wait for the cycle it runs
//! in (`run_cycle`, creating tables, `listen`, `subscribe`) gets an error instead of a deadlock
//! ([`check_not_in_callback`]). A callback that raises is reported through
//! `sys.unraisablehook`, then ends the way a panicking Rust callback does: a listener is
//! removed, an `on_flush` fails its table; the engine goes on.
//!
//! Waits are cut into slices (`SLICE`) with `Python::check_signals` between them, so Ctrl-C
//! interrupts a blocked call with `KeyboardInterrupt`.

use std::cell::Cell;
use std::time::Duration;

use pyo3::prelude::*;

use crate::errors::simple;

/// How long a blocked call waits between checks for signals.
pub(crate) const SLICE: Duration = Duration::from_millis(50);

thread_local! {
    /// How many engine callbacks are running on this thread.
    static DEPTH: Cell<u32> = const { Cell::new(0) };
}

/// Marks the current thread as running an engine callback while alive.
pub(crate) struct CallbackScope(());

impl CallbackScope {
    pub(crate) fn enter() -> Self {
        DEPTH.with(|d| d.set(d.get() + 1));
        Self(())
    }
}

impl Drop for CallbackScope {
    fn drop(&mut self) {
        DEPTH.with(|d| d.set(d.get() - 1));
    }
}

/// Whether an engine callback runs on this thread.
pub(crate) fn in_callback() -> bool {
    DEPTH.with(Cell::get) > 0
}

/// Refuses `what` inside a listener or `on_flush` (it would wait for the running cycle).
pub(crate) fn check_not_in_callback(py: Python<'_>, what: &str) -> PyResult<()> {
    if in_callback() {
        return Err(simple(
            py,
            "Error",
            format!(
                "{what} cannot be called from a listener or on_flush callback: it would wait \
                 for the cycle that runs the callback; hand the work to another thread"
            ),
        ));
    }
    Ok(())
}

/// A callback's exception: its description and the exception object.
pub(crate) type Raised = (String, Py<PyAny>);

/// Calls a Python callback from the engine: takes the GIL, and on an exception reports it
/// (`sys.unraisablehook`) and returns it.
pub(crate) fn call_python(
    what: &str,
    f: impl FnOnce(Python<'_>) -> PyResult<()>,
) -> Option<Raised> {
    Python::attach(|py| {
        let _scope = CallbackScope::enter();
        match f(py) {
            Ok(()) => None,
            Err(e) => {
                let message = format!("{what} raised {e}");
                let exception = e.value(py).clone().into_any().unbind();
                let context = pyo3::types::PyString::new(py, what);
                e.write_unraisable(py, Some(context.as_any()));
                Some((message, exception))
            }
        }
    })
}

/// Ends a failed callback the way the engine expects a failed Rust callback to end: by
/// unwinding, which the engine catches (the panic hook is not run, nothing is printed twice).
pub(crate) fn fail_callback(message: Option<String>) {
    if let Some(m) = message {
        std::panic::resume_unwind(Box::new(m));
    }
}

/// Waits (without the GIL) until `ready` says yes, checking for signals between slices.
/// `ready` runs without the GIL; it returns `Some` when the wait is over.
pub(crate) fn wait_until<T: Send>(
    py: Python<'_>,
    mut ready: impl FnMut() -> Option<T> + Send,
) -> PyResult<T> {
    let mut pause = Duration::from_micros(100);
    loop {
        let got = py.detach(|| {
            let mut waited = Duration::ZERO;
            while waited < SLICE {
                if let Some(v) = ready() {
                    return Some(v);
                }
                std::thread::sleep(pause);
                waited += pause;
                pause = (pause * 2).min(Duration::from_millis(5));
            }
            None
        });
        if let Some(v) = got {
            return Ok(v);
        }
        py.check_signals()?;
    }
}
