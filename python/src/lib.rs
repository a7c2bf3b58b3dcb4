//! `tickertable._tickertable`: the compiled half of the `tickertable` Python package.
//!
//! A pyo3 extension over the engine with the shapes its users know: Deephaven's
//! `table_publisher` and `DynamicTableWriter`, DolphinDB's `MultithreadedTableWriter`,
//! ClickZetta's upsert and delete by key, and Flight for served engines (`connect`). Arrow data
//! crosses through the Arrow C data interface (arrow-pyarrow), without copies. The pure-Python
//! half (`tickertable/__init__.py`) re-exports these classes and adds the exceptions and the
//! dict, pandas and row conversions.
//!
//! See the `callback` module for how the GIL and the engine's lock stay deadlock-free.

// The doc comments of Python-visible items are their Python docstrings (what `help()` shows),
// written in Python's reStructuredText style with product names (DolphinDB, ClickZetta) and
// Python names (DataFrame, snake_case) that rustdoc's backtick rule would mangle.
#![allow(clippy::doc_markdown)]
// Python methods and getters take `self` whether or not they read it (`Update.kind`).
#![allow(clippy::unused_self)]

mod callback;
mod convert;
mod derive;
mod engine;
mod errors;
mod mtw;
mod publish;
mod remote;
mod subscribe;
mod table;

use pyo3::prelude::*;

/// The compiled module; `import tickertable` re-exports everything in it.
#[pymodule]
fn _tickertable(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<engine::PyEngine>()?;
    m.add_class::<engine::PyFlightServer>()?;
    m.add_class::<table::PyTable>()?;
    m.add_class::<derive::PyAgg>()?;
    m.add_class::<table::PyUpdate>()?;
    m.add_class::<table::PyListenerHandle>()?;
    m.add_class::<subscribe::PySubscription>()?;
    m.add_class::<subscribe::PySnapshot>()?;
    m.add_class::<subscribe::PyLagged>()?;
    m.add_class::<subscribe::PyFailed>()?;
    m.add_class::<publish::PyTablePublisher>()?;
    m.add_class::<publish::PyDynamicTableWriter>()?;
    m.add_class::<publish::PyTransaction>()?;
    m.add_class::<mtw::PyMtw>()?;
    m.add_class::<mtw::PyMtwStatus>()?;
    m.add_class::<mtw::PyThreadStatus>()?;
    m.add_class::<remote::PyClient>()?;
    m.add_class::<remote::PyRemoteTable>()?;
    m.add_class::<remote::PyRemoteSubscription>()?;
    m.add_function(wrap_pyfunction!(remote::connect, m)?)?;
    m.add("OP_COLUMN", tickertable::OP_COLUMN)?;
    Ok(())
}
