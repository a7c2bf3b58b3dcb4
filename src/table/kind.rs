//! Table kinds and the retention each one applies.

use std::fmt;

use crate::error::{Error, Result};

/// How a table retains rows; see the [module docs](crate::table#retention).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TableKind {
    /// Every row ever appended stays visible.
    Append,
    /// Only the rows of the latest cycle are visible.
    Blink,
    /// The newest `capacity` rows are visible.
    Ring {
        /// How many rows the ring keeps; at least 1.
        capacity: usize,
    },
    /// One row per key: writes upsert (insert or replace by key; a partial row keeps the
    /// other columns' values) and delete by key. Give the key columns with
    /// [`PublisherOptions::with_key`](crate::PublisherOptions::with_key) or
    /// [`DynamicWriterOptions::with_key`](crate::DynamicWriterOptions::with_key).
    ///
    /// Rows sit at positions `0..n` in slot order, not key order: a new key takes a deleted
    /// key's slot or the end, and deleting a key moves the last row into its slot, so the
    /// table shrinks at the end. Updates carry added, removed and modified rows; within one
    /// cycle the last write to a key wins. A cycle costs O(keys written), whatever the table's
    /// size, and deleted slots are reused at once, so churn does not grow memory.
    Keyed {
        /// Keep only the `capacity` most recently written keys (a ring and a key together);
        /// `None` keeps every key. At least 1.
        capacity: Option<usize>,
    },
}

impl TableKind {
    /// This kind if it is keyed (keeping its capacity), otherwise a keyed kind without one:
    /// what giving key columns makes of a table.
    pub(crate) fn keyed(self) -> Self {
        match self {
            TableKind::Keyed { .. } => self,
            _ => TableKind::Keyed { capacity: None },
        }
    }

    /// The kind's name as the wire and configs spell it: `append`, `blink`, `ring`, `keyed`.
    pub fn name(self) -> &'static str {
        match self {
            TableKind::Append => "append",
            TableKind::Blink => "blink",
            TableKind::Ring { .. } => "ring",
            TableKind::Keyed { .. } => "keyed",
        }
    }
}

impl fmt::Display for TableKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TableKind::Ring { capacity } => write!(f, "ring({capacity})"),
            TableKind::Keyed {
                capacity: Some(capacity),
            } => write!(f, "keyed({capacity})"),
            _ => f.write_str(self.name()),
        }
    }
}

/// The retention a table applies each cycle: its kind plus what derived tables add.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retention {
    Append { limit: Option<u64> },
    Blink { cap: Option<u64> },
    Ring { capacity: u64 },
    Keyed { capacity: Option<u64> },
}

impl Retention {
    pub(crate) fn for_kind(kind: TableKind) -> Result<Self> {
        Ok(match kind {
            TableKind::Append => Retention::Append { limit: None },
            TableKind::Blink => Retention::Blink { cap: None },
            TableKind::Ring { capacity } => {
                if capacity == 0 {
                    return Err(Error::InvalidOption {
                        option: "ring capacity",
                        reason: "must be at least 1".to_owned(),
                    });
                }
                Retention::Ring {
                    capacity: capacity as u64,
                }
            }
            TableKind::Keyed { capacity } => {
                if capacity == Some(0) {
                    return Err(Error::InvalidOption {
                        option: "keyed table capacity",
                        reason: "must be at least 1".to_owned(),
                    });
                }
                Retention::Keyed {
                    capacity: capacity.map(|c| c as u64),
                }
            }
        })
    }

    pub(crate) fn kind(self) -> TableKind {
        match self {
            Retention::Append { .. } => TableKind::Append,
            Retention::Blink { .. } => TableKind::Blink,
            Retention::Ring { capacity } => TableKind::Ring {
                capacity: usize::try_from(capacity).expect("invariant: capacity came from usize"),
            },
            Retention::Keyed { capacity } => TableKind::Keyed {
                capacity: capacity
                    .map(|c| usize::try_from(c).expect("invariant: capacity came from usize")),
            },
        }
    }

    /// The most rows the table holds: a ring's capacity, an append table's limit, a capped
    /// blink's cap, a keyed table's capacity.
    pub(crate) fn capacity(self) -> Option<usize> {
        let c = match self {
            Retention::Append { limit } => limit,
            Retention::Ring { capacity } => Some(capacity),
            Retention::Blink { cap } => cap,
            Retention::Keyed { capacity } => capacity,
        };
        c.map(|c| usize::try_from(c).unwrap_or(usize::MAX))
    }

    pub(crate) fn is_blink(self) -> bool {
        matches!(self, Retention::Blink { .. })
    }
}
