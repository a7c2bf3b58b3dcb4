//! Keyed input: the four shapes a staged batch may have, the column masks of the mixed shape,
//! and the checks made when a batch is staged ([`check_batch`]).

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};

use crate::error::{Error, Result};

/// The name of the per-row operation column of the mixed input shape.
pub const OP_COLUMN: &str = "__tickertable_op";
/// The schema metadata key that marks a batch of deletes (value `delete`).
pub const OP_METADATA: &str = "tickertable.op";
/// The bytes of a column mask for `columns` columns.
pub(crate) fn mask_width(columns: usize) -> usize {
    columns.div_ceil(8)
}

/// The operation masks writers stage for whole rows: every column given (an upsert), and
/// none (a delete).
#[derive(Debug, Clone)]
pub(crate) struct Masks {
    pub(crate) upsert: Vec<u8>,
    pub(crate) delete: Vec<u8>,
}

impl Masks {
    pub(crate) fn new(columns: usize) -> Self {
        let mut upsert = vec![0u8; mask_width(columns)];
        for c in 0..columns {
            upsert[c / 8] |= 1 << (c % 8);
        }
        Self {
            delete: vec![0u8; upsert.len()],
            upsert,
        }
    }
}

pub(super) fn bit(mask: &[u8], c: usize) -> bool {
    mask.get(c / 8).is_some_and(|b| b & (1 << (c % 8)) != 0)
}

/// The schema row writers and multithreaded writers stage for a keyed table: every column
/// nullable (a delete row has only its key) and the operation column last.
pub(crate) fn staged_schema(schema: &Schema) -> SchemaRef {
    let mut fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| f.as_ref().clone().with_nullable(true))
        .collect();
    fields.push(Field::new(OP_COLUMN, DataType::Binary, false));
    Arc::new(Schema::new(fields))
}

/// The shape of one staged batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Shape {
    Upsert,
    Delete,
    /// The operation column's index.
    Mixed(usize),
}

pub(super) fn shape_of(batch: &RecordBatch) -> Shape {
    let schema = batch.schema_ref();
    if let Some(last) = schema.fields().last() {
        if last.name() == OP_COLUMN {
            return Shape::Mixed(schema.fields().len() - 1);
        }
    }
    if schema.metadata().get(OP_METADATA).map(String::as_str) == Some("delete") {
        Shape::Delete
    } else {
        Shape::Upsert
    }
}

/// Per table column, the batch column holding it.
pub(super) fn column_map(
    schema: &SchemaRef,
    batch: &RecordBatch,
    shape: Shape,
) -> Vec<Option<usize>> {
    if matches!(shape, Shape::Mixed(_)) || Arc::ptr_eq(schema, batch.schema_ref()) {
        return (0..schema.fields().len()).map(Some).collect();
    }
    let given = batch.schema_ref();
    schema
        .fields()
        .iter()
        .map(|f| given.index_of(f.name()).ok())
        .collect()
}

/// Checks a batch staged into a keyed table and returns what to stage: the batch, re-labelled
/// with the table's schema when it has every column.
///
/// # Errors
///
/// [`Error::InvalidOp`] for a bad operation tag or mask, [`Error::MissingKeyColumn`],
/// [`Error::NoColumnNamed`], [`Error::UnsetColumn`] (a partial upsert leaving out a column
/// that is not nullable), and the errors of [`crate::schema::check_batch`].
pub(crate) fn check_batch(
    table: &str,
    schema: &SchemaRef,
    key: &[usize],
    batch: &RecordBatch,
) -> Result<RecordBatch> {
    let shape = shape_of(batch);
    let given = batch.schema_ref();
    if let Some(op) = given.metadata().get(OP_METADATA) {
        if op != "delete" && op != "upsert" {
            return Err(Error::InvalidOp {
                table: table.to_owned(),
                reason: format!("{OP_METADATA} must be \"upsert\" or \"delete\", found {op:?}"),
            });
        }
    }
    match shape {
        Shape::Mixed(op) => check_mixed(table, schema, key, batch, op),
        Shape::Delete => {
            for &k in key {
                check_named(table, schema, batch, k, true)?;
            }
            Ok(batch.clone())
        }
        Shape::Upsert => {
            if given.fields().len() == schema.fields().len()
                && given
                    .fields()
                    .iter()
                    .zip(schema.fields())
                    .all(|(a, b)| a.name() == b.name())
            {
                return crate::schema::check_batch(table, schema, batch);
            }
            for f in given.fields() {
                if schema.index_of(f.name()).is_err() {
                    return Err(Error::NoColumnNamed {
                        table: table.to_owned(),
                        column: f.name().clone(),
                    });
                }
            }
            let mut names = std::collections::HashSet::new();
            if let Some(dup) = given.fields().iter().find(|f| !names.insert(f.name())) {
                return Err(Error::InvalidOp {
                    table: table.to_owned(),
                    reason: format!("column {:?} given twice", dup.name()),
                });
            }
            for (c, field) in schema.fields().iter().enumerate() {
                let present = check_named(table, schema, batch, c, key.contains(&c))?;
                if !present && !field.is_nullable() {
                    return Err(Error::UnsetColumn {
                        table: table.to_owned(),
                        column: field.name().clone(),
                    });
                }
            }
            Ok(batch.clone())
        }
    }
}

/// Checks table column `c` in a batch that names its columns: its type, its nulls. Returns
/// whether it is there; a missing key column is an error when `required`.
fn check_named(
    table: &str,
    schema: &SchemaRef,
    batch: &RecordBatch,
    c: usize,
    required: bool,
) -> Result<bool> {
    let field = schema.field(c);
    let Ok(i) = batch.schema_ref().index_of(field.name()) else {
        if required {
            return Err(Error::MissingKeyColumn {
                table: table.to_owned(),
                column: field.name().clone(),
            });
        }
        return Ok(false);
    };
    let found = batch.schema_ref().field(i).data_type();
    if found != field.data_type() {
        return Err(Error::SchemaMismatch {
            table: table.to_owned(),
            column: field.name().clone(),
            expected: field.data_type().clone(),
            found: found.clone(),
        });
    }
    if !field.is_nullable() && batch.column(i).null_count() > 0 {
        return Err(Error::NullInNonNullable {
            table: table.to_owned(),
            column: field.name().clone(),
        });
    }
    Ok(true)
}

fn check_mixed(
    table: &str,
    schema: &SchemaRef,
    key: &[usize],
    batch: &RecordBatch,
    op: usize,
) -> Result<RecordBatch> {
    let invalid = |reason: String| Error::InvalidOp {
        table: table.to_owned(),
        reason,
    };
    let ncols = schema.fields().len();
    if op != ncols {
        return Err(Error::ColumnCount {
            table: table.to_owned(),
            expected: ncols + 1,
            found: batch.num_columns(),
        });
    }
    crate::schema::check_fields(table, schema, batch)?;
    let Some(masks) = batch.column(op).as_binary_opt::<i32>() else {
        return Err(invalid(format!(
            "{OP_COLUMN} must be Binary, found {}",
            batch.column(op).data_type()
        )));
    };
    let width = mask_width(ncols);
    for r in 0..batch.num_rows() {
        if masks.is_null(r) || masks.value(r).len() != width {
            return Err(invalid(format!(
                "row {r}: the {OP_COLUMN} mask must be {width} bytes"
            )));
        }
        let mask = masks.value(r);
        let delete = mask.iter().all(|&b| b == 0);
        if (ncols..width * 8).any(|c| bit(mask, c)) {
            return Err(invalid(format!("row {r}: mask bits past the last column")));
        }
        for (c, field) in schema.fields().iter().enumerate() {
            let given = bit(mask, c);
            let is_key = key.contains(&c);
            if !delete && is_key && !given {
                return Err(Error::MissingKeyColumn {
                    table: table.to_owned(),
                    column: field.name().clone(),
                });
            }
            if !delete && !given && !field.is_nullable() {
                return Err(Error::UnsetColumn {
                    table: table.to_owned(),
                    column: field.name().clone(),
                });
            }
            let needs_value = if delete { is_key } else { given };
            if needs_value && !field.is_nullable() && batch.column(c).is_null(r) {
                return Err(Error::NullInNonNullable {
                    table: table.to_owned(),
                    column: field.name().clone(),
                });
            }
        }
    }
    Ok(batch.clone())
}
