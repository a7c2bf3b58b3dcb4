//! Steps: the number of a cycle.

use std::fmt;

/// The number of a cycle. Step 0 is the engine before its first cycle; each cycle advances the
/// step by one, whether or not anything changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Step(pub(crate) u64);

impl Step {
    /// The step numbered `n`.
    pub const fn new(n: u64) -> Self {
        Self(n)
    }

    /// The step as a number.
    pub const fn as_u64(self) -> u64 {
        self.0
    }

    /// The step after this one.
    #[must_use]
    pub const fn next(self) -> Self {
        Self(self.0 + 1)
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}
