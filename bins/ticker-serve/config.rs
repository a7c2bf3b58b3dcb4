//! The tables file: `ticker-serve --config tables.toml`.
//!
//! ```toml
//! period_ms = 100                 # optional; --period-ms wins
//! sync = "every_cycle"            # optional; every_cycle | never | an interval ("200ms");
//!                                 # --sync wins (see `ticker-serve --help`)
//!
//! [[table]]
//! name = "trades"
//! kind = "blink"                  # append | blink | ring | keyed
//! columns = [
//!     { name = "Ts", type = "timestamp_ns" },
//!     { name = "Sym", type = "utf8" },
//!     { name = "Price", type = "float64" },
//!     { name = "Size", type = "int64", nullable = false },
//! ]
//! # capacity = 100000             # ring (required), keyed (optional)
//! # limit = 1000000               # append (optional)
//! # key = ["Sym"]                 # keyed (required)
//! # durable = true                # logged in --data-dir, replayed at start (default false)
//!
//! [[derived]]
//! name = "recent"
//! source = "trades"
//! kind = "ring_table"             # ring_table | blink_to_append_only | tail | last_by |
//!                                 # filter (or where) | agg_by | bars
//! capacity = 1000                 # ring_table: capacity; blink_to_append_only: limit
//!                                 # (optional); tail: rows
//! # history = true                # ring_table, blink_to_append_only over a durable blink
//!                                 # [[table]]: start with its logged rows, across restarts
//!                                 # (EngineHandle::history_table; no limit then)
//!
//! [[derived]]
//! name = "latest"                 # the latest row per key (a keyed table)
//! source = "trades"
//! kind = "last_by"
//! keys = ["Sym"]                  # last_by (required), agg_by, bars (none: one group of
//!                                 # all rows; `key` also works)
//!
//! [[derived]]
//! name = "big"                    # the matching rows (a table of the source's kind)
//! source = "trades"
//! kind = "filter"
//! where = 'Size >= 1000 && Sym in ("AAPL", "MSFT")'   # see `tickertable::expr`
//!
//! [[derived]]
//! name = "by_sym"                 # one row per key (a keyed table)
//! source = "trades"
//! kind = "agg_by"
//! keys = ["Sym"]
//! aggs = ["count", "sum(Size) as volume", "min(Price)", "max(Price)",
//!         "wmean(Price, Size) as vwap"]
//!
//! [[derived]]
//! name = "bars_1s"                # closed bars (append); open ones tick in "bars_1s_open"
//! source = "trades"               # (keyed by keys)
//! kind = "bars"
//! time = "Ts"                     # int64 nanoseconds or a timestamp
//! interval = "1s"                 # a whole number and ns, us, ms, s, m or h
//! keys = ["Sym"]
//! aggs = ["first(Price) as open", "max(Price) as high", "min(Price) as low",
//!         "last(Price) as close", "sum(Size) as volume"]
//! ```
//!
//! Columns are nullable unless `nullable = false`; types are `ticker-load --schema`'s
//! (`bool`, `int8`..`int64`, `uint8`..`uint64`, `float32`, `float64`, `utf8`,
//! `timestamp_s|ms|us|ns`, `date32`) or Arrow's own spelling. Derived tables are created in
//! file order after every `[[table]]`, so one may derive from another listed before it.
//! Anything wrong (bad TOML, an unknown key, a type, kind or source that does not exist, a
//! table the engine refuses) is refused before the server listens, as `file:line:column:
//! reason`. So is a durable table when the server has no `--data-dir`.
//!
//! # Computed derived tables
//!
//! `last_by`, `filter`, `agg_by` and `bars` are `tickertable::derive`'s, updated in the same
//! cycle as their source; over a blink source `last_by`, `agg_by` and `bars` accumulate the
//! stream. Their columns: `last_by` and `filter` have the source's; `agg_by` has the key
//! columns, then one per aggregate; `bars` the key columns, `BarStart` (the bar's start),
//! then one per aggregate.
//!
//! An aggregate is a function of columns, then optionally `as` and the output column's name:
//!
//! - `count` (or `count()`): the rows, as `count`;
//! - `sum(C)`, `min(C)`, `max(C)`, `first(C)`, `last(C)`, `mean(C)` (or `avg(C)`): of column
//!   `C`, as `sum_C`, `min_C`, `max_C`, `first_C`, `last_C`, `mean_C`;
//! - `wmean(C, W)` (or `weighted_mean(C, W)`): `C` weighted by `W` (VWAP), as `wmean_C`.
//!
//! Function names ignore case. Each output column needs a name of its own: two `max(Price)`
//! need an `as`. Which column types each aggregate takes is `tickertable::Agg`'s table.
//!
//! The whole file is checked before any table is created: every table, derived ones
//! included, is first made in a scratch engine, so a mistake the engine finds (a column that
//! is not there, an aggregate of the wrong type, a predicate that does not bind) is refused
//! at the value it is about, as the TOML's are, and nothing is half made. A bad `where` is
//! reported at the place in the string the engine's message is about, with that message
//! (`at 16: no column named "Sise" (did you mean "Size"?)`); a key set on a kind that does
//! not take it (`keys` on a filter, `capacity` on `last_by`) is refused at the key.
//!
//! # Durable tables
//!
//! A table with `durable = true` logs every cycle's rows to its directory under `--data-dir`,
//! and when the server starts again it comes back with them (same rows, positions and keyed
//! state; new rows continue the positions). Its name, kind, columns and key must be the ones
//! it was logged with: a change is refused at start, naming both. Derived tables are never
//! logged: they are rebuilt from their source at start, so make the source durable.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arrow_schema::{Field, Schema};
use serde::Deserialize;
use tickertable::derive::{Agg, BAR_START_COLUMN};
use tickertable::flight::CreateTable;
use tickertable::{
    Durability, Engine, EngineHandle, Expr, ExprError, SyncPolicy, Table, TableKind,
};
use toml::Spanned;

/// A config file refused: where, and why.
#[derive(Debug)]
pub(crate) struct ConfigError {
    file: PathBuf,
    /// 1-based line and column, when the reason has a place in the file.
    at: Option<(usize, usize)>,
    reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.at {
            Some((line, col)) => write!(f, "{}:{line}:{col}: {}", self.file.display(), self.reason),
            None => write!(f, "{}: {}", self.file.display(), self.reason),
        }
    }
}

impl std::error::Error for ConfigError {}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    period_ms: Option<Spanned<u64>>,
    sync: Option<Spanned<String>>,
    #[serde(default)]
    table: Vec<Spanned<TableDef>>,
    #[serde(default)]
    derived: Vec<Spanned<DerivedDef>>,
    /// `[[kafka_source]]` and `[[kafka_sink]]`: checked and started by `kafka.rs`.
    #[serde(default, rename = "kafka_source")]
    _kafka_source: Vec<toml::Value>,
    #[serde(default, rename = "kafka_sink")]
    _kafka_sink: Vec<toml::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TableDef {
    name: Spanned<String>,
    kind: Spanned<String>,
    columns: Spanned<Vec<Spanned<ColumnDef>>>,
    capacity: Option<Spanned<usize>>,
    limit: Option<Spanned<usize>>,
    key: Option<Spanned<Vec<String>>>,
    durable: Option<Spanned<bool>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ColumnDef {
    name: String,
    #[serde(rename = "type")]
    data_type: Spanned<String>,
    #[serde(default = "yes")]
    nullable: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DerivedDef {
    name: Spanned<String>,
    source: Spanned<String>,
    kind: Spanned<String>,
    capacity: Option<Spanned<usize>>,
    durable: Option<Spanned<bool>>,
    #[serde(alias = "key")]
    keys: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(rename = "where")]
    predicate: Option<Spanned<String>>,
    aggs: Option<Spanned<Vec<Spanned<String>>>>,
    time: Option<Spanned<String>>,
    interval: Option<Spanned<String>>,
    history: Option<Spanned<bool>>,
}

/// A list of columns and where each is, and the list.
#[derive(Debug, Clone)]
struct Columns {
    names: Vec<(String, Range<usize>)>,
    span: Range<usize>,
}

impl Columns {
    fn names(&self) -> Vec<&str> {
        self.names.iter().map(|(n, _)| n.as_str()).collect()
    }

    /// Where column `name` is listed.
    fn span_of(&self, name: &str) -> Option<Range<usize>> {
        self.names
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, s)| s.clone())
    }
}

/// What a derived table is.
#[derive(Debug, Clone)]
enum Derivation {
    Ring(usize),
    AppendOnly(Option<usize>),
    /// `history = true`: a ring of this capacity, or an append table, of a durable blink
    /// table's logged rows; `span` is the `history` key's.
    History {
        capacity: Option<usize>,
        span: Range<usize>,
    },
    Tail(usize),
    LastBy {
        keys: Columns,
    },
    Filter {
        predicate: String,
        /// The `where` value, quotes included.
        span: Range<usize>,
    },
    AggBy {
        keys: Columns,
        aggs: Vec<(Agg, Range<usize>)>,
    },
    Bars {
        keys: Columns,
        time: String,
        time_span: Range<usize>,
        interval: Duration,
        interval_span: Range<usize>,
        aggs: Vec<(Agg, Range<usize>)>,
    },
}

/// One `[[derived]]` table, checked.
#[derive(Debug)]
struct Derived {
    name: String,
    name_span: Range<usize>,
    source: String,
    source_span: Range<usize>,
    what: Derivation,
}

impl Derived {
    /// The names of the tables it makes: bars make two.
    fn table_names(&self) -> Vec<String> {
        match self.what {
            Derivation::Bars { .. } => vec![self.name.clone(), format!("{}_open", self.name)],
            _ => vec![self.name.clone()],
        }
    }
}

/// The derived kinds and the optional keys each takes, for refusing a key set on a kind that
/// does not take it.
const DERIVED_KEYS: [(&str, &[&str]); 7] = [
    ("capacity", &["ring_table", "blink_to_append_only", "tail"]),
    ("keys", &["last_by", "agg_by", "bars"]),
    ("where", &["filter"]),
    ("aggs", &["agg_by", "bars"]),
    ("time", &["bars"]),
    ("interval", &["bars"]),
    ("history", &["ring_table", "blink_to_append_only"]),
];

/// A checked config: the tables to create, in order.
#[derive(Debug)]
pub(crate) struct Config {
    file: PathBuf,
    text: String,
    /// The cycle period the file asks for.
    pub(crate) period_ms: Option<u64>,
    /// The sync policy the file asks for.
    pub(crate) sync: Option<SyncPolicy>,
    tables: Vec<(CreateTable, Range<usize>)>,
    /// The `durable = true` keys, by table: where they are.
    durable: Vec<(String, Range<usize>)>,
    derived: Vec<Derived>,
}

/// 1-based line and column of byte `offset` of `text`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, col)
}

struct Checker<'a> {
    file: &'a Path,
    text: &'a str,
}

impl Checker<'_> {
    fn error(&self, span: Option<Range<usize>>, reason: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.file.to_owned(),
            at: span.map(|s| line_col(self.text, s.start)),
            reason: reason.into(),
        }
    }

    fn table(&self, def: &Spanned<TableDef>) -> Result<CreateTable, ConfigError> {
        let t = def.get_ref();
        let name = t.name.get_ref();
        if name.is_empty() {
            return Err(self.error(Some(t.name.span()), "a table's name may not be empty"));
        }
        let mut fields = Vec::new();
        for c in t.columns.get_ref() {
            let col = c.get_ref();
            let ty =
                tickertable_tools::types::data_type(col.data_type.get_ref()).ok_or_else(|| {
                    self.error(
                        Some(col.data_type.span()),
                        format!(
                            "table {name:?}, column {:?}: unknown type {:?} (expected bool, \
                         int8..int64, uint8..uint64, float32, float64, utf8, \
                         timestamp_s|ms|us|ns, date32, or an Arrow type name)",
                            col.name,
                            col.data_type.get_ref()
                        ),
                    )
                })?;
            if fields.iter().any(|f: &Field| f.name() == &col.name) {
                return Err(self.error(
                    Some(c.span()),
                    format!("table {name:?}: column {:?} is listed twice", col.name),
                ));
            }
            fields.push(Field::new(&col.name, ty, col.nullable));
        }
        if fields.is_empty() {
            return Err(self.error(
                Some(t.columns.span()),
                format!("table {name:?} has no columns"),
            ));
        }
        let only = |what: &str, v: Option<Range<usize>>, kinds: &str| match v {
            Some(span) => Err(self.error(
                Some(span),
                format!(
                    "table {name:?}: {what} is for {kinds} tables, not {}",
                    t.kind.get_ref()
                ),
            )),
            None => Ok(()),
        };
        let capacity = t.capacity.as_ref().map(|c| *c.get_ref());
        let kind = match t.kind.get_ref().as_str() {
            "append" => TableKind::Append,
            "blink" => TableKind::Blink,
            "ring" => TableKind::Ring {
                capacity: capacity.ok_or_else(|| {
                    self.error(
                        Some(def.span()),
                        format!("table {name:?}: a ring needs a capacity"),
                    )
                })?,
            },
            "keyed" => TableKind::Keyed { capacity },
            other => {
                return Err(self.error(
                    Some(t.kind.span()),
                    format!(
                        "table {name:?}: unknown kind {other:?} (expected append, blink, ring or \
                         keyed)"
                    ),
                ))
            }
        };
        if !matches!(kind, TableKind::Ring { .. } | TableKind::Keyed { .. }) {
            only(
                "capacity",
                t.capacity.as_ref().map(Spanned::span),
                "ring and keyed",
            )?;
        }
        if kind != TableKind::Append {
            only("limit", t.limit.as_ref().map(Spanned::span), "append")?;
        }
        let mut create = CreateTable::new(name, Arc::new(Schema::new(fields))).with_kind(kind);
        match (&t.key, kind) {
            (Some(key), TableKind::Keyed { .. }) => {
                if key.get_ref().is_empty() {
                    return Err(self.error(Some(key.span()), format!("table {name:?}: empty key")));
                }
                create = create.with_key(key.get_ref().iter().cloned());
            }
            (None, TableKind::Keyed { .. }) => {
                return Err(self.error(
                    Some(def.span()),
                    format!("table {name:?}: a keyed table needs key = [columns]"),
                ))
            }
            (Some(key), _) => only("key", Some(key.span()), "keyed")?,
            (None, _) => {}
        }
        if let Some(limit) = &t.limit {
            create = create.with_limit(*limit.get_ref());
        }
        Ok(create)
    }

    /// Where byte `at` of string value `value` (its span, quotes included) is in the file.
    fn in_string(&self, value: &Range<usize>, at: usize) -> Range<usize> {
        let start = string_offset(self.text, value.clone(), at);
        start..start
    }

    /// The kind of derived table `d` is, in its canonical spelling, once no key is set that
    /// the kind does not take.
    fn derived_kind(&self, d: &DerivedDef) -> Result<&'static str, ConfigError> {
        let name = d.name.get_ref();
        let kind = match d.kind.get_ref().as_str() {
            "ring_table" | "ring" => "ring_table",
            "blink_to_append_only" | "append" => "blink_to_append_only",
            "tail" => "tail",
            "last_by" => "last_by",
            "filter" | "where" => "filter",
            "agg_by" => "agg_by",
            "bars" => "bars",
            other => {
                return Err(self.error(
                    Some(d.kind.span()),
                    format!(
                        "derived table {name:?}: unknown kind {other:?} (expected ring_table, \
                         blink_to_append_only, tail, last_by, filter, agg_by or bars)"
                    ),
                ))
            }
        };
        let given = [
            d.capacity.as_ref().map(Spanned::span),
            d.keys.as_ref().map(Spanned::span),
            d.predicate.as_ref().map(Spanned::span),
            d.aggs.as_ref().map(Spanned::span),
            d.time.as_ref().map(Spanned::span),
            d.interval.as_ref().map(Spanned::span),
            d.history.as_ref().map(Spanned::span),
        ];
        for (span, (key, kinds)) in given.into_iter().zip(DERIVED_KEYS) {
            if let Some(span) = span.filter(|_| !kinds.contains(&kind)) {
                return Err(self.error(
                    Some(span),
                    format!(
                        "derived table {name:?}: {key} is for {} tables, not {kind}",
                        and_list(kinds)
                    ),
                ));
            }
        }
        Ok(kind)
    }

    #[allow(
        clippy::too_many_lines,
        reason = "one match over the derived kinds reads best whole"
    )]
    fn derived(&self, def: &Spanned<DerivedDef>) -> Result<Derived, ConfigError> {
        let d = def.get_ref();
        let name = d.name.get_ref();
        if name.is_empty() {
            return Err(self.error(Some(d.name.span()), "a table's name may not be empty"));
        }
        if let Some(durable) = d.durable.as_ref().filter(|d| *d.get_ref()) {
            return Err(self.error(
                Some(durable.span()),
                format!(
                    "derived table {name:?}: derived tables are not logged (they are rebuilt \
                     from their source at start); make the source durable instead"
                ),
            ));
        }
        let kind = self.derived_kind(d)?;
        let missing = |what: &str| {
            self.error(
                Some(def.span()),
                format!("derived table {name:?}: {kind} needs {what}"),
            )
        };
        let capacity = d.capacity.as_ref().map(|c| *c.get_ref());
        let keys = || -> Result<Columns, ConfigError> {
            let keys = d.keys.as_ref().ok_or_else(|| missing("keys = [columns]"))?;
            if keys.get_ref().is_empty() {
                return Err(self.error(
                    Some(keys.span()),
                    format!("derived table {name:?}: keys is empty: name at least one column"),
                ));
            }
            Ok(Columns {
                names: keys
                    .get_ref()
                    .iter()
                    .map(|k| (k.get_ref().clone(), k.span()))
                    .collect(),
                span: keys.span(),
            })
        };
        // agg_by and bars: no keys (missing or empty) aggregate the whole source.
        let keys_or_none = || -> Result<Columns, ConfigError> {
            match &d.keys {
                Some(k) if !k.get_ref().is_empty() => keys(),
                Some(k) => Ok(Columns {
                    names: Vec::new(),
                    span: k.span(),
                }),
                None => Ok(Columns {
                    names: Vec::new(),
                    span: def.span(),
                }),
            }
        };
        let aggs = || {
            let aggs = d
                .aggs
                .as_ref()
                .ok_or_else(|| missing("aggs = [\"count\", \"sum(Size)\", ...]"))?;
            self.aggs(name, aggs)
        };
        let history = d
            .history
            .as_ref()
            .filter(|h| *h.get_ref())
            .map(Spanned::span);
        let what = match kind {
            "ring_table" => {
                let capacity = capacity.ok_or_else(|| missing("a capacity"))?;
                match history {
                    Some(span) => Derivation::History {
                        capacity: Some(capacity),
                        span,
                    },
                    None => Derivation::Ring(capacity),
                }
            }
            "blink_to_append_only" => match (history, &d.capacity) {
                (Some(_), Some(limit)) => {
                    return Err(self.error(
                        Some(limit.span()),
                        format!(
                            "derived table {name:?}: a history table keeps every logged row: \
                             no limit (use ring_table for the newest rows)"
                        ),
                    ))
                }
                (Some(span), None) => Derivation::History {
                    capacity: None,
                    span,
                },
                (None, _) => Derivation::AppendOnly(capacity),
            },
            "tail" => Derivation::Tail(capacity.ok_or_else(|| missing("a capacity"))?),
            "last_by" => Derivation::LastBy { keys: keys()? },
            "filter" => {
                let p = d
                    .predicate
                    .as_ref()
                    .ok_or_else(|| missing("where = 'a predicate'"))?;
                // The syntax is checked here; columns and types once the source is made.
                Expr::parse(p.get_ref()).map_err(|e| self.expr_error(name, &p.span(), &e))?;
                Derivation::Filter {
                    predicate: p.get_ref().clone(),
                    span: p.span(),
                }
            }
            "agg_by" => Derivation::AggBy {
                keys: keys_or_none()?,
                aggs: aggs()?,
            },
            // bars, the last kind `derived_kind` gives
            _ => {
                let keys = keys_or_none()?;
                let aggs = aggs()?;
                let time = d
                    .time
                    .as_ref()
                    .ok_or_else(|| missing("time = \"a time column\""))?;
                let interval = d
                    .interval
                    .as_ref()
                    .ok_or_else(|| missing("interval = \"1s\""))?;
                Derivation::Bars {
                    keys,
                    time: time.get_ref().clone(),
                    time_span: time.span(),
                    interval: parse_interval(interval.get_ref()).map_err(|reason| {
                        self.error(
                            Some(interval.span()),
                            format!("derived table {name:?}: {reason}"),
                        )
                    })?,
                    interval_span: interval.span(),
                    aggs,
                }
            }
        };
        self.unique_outputs(name, &what)?;
        Ok(Derived {
            name: name.clone(),
            name_span: d.name.span(),
            source: d.source.get_ref().clone(),
            source_span: d.source.span(),
            what,
        })
    }

    /// The `aggs` of derived table `name`, each with where it is.
    fn aggs(
        &self,
        name: &str,
        aggs: &Spanned<Vec<Spanned<String>>>,
    ) -> Result<Vec<(Agg, Range<usize>)>, ConfigError> {
        aggs.get_ref()
            .iter()
            .map(|a| {
                a.get_ref()
                    .parse::<Agg>()
                    .map(|agg| (agg, a.span()))
                    .map_err(|e| {
                        self.error(
                            Some(self.in_string(&a.span(), e.at())),
                            format!("derived table {name:?}: aggs: {}", e.reason()),
                        )
                    })
            })
            .collect()
    }

    /// Refuses an aggregate whose output column is named twice (or like a key column, or
    /// bars' start column), at the second one.
    fn unique_outputs(&self, name: &str, what: &Derivation) -> Result<(), ConfigError> {
        let (keys, aggs, bars) = match what {
            Derivation::AggBy { keys, aggs } => (keys, aggs, false),
            Derivation::Bars { keys, aggs, .. } => (keys, aggs, true),
            _ => return Ok(()),
        };
        let mut seen: Vec<&str> = keys.names();
        if bars {
            seen.push(BAR_START_COLUMN);
        }
        for (agg, span) in aggs {
            if seen.contains(&agg.name()) {
                return Err(self.error(
                    Some(span.clone()),
                    format!(
                        "derived table {name:?}: output column {:?} is given twice (name this \
                         aggregate with `as NAME`)",
                        agg.name()
                    ),
                ));
            }
            seen.push(agg.name());
        }
        Ok(())
    }

    /// Expression error `e` of the `where` value at `span`, at its position in the file.
    fn expr_error(&self, name: &str, span: &Range<usize>, e: &ExprError) -> ConfigError {
        let at = e
            .position()
            .map_or_else(|| span.clone(), |at| self.in_string(span, at));
        self.error(Some(at), format!("derived table {name:?}: where: {e}"))
    }

    /// Creates derived table `d` in `engine`; a refusal is reported at the key it is about.
    /// A dry run (not `real`: no data directory) makes a history table as the same table
    /// without its history.
    fn create_derived(
        &self,
        engine: &EngineHandle,
        d: &Derived,
        real: bool,
    ) -> Result<Vec<Table>, ConfigError> {
        let refused = |span: Range<usize>, e: &tickertable::Error| {
            self.error(Some(span), format!("derived table {:?}: {e}", d.name))
        };
        let source = engine.table(&d.source).ok_or_else(|| {
            refused(
                d.source_span.clone(),
                &tickertable::Error::NoSuchTable {
                    table: d.source.clone(),
                },
            )
        })?;
        let one = |t: tickertable::Result<Table>| t.map(|t| vec![t]);
        let made = match &d.what {
            Derivation::Ring(n) => one(engine.ring_table(&d.name, &source, *n)),
            Derivation::AppendOnly(limit) => {
                one(engine.blink_to_append_only(&d.name, &source, *limit))
            }
            Derivation::History { capacity, span } => {
                let kind =
                    capacity.map_or(TableKind::Append, |capacity| TableKind::Ring { capacity });
                let made = match (real, capacity) {
                    (true, _) => engine.history_table(&d.name, &source, kind),
                    (false, Some(n)) => engine.ring_table(&d.name, &source, *n),
                    (false, None) => engine.blink_to_append_only(&d.name, &source, None),
                };
                return made.map(|t| vec![t]).map_err(|e| refused(span.clone(), &e));
            }
            Derivation::Tail(n) => one(engine.tail(&d.name, &source, *n)),
            Derivation::LastBy { keys } => one(engine.last_by(&d.name, &source, &keys.names())),
            Derivation::Filter { predicate, span } => {
                return match engine.filter(&d.name, &source, predicate.as_str()) {
                    Ok(t) => Ok(vec![t]),
                    Err(tickertable::Error::Expr(e)) => Err(self.expr_error(&d.name, span, &e)),
                    Err(e) => Err(refused(d.name_span.clone(), &e)),
                };
            }
            Derivation::AggBy { keys, aggs } => {
                let list: Vec<Agg> = aggs.iter().map(|(a, _)| a.clone()).collect();
                one(engine.agg_by(&d.name, &source, &keys.names(), &list))
            }
            Derivation::Bars {
                keys,
                time,
                interval,
                aggs,
                ..
            } => {
                let list: Vec<Agg> = aggs.iter().map(|(a, _)| a.clone()).collect();
                engine
                    .bars(&d.name, &source, time, *interval, &keys.names(), &list)
                    .map(|b| vec![b.closed().clone(), b.open().clone()])
            }
        };
        made.map_err(|e| refused(blame(d, &source, &e), &e))
    }
}

/// Where in derived table `d` the engine's refusal `e` is about.
fn blame(d: &Derived, source: &Table, e: &tickertable::Error) -> Range<usize> {
    use tickertable::Error;
    let (keys, aggs, time, interval) = match &d.what {
        Derivation::LastBy { keys } => (keys, &[][..], None, None),
        Derivation::AggBy { keys, aggs } => (keys, &aggs[..], None, None),
        Derivation::Bars {
            keys,
            aggs,
            time,
            time_span,
            interval_span,
            ..
        } => (
            keys,
            &aggs[..],
            Some((time, time_span)),
            Some(interval_span),
        ),
        _ => {
            return match e {
                Error::TableExists { .. } => d.name_span.clone(),
                _ => d.source_span.clone(),
            }
        }
    };
    match e {
        Error::TableExists { .. } => d.name_span.clone(),
        Error::NoColumnNamed { column, .. } => keys
            .span_of(column)
            .or_else(|| time.filter(|(t, _)| *t == column).map(|(_, s)| s.clone()))
            .or_else(|| {
                aggs.iter()
                    .find(|(a, _)| {
                        a.column() == Some(column.as_str()) || a.weight() == Some(column.as_str())
                    })
                    .map(|(_, s)| s.clone())
            })
            .unwrap_or_else(|| keys.span.clone()),
        Error::InvalidOption { option, .. } => match *option {
            "source" => d.source_span.clone(),
            "time column" => time.map_or_else(|| keys.span.clone(), |(_, s)| s.clone()),
            "bar interval" => interval.cloned().unwrap_or_else(|| keys.span.clone()),
            "aggregate" => {
                refused_agg(source, &keys.names(), aggs).unwrap_or_else(|| keys.span.clone())
            }
            _ => keys.span.clone(),
        },
        _ => keys.span.clone(),
    }
}

/// Where the first of `aggs` is that the engine refuses on its own over `source`'s schema,
/// tried in an engine of its own (so nothing more is created in the one being set up).
fn refused_agg(
    source: &Table,
    keys: &[&str],
    aggs: &[(Agg, Range<usize>)],
) -> Option<Range<usize>> {
    let scratch = Engine::builder().manual().build().ok()?;
    CreateTable::new("source", source.schema().clone())
        .apply(&scratch)
        .ok()?;
    let probe = scratch.table("source")?;
    aggs.iter().enumerate().find_map(|(i, (agg, span))| {
        scratch
            .agg_by(
                &format!("probe{i}"),
                &probe,
                keys,
                std::slice::from_ref(agg),
            )
            .is_err()
            .then(|| span.clone())
    })
}

/// `a`, `a and b`, `a, b and c`.
fn and_list(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// The byte offset in `text` of byte `at` of the string value whose span (quotes included)
/// is `value`: TOML's four kinds of string, with basic strings' escapes decoded. An offset
/// past the value's end is its end.
fn string_offset(text: &str, value: Range<usize>, at: usize) -> usize {
    let raw = text.get(value.clone()).unwrap_or_default();
    let (quote, literal) = if raw.starts_with("\"\"\"") {
        (3, false)
    } else if raw.starts_with("'''") {
        (3, true)
    } else if raw.starts_with('"') {
        (1, false)
    } else if raw.starts_with('\'') {
        (1, true)
    } else {
        return value.start;
    };
    let mut start = quote;
    if quote == 3 {
        // A newline right after the opening quotes is not part of the value.
        if raw[start..].starts_with("\r\n") {
            start += 2;
        } else if raw[start..].starts_with('\n') {
            start += 1;
        }
    }
    let end = raw.len().saturating_sub(quote).max(start);
    let body = &raw[start..end];
    if literal {
        return value.start + start + at.min(body.len());
    }
    let mut decoded = 0;
    let mut chars = body.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c == '\\' && chars.next_if(|(_, c)| c.is_whitespace()).is_some() {
            // A line-ending backslash: it and the whitespace after it are not in the value.
            while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
            continue;
        }
        if decoded >= at {
            return value.start + start + i;
        }
        if c != '\\' {
            decoded += c.len_utf8();
            continue;
        }
        match chars.next() {
            Some((_, 'u')) => {
                let hex: String = (0..4)
                    .filter_map(|_| chars.next().map(|(_, c)| c))
                    .collect();
                decoded += decoded_len(&hex);
            }
            Some((_, 'U')) => {
                let hex: String = (0..8)
                    .filter_map(|_| chars.next().map(|(_, c)| c))
                    .collect();
                decoded += decoded_len(&hex);
            }
            _ => decoded += 1,
        }
    }
    value.start + start + body.len()
}

/// The UTF-8 length of the character with code point `hex`.
fn decoded_len(hex: &str) -> usize {
    u32::from_str_radix(hex, 16)
        .ok()
        .and_then(char::from_u32)
        .map_or(1, char::len_utf8)
}

/// A bar interval: a whole number and a unit, `ns`, `us`, `ms`, `s`, `m` (or `min`) or `h`,
/// such as `"1s"`, `"500ms"` or `"5m"`.
fn parse_interval(text: &str) -> Result<Duration, String> {
    let bad = || {
        format!(
            "interval {text:?}: expected a whole number and a unit (ns, us, ms, s, m, h), \
             such as \"1s\" or \"500ms\""
        )
    };
    let t = text.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let n: u64 = t[..digits].parse().map_err(|_| bad())?;
    let per: u64 = match t[digits..].trim() {
        "ns" => 1,
        "us" | "\u{b5}s" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" | "min" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => return Err(bad()),
    };
    let nanos = n.checked_mul(per).ok_or_else(bad)?;
    if nanos == 0 {
        return Err(format!("interval {text:?}: must be more than 0"));
    }
    Ok(Duration::from_nanos(nanos))
}

impl Config {
    /// Reads and checks `path`.
    pub(crate) fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.to_owned(),
            at: None,
            reason: format!("cannot read it: {e}"),
        })?;
        Self::parse(path, text)
    }

    /// Checks `text`, the contents of `path`.
    pub(crate) fn parse(path: &Path, text: String) -> Result<Self, ConfigError> {
        let check = Checker {
            file: path,
            text: &text,
        };
        let file: File = toml::from_str(&text)
            .map_err(|e| check.error(e.span(), e.message().trim().to_owned()))?;
        let mut tables = Vec::new();
        let mut durable = Vec::new();
        let mut names: Vec<String> = Vec::new();
        for def in &file.table {
            let mut create = check.table(def)?;
            let name = def.get_ref().name.get_ref();
            if names.contains(name) {
                return Err(check.error(
                    Some(def.get_ref().name.span()),
                    format!("table {name:?} is declared twice"),
                ));
            }
            names.push(name.clone());
            if let Some(d) = def.get_ref().durable.as_ref().filter(|d| *d.get_ref()) {
                durable.push((name.clone(), d.span()));
                create = create.durable();
            }
            tables.push((create, def.span()));
        }
        // Kafka sources are made before the derived tables, which may read them.
        names.extend(crate::kafka::source_names(&text));
        let mut derived = Vec::new();
        for def in &file.derived {
            let d = check.derived(def)?;
            for name in d.table_names() {
                if names.contains(&name) {
                    return Err(check.error(
                        Some(d.name_span.clone()),
                        format!("table {name:?} is declared twice"),
                    ));
                }
            }
            if !names.contains(&d.source) {
                return Err(check.error(
                    Some(d.source_span.clone()),
                    format!(
                        "derived table {:?}: no table {:?} is declared before it",
                        d.name, d.source
                    ),
                ));
            }
            if let Derivation::History { span, .. } = &d.what {
                // Only a durable blink [[table]] has a logged history.
                let durable_blink = tables.iter().any(|(t, _): &(CreateTable, _)| {
                    t.name() == d.source && t.kind() == TableKind::Blink
                }) && durable.iter().any(|(n, _)| n == &d.source);
                if !durable_blink {
                    return Err(check.error(
                        Some(span.clone()),
                        format!(
                            "derived table {:?}: history needs a durable blink [[table]] \
                             (kind = \"blink\", durable = true); {:?} is not one",
                            d.name, d.source
                        ),
                    ));
                }
            }
            names.extend(d.table_names());
            derived.push(d);
        }
        let period_ms = match &file.period_ms {
            Some(p) if *p.get_ref() == 0 => {
                return Err(check.error(Some(p.span()), "period_ms must be at least 1"))
            }
            p => p.as_ref().map(|p| *p.get_ref()),
        };
        let sync = match &file.sync {
            Some(s) => Some(
                parse_sync(s.get_ref()).map_err(|reason| check.error(Some(s.span()), reason))?,
            ),
            None => None,
        };
        let config = Self {
            file: path.to_owned(),
            text,
            period_ms,
            sync,
            tables,
            durable,
            derived,
        };
        config.dry_run()?;
        Ok(config)
    }

    /// Creates every table in an engine of its own, not durable, so that what only the
    /// engine can check (columns, types, expressions) is refused before anything is created
    /// in the real one or in its data directory.
    fn dry_run(&self) -> Result<(), ConfigError> {
        let scratch = Engine::builder()
            .manual()
            .build()
            .map_err(|e| ConfigError {
                file: self.file.clone(),
                at: None,
                reason: format!("checking the tables: {e}"),
            })?;
        self.create_tables(&scratch, false)?;
        // The Kafka sources' tables, as plain tables, so derived tables may name them.
        crate::kafka::stand_ins(&self.text, &scratch)
            .map_err(|(span, reason)| self.checker().error(Some(span), reason))?;
        self.create_derived(&scratch, false)
    }

    /// Refuses durable tables when the server has no data directory, at the first one's
    /// `durable` key.
    pub(crate) fn check_data_dir(&self, data_dir: Option<&Path>) -> Result<(), ConfigError> {
        match (&self.durable.first(), data_dir) {
            (Some((name, span)), None) => Err(ConfigError {
                file: self.file.clone(),
                at: Some(line_col(&self.text, span.start)),
                reason: format!(
                    "table {name:?} is durable, but the server has no data directory: start it \
                     with --data-dir DIR (or remove durable = true)"
                ),
            }),
            _ => Ok(()),
        }
    }

    /// How many tables the file declares, derived ones included (bars make two).
    pub(crate) fn len(&self) -> usize {
        self.tables.len()
            + self
                .derived
                .iter()
                .map(|d| d.table_names().len())
                .sum::<usize>()
    }

    /// Creates the `[[table]]`s in `engine`, in file order; a table the engine refuses (say a
    /// key column the schema does not have) is refused at its line. The derived tables come
    /// after the Kafka sources ([`apply_derived`](Self::apply_derived)), so they may name one.
    pub(crate) fn apply_tables(&self, engine: &EngineHandle) -> Result<(), ConfigError> {
        self.create_tables(engine, true)
    }

    /// Creates the `[[derived]]` tables in `engine`, in file order.
    pub(crate) fn apply_derived(&self, engine: &EngineHandle) -> Result<(), ConfigError> {
        self.create_derived(engine, true)
    }

    /// Creates the tables in `engine`: the real ones and logged (`real`), or a dry run's.
    fn create_tables(&self, engine: &EngineHandle, real: bool) -> Result<(), ConfigError> {
        let check = self.checker();
        for (create, span) in &self.tables {
            let create = if real {
                create.clone()
            } else {
                create.clone().with_durability(Durability::None)
            };
            create.apply(engine).map_err(|e| {
                check.error(
                    Some(span.clone()),
                    format!("table {:?}: {e}", create.name()),
                )
            })?;
            if real {
                tracing::info!(
                    table = create.name(),
                    kind = %create.kind(),
                    "config: created a table"
                );
            }
        }
        Ok(())
    }

    /// [`apply_tables`](Self::apply_tables) then [`apply_derived`](Self::apply_derived), for
    /// a config without Kafka sources.
    #[cfg(test)]
    pub(crate) fn apply(&self, engine: &EngineHandle) -> Result<(), ConfigError> {
        self.apply_tables(engine)?;
        self.apply_derived(engine)
    }

    /// Creates the derived tables in `engine`: the real ones (`real`), or a dry run's.
    fn create_derived(&self, engine: &EngineHandle, real: bool) -> Result<(), ConfigError> {
        let check = self.checker();
        for d in &self.derived {
            let made = check.create_derived(engine, d, real)?;
            if real {
                for table in made {
                    tracing::info!(
                        table = table.name(),
                        source = %d.source,
                        kind = %table.kind(),
                        "config: created a derived table"
                    );
                }
            }
        }
        Ok(())
    }

    fn checker(&self) -> Checker<'_> {
        Checker {
            file: &self.file,
            text: &self.text,
        }
    }
}

/// A sync policy as `--sync` and the config's `sync` spell it: `every_cycle` (or
/// `every-cycle`), `never`, or an interval with its unit (`250ms`, `2s`).
pub(crate) fn parse_sync(text: &str) -> Result<SyncPolicy, String> {
    let t = text.trim();
    match t {
        "every_cycle" | "every-cycle" => return Ok(SyncPolicy::EveryCycle),
        "never" => return Ok(SyncPolicy::Never),
        _ => {}
    }
    let bad = || {
        format!(
            "sync {text:?}: expected every_cycle, never or an interval such as \"200ms\" or \
             \"1s\""
        )
    };
    let (number, unit) = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .map(|i| t.split_at(i))
        .ok_or_else(bad)?;
    let n: f64 = number.parse().map_err(|_| bad())?;
    let secs = match unit.trim() {
        "ms" => n / 1000.0,
        "s" => n,
        _ => return Err(bad()),
    };
    let d = std::time::Duration::try_from_secs_f64(secs).map_err(|_| bad())?;
    if d.is_zero() {
        return Err(format!(
            "sync {text:?}: an interval must be more than 0 (every_cycle syncs every cycle)"
        ));
    }
    Ok(SyncPolicy::Interval(d))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("t.toml"), text.to_owned())
    }

    fn refused(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn smoke() {
        let c = parse(
            r#"
period_ms = 10
[[table]]
name = "trades"
kind = "blink"
columns = [{ name = "Sym", type = "utf8" }, { name = "Size", type = "int64", nullable = false }]

[[derived]]
name = "recent"
source = "trades"
kind = "ring_table"
capacity = 5
"#,
        )
        .unwrap();
        assert_eq!((c.len(), c.period_ms), (2, Some(10)));
        let engine = tickertable::Engine::builder().manual().build().unwrap();
        c.apply(&engine).unwrap();
        assert_eq!(
            engine.table("recent").unwrap().kind(),
            TableKind::Ring { capacity: 5 }
        );
    }

    #[test]
    fn bad_files_are_refused_with_their_line() {
        let e = refused("[[table]]\nname = \"t\"\nkind = \"ring\"\ncolumns = [{ name = \"x\", type = \"int64\" }]\n");
        assert!(
            e.starts_with("t.toml:1:1: ") && e.contains("needs a capacity"),
            "{e}"
        );
        let e = refused("[[table]]\nname = \"t\"\nkind = \"blink\"\ncolumns = [{ name = \"x\", type = \"int65\" }]\n");
        assert!(
            e.starts_with("t.toml:4:") && e.contains("unknown type \"int65\""),
            "{e}"
        );
        let e = refused("[[table]]\nname = \"t\"\nkindd = \"blink\"\n");
        assert!(
            e.starts_with("t.toml:3:") && e.contains("unknown field"),
            "{e}"
        );
        let e = refused("[[table]]\nname = \"t\"\nkind = \"blink\"\ncolumns = [{ name = \"x\", type = \"int64\" }]\ndurable = \"yes\"\n");
        assert!(e.starts_with("t.toml:5:"), "{e}");
        let e = refused("[[table]]\nname = \"t\"\nkind = \"blink\"\ncolumns = [{ name = \"x\", type = \"int64\" }]\n[[derived]]\nname = \"r\"\nsource = \"t\"\nkind = \"tail\"\ncapacity = 3\ndurable = true\n");
        assert!(
            e.starts_with("t.toml:10:") && e.contains("derived tables are not logged"),
            "{e}"
        );
        let e = refused("sync = \"sometimes\"\n");
        assert!(
            e.starts_with("t.toml:1:") && e.contains("every_cycle"),
            "{e}"
        );
        let e = refused(
            "[[derived]]\nname = \"r\"\nsource = \"nope\"\nkind = \"tail\"\ncapacity = 3\n",
        );
        assert!(
            e.starts_with("t.toml:3:") && e.contains("no table \"nope\""),
            "{e}"
        );
        let e = refused("[[table]\n");
        assert!(e.starts_with("t.toml:1:"), "{e}");
    }

    #[test]
    fn a_table_the_engine_refuses_is_refused_at_its_line_before_any_is_created() {
        let e = refused("\n[[table]]\nname = \"k\"\nkind = \"keyed\"\nkey = [\"nope\"]\ncolumns = [{ name = \"x\", type = \"int64\" }]\n");
        assert!(
            e.starts_with("t.toml:2:1: table \"k\"") && e.contains("nope"),
            "{e}"
        );
    }
}

#[cfg(test)]
mod derived_tests {
    use super::*;

    const TRADES: &str = r#"
[[table]]
name = "trades"
kind = "blink"
columns = [
    { name = "Ts", type = "timestamp_ns" },
    { name = "Sym", type = "utf8" },
    { name = "Price", type = "float64" },
    { name = "Size", type = "int64" },
]
"#;

    fn parse(derived: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("t.toml"), format!("{TRADES}{derived}"))
    }

    /// The error of `derived` after the trades table, checked to be at the first `needle`
    /// (at its `|`, if it has one) and to say `reason`.
    fn refused_at(derived: &str, needle: &str, reason: &str) {
        let text = format!("{TRADES}{derived}");
        let e = parse(derived).unwrap_err().to_string();
        let bar = needle.find('|').unwrap_or(0);
        let offset = text
            .find(&needle.replace('|', ""))
            .unwrap_or_else(|| panic!("no {needle:?}"))
            + bar;
        let (line, col) = line_col(&text, offset);
        let at = format!("t.toml:{line}:{col}: ");
        assert!(e.starts_with(&at), "wanted {at:?}: {e}");
        assert!(e.contains(reason), "wanted {reason:?}: {e}");
    }

    /// `history = true` needs a durable blink `[[table]]` source and no limit; it is for
    /// ring and append tables only.
    #[test]
    fn history_is_refused_where_there_is_no_logged_history() {
        let plain = "[[derived]]\nname = \"h\"\nsource = \"trades\"\nkind = \"ring_table\"\n\
                     capacity = 5\nhistory = true\n";
        refused_at(
            plain,
            "history = |true",
            "history needs a durable blink [[table]]",
        );
        let durable = TRADES.replace("kind = \"blink\"", "kind = \"blink\"\ndurable = true");
        let text = |derived: &str| format!("{durable}{derived}");
        let limited = "[[derived]]\nname = \"h\"\nsource = \"trades\"\n\
                       kind = \"blink_to_append_only\"\ncapacity = 5\nhistory = true\n";
        let e = Config::parse(Path::new("t.toml"), text(limited)).unwrap_err();
        assert!(e.to_string().contains("no limit"), "{e}");
        let last_by = "[[derived]]\nname = \"h\"\nsource = \"trades\"\nkind = \"last_by\"\n\
                       keys = [\"Sym\"]\nhistory = true\n";
        let e = Config::parse(Path::new("t.toml"), text(last_by)).unwrap_err();
        assert!(e.to_string().contains("history is for"), "{e}");
        let ok = "[[derived]]\nname = \"h\"\nsource = \"trades\"\nkind = \"ring_table\"\n\
                  capacity = 5\nhistory = true\n";
        Config::parse(Path::new("t.toml"), text(ok)).unwrap();
    }

    fn columns(engine: &EngineHandle, table: &str) -> Vec<String> {
        engine
            .table(table)
            .unwrap()
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect()
    }

    #[test]
    fn smoke() {
        let c = parse(
            r#"
[[derived]]
name = "latest"
source = "trades"
kind = "last_by"
keys = ["Sym"]

[[derived]]
name = "big"
source = "trades"
kind = "filter"
where = 'Size >= 1000 && Sym in ("AAPL", "MSFT")'

[[derived]]
name = "by_sym"
source = "trades"
kind = "agg_by"
keys = ["Sym"]
aggs = ["count", "sum(Size) as volume", "min(Price)", "max(Price)", "wmean(Price, Size) as vwap"]

[[derived]]
name = "bars_1s"
source = "trades"
kind = "bars"
time = "Ts"
interval = "1s"
keys = ["Sym"]
aggs = ["first(Price) as open", "max(Price) as high", "min(Price) as low",
        "last(Price) as close", "sum(Size) as volume"]
"#,
        )
        .unwrap();
        assert_eq!(c.len(), 6, "bars make two tables");
        let engine = Engine::builder().manual().build().unwrap();
        c.apply(&engine).unwrap();
        let keyed = TableKind::Keyed { capacity: None };
        assert_eq!(engine.table("latest").unwrap().kind(), keyed);
        assert_eq!(engine.table("latest").unwrap().key_columns(), [1]);
        assert_eq!(columns(&engine, "latest"), columns(&engine, "trades"));
        assert_eq!(engine.table("big").unwrap().kind(), TableKind::Blink);
        assert_eq!(
            columns(&engine, "by_sym"),
            ["Sym", "count", "volume", "min_Price", "max_Price", "vwap"]
        );
        assert_eq!(engine.table("bars_1s").unwrap().kind(), TableKind::Append);
        assert_eq!(engine.table("bars_1s_open").unwrap().kind(), keyed);
        assert_eq!(
            columns(&engine, "bars_1s"),
            ["Sym", "BarStart", "open", "high", "low", "close", "volume"]
        );
    }

    #[test]
    fn agg_by_and_bars_without_keys_aggregate_the_whole_source() {
        let c = parse(
            r#"
[[derived]]
name = "totals"
source = "trades"
kind = "agg_by"
aggs = ["count", "sum(Size) as volume"]

[[derived]]
name = "totals_empty_keys"
source = "trades"
kind = "agg_by"
keys = []
aggs = ["count"]

[[derived]]
name = "bars_all"
source = "trades"
kind = "bars"
time = "Ts"
interval = "1s"
aggs = ["sum(Size) as volume"]
"#,
        )
        .unwrap();
        let engine = Engine::builder().manual().build().unwrap();
        c.apply(&engine).unwrap();
        let one_row = TableKind::Ring { capacity: 1 };
        assert_eq!(engine.table("totals").unwrap().kind(), one_row);
        assert_eq!(columns(&engine, "totals"), ["count", "volume"]);
        assert_eq!(columns(&engine, "totals_empty_keys"), ["count"]);
        assert_eq!(columns(&engine, "bars_all"), ["BarStart", "volume"]);
        assert_eq!(engine.table("bars_all_open").unwrap().kind(), one_row);
    }

    #[test]
    fn where_is_also_a_kind_and_key_a_spelling_of_keys() {
        let c = parse(
            "[[derived]]\nname = \"b\"\nsource = \"trades\"\nkind = \"where\"\nwhere = \"Size > 1\"\n\
             [[derived]]\nname = \"l\"\nsource = \"b\"\nkind = \"last_by\"\nkey = [\"Sym\", \"Price\"]\n",
        )
        .unwrap();
        let engine = Engine::builder().manual().build().unwrap();
        c.apply(&engine).unwrap();
        assert_eq!(engine.table("l").unwrap().key_columns(), [1, 2]);
    }

    #[test]
    fn intervals_parse_and_bad_ones_say_why() {
        let ok = |s: &str| parse_interval(s).unwrap();
        assert_eq!(ok("1s"), Duration::from_secs(1));
        assert_eq!(ok("250ms"), Duration::from_millis(250));
        assert_eq!(ok("5 m"), Duration::from_secs(300));
        assert_eq!(ok("1min"), Duration::from_secs(60));
        assert_eq!(ok("2h"), Duration::from_secs(7200));
        assert_eq!(ok("10us"), Duration::from_micros(10));
        assert_eq!(ok("7ns"), Duration::from_nanos(7));
        for bad in ["", "s", "1", "1.5s", "1 sec", "-1s", "99999999999999h"] {
            let e = parse_interval(bad).unwrap_err();
            assert!(
                e.contains("expected a whole number and a unit"),
                "{bad:?}: {e}"
            );
        }
        assert!(parse_interval("0s").unwrap_err().contains("more than 0"));
    }

    #[test]
    fn offsets_in_strings_map_to_the_file() {
        let at = |text: &str, offset: usize| {
            let start = text.find(['"', '\'']).unwrap();
            string_offset(text, start..text.len(), offset)
        };
        assert_eq!(at("x = 'a b'", 2), 7);
        assert_eq!(at("x = \"a b\"", 2), 7);
        assert_eq!(at(r#"x = "\"a\" b""#, 4), 11);
        assert_eq!(at(r#"x = "\u00e9 b""#, 3), 12);
        assert_eq!(at("x = '''\nab'''", 1), 9);
        assert_eq!(at("x = \"\"\"\na \\\n   b\"\"\"", 2), 15);
        assert_eq!(at("x = 'ab'", 99), 7);
    }

    #[test]
    fn an_unknown_aggregate_is_refused_where_it_is() {
        refused_at(
            "[[derived]]\nname = \"a\"\nsource = \"trades\"\nkind = \"agg_by\"\nkeys = [\"Sym\"]\naggs = [\"count\", \"summ(Size)\"]\n",
            "summ",
            "derived table \"a\": aggs: unknown aggregate \"summ\"",
        );
    }

    #[test]
    fn an_aggregate_of_a_column_that_is_not_there_or_of_the_wrong_type_is_refused_at_it() {
        let agg = |aggs: &str| {
            format!(
                "[[derived]]\nname = \"a\"\nsource = \"trades\"\nkind = \"agg_by\"\nkeys = [\"Sym\"]\naggs = {aggs}\n"
            )
        };
        refused_at(
            &agg(r#"["count", "max(Price)", "wmean(Price, Sise)"]"#),
            "\"wmean",
            "no column named \"Sise\"",
        );
        refused_at(
            &agg(r#"["sum(Size)", "mean(Sym)", "max(Price)"]"#),
            "\"mean",
            "mean(\"Sym\") needs a numeric column",
        );
        refused_at(
            &agg(r#"["sum(Size) as Sym"]"#),
            "\"sum",
            "output column \"Sym\" is given twice",
        );
        refused_at(
            &agg(r#"["max(Price)", "min(Size)", "max(Price)"]"#),
            "\"max(Price)\"]",
            "output column \"max_Price\" is given twice (name this aggregate with `as NAME`)",
        );
    }

    #[test]
    fn a_key_column_that_is_not_there_is_refused_at_it() {
        refused_at(
            "[[derived]]\nname = \"l\"\nsource = \"trades\"\nkind = \"last_by\"\nkeys = [\"Sym\", \"Sise\"]\n",
            "\"Sise",
            "derived table \"l\": table \"l\" has no column named \"Sise\"",
        );
        refused_at(
            "[[derived]]\nname = \"l\"\nsource = \"trades\"\nkind = \"agg_by\"\nkeys = [\"Sym\", \"Sym\"]\naggs = []\n",
            "keys = |[",
            "\"Sym\" is given twice",
        );
    }

    #[test]
    fn a_bad_predicate_is_refused_at_its_position_with_the_engines_message() {
        refused_at(
            "[[derived]]\nname = \"b\"\nsource = \"trades\"\nkind = \"filter\"\nwhere = 'Size >= 1000 && Sise > 3'\n",
            "Sise",
            "derived table \"b\": where: at 16: no column named \"Sise\" (did you mean \"Size\"?)",
        );
        refused_at(
            "[[derived]]\nname = \"b\"\nsource = \"trades\"\nkind = \"filter\"\nwhere = \"Sym == \\\"A\\\" && (\"\n",
            "(|\"\n",
            "where: at 15: expected a value, found the end",
        );
        refused_at(
            "[[derived]]\nname = \"b\"\nsource = \"trades\"\nkind = \"filter\"\nwhere = 'Size + 1'\n",
            "'|Size",
            "a filter needs a boolean expression",
        );
    }

    #[test]
    fn a_missing_key_is_refused_at_the_entry() {
        let entry = "[[derived]]\nname = \"x\"\nsource = \"trades\"\n";
        for (kind, more, reason) in [
            ("last_by", "", "last_by needs keys = [columns]"),
            ("agg_by", "keys = [\"Sym\"]\n", "agg_by needs aggs = ["),
            ("filter", "", "filter needs where = "),
            (
                "bars",
                "keys = [\"Sym\"]\naggs = []\ninterval = \"1s\"\n",
                "bars needs time = ",
            ),
            (
                "bars",
                "keys = [\"Sym\"]\naggs = []\ntime = \"Ts\"\n",
                "bars needs interval = ",
            ),
            ("tail", "", "tail needs a capacity"),
        ] {
            refused_at(
                &format!("{entry}kind = \"{kind}\"\n{more}"),
                "[[derived]]",
                reason,
            );
        }
        refused_at(
            &format!("{entry}kind = \"last_by\"\nkeys = []\n"),
            "keys = |",
            "keys is empty",
        );
    }

    #[test]
    fn a_key_set_on_a_kind_that_does_not_take_it_is_refused_at_the_key() {
        let entry = "[[derived]]\nname = \"x\"\nsource = \"trades\"\n";
        for (kind, more, at, reason) in [
            (
                "filter",
                "where = 'Size > 1'\nkeys = [\"Sym\"]\n",
                "keys",
                "keys is for last_by, agg_by and bars tables, not filter",
            ),
            (
                "last_by",
                "keys = [\"Sym\"]\ncapacity = 3\n",
                "capacity",
                "capacity is for ring_table, blink_to_append_only and tail tables, not last_by",
            ),
            (
                "agg_by",
                "keys = [\"Sym\"]\naggs = []\nwhere = 'Size > 1'\n",
                "where",
                "where is for filter tables, not agg_by",
            ),
            (
                "agg_by",
                "keys = [\"Sym\"]\naggs = []\ninterval = \"1s\"\n",
                "interval",
                "interval is for bars tables, not agg_by",
            ),
            (
                "tail",
                "capacity = 3\naggs = [\"count\"]\n",
                "aggs",
                "aggs is for agg_by and bars tables, not tail",
            ),
            (
                "ring_table",
                "capacity = 3\ntime = \"Ts\"\n",
                "time",
                "time is for bars tables, not ring_table",
            ),
        ] {
            refused_at(
                &format!("{entry}kind = \"{kind}\"\n{more}"),
                &format!("{at} = |"),
                reason,
            );
        }
        refused_at(
            &format!("{entry}kind = \"last_by\"\nkeys = [\"Sym\"]\nwindow = 3\n"),
            "window",
            "unknown field `window`",
        );
        refused_at(
            &format!("{entry}kind = \"lastby\"\n"),
            "\"lastby",
            "unknown kind \"lastby\" (expected ring_table, blink_to_append_only, tail, last_by, filter, agg_by or bars)",
        );
    }

    #[test]
    fn bad_bars_are_refused_at_the_key_they_are_about() {
        let bars = |time: &str, interval: &str| {
            format!(
                "[[derived]]\nname = \"b\"\nsource = \"trades\"\nkind = \"bars\"\nkeys = [\"Sym\"]\ntime = \"{time}\"\ninterval = \"{interval}\"\naggs = [\"count\"]\n"
            )
        };
        refused_at(
            &bars("Ts", "1 sec"),
            "\"1 sec",
            "interval \"1 sec\": expected a whole number",
        );
        refused_at(
            &bars("Sym", "1s"),
            "\"Sym\"\ni",
            "\"Sym\" is Utf8: bars need Int64 nanoseconds or a Timestamp",
        );
        refused_at(&bars("Tz", "1s"), "\"Tz", "no column named \"Tz\"");
        refused_at(
            &format!("{}[[table]]\nname = \"b_open\"\nkind = \"blink\"\ncolumns = [{{ name = \"x\", type = \"int64\" }}]\n", bars("Ts", "1s")),
            "name = |\"b\"",
            "table \"b_open\" is declared twice",
        );
        refused_at(
            &format!("{}[[derived]]\nname = \"b_open\"\nsource = \"trades\"\nkind = \"tail\"\ncapacity = 1\n", bars("Ts", "1s")),
            "name = |\"b_open\"",
            "table \"b_open\" is declared twice",
        );
    }

    #[test]
    fn bars_of_a_keyed_source_or_of_a_part_of_the_time_unit_are_refused_where_they_are_said() {
        let tables = "[[table]]\nname = \"book\"\nkind = \"keyed\"\nkey = [\"Sym\"]\n\
                      columns = [{ name = \"Sym\", type = \"utf8\" }, { name = \"T\", type = \"timestamp_s\" }]\n";
        let bars = |source: &str, interval: &str| {
            format!(
                "{tables}[[derived]]\nname = \"b\"\nsource = \"{source}\"\nkind = \"bars\"\nkeys = [\"Sym\"]\ntime = \"T\"\ninterval = \"{interval}\"\naggs = []\n"
            )
        };
        refused_at(
            &bars("book", "1s"),
            "source = |\"book\"",
            "\"book\" is keyed",
        );
        let by_rows =
            bars("book", "1s").replace("kind = \"keyed\"\nkey = [\"Sym\"]", "kind = \"append\"");
        parse(&by_rows).unwrap();
        refused_at(
            &by_rows.replace("\"1s\"", "\"1500ms\""),
            "interval = |",
            "must be a positive whole number of the time column's unit",
        );
    }

    #[test]
    fn a_bad_entry_refuses_the_whole_file_before_anything_is_created() {
        let e = parse(
            "[[derived]]\nname = \"ok\"\nsource = \"trades\"\nkind = \"last_by\"\nkeys = [\"Sym\"]\n\
             [[derived]]\nname = \"bad\"\nsource = \"ok\"\nkind = \"agg_by\"\nkeys = [\"Sym\"]\naggs = [\"sum(Sym)\"]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("sum(\"Sym\") needs a numeric column"), "{e}");
    }
}

#[cfg(test)]
mod durable_tests {
    use super::*;

    #[test]
    fn sync_policies_parse_and_bad_ones_say_why() {
        assert_eq!(parse_sync("every_cycle"), Ok(SyncPolicy::EveryCycle));
        assert_eq!(parse_sync("every-cycle"), Ok(SyncPolicy::EveryCycle));
        assert_eq!(parse_sync("never"), Ok(SyncPolicy::Never));
        assert_eq!(
            parse_sync("250ms"),
            Ok(SyncPolicy::Interval(std::time::Duration::from_millis(250)))
        );
        assert_eq!(
            parse_sync("1.5s"),
            Ok(SyncPolicy::Interval(std::time::Duration::from_millis(1500)))
        );
        for bad in ["", "ms", "5", "5m", "always", "0ms"] {
            assert!(parse_sync(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_durable_table_needs_a_data_dir_and_is_refused_at_its_key() {
        let text = "sync = \"never\"\n[[table]]\nname = \"t\"\nkind = \"append\"\ncolumns = [{ name = \"x\", type = \"int64\" }]\ndurable = true\n";
        let c = Config::parse(Path::new("t.toml"), text.to_owned()).unwrap();
        assert_eq!(c.sync, Some(SyncPolicy::Never));
        let e = c.check_data_dir(None).unwrap_err().to_string();
        assert!(
            e.starts_with("t.toml:6:") && e.contains("--data-dir"),
            "{e}"
        );
        c.check_data_dir(Some(Path::new("/tmp"))).unwrap();
        let plain = Config::parse(
            Path::new("t.toml"),
            text.replace("durable = true", "durable = false"),
        )
        .unwrap();
        plain.check_data_dir(None).unwrap();
    }
}
