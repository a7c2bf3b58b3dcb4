//! Command-line arguments of `ticker-load`.

use std::path::PathBuf;

use clap::Parser;

/// Load CSV files into a tickertable table, parsed into Arrow batches on several threads.
// Flags are bools: clap's way, not a state machine.
#[allow(clippy::struct_excessive_bools)]
#[derive(Debug, Parser)]
#[command(name = "ticker-load", version, about)]
pub(crate) struct Args {
    /// CSV files to load, one after another, each split into ranges parsed in parallel.
    #[arg(required_unless_present = "generate")]
    pub(crate) files: Vec<PathBuf>,
    /// The table to load into.
    #[arg(long, required_unless_present = "generate")]
    pub(crate) table: Option<String>,
    /// The schema: `infer` (arrow-csv infers it from the first `--infer-lines` lines of the
    /// first file) or `Name:type,...` with types bool, int8..int64, uint8..uint64, float32,
    /// float64, utf8, `timestamp_s|ms|us|ns`, date32. Served loads use the server's table.
    #[arg(long, default_value = "infer")]
    pub(crate) schema: String,
    /// How many data lines `--schema infer` reads.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) infer_lines: u64,
    /// The table kind for an embedded engine or `--create`: `append`, `blink`, `ring:N`, or
    /// `keyed:COLUMN[,COLUMN...]` (each batch upserts its keys; `keyed:Sym:N` keeps the N most
    /// recently written keys).
    #[arg(long, default_value = "append")]
    pub(crate) kind: String,
    /// Threads parsing ranges of the files (default: the number of cores).
    #[arg(long)]
    pub(crate) threads: Option<usize>,
    /// Most rows per batch published.
    #[arg(long, default_value_t = 65_536, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) batch: u64,
    /// Bytes per range a thread parses at once (ranges end at a line boundary).
    #[arg(long, default_value_t = 4 << 20, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) range_bytes: u64,
    /// Values that load as nulls, comma-separated, replacing the default list
    /// ``,NA,N/A,NULL,null,NaN`` (an empty item is the empty field). In float columns a marker
    /// that is a float literal (`NaN`) stays a value.
    #[arg(long, value_name = "A,B,...", allow_hyphen_values = true)]
    pub(crate) null_values: Option<String>,
    /// Quoted fields may hold line breaks: ranges are then split after a quote-aware scan of
    /// each file (slower). Without it a line break always ends a record.
    #[arg(long)]
    pub(crate) newlines_in_values: bool,
    /// Load into a running engine (`grpc://host:port`) instead of an embedded one; the table
    /// must exist there, and its schema is the one used.
    #[arg(long)]
    pub(crate) server: Option<String>,
    /// With --server: create the table first (`DoAction create_table`) from `--schema` (or the
    /// schema inferred from the first file) and `--kind`; a table that exists with the same
    /// schema and kind is used as it is, one that differs is refused.
    #[arg(long, requires = "server")]
    pub(crate) create: bool,
    /// About how many bytes of Arrow data one `DoPut` of a served load carries.
    #[arg(long, default_value_t = 16 << 20, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) put_bytes: u64,
    /// The server's token.
    #[arg(long)]
    pub(crate) token: Option<String>,
    /// The files have no header line (columns are named c0, c1, ...).
    #[arg(long)]
    pub(crate) no_header: bool,
    /// Field delimiter.
    #[arg(long, default_value_t = ',')]
    pub(crate) delimiter: char,
    /// How many bad lines to print in the summary (all are counted).
    #[arg(long, default_value_t = 10)]
    pub(crate) show_errors: usize,
    /// Also print where the time went: reading, splitting, parsing, publishing, cycles.
    #[arg(long)]
    pub(crate) timings: bool,
    /// No progress bar.
    #[arg(long)]
    pub(crate) quiet: bool,
    /// Write a trades CSV (`Ts,Sym,Price,Size`) of `--lines` lines to this file instead of
    /// loading anything.
    #[arg(long, value_name = "FILE", conflicts_with = "server")]
    pub(crate) generate: Option<PathBuf>,
    /// Data lines `--generate` writes.
    #[arg(long, default_value_t = 10_000_000, requires = "generate")]
    pub(crate) lines: u64,
}
