//! Table management over Flight: the `DoAction`s `create_table`, `drop_table` and `stats`.
//!
//! # Bodies
//!
//! - `create_table`: JSON
//!   `{"name": "trades", "kind": "append"|"blink"|"ring"|"keyed", "options": {...},
//!   "schema": "<base64 of the Arrow IPC schema message>"}`, where `options` may hold
//!   `"capacity"` (a ring's, required; a keyed table's, optional), `"limit"` (an append
//!   table's), `"key"` (a keyed table's key columns, required) and `"durable"` (`true`: the
//!   table is logged to the server's data directory and comes back with its rows after a
//!   restart, when it is created again or, by `ticker-serve`, at start; refused by a server
//!   without a data directory). pyarrow's
//!   `base64.b64encode(schema.serialize())` is the schema. The one result is
//!   `{"created": true|false, "table": name}`: `false` when an identical table existed (same
//!   kind, options, durability and schema), which is left as it is; a table of that name with anything
//!   different is refused with `ALREADY_EXISTS` ([`Error::TableConflict`]).
//! - `drop_table`: `{"name": "trades"}` (or the bare name). Drops the table and the tables
//!   derived from it ([`EngineHandle::drop_table`]); their live streams end with `NOT_FOUND`
//!   and code `table_dropped`. The result is `{"dropped": [names]}`.
//! - `stats`: no body. The result is the JSON of [`stats_json`].

use std::time::Instant;

use arrow_flight::{IpcMessage, SchemaAsIpc};
use arrow_ipc::writer::IpcWriteOptions;
use arrow_schema::{Schema, SchemaRef};
use base64::Engine as _;
use serde_json::{json, Value};

use crate::durable::Durability;
use crate::engine::EngineHandle;
use crate::error::{Error, Result};
use crate::flight::server_stats::Counters;
use crate::publish::PublisherOptions;
use crate::table::{Table, TableKind};

/// The action that creates a table.
pub const CREATE_TABLE: &str = "create_table";
/// The action that drops a table and the tables derived from it.
pub const DROP_TABLE: &str = "drop_table";
/// The action that reports engine and per-table statistics as JSON.
pub const STATS: &str = "stats";

/// A table to create: its name, schema, kind and options. What a `create_table` action
/// carries, and what [`Client::create_table`](crate::flight::Client::create_table) sends.
///
/// # Examples
///
/// ```
/// # use std::sync::Arc;
/// # use arrow_schema::{DataType, Field, Schema};
/// use tickertable::flight::CreateTable;
/// use tickertable::TableKind;
///
/// let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));
/// let create = CreateTable::new("recent", schema).with_kind(TableKind::Ring { capacity: 100 });
/// let back = CreateTable::from_json(&create.to_json()?)?;
/// assert_eq!(back, create);
/// # Ok::<(), tickertable::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct CreateTable {
    name: String,
    schema: SchemaRef,
    kind: TableKind,
    key: Vec<String>,
    limit: Option<usize>,
    durability: Durability,
}

fn invalid(reason: impl Into<String>) -> Error {
    Error::InvalidOption {
        option: "create_table",
        reason: reason.into(),
    }
}

fn opt_usize(options: &Value, name: &str) -> Result<Option<usize>> {
    match options.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| invalid(format!("options.{name} must be a whole number, found {v}"))),
    }
}

impl CreateTable {
    /// A blink table named `name` of `schema` (set another kind with
    /// [`with_kind`](Self::with_kind)).
    pub fn new(name: impl Into<String>, schema: SchemaRef) -> Self {
        Self {
            name: name.into(),
            schema,
            kind: TableKind::Blink,
            key: Vec::new(),
            limit: None,
            durability: Durability::None,
        }
    }

    /// The table's kind.
    #[must_use]
    pub fn with_kind(mut self, kind: TableKind) -> Self {
        self.kind = kind;
        self
    }

    /// A keyed table's key columns.
    #[must_use]
    pub fn with_key<S: Into<String>>(mut self, columns: impl IntoIterator<Item = S>) -> Self {
        self.key = columns.into_iter().map(Into::into).collect();
        self
    }

    /// An append table's row limit.
    #[must_use]
    pub fn with_limit(mut self, rows: usize) -> Self {
        self.limit = Some(rows);
        self
    }

    /// Whether the table is logged and replayed (see [`crate::durable`]); the server needs
    /// a data directory.
    #[must_use]
    pub fn with_durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Shorthand for [`with_durability(Durability::Log)`](Self::with_durability).
    #[must_use]
    pub fn durable(self) -> Self {
        self.with_durability(Durability::Log)
    }

    /// The table's durability.
    pub fn durability(&self) -> Durability {
        self.durability
    }

    /// The table's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The table's schema.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// The table's kind.
    pub fn kind(&self) -> TableKind {
        self.kind
    }

    /// The action body (see the [module docs](crate::flight#table-management)).
    ///
    /// # Errors
    ///
    /// [`Error::Arrow`] if the schema cannot be encoded.
    pub fn to_json(&self) -> Result<String> {
        let ipc =
            IpcMessage::try_from(SchemaAsIpc::new(&self.schema, &IpcWriteOptions::default()))?;
        let (kind, capacity) = match self.kind {
            TableKind::Append => ("append", None),
            TableKind::Blink => ("blink", None),
            TableKind::Ring { capacity } => ("ring", Some(capacity)),
            TableKind::Keyed { capacity } => ("keyed", capacity),
        };
        let mut options = serde_json::Map::new();
        if let Some(c) = capacity {
            options.insert("capacity".into(), json!(c));
        }
        if let Some(l) = self.limit {
            options.insert("limit".into(), json!(l));
        }
        if !self.key.is_empty() {
            options.insert("key".into(), json!(self.key));
        }
        if self.durability == Durability::Log {
            options.insert("durable".into(), json!(true));
        }
        let body = json!({
            "name": self.name,
            "kind": kind,
            "options": options,
            "schema": base64::engine::general_purpose::STANDARD.encode(&ipc.0),
        });
        Ok(body.to_string())
    }

    /// Reads an action body.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOption`] naming what is missing or wrong.
    pub fn from_json(body: &str) -> Result<Self> {
        let v: Value = serde_json::from_str(body)
            .map_err(|e| invalid(format!("the body is not JSON: {e}")))?;
        let name = v
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| invalid("\"name\" (a non-empty string) is required"))?;
        let empty = Value::Object(serde_json::Map::new());
        let options = v.get("options").unwrap_or(&empty);
        if !options.is_object() {
            return Err(invalid("\"options\" must be an object"));
        }
        let capacity = opt_usize(options, "capacity")?;
        let limit = opt_usize(options, "limit")?;
        let key: Vec<String> = match options.get("key") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(a)) => a
                .iter()
                .map(|k| k.as_str().map(str::to_owned))
                .collect::<Option<_>>()
                .ok_or_else(|| invalid("options.key must be a list of column names"))?,
            Some(_) => return Err(invalid("options.key must be a list of column names")),
        };
        let durability = match options.get("durable") {
            None | Some(Value::Null | Value::Bool(false)) => Durability::None,
            Some(Value::Bool(true)) => Durability::Log,
            Some(other) => {
                return Err(invalid(format!(
                    "options.durable must be true or false, found {other}"
                )))
            }
        };
        let kind_name = v.get("kind").and_then(Value::as_str).unwrap_or("blink");
        let kind = match kind_name {
            "append" => TableKind::Append,
            "blink" => TableKind::Blink,
            "ring" => TableKind::Ring {
                capacity: capacity.ok_or_else(|| invalid("a ring needs options.capacity"))?,
            },
            "keyed" => TableKind::Keyed { capacity },
            other => {
                return Err(invalid(format!(
                    "unknown kind {other:?} (expected append, blink, ring or keyed)"
                )))
            }
        };
        if limit.is_some() && kind != TableKind::Append {
            return Err(invalid(format!(
                "options.limit is for append tables, not {kind_name}"
            )));
        }
        if !key.is_empty() && !matches!(kind, TableKind::Keyed { .. }) {
            return Err(invalid(format!(
                "options.key is for keyed tables, not {kind_name}"
            )));
        }
        let encoded = v.get("schema").and_then(Value::as_str).ok_or_else(|| {
            invalid("\"schema\" (base64 of an Arrow IPC schema message) is required")
        })?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map_err(|e| invalid(format!("\"schema\" is not base64: {e}")))?;
        let schema = arrow_ipc::convert::try_schema_from_ipc_buffer(&bytes)
            .map_err(|e| invalid(format!("\"schema\" is not an Arrow IPC schema: {e}")))?;
        let mut create = Self::new(name, std::sync::Arc::new(schema)).with_kind(kind);
        create.key = key;
        create.limit = limit;
        create.durability = durability;
        Ok(create)
    }

    /// What differs between `table` and this request, as (existing, requested), if anything.
    fn difference(&self, table: &Table) -> Option<(String, String)> {
        if table.kind() != self.kind {
            return Some((
                format!("kind {}", table.kind()),
                format!("kind {}", self.kind),
            ));
        }
        let key: Vec<&str> = table
            .key_columns()
            .iter()
            .map(|&c| table.schema().field(c).name().as_str())
            .collect();
        if key != self.key {
            return Some((format!("key {key:?}"), format!("key {:?}", self.key)));
        }
        if self.kind == TableKind::Append && table.capacity() != self.limit {
            return Some((
                format!("limit {:?}", table.capacity()),
                format!("limit {:?}", self.limit),
            ));
        }
        if table.is_derived() {
            return Some(("a derived table".into(), "a table fed by writers".into()));
        }
        let durable = self.durability == Durability::Log;
        if table.is_durable() != durable {
            let name = |d: bool| if d { "durable" } else { "not durable" }.to_owned();
            return Some((name(table.is_durable()), name(durable)));
        }
        if !same_fields(table.schema(), &self.schema) {
            return Some((
                format!("schema {}", describe(table.schema())),
                format!("schema {}", describe(&self.schema)),
            ));
        }
        None
    }

    /// Creates the table in `engine`, or finds an identical one. Returns whether it created.
    ///
    /// # Errors
    ///
    /// [`Error::TableConflict`] if a table of that name differs, or what creating fails with.
    pub fn apply(&self, engine: &EngineHandle) -> Result<bool> {
        if let Some(table) = engine.table(&self.name) {
            return match self.difference(&table) {
                None => Ok(false),
                Some((existing, requested)) => Err(Error::TableConflict {
                    table: self.name.clone(),
                    existing,
                    requested,
                }),
            };
        }
        let mut options = PublisherOptions::default().with_kind(self.kind);
        if !self.key.is_empty() {
            options = options.with_key(self.key.iter().cloned());
        }
        if let Some(limit) = self.limit {
            options = options.with_limit(limit);
        }
        options = options.with_durability(self.durability);
        match engine.table_publisher(&self.name, self.schema.clone(), options) {
            Ok(_) => Ok(true),
            // Created by another call since the look-up: judge it as above.
            Err(Error::TableExists { .. }) => self.apply(engine),
            Err(e) => Err(e),
        }
    }
}

/// Whether two schemas have the same columns: names, types and nullability, in order
/// (schema-level metadata is not compared).
fn same_fields(a: &Schema, b: &Schema) -> bool {
    a.fields().len() == b.fields().len()
        && a.fields().iter().zip(b.fields()).all(|(x, y)| {
            x.name() == y.name()
                && x.data_type() == y.data_type()
                && x.is_nullable() == y.is_nullable()
        })
}

/// A schema as `(name: type[?], ...)`, `?` marking nullable columns.
pub(crate) fn describe(schema: &Schema) -> String {
    let cols: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| {
            let null = if f.is_nullable() { "?" } else { "" };
            format!("{}: {}{null}", f.name(), f.data_type())
        })
        .collect();
    format!("({})", cols.join(", "))
}

/// The name a `drop_table` body names: `{"name": ...}` or the bare name.
pub(crate) fn drop_target(body: &[u8]) -> Result<String> {
    let text = std::str::from_utf8(body).map_err(|_| Error::InvalidOption {
        option: "drop_table",
        reason: "the body is not UTF-8".into(),
    })?;
    let text = text.trim();
    let name = if text.starts_with('{') {
        let v: Value = serde_json::from_str(text).map_err(|e| Error::InvalidOption {
            option: "drop_table",
            reason: format!("the body is not JSON: {e}"),
        })?;
        v.get("name").and_then(Value::as_str).map(str::to_owned)
    } else {
        Some(text.to_owned())
    };
    name.filter(|n| !n.is_empty())
        .ok_or_else(|| Error::InvalidOption {
            option: "drop_table",
            reason: "the body must name the table: {\"name\": \"...\"}".into(),
        })
}

fn micros(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// The `stats` result:
///
/// ```json
/// {"step": 812, "period_ms": 100, "cycles": 812, "last_cycle_us": 140, "worst_cycle_us": 2210,
///  "mean_cycle_us": 95, "rows_appended": 81200, "rows_per_sec": 1000.0, "shutting_down": false,
///  "data_dir": "/var/lib/ticker", "log": {"bytes": 9120000, "records": 812, "fsyncs": 812,
///          "fsync_us": 310000, "max_fsync_us": 2900, "checkpoints": 0, "checkpoint_bytes": 0,
///          "replayed_tables": 1, "replayed_rows": 40000, "replay_us": 5200},
///  "server": {"puts": 3, "rows_put": 300, "refused_puts": {"schema": 1}, "lagged_resyncs": 0,
///             "live_streams": 1},
///  "tables": [{"name": "trades", "kind": "append", "capacity": null, "key": [], "rows": 81200,
///              "rows_added": 81200, "rows_modified": 0, "rows_removed": 0, "rows_dropped": 0,
///              "staged_rows": 0, "subscribers": 1, "listeners": 0, "step": 812,
///              "rows_per_sec": 1000.0, "derived": false, "durable": true,
///              "log": {"bytes": 9120000, "records": 812, "fsyncs": 812, "fsync_us": 310000,
///                      "replayed_rows": 40000, "replay_us": 5200}}]}
/// ```
///
/// Rates are measured over the last second or more between `stats` calls (on the first, since
/// the server started).
/// `data_dir` is `null` without one; `log` counts the log writer's work since the server
/// started (all zero without a data directory) and the replay of durable tables at their
/// creation; a table's `log` is its share (`null` for a table that is not durable).
/// O(tables + their writers and consumers).
pub(crate) fn stats_json(engine: &EngineHandle, counters: &Counters) -> Value {
    // Under the shared side of the global lock, so the totals and every table are of one
    // step: a cycle publishes its rows and records its statistics under the exclusive side.
    engine.read(|_| stats_json_now(engine, counters))
}

fn stats_json_now(engine: &EngineHandle, counters: &Counters) -> Value {
    let now = Instant::now();
    let totals = engine.stats();
    let last = engine.last_cycle();
    let server = counters.snapshot();
    let refused: serde_json::Map<String, Value> = server
        .refused_puts
        .iter()
        .map(|(c, n)| (c.as_str().to_owned(), json!(n)))
        .collect();
    let tables: Vec<Value> = engine
        .tables()
        .iter()
        .map(|t| {
            let s = engine.table_stats(t);
            let key: Vec<&str> = t
                .key_columns()
                .iter()
                .map(|&c| t.schema().field(c).name().as_str())
                .collect();
            json!({
                "name": t.name(),
                "kind": t.kind().name(),
                "capacity": t.capacity(),
                "key": key,
                "derived": t.is_derived(),
                "rows": s.rows,
                "rows_added": s.rows_added,
                "rows_modified": s.rows_modified,
                "rows_removed": s.rows_removed,
                "rows_dropped": s.rows_dropped,
                "staged_rows": s.staged_rows,
                "subscribers": s.subscriptions,
                "listeners": s.listeners,
                "step": s.step.as_u64(),
                "rows_per_sec": counters.rate(t.id().as_u64(), now, s.rows_added + s.rows_modified),
                "durable": t.is_durable(),
                "log": s.log.map(|l| json!({
                    "bytes": l.bytes,
                    "records": l.records,
                    "fsyncs": l.fsyncs,
                    "fsync_us": micros(l.fsync_time),
                    "replayed_rows": l.replayed_rows,
                    "replay_us": micros(l.replay_time),
                })),
            })
        })
        .collect();
    let mean = micros(totals.total_cycle_time)
        .checked_div(totals.cycles)
        .unwrap_or(0);
    json!({
        "step": engine.step().as_u64(),
        "period_ms": u64::try_from(engine.period().as_millis()).unwrap_or(u64::MAX),
        "cycles": totals.cycles,
        "last_cycle_us": last.map(|c| micros(c.duration)),
        "worst_cycle_us": micros(totals.max_cycle_time),
        "mean_cycle_us": mean,
        "rows_appended": totals.rows_appended,
        "rows_per_sec": counters.rate(u64::MAX, now, totals.rows_appended),
        "shutting_down": engine.is_shut_down(),
        "data_dir": engine.data_dir().map(|d| d.display().to_string()),
        "log": {
            "bytes": totals.log.bytes,
            "records": totals.log.records,
            "fsyncs": totals.log.fsyncs,
            "fsync_us": micros(totals.log.fsync_time),
            "max_fsync_us": micros(totals.log.max_fsync_time),
            "checkpoints": totals.log.checkpoints,
            "checkpoint_bytes": totals.log.checkpoint_bytes,
            "replayed_tables": totals.log.replayed_tables,
            "replayed_rows": totals.log.replayed_rows,
            "replay_us": micros(totals.log.replay_time),
        },
        "server": {
            "puts": server.puts,
            "rows_put": server.rows_put,
            "refused_puts": refused,
            "lagged_resyncs": server.lagged_resyncs,
            "live_streams": server.live_streams,
        },
        "tables": tables,
    })
}
