//! `tickertable.Agg` (built by `tickertable.agg`), the aggregates of `agg_by` and `bars`.

use pyo3::prelude::*;
use pyo3::types::PyString;
use tickertable::Agg;

/// One aggregate of ``Engine.agg_by`` and ``Engine.bars``: an output column.
///
/// Build them with the functions of ``tickertable.agg``: ``count()``, ``sum(col)``,
/// ``min(col)``, ``max(col)``, ``first(col)``, ``last(col)``, ``mean(col)`` and
/// ``wmean(col, weight)`` (VWAP is ``wmean("Price", "Size")``), each with an optional
/// ``name`` for the output column. Without one the column is named after the aggregate and
/// its column: ``count``, ``sum_Size``, ``wmean_Price``. Every aggregate but ``count``
/// skips nulls.
#[pyclass(
    name = "Agg",
    module = "tickertable",
    frozen,
    eq,
    hash,
    skip_from_py_object
)]
#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) struct PyAgg {
    pub(crate) agg: Agg,
}

impl PyAgg {
    fn named(agg: Agg, name: Option<&str>) -> Self {
        Self {
            agg: match name {
                Some(n) => agg.with_name(n),
                None => agg,
            },
        }
    }
}

/// Aggregates from one ``Agg`` or aggregate string (``"sum(Size) as volume"``), or a
/// sequence of them.
pub(crate) fn aggs_of(aggs: &Bound<'_, PyAny>) -> PyResult<Vec<Agg>> {
    let not_agg = |o: &Bound<'_, PyAny>| {
        let found = o
            .get_type()
            .name()
            .map_or_else(|_| "?".to_owned(), |n| n.to_string());
        pyo3::exceptions::PyTypeError::new_err(format!(
            "aggs takes tickertable.agg aggregates (tt.agg.sum(\"Size\"), ...) or their text \
             (\"sum(Size) as volume\"), found {found}"
        ))
    };
    let one = |item: &Bound<'_, PyAny>| -> PyResult<Agg> {
        if let Ok(a) = item.cast::<PyAgg>() {
            return Ok(a.get().agg.clone());
        }
        if let Ok(text) = item.cast::<PyString>() {
            let text = text.to_str()?;
            return text.parse::<Agg>().map_err(|e| {
                pyo3::exceptions::PyValueError::new_err(format!("aggregate {text:?}: {e}"))
            });
        }
        Err(not_agg(item))
    };
    if aggs.is_instance_of::<PyAgg>() || aggs.is_instance_of::<PyString>() {
        return Ok(vec![one(aggs)?]);
    }
    let items = aggs.try_iter().map_err(|_| not_agg(aggs))?;
    items.map(|item| one(&item?)).collect()
}

#[pymethods]
impl PyAgg {
    /// The number of rows of the group (``count`` unless ``name`` says otherwise).
    #[staticmethod]
    #[pyo3(signature = (*, name = None))]
    fn count(name: Option<&str>) -> Self {
        Self::named(Agg::count(), name)
    }

    /// The sum of ``column``: ``Int64`` for integers, ``Float64`` for floats.
    #[staticmethod]
    #[pyo3(signature = (column, *, name = None))]
    fn sum(column: &str, name: Option<&str>) -> Self {
        Self::named(Agg::sum(column), name)
    }

    /// The least value of ``column``.
    #[staticmethod]
    #[pyo3(signature = (column, *, name = None))]
    fn min(column: &str, name: Option<&str>) -> Self {
        Self::named(Agg::min(column), name)
    }

    /// The greatest value of ``column``.
    #[staticmethod]
    #[pyo3(signature = (column, *, name = None))]
    fn max(column: &str, name: Option<&str>) -> Self {
        Self::named(Agg::max(column), name)
    }

    /// ``column`` in the group's first row (by position).
    #[staticmethod]
    #[pyo3(signature = (column, *, name = None))]
    fn first(column: &str, name: Option<&str>) -> Self {
        Self::named(Agg::first(column), name)
    }

    /// ``column`` in the group's last row (by position).
    #[staticmethod]
    #[pyo3(signature = (column, *, name = None))]
    fn last(column: &str, name: Option<&str>) -> Self {
        Self::named(Agg::last(column), name)
    }

    /// The mean of ``column``, a ``Float64``.
    #[staticmethod]
    #[pyo3(signature = (column, *, name = None))]
    fn mean(column: &str, name: Option<&str>) -> Self {
        Self::named(Agg::mean(column), name)
    }

    /// The mean of ``column`` weighted by ``weight``: sum(weight * column) / sum(weight) over
    /// the rows that have both (VWAP is ``wmean("Price", "Size")``).
    #[staticmethod]
    #[pyo3(signature = (column, weight, *, name = None))]
    fn wmean(column: &str, weight: &str, name: Option<&str>) -> Self {
        Self::named(Agg::weighted_mean(column, weight), name)
    }

    /// The kind: ``"count"``, ``"sum"``, ``"min"``, ``"max"``, ``"first"``, ``"last"``,
    /// ``"mean"`` or ``"wmean"``.
    #[getter]
    fn kind(&self) -> &'static str {
        self.agg.kind().name()
    }

    /// The input column (``None`` for ``count``).
    #[getter]
    fn column(&self) -> Option<&str> {
        self.agg.column()
    }

    /// The weight column of a ``wmean``.
    #[getter]
    fn weight(&self) -> Option<&str> {
        self.agg.weight()
    }

    /// The output column's name.
    #[getter]
    fn name(&self) -> &str {
        self.agg.name()
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        let quote = |s: &str| {
            PyString::new(py, s)
                .repr()
                .map_or_else(|_| format!("{s:?}"), |r| r.to_string())
        };
        let mut args: Vec<String> = Vec::new();
        if let Some(c) = self.agg.column() {
            args.push(quote(c));
        }
        if let Some(w) = self.agg.weight() {
            args.push(quote(w));
        }
        // The name the constructor gives (see `Agg::sum` and the others).
        let default = match self.agg.column() {
            Some(c) => format!("{}_{c}", self.agg.kind().name()),
            None => self.agg.kind().name().to_owned(),
        };
        if default != self.agg.name() {
            args.push(format!("name={}", quote(self.agg.name())));
        }
        format!("tt.agg.{}({})", self.agg.kind().name(), args.join(", "))
    }
}
