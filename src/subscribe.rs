//! Consuming changes: listeners (push, on the cycle thread) and subscriptions (pull, queued).
//!
//! Every cycle that changes a table makes one [`TableUpdate`] for it. The cycle hands it to the
//! table's listeners, in registration order, then queues it (an `Arc`, never a copy) on every
//! subscription. Neither can stall the cycle: a listener that panics is removed, and a
//! subscription that falls behind gets [`Event::Lagged`] with a fresh snapshot.
//!
//! # Lagging
//!
//! The queue is bounded by a number of updates and a number of queued rows. When the cycle
//! would go past either bound, it never waits: it throws the queue away and leaves one
//! [`Event::Lagged`] carrying how many updates were missed and the table's snapshot at that
//! step. Updates after that snapshot follow it, so a subscriber that resets its mirror to the
//! snapshot is exact again. Memory per subscriber is bounded by the queue bounds plus one
//! snapshot (which shares its chunks with the table).
//!
//! # Closing
//!
//! When the table fails, the subscription yields [`Event::Failed`] and then ends. When the
//! table is closed or the engine shuts down, it ends after the queued events. Dropping a
//! [`Subscription`] unsubscribes.

pub(crate) mod listener;
pub(crate) mod queue;
pub(crate) mod registry;
pub(crate) mod subscription;
pub(crate) mod update;

pub use listener::{Listener, ListenerHandle, ListenerId};
pub use queue::{Event, RecvTimeoutError, SubscriptionOptions, TryRecvError};
pub use subscription::Subscription;
pub use update::TableUpdate;
