//! One engine per data directory: the lock file `<data_dir>/.lock` (see the module docs of
//! [`crate::durable`], "One engine per directory").
//!
//! The file is made with `create_new` (`O_EXCL`), so of two engines starting at once exactly
//! one makes it. It holds `pid <pid>` and, where `/proc` tells it, `start <ticks>`: the
//! process's start time, so a pid reused by an unrelated process does not keep a stale lock
//! alive. Taking over a stale lock renames it aside, checks that what it renamed is the
//! stale file, and makes it anew with `create_new`: two engines taking over one stale lock
//! at once end with one holder.

use std::fs::{self, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The lock file's name in the data directory (a table's directory never starts with `.`).
pub(crate) const LOCK_FILE: &str = ".lock";

/// How many times a stale lock is taken over before giving up (another engine keeps making
/// and losing it).
const ATTEMPTS: usize = 8;

/// The data directory's lock, held while the engine lives; removed on drop.
#[derive(Debug)]
pub(crate) struct DirLock {
    path: PathBuf,
    /// What this engine wrote in it, so drop removes only its own file.
    contents: String,
}

/// Who holds a lock file, as read from it.
#[derive(Debug, PartialEq, Eq)]
struct Holder {
    pid: u32,
    start: Option<u64>,
}

impl Holder {
    fn parse(text: &str) -> Option<Self> {
        let mut pid = None;
        let mut start = None;
        for line in text.lines() {
            match line.split_once(' ') {
                Some(("pid", v)) => pid = v.trim().parse().ok(),
                Some(("start", v)) => start = v.trim().parse().ok(),
                _ => {}
            }
        }
        Some(Self { pid: pid?, start })
    }

    fn render(&self) -> String {
        match self.start {
            Some(s) => format!("pid {}\nstart {s}\n", self.pid),
            None => format!("pid {}\n", self.pid),
        }
    }
}

/// Process `pid`'s start time in clock ticks since boot (field 22 of `/proc/<pid>/stat`), or
/// `None` where `/proc` does not say; `Err` of `NotFound` if `/proc` has no such process or
/// only a zombie of it (it exited, and its parent has not reaped it yet).
fn start_time(pid: u32) -> io::Result<Option<u64>> {
    if !Path::new("/proc/self/stat").exists() {
        return Ok(None);
    }
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let mut fields = after.split_whitespace();
    // Field 3, the state: `Z` zombie, `X` dead.
    if matches!(fields.next(), Some("Z" | "X")) {
        return Err(io::ErrorKind::NotFound.into());
    }
    Ok(fields.nth(18).and_then(|v| v.parse().ok()))
}

/// Whether the holder recorded in a lock file still runs. Without `/proc`, it is taken to.
fn is_alive(holder: &Holder) -> bool {
    match start_time(holder.pid) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        Err(_) | Ok(None) => true,
        Ok(Some(now)) => holder.start.is_none_or(|then| then == now),
    }
}

/// Moves the stale lock file at `path` (which read `stale`) out of the way. It is renamed
/// first, one atomic step, and then checked: if what was renamed is not the stale file (an
/// engine took the lock over since it was read), it is linked back (`hard_link` fails rather
/// than replace a file made meanwhile) so that engine keeps its lock.
fn take_away(path: &Path, stale: &str) -> Result<()> {
    let aside = path.with_extension(format!("stale-{}", std::process::id()));
    match fs::rename(path, &aside) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e.into()),
    }
    if fs::read_to_string(&aside).is_ok_and(|t| t != stale) {
        let _ = fs::hard_link(&aside, path);
    }
    fs::remove_file(&aside)?;
    Ok(())
}

impl DirLock {
    /// Takes `dir`'s lock, taking over a stale one.
    ///
    /// # Errors
    ///
    /// [`Error::DataDirLocked`] if a live process (this one included) holds it,
    /// [`Error::Io`] if the file cannot be made or read.
    pub(crate) fn acquire(dir: &Path) -> Result<Self> {
        let path = dir.join(LOCK_FILE);
        let me = Holder {
            pid: std::process::id(),
            start: start_time(std::process::id()).ok().flatten(),
        };
        let contents = me.render();
        for _ in 0..ATTEMPTS {
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut file) => {
                    file.write_all(contents.as_bytes())?;
                    file.sync_all()?;
                    return Ok(Self { path, contents });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e.into()),
            }
            let text = match fs::read_to_string(&path) {
                Ok(t) => t,
                // Removed since: try again.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e.into()),
            };
            match Holder::parse(&text) {
                Some(holder) if is_alive(&holder) => {
                    return Err(Error::DataDirLocked {
                        dir: dir.display().to_string(),
                        pid: holder.pid,
                        lock_file: path.display().to_string(),
                    });
                }
                stale => {
                    tracing::warn!(
                        lock = %path.display(),
                        holder = ?stale.map(|h| h.pid),
                        "tickertable: taking over a stale data directory lock"
                    );
                    take_away(&path, &text)?;
                }
            }
        }
        Err(Error::Io(io::Error::other(format!(
            "{}: the lock file keeps being made and removed by other processes",
            path.display()
        ))))
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        // Only our own file: one taken over by another engine (after this one was thought
        // gone) stays.
        if fs::read_to_string(&self.path).is_ok_and(|t| t == self.contents) {
            let _ = fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_holder_reads_back_what_it_wrote() {
        let h = Holder {
            pid: 42,
            start: Some(7),
        };
        assert_eq!(Holder::parse(&h.render()), Some(h));
        assert_eq!(
            Holder::parse("pid 9\n"),
            Some(Holder {
                pid: 9,
                start: None
            })
        );
        assert_eq!(Holder::parse("garbage"), None);
    }

    #[test]
    fn this_process_is_alive_and_a_reused_pid_is_not() {
        let me = std::process::id();
        let start = start_time(me).unwrap();
        assert!(is_alive(&Holder { pid: me, start }));
        if let Some(s) = start {
            assert!(!is_alive(&Holder {
                pid: me,
                start: Some(s + 1)
            }));
        }
    }
}
