//! Code the tickertable binaries share.
//!
//! - [`demo`]: the demo producers behind `ticker-demo` and `ticker-view --demo` (trades,
//!   quotes, a ring of recent trades, a trade history and a keyed book), and the count
//!   formatting both print with.
//! - [`flight_args`]: the token and TLS options of the servers and clients.
//! - [`types`]: column type names, as `ticker-load --schema` and `ticker-serve`'s config
//!   spell them.

pub mod demo;
pub mod flight_args;
pub mod types;
