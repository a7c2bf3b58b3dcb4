//! What a data directory holds: the durable tables logged in it, read from the header of each
//! table's newest segment (its kind, key and schema), so a server can create them again at
//! start without being told.

use std::fs;
use std::path::Path;

use arrow_schema::SchemaRef;

use crate::durable::files::{self, SegmentReader};
use crate::durable::format::{Kind, SegmentHeader, Shape};
use crate::error::Result;

/// One table found in a data directory.
pub(crate) struct Logged {
    pub(crate) name: String,
    pub(crate) schema: SchemaRef,
    pub(crate) shape: Shape,
}

/// A table directory left out of [`list`]: the table's name and why.
pub(crate) type Skipped = (String, String);

/// The tables logged under `dir`, by name. A table directory without a readable segment
/// header (a crash before its first segment was written, a corrupt header) is left out and
/// returned in the second list with the reason: replaying it when it is created says more.
///
/// # Errors
///
/// [`Error::Io`](crate::Error::Io) if `dir` cannot be listed.
pub(crate) fn list(dir: &Path) -> Result<(Vec<Logged>, Vec<Skipped>)> {
    let mut found = Vec::new();
    let mut skipped = Vec::new();
    let mut entries: Vec<_> = fs::read_dir(dir)?.collect::<std::io::Result<_>>()?;
    entries.sort_by_key(fs::DirEntry::file_name);
    for entry in entries {
        let Some(dir_name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        // The lock file, dropped tables set aside, anything not a table's directory.
        if dir_name.starts_with('.') || !entry.file_type()?.is_dir() {
            continue;
        }
        let Some(name) = files::table_name(&dir_name) else {
            continue;
        };
        match header(&entry.path()) {
            Ok(h) => found.push(Logged {
                name,
                schema: h.schema,
                shape: h.shape,
            }),
            Err(reason) => skipped.push((name, reason)),
        }
    }
    Ok((found, skipped))
}

/// The header of the newest segment in table directory `dir`.
fn header(dir: &Path) -> Result<SegmentHeader, String> {
    let segments = files::segments(dir).map_err(|e| e.to_string())?;
    let (_, path) = segments.last().ok_or("no log segment")?;
    let mut reader = SegmentReader::open(path).map_err(|e| e.to_string())?;
    let mut scratch = Vec::new();
    match reader.next(true, &mut scratch) {
        Ok(Ok(Some(rec))) if rec.frame.kind == Kind::Segment => SegmentHeader::decode(rec.payload),
        Ok(Ok(_)) => Err(format!("{} does not start with a header", path.display())),
        Ok(Err(bad)) => Err(format!("{}: {}", path.display(), bad.reason)),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}
