//! What a multithreaded writer reports: counters per thread and in total, and its errors.

use std::collections::VecDeque;
use std::fmt;

use crate::error::{Error, ErrorCode};

/// How many errors a writer keeps (the oldest go first; [`MultithreadedWriterStatus`] says
/// how many went).
pub const MAX_ERRORS: usize = 64;

/// One error a writer thread met: what a program decides on ([`code`](Self::code)), what a
/// person reads ([`message`](Self::message)), and where and how often it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ErrorRecord {
    /// The error's classification (see [`ErrorCode`] for every code).
    pub code: ErrorCode,
    /// The error's message.
    pub message: String,
    /// The writer thread that met it.
    pub thread: usize,
    /// The rows of the batch that failed.
    pub rows: u64,
    /// Whether the thread retried after it (a transient error with retries left); `false`
    /// for the error that made the thread give up.
    pub retried: bool,
}

impl ErrorRecord {
    pub(crate) fn new(e: &Error, thread: usize, rows: u64, retried: bool) -> Self {
        Self {
            code: e.code(),
            message: e.to_string(),
            thread,
            rows,
            retried,
        }
    }
}

impl fmt::Display for ErrorRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "thread {} ({} rows): {}: {}",
            self.thread, self.rows, self.code, self.message
        )
    }
}

/// One writer thread's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ThreadStatus {
    /// Rows routed to this thread (inserted, and handed back by `insert_unwritten`).
    pub routed_rows: u64,
    /// Rows published.
    pub sent_rows: u64,
    /// Rows buffered or being sent.
    pub unsent_rows: u64,
    /// Rows the thread failed to send and keeps.
    pub failed_rows: u64,
    /// Sends retried after a transient failure.
    pub retries: u64,
    /// The thread gave up and takes no more rows.
    pub is_exiting: bool,
    /// The error that made it give up, or its last retried one.
    pub error: Option<ErrorRecord>,
}

/// What a [`MultithreadedTableWriter`](crate::MultithreadedTableWriter) has done, in total
/// and per thread.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MultithreadedWriterStatus {
    /// Rows published.
    pub sent_rows: u64,
    /// Rows buffered or being sent.
    pub unsent_rows: u64,
    /// Rows that failed and are kept for
    /// [`unwritten_data`](crate::MultithreadedTableWriter::unwritten_data).
    pub failed_rows: u64,
    /// Sends retried after a transient failure, over all threads.
    pub retries: u64,
    /// Some thread gave up.
    pub is_exiting: bool,
    /// The errors met, oldest first: the last [`MAX_ERRORS`].
    pub errors: Vec<ErrorRecord>,
    /// Errors met before the oldest in `errors`, no longer kept.
    pub errors_dropped: u64,
    /// Per writer thread.
    pub threads: Vec<ThreadStatus>,
}

impl MultithreadedWriterStatus {
    /// Whether any error happened.
    pub fn has_error(&self) -> bool {
        !self.errors.is_empty() || self.errors_dropped > 0
    }

    /// The newest error, if any: the first to look at.
    pub fn last_error(&self) -> Option<&ErrorRecord> {
        self.errors.last()
    }
}

/// Why [`MultithreadedTableWriter::try_insert`](crate::MultithreadedTableWriter::try_insert)
/// did not take a row.
#[derive(Debug)]
#[non_exhaustive]
pub enum TryInsertError {
    /// The writer thread's buffer is full; the row was not taken (the caller still has it).
    Full,
    /// The row was refused (bad row, closed writer, failed thread).
    Refused(Error),
}

impl fmt::Display for TryInsertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full => f.write_str("the writer's buffer is full"),
            Self::Refused(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for TryInsertError {}

/// A writer's bounded log of errors. A leaf lock guards it.
#[derive(Debug, Default)]
pub(crate) struct ErrorLog {
    errors: VecDeque<ErrorRecord>,
    dropped: u64,
}

impl ErrorLog {
    pub(crate) fn push(&mut self, record: ErrorRecord) {
        if self.errors.len() == MAX_ERRORS {
            self.errors.pop_front();
            self.dropped += 1;
        }
        self.errors.push_back(record);
    }

    pub(crate) fn fill(&self, status: &mut MultithreadedWriterStatus) {
        status.errors = self.errors.iter().cloned().collect();
        status.errors_dropped = self.dropped;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(i: u64) -> ErrorRecord {
        ErrorRecord {
            code: ErrorCode::StagingFull,
            message: format!("e{i}"),
            thread: 0,
            rows: i,
            retried: true,
        }
    }

    #[test]
    fn smoke() {
        let mut log = ErrorLog::default();
        log.push(record(1));
        let mut s = MultithreadedWriterStatus::default();
        log.fill(&mut s);
        assert!(s.has_error());
        assert_eq!(s.last_error().map(|e| e.rows), Some(1));
    }

    #[test]
    fn the_log_keeps_the_newest_errors_and_counts_the_rest() {
        let mut log = ErrorLog::default();
        for i in 0..(MAX_ERRORS as u64 + 10) {
            log.push(record(i));
        }
        let mut s = MultithreadedWriterStatus::default();
        log.fill(&mut s);
        assert_eq!(s.errors.len(), MAX_ERRORS);
        assert_eq!(s.errors_dropped, 10);
        assert_eq!(s.errors[0].rows, 10);
        assert_eq!(s.last_error().map(|e| e.rows), Some(MAX_ERRORS as u64 + 9));
    }
}
