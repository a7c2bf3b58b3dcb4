//! Design notes: doc-only modules that explain how tickertable works and why.

pub mod architecture;
pub mod concurrency;
pub mod table_kinds;
