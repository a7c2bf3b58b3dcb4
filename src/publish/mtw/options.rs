//! A multithreaded writer's options and flush modes.

use std::time::Duration;

/// When a [`MultithreadedTableWriter`](crate::MultithreadedTableWriter) sends buffered rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FlushMode {
    /// `insert` returns once the row's batch is published (staged for the next cycle, or
    /// accepted by the remote server), or failed.
    Sync,
    /// `insert` returns at once; batches go out by size and throttle (the default).
    #[default]
    Background,
    /// Only [`flush`](crate::MultithreadedTableWriter::flush) sends; a full buffer blocks
    /// `insert`.
    Manual,
}

/// Options of a [`MultithreadedTableWriter`](crate::MultithreadedTableWriter).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultithreadedWriterOptions {
    pub(crate) batch_size: usize,
    pub(crate) throttle: Duration,
    pub(crate) thread_count: usize,
    pub(crate) partition_column: Option<String>,
    pub(crate) flush_mode: FlushMode,
    pub(crate) max_buffered_rows: usize,
    pub(crate) max_buffered_bytes: usize,
    pub(crate) max_retries: u32,
    pub(crate) base_delay: Duration,
    pub(crate) max_delay: Duration,
}

impl Default for MultithreadedWriterOptions {
    fn default() -> Self {
        Self {
            batch_size: 10_000,
            throttle: Duration::from_millis(10),
            thread_count: 1,
            partition_column: None,
            flush_mode: FlushMode::Background,
            max_buffered_rows: 1 << 20,
            max_buffered_bytes: 256 << 20,
            max_retries: 8,
            base_delay: Duration::from_millis(20),
            max_delay: Duration::from_secs(2),
        }
    }
}

macro_rules! setter {
    ($(#[$doc:meta])* $setter:ident => $name:ident: $ty:ty) => {
        $(#[$doc])*
        #[must_use]
        pub fn $setter(mut self, value: $ty) -> Self {
            self.$name = value;
            self
        }
    };
}

impl MultithreadedWriterOptions {
    setter!(
        /// The most rows in one batch a writer thread sends (default 10,000): a batch is sent
        /// as soon as it has this many rows and never has more.
        with_batch_size => batch_size: usize
    );
    setter!(
        /// The longest a row waits in a partial batch (default 10 ms).
        with_throttle => throttle: Duration
    );
    setter!(
        /// Writer threads (default 1).
        with_thread_count => thread_count: usize
    );
    setter!(
        /// How `insert` and sending relate (default [`FlushMode::Background`]).
        with_flush_mode => flush_mode: FlushMode
    );
    setter!(
        /// Rows buffered per writer thread before `insert` waits (default 1Mi).
        with_max_buffered_rows => max_buffered_rows: usize
    );
    setter!(
        /// Estimated bytes buffered per writer thread before `insert` waits (default 256 MiB).
        with_max_buffered_bytes => max_buffered_bytes: usize
    );
    setter!(
        /// Retries of a transient failure before a thread gives up (default 8).
        with_max_retries => max_retries: u32
    );
    setter!(
        /// The first retry's delay (default 20 ms); it doubles per retry, with jitter.
        with_base_delay => base_delay: Duration
    );
    setter!(
        /// The longest delay between retries (default 2 s).
        with_max_delay => max_delay: Duration
    );

    /// Route rows by this column: rows with equal values go to the same writer thread, so
    /// their order is kept. Without it, each inserting thread's rows keep their order.
    #[must_use]
    pub fn with_partition_column(mut self, column: impl Into<String>) -> Self {
        self.partition_column = Some(column.into());
        self
    }
}
