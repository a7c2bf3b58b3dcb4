//! The tables file: `ticker-serve --config tables.toml`.
//!
//! ```toml
//! period_ms = 100                 # optional; --period-ms wins
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
//! # durability = "every_cycle"    # never | every_cycle | interval: not yet supported
//!
//! [[derived]]
//! name = "recent"
//! source = "trades"
//! kind = "ring_table"             # ring_table | blink_to_append_only | tail
//! capacity = 1000                 # ring_table: capacity; blink_to_append_only: limit
//!                                 # (optional); tail: rows
//! ```
//!
//! Columns are nullable unless `nullable = false`; types are `ticker-load --schema`'s
//! (`bool`, `int8`..`int64`, `uint8`..`uint64`, `float32`, `float64`, `utf8`,
//! `timestamp_s|ms|us|ns`, `date32`) or Arrow's own spelling. Derived tables are created in
//! file order after every `[[table]]`, so one may derive from another listed before it.
//! Anything wrong (bad TOML, an unknown key, a type, kind or source that does not exist, a
//! table the engine refuses) is refused before the server listens, as `file:line:column:
//! reason`.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_schema::{Field, Schema};
use serde::Deserialize;
use tickertable::flight::CreateTable;
use tickertable::{EngineHandle, TableKind};
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
    durability: Option<Spanned<toml::Value>>,
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
    durability: Option<Spanned<toml::Value>>,
}

/// What a derived table is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Derivation {
    Ring(usize),
    AppendOnly(Option<usize>),
    Tail(usize),
}

/// One `[[derived]]` table, checked.
#[derive(Debug)]
struct Derived {
    name: String,
    source: String,
    what: Derivation,
    span: Range<usize>,
}

/// A checked config: the tables to create, in order.
#[derive(Debug)]
pub(crate) struct Config {
    file: PathBuf,
    text: String,
    /// The cycle period the file asks for.
    pub(crate) period_ms: Option<u64>,
    tables: Vec<(CreateTable, Range<usize>)>,
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

    fn durability(&self, table: &str, d: Option<&Spanned<toml::Value>>) -> Result<(), ConfigError> {
        match d {
            None => Ok(()),
            Some(d) => Err(self.error(
                Some(d.span()),
                format!(
                    "table {table:?}: durability is not yet supported by this ticker-serve \
                     (durable tables are still being built); remove the key"
                ),
            )),
        }
    }

    fn table(&self, def: &Spanned<TableDef>) -> Result<CreateTable, ConfigError> {
        let t = def.get_ref();
        let name = t.name.get_ref();
        if name.is_empty() {
            return Err(self.error(Some(t.name.span()), "a table's name may not be empty"));
        }
        self.durability(name, t.durability.as_ref())?;
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

    fn derived(&self, def: &Spanned<DerivedDef>) -> Result<Derived, ConfigError> {
        let d = def.get_ref();
        let name = d.name.get_ref();
        self.durability(name, d.durability.as_ref())?;
        let capacity = d.capacity.as_ref().map(|c| *c.get_ref());
        let need = |what: &str| {
            capacity.ok_or_else(|| {
                self.error(
                    Some(def.span()),
                    format!("derived table {name:?}: {what} needs a capacity"),
                )
            })
        };
        let what = match d.kind.get_ref().as_str() {
            "ring_table" | "ring" => Derivation::Ring(need("ring_table")?),
            "blink_to_append_only" | "append" => Derivation::AppendOnly(capacity),
            "tail" => Derivation::Tail(need("tail")?),
            other => {
                return Err(self.error(
                    Some(d.kind.span()),
                    format!(
                        "derived table {name:?}: unknown kind {other:?} (expected ring_table, \
                         blink_to_append_only or tail)"
                    ),
                ))
            }
        };
        Ok(Derived {
            name: name.clone(),
            source: d.source.get_ref().clone(),
            what,
            span: d.source.span(),
        })
    }
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
        let mut names: Vec<&str> = Vec::new();
        for def in &file.table {
            let create = check.table(def)?;
            let name = def.get_ref().name.get_ref();
            if names.contains(&name.as_str()) {
                return Err(check.error(
                    Some(def.get_ref().name.span()),
                    format!("table {name:?} is declared twice"),
                ));
            }
            names.push(name);
            tables.push((create, def.span()));
        }
        let mut derived = Vec::new();
        for def in &file.derived {
            let d = check.derived(def)?;
            let name = def.get_ref().name.get_ref();
            if names.contains(&name.as_str()) {
                return Err(check.error(
                    Some(def.get_ref().name.span()),
                    format!("table {name:?} is declared twice"),
                ));
            }
            if !names.contains(&d.source.as_str()) {
                return Err(check.error(
                    Some(d.span.clone()),
                    format!(
                        "derived table {name:?}: no table {:?} is declared before it",
                        d.source
                    ),
                ));
            }
            names.push(name);
            derived.push(d);
        }
        let period_ms = match &file.period_ms {
            Some(p) if *p.get_ref() == 0 => {
                return Err(check.error(Some(p.span()), "period_ms must be at least 1"))
            }
            p => p.as_ref().map(|p| *p.get_ref()),
        };
        Ok(Self {
            file: path.to_owned(),
            text,
            period_ms,
            tables,
            derived,
        })
    }

    /// How many tables the file declares, derived ones included.
    pub(crate) fn len(&self) -> usize {
        self.tables.len() + self.derived.len()
    }

    /// Creates the tables in `engine`, in file order; a table the engine refuses (say a key
    /// column the schema does not have) is refused at its line.
    pub(crate) fn apply(&self, engine: &EngineHandle) -> Result<(), ConfigError> {
        let check = Checker {
            file: &self.file,
            text: &self.text,
        };
        for (create, span) in &self.tables {
            create.apply(engine).map_err(|e| {
                check.error(
                    Some(span.clone()),
                    format!("table {:?}: {e}", create.name()),
                )
            })?;
            tracing::info!(
                table = create.name(),
                kind = %create.kind(),
                "config: created a table"
            );
        }
        for d in &self.derived {
            let refused = |e: tickertable::Error| {
                check.error(
                    Some(d.span.clone()),
                    format!("derived table {:?}: {e}", d.name),
                )
            };
            let source = engine.table(&d.source).ok_or_else(|| {
                refused(tickertable::Error::NoSuchTable {
                    table: d.source.clone(),
                })
            })?;
            let table = match d.what {
                Derivation::Ring(n) => engine.ring_table(&d.name, &source, n),
                Derivation::AppendOnly(limit) => {
                    engine.blink_to_append_only(&d.name, &source, limit)
                }
                Derivation::Tail(n) => engine.tail(&d.name, &source, n),
            }
            .map_err(refused)?;
            tracing::info!(
                table = %d.name,
                source = %d.source,
                kind = %table.kind(),
                "config: created a derived table"
            );
        }
        Ok(())
    }
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
        let e = refused("[[table]]\nname = \"t\"\nkind = \"blink\"\ncolumns = [{ name = \"x\", type = \"int64\" }]\ndurability = \"every_cycle\"\n");
        assert!(
            e.starts_with("t.toml:5:") && e.contains("not yet supported"),
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
    fn a_table_the_engine_refuses_is_refused_at_its_line() {
        let c = parse("\n[[table]]\nname = \"k\"\nkind = \"keyed\"\nkey = [\"nope\"]\ncolumns = [{ name = \"x\", type = \"int64\" }]\n").unwrap();
        let engine = tickertable::Engine::builder().manual().build().unwrap();
        let e = c.apply(&engine).unwrap_err().to_string();
        assert!(
            e.starts_with("t.toml:2:1: table \"k\"") && e.contains("nope"),
            "{e}"
        );
    }
}
