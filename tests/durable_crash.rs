//! Durable tables survive SIGKILL: a real child process writes through several writer threads
//! with `SyncPolicy::EveryCycle` and prints every range of positions a listener saw; the
//! parent kills it with SIGKILL at random moments, replays the directory and checks that every
//! acknowledged row is there exactly once, in order, and that nothing never written is.
//!
//! The child is this test binary run again with [`CHILD_ENV`] set, running only
//! [`child_process_writes_until_killed`] (a no-op without the variable).

#![allow(
    clippy::unwrap_used,
    reason = "a test's helpers panic on the unexpected, as its #[test] fns do"
)]

use std::collections::HashMap;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use arrow_array::{Array, Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use parking_lot::Mutex;
use tickertable::{
    DynamicTableWriter, DynamicWriterOptions, Engine, ErrorCode, SyncPolicy, TableUpdate, Value,
};

/// Set in the child's environment: the data directory it writes to.
const CHILD_ENV: &str = "TICKERTABLE_DURABLE_CRASH_CHILD";
/// Writer threads in the child.
const WRITERS: i64 = 3;
/// A hang guard: the child stops by itself after this many cycles.
const MAX_CHILD_CYCLES: u64 = 200_000;
/// Rows a writer stages before it waits for a cycle to take them.
const BURST: usize = 100;
/// Small segments, so that kills also land around segment rotation.
const SEGMENT_BYTES: u64 = 16 << 10;

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("W", DataType::Int64, false),
        Field::new("Seq", DataType::Int64, false),
        Field::new("Check", DataType::Int64, false),
    ]))
}

/// The value a row of writer `w` with sequence number `seq` carries in `Check`.
fn check(w: i64, seq: i64) -> i64 {
    w.wrapping_mul(1_000_003)
        .wrapping_add(seq.wrapping_mul(7_919))
        .wrapping_add(1)
}

fn column(b: &RecordBatch, i: usize) -> &Int64Array {
    b.column(i).as_any().downcast_ref::<Int64Array>().unwrap()
}

fn open(dir: &Path) -> (Engine, DynamicTableWriter) {
    let engine = Engine::builder()
        .manual()
        .data_dir(dir)
        .sync_policy(SyncPolicy::EveryCycle)
        .log_segment_bytes(SEGMENT_BYTES)
        .build()
        .unwrap();
    let dtw = engine
        .dynamic_table_writer("crash", schema(), DynamicWriterOptions::default().durable())
        .unwrap();
    (engine, dtw)
}

/// Every row of the table, in position order, as `(w, seq, check)`.
fn rows(dtw: &DynamicTableWriter) -> (std::ops::Range<u64>, Vec<(i64, i64, i64)>) {
    let s = dtw.table().snapshot();
    let mut out = Vec::with_capacity(s.num_rows());
    for b in s.batches() {
        let (w, seq, c) = (column(b, 0), column(b, 1), column(b, 2));
        for i in 0..b.num_rows() {
            out.push((w.value(i), seq.value(i), c.value(i)));
        }
    }
    (s.rows(), out)
}

/// The child: replays, then writes from `WRITERS` threads while its main thread runs cycles
/// and prints `ack <start> <end> <sum of Check>` for each range a listener saw.
#[test]
fn child_process_writes_until_killed() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let (engine, dtw) = open(Path::new(&dir));
    let (_, replayed) = rows(&dtw);
    let mut next: HashMap<i64, i64> = HashMap::new();
    for &(w, seq, _) in &replayed {
        next.insert(w, seq + 1);
    }
    let seen: Arc<Mutex<Vec<(u64, u64, i64)>>> = Arc::default();
    let sink = seen.clone();
    let _listener = dtw
        .table()
        .listen(move |u: &TableUpdate| {
            let sum = u
                .batches()
                .iter()
                .flat_map(|b| column(b, 2).values().iter().copied())
                .fold(0i64, i64::wrapping_add);
            sink.lock().push((u.added().start, u.added().end, sum));
        })
        .unwrap();
    for w in 0..WRITERS {
        let mut writer = dtw.row_writer().unwrap();
        let mut seq = next.get(&w).copied().unwrap_or(0);
        std::thread::spawn(move || loop {
            // A bounded burst per cycle keeps each round's log small (the test is about
            // where the kill lands, not about volume).
            if writer.staged_rows() >= BURST {
                std::thread::yield_now();
                continue;
            }
            match writer.write_row(&[Value::from(w), Value::from(seq), Value::from(check(w, seq))])
            {
                Ok(()) => seq += 1,
                Err(e) if e.code() == ErrorCode::StagingFull => std::thread::yield_now(),
                Err(_) => return, // the engine is going away
            }
        });
    }
    let stdout = std::io::stdout();
    for _ in 0..MAX_CHILD_CYCLES {
        engine.run_cycle();
        let acks = std::mem::take(&mut *seen.lock());
        let mut out = stdout.lock();
        for (start, end, sum) in acks {
            // One write per line: a kill never leaves half an acknowledgement behind.
            out.write_all(format!("ack {start} {end} {sum}\n").as_bytes())
                .unwrap();
        }
        out.flush().unwrap();
    }
}

/// A small deterministic generator (xorshift64*), so a failing round can be rerun.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

fn spawn_child(dir: &Path) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_process_writes_until_killed",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Runs a child until it has printed `kill_after` acknowledgements, kills it with SIGKILL,
/// and returns every acknowledgement it printed (those after `kill_after` too: they were
/// written before the kill).
fn run_and_kill(dir: &Path, kill_after: u64) -> Vec<(u64, u64, i64)> {
    let mut child = spawn_child(dir);
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut acks = Vec::new();
    let parse = |line: &str| -> Option<(u64, u64, i64)> {
        let mut f = line.strip_prefix("ack ")?.split(' ');
        Some((
            f.next()?.parse().ok()?,
            f.next()?.parse().ok()?,
            f.next()?.parse().ok()?,
        ))
    };
    for line in lines.by_ref() {
        if let Some(a) = parse(&line.unwrap()) {
            acks.push(a);
            if acks.len() as u64 >= kill_after {
                break;
            }
        }
    }
    // std's `Child::kill` is SIGKILL on Unix: no destructor, no final cycle, no flush.
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "the child was killed, not finished");
    for line in lines {
        let Ok(line) = line else { break };
        if let Some(a) = parse(&line) {
            acks.push(a);
        }
    }
    acks
}

/// Replays `dir` and checks it against every acknowledgement so far.
fn verify(dir: &Path, acks: &[(u64, u64, i64)]) -> u64 {
    let (engine, dtw) = open(dir);
    let (range, rows) = rows(&dtw);
    assert_eq!(range.start, 0, "an append table keeps every row");
    assert_eq!(range.end, rows.len() as u64);
    let acked_end = acks.iter().map(|a| a.1).max().unwrap_or(0);
    assert!(
        range.end >= acked_end,
        "acknowledged up to position {acked_end}, replayed {range:?}"
    );
    for &(start, end, sum) in acks {
        let got = rows[usize::try_from(start).unwrap()..usize::try_from(end).unwrap()]
            .iter()
            .fold(0i64, |s, r| s.wrapping_add(r.2));
        assert_eq!(got, sum, "the rows acknowledged at {start}..{end} changed");
    }
    // Exactly once and in order: each writer's sequence numbers run 0, 1, 2, ... with no
    // gap and no repeat; and every row is one a writer wrote.
    let mut next: HashMap<i64, i64> = HashMap::new();
    for (pos, &(w, seq, c)) in rows.iter().enumerate() {
        assert!((0..WRITERS).contains(&w), "position {pos}: writer {w}");
        let expected = next.entry(w).or_insert(0);
        assert_eq!(
            seq, *expected,
            "position {pos}: writer {w}'s rows out of order"
        );
        assert_eq!(c, check(w, seq), "position {pos}: a row never written");
        *expected += 1;
    }
    let report = engine.replay_report("crash").unwrap();
    assert_eq!(report.rows + report.checkpoint_rows, range.end);
    if let Some(c) = &report.corruption {
        eprintln!("replay truncated {} bytes: {c}", report.truncated_bytes);
    }
    drop(engine);
    range.end
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn temp_dir(tag: &str) -> TempDir {
    let p = std::env::temp_dir().join(format!("tickertable-{tag}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&p);
    fs::create_dir_all(&p).unwrap();
    TempDir(p)
}

#[test]
fn smoke() {
    let dir = temp_dir("crash-smoke");
    let acks = run_and_kill(&dir.0, 1);
    assert!(!acks.is_empty());
    assert!(verify(&dir.0, &acks) >= acks[0].1);
}

#[test]
fn sigkill_at_random_moments_loses_no_acknowledged_row_and_replays_nothing_corrupt() {
    const ROUNDS: usize = 6;
    let dir = temp_dir("crash-rounds");
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut acks = Vec::new();
    let mut ends = Vec::new();
    for _ in 0..ROUNDS {
        let kill_after = 1 + rng.below(60);
        acks.extend(run_and_kill(&dir.0, kill_after));
        ends.push(verify(&dir.0, &acks));
        eprintln!(
            "killed after {kill_after} acknowledgements: {} rows replayed",
            ends[ends.len() - 1]
        );
    }
    assert!(
        ends.windows(2).all(|w| w[0] <= w[1]),
        "rows replayed per round never go back: {ends:?}"
    );
    assert!(ends.last().copied().unwrap_or(0) > 0);
}
