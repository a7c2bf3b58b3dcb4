//! Log segments mapped into memory for replay: the crate's one use of `unsafe`.
//!
//! Replaying an append table reads every byte of its log, and the table then holds every
//! row. Reading copies each record from the page cache into fresh memory (which must be
//! zeroed, and on a virtual machine first backed by the host); mapping the segment lets the
//! decoded arrays point at the page cache's own pages: no copy, no second copy of the log in
//! memory, and the pages stay clean and evictable (the kernel reads them back from the file
//! if it drops them). `durable/files.rs` reads records out of the mapping exactly as out of
//! the file, checksums included.
//!
//! # Why this is sound
//!
//! A mapping is only valid while nobody changes the file under it (a shrink makes pages past
//! the end raise `SIGBUS`; a write changes bytes Arrow has validated). tickertable never
//! does either to a segment it maps:
//!
//! - a segment is written only by the engine that created it (`create_new`), and replay maps
//!   only the segments that exist before the engine starts the new segment it writes to;
//! - a history table (`durable/history.rs`) maps a durable blink table's segments, the newest
//!   one still being appended to, but only up to the end of records it has read whole and
//!   checked: the writer only ever appends past them;
//! - the one engine per directory rule (`durable/lock.rs`) keeps other engines off;
//! - replay shrinks a segment only to cut a torn or corrupt tail, at the first bad record:
//!   every record it decoded lies before the cut, so no page anything points into goes;
//! - deleting (a checkpoint, `drop_table`) unlinks the file, which leaves a mapping intact
//!   (the disk space is freed when the last array pointing into it is dropped); append and
//!   blink tables, the only ones mapped, are never checkpointed.
//!
//! A mapped page the kernel dropped is read back from the file when touched; if the disk
//! fails that read, the access raises `SIGBUS` instead of returning an error (the price of
//! reading in place; data directories belong on local disks).
//!
//! What it cannot rule out is another program, or a person, truncating or rewriting a
//! segment of a running engine's directory: that raises `SIGBUS` or changes rows under the
//! table. The module docs of [`durable`](crate::durable) say so.

use std::fs::File;
use std::io;
use std::ptr::NonNull;
use std::sync::Arc;

use arrow_buffer::Buffer;

/// Maps the first `len` bytes of `file` read-only (faulted in up front, one pass) as one
/// Arrow [`Buffer`] that owns the mapping: slices of it keep the mapping alive. `None` for an
/// empty file, which cannot be mapped.
///
/// # Errors
///
/// If the kernel refuses the mapping; the caller reads the file instead.
pub(crate) fn map(file: &File, len: u64) -> io::Result<Option<Buffer>> {
    let len = usize::try_from(len).map_err(|_| io::ErrorKind::InvalidInput)?;
    if len == 0 {
        return Ok(None);
    }
    // SAFETY: a read-only mapping of `len` bytes of a segment file, which nothing
    // writes or shrinks below what is read of it while the mapping lives (the module docs
    // list why). `populate` only faults the pages in.
    let mapping = unsafe { memmap2::MmapOptions::new().len(len).populate().map(file)? };
    let ptr = NonNull::new(mapping.as_ptr().cast_mut())
        .expect("invariant: a successful mapping is not at address 0");
    // SAFETY: `ptr` points at `mapping.len()` initialised, immutable bytes that stay valid
    // for as long as `mapping` lives, and the buffer owns `mapping` (dropped with its last
    // slice).
    let buffer = unsafe { Buffer::from_custom_allocation(ptr, mapping.len(), Arc::new(mapping)) };
    Ok(Some(buffer))
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    /// The mapping reads the file's bytes, slices of it outlive the file's handle and its
    /// name, and an empty file is not mapped.
    #[test]
    fn a_mapping_reads_the_file_and_outlives_it() {
        let dir = std::env::temp_dir().join(format!("tickertable-mapped-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("test dir");
        let path = dir.join("segment");
        let bytes: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::File::create(&path)
            .and_then(|mut f| f.write_all(&bytes))
            .expect("write");
        let file = File::open(&path).expect("open");
        let mapped = map(&file, bytes.len() as u64)
            .expect("map")
            .expect("not empty");
        assert_eq!(mapped.as_slice(), &bytes[..]);
        let tail = mapped.slice_with_length(65_536, 4_464);
        drop((mapped, file));
        std::fs::remove_dir_all(&dir).expect("cleanup");
        assert_eq!(tail.as_slice(), &bytes[65_536..]);

        std::fs::create_dir_all(&dir).expect("test dir");
        let empty = dir.join("empty");
        std::fs::File::create(&empty).expect("create");
        let file = File::open(&empty).expect("open");
        assert!(map(&file, 0).expect("no error").is_none());
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
