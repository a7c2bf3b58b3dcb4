//! `--generate`: writes the trades CSV the load is measured on (`Ts,Sym,Price,Size`).
//!
//! `Ts` counts nanoseconds up from 2023-11-14 in steps of 1 µs, `Sym` is one of 100 symbols
//! (`S00`..`S99`), `Price` a random walk with two decimals, `Size` 1..=1000. The same
//! `--lines` always give the same file; 10,000,000 lines are about 350 MB.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::{Context, Result};

/// Writes `lines` data lines (and the header) to `path`; returns the bytes written.
///
/// # Errors
///
/// If the file cannot be created or written.
pub(crate) fn trades(path: &Path, lines: u64) -> Result<u64> {
    let file = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let header = b"Ts,Sym,Price,Size\n";
    out.write_all(header)?;
    let mut written = header.len() as u64;
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut prices = [10_000_i64; 100];
    let mut line = Vec::with_capacity(64);
    for i in 0..lines {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let sym = (seed % 100) as usize;
        // A step of -5..=5 cents, kept above one dollar.
        let step = i64::try_from((seed >> 8) % 11).unwrap_or(0) - 5;
        prices[sym] = (prices[sym] + step).max(100);
        let size = (seed >> 20) % 1000 + 1;
        let cents = prices[sym];
        line.clear();
        writeln!(
            line,
            "{},S{sym:02},{}.{:02},{size}",
            1_700_000_000_000_000_000_u64 + i * 1000,
            cents / 100,
            cents % 100
        )?;
        out.write_all(&line)?;
        written += line.len() as u64;
    }
    out.flush()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(written)
}
