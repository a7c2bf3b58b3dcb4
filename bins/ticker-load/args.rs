//! Command-line arguments of `ticker-load`.

use std::path::PathBuf;

use clap::Parser;

/// Load CSV files into a tickertable table through the multithreaded writer.
#[derive(Debug, Parser)]
#[command(name = "ticker-load", version, about)]
pub(crate) struct Args {
    /// CSV files to load (read in parallel, one reader thread each).
    #[arg(required = true)]
    pub(crate) files: Vec<PathBuf>,
    /// The table to load into.
    #[arg(long)]
    pub(crate) table: String,
    /// The schema: `infer` (from the first lines) or `Name:type,...` with types bool, int8..int64,
    /// uint8..uint64, float32, float64, utf8, `timestamp_s|ms|us|ns`, date32.
    #[arg(long, default_value = "infer")]
    pub(crate) schema: String,
    /// The table kind for an embedded engine: `append`, `ring:N`, or `keyed:COLUMN[,COLUMN...]`
    /// (each line upserts its key; `keyed:Sym:N` keeps the N most recently written keys).
    #[arg(long, default_value = "append")]
    pub(crate) kind: String,
    /// Writer threads of the multithreaded writer.
    #[arg(long, default_value_t = 2)]
    pub(crate) threads: usize,
    /// Rows per batch sent by each writer thread.
    #[arg(long, default_value_t = 65_536)]
    pub(crate) batch: usize,
    /// Load into a running engine (`grpc://host:port`) instead of an embedded one; the table
    /// must exist there.
    #[arg(long)]
    pub(crate) server: Option<String>,
    /// The server's token.
    #[arg(long)]
    pub(crate) token: Option<String>,
    /// The files have no header line (columns are named c0, c1, ...).
    #[arg(long)]
    pub(crate) no_header: bool,
    /// Field delimiter.
    #[arg(long, default_value_t = ',')]
    pub(crate) delimiter: char,
    /// How many bad lines to print in the summary.
    #[arg(long, default_value_t = 10)]
    pub(crate) show_errors: usize,
    /// No progress bar.
    #[arg(long)]
    pub(crate) quiet: bool,
}
