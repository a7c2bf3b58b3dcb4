//! Sources' and sinks' positions as rows: one row per source partition (its next offset,
//! the high watermark and the lag between them) and one per sink, for a keyed status
//! table a server upserts every second so that any subscriber (`ticker-view` included)
//! watches the lag tick like any other table.

use std::sync::{Arc, OnceLock};

use arrow_array::{ArrayRef, Int32Array, Int64Array, RecordBatch, StringArray, UInt64Array};
use arrow_schema::{DataType, Field, Schema, SchemaRef};

use super::sink::KafkaSink;
use super::source::KafkaSource;

/// The status table's key columns: a row per (kind, table, topic, partition).
pub const STATUS_KEY: [&str; 4] = ["Kind", "Table", "Topic", "Partition"];

/// The status rows' schema: `Kind` (`"source"` or `"sink"`), `Table`, `Topic`,
/// `Partition` (a sink's row, over all partitions, is `-1`), `NextOffset` and
/// `HighWatermark` (`-1` while unknown; a sink's are `-1`), `Lag` (messages in the
/// partition not consumed yet; a sink's: messages produced and not yet delivered),
/// `Messages` (consumed, or delivered), `Errors` (bad messages, or failed deliveries and
/// lost updates), `OffsetGaps` (a source's, summed over its partitions on each row).
pub fn status_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let utf8 = |n: &str| Field::new(n, DataType::Utf8, false);
            let i64 = |n: &str| Field::new(n, DataType::Int64, false);
            let u64 = |n: &str| Field::new(n, DataType::UInt64, false);
            Arc::new(Schema::new(vec![
                utf8("Kind"),
                utf8("Table"),
                utf8("Topic"),
                Field::new("Partition", DataType::Int32, false),
                i64("NextOffset"),
                i64("HighWatermark"),
                i64("Lag"),
                u64("Messages"),
                u64("Errors"),
                u64("OffsetGaps"),
            ]))
        })
        .clone()
}

/// One batch of [`status_schema`]: a row per partition of each source (a source that has
/// read nothing yet has none) and a row per sink. O(partitions + sinks).
pub fn status_batch(sources: &[&KafkaSource], sinks: &[&KafkaSink]) -> RecordBatch {
    let mut rows = Rows::default();
    for source in sources {
        let stats = source.stats();
        for p in &stats.partitions {
            rows.push(
                "source",
                source.table().name(),
                source.topic(),
                p.partition,
                [
                    p.next_offset,
                    p.high_watermark,
                    i64::try_from(p.lag).unwrap_or(i64::MAX),
                ],
                [stats.messages, stats.bad_messages, stats.offset_gaps],
            );
        }
    }
    for sink in sinks {
        let stats = sink.stats();
        let pending = stats
            .produced
            .saturating_sub(stats.delivered + stats.failed);
        rows.push(
            "sink",
            sink.table(),
            sink.topic(),
            -1,
            [-1, -1, i64::try_from(pending).unwrap_or(i64::MAX)],
            [stats.delivered, stats.failed + stats.lost_updates, 0],
        );
    }
    rows.finish()
}

/// The status columns, row by row.
#[derive(Default)]
struct Rows {
    kind: Vec<&'static str>,
    table: Vec<String>,
    topic: Vec<String>,
    partition: Vec<i32>,
    offsets: [Vec<i64>; 3],
    counts: [Vec<u64>; 3],
}

impl Rows {
    fn push(
        &mut self,
        kind: &'static str,
        table: &str,
        topic: &str,
        partition: i32,
        offsets: [i64; 3],
        counts: [u64; 3],
    ) {
        self.kind.push(kind);
        self.table.push(table.to_owned());
        self.topic.push(topic.to_owned());
        self.partition.push(partition);
        for (column, v) in self.offsets.iter_mut().zip(offsets) {
            column.push(v);
        }
        for (column, v) in self.counts.iter_mut().zip(counts) {
            column.push(v);
        }
    }

    fn finish(self) -> RecordBatch {
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(self.kind)),
            Arc::new(StringArray::from(self.table)),
            Arc::new(StringArray::from(self.topic)),
            Arc::new(Int32Array::from(self.partition)),
        ];
        columns.extend(
            self.offsets
                .into_iter()
                .map(|c| Arc::new(Int64Array::from(c)) as ArrayRef),
        );
        columns.extend(
            self.counts
                .into_iter()
                .map(|c| Arc::new(UInt64Array::from(c)) as ArrayRef),
        );
        RecordBatch::try_new(status_schema(), columns)
            .expect("invariant: one column per field, of its type")
    }
}
