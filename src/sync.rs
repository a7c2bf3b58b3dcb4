//! The one place that names locks, condition variables and atomics.
//!
//! Everything in the crate takes its `Mutex`, `RwLock`, `Condvar` and atomics from here, so a
//! `--cfg loom` build can swap them for [loom]'s model-checked versions (see the model in
//! `publish/staging.rs`). The normal build uses `parking_lot`: no poisoning (a panic while a
//! guard is held does not make the lock unusable), eventual fairness, and small uncontended
//! fast paths, which matters because a `RowWriter` takes its own mutex once per row.
//!
//! arrow's std `Arc`/`ArrayRef` stay as they are: they are immutable data, not synchronisation.
//!
//! [loom]: https://docs.rs/loom

// Atomics and `Arc` are std's in both builds: the loom models cover the staging handoff,
// whose synchronisation is its mutex and condition variable.
pub(crate) use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
pub(crate) use std::sync::Weak;

#[cfg(not(loom))]
pub(crate) use parking_lot::{Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard};

#[cfg(loom)]
pub(crate) use loom_shim::{Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard};

/// parking_lot-shaped wrappers over loom's std-shaped primitives (no poisoning in the API).
#[cfg(loom)]
mod loom_shim {
    use std::time::{Duration, Instant};

    pub(crate) type MutexGuard<'a, T> = loom::sync::MutexGuard<'a, T>;
    pub(crate) type RwLockReadGuard<'a, T> = loom::sync::RwLockReadGuard<'a, T>;

    #[derive(Debug, Default)]
    pub(crate) struct Mutex<T>(loom::sync::Mutex<T>);

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Self {
            Self(loom::sync::Mutex::new(value))
        }

        pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
            self.0
                .lock()
                .expect("invariant: loom mutexes are not poisoned in models")
        }

        pub(crate) fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
            self.0.try_lock().ok()
        }
    }

    #[derive(Debug, Default)]
    pub(crate) struct RwLock<T>(loom::sync::RwLock<T>);

    impl<T> RwLock<T> {
        pub(crate) fn new(value: T) -> Self {
            Self(loom::sync::RwLock::new(value))
        }

        pub(crate) fn read(&self) -> RwLockReadGuard<'_, T> {
            self.0
                .read()
                .expect("invariant: loom locks are not poisoned in models")
        }

        pub(crate) fn write(&self) -> loom::sync::RwLockWriteGuard<'_, T> {
            self.0
                .write()
                .expect("invariant: loom locks are not poisoned in models")
        }
    }

    #[derive(Debug, Default)]
    pub(crate) struct Condvar(loom::sync::Condvar);

    impl Condvar {
        pub(crate) fn new() -> Self {
            Self(loom::sync::Condvar::new())
        }

        pub(crate) fn notify_all(&self) -> bool {
            self.0.notify_all();
            true
        }

        pub(crate) fn notify_one(&self) -> bool {
            self.0.notify_one();
            true
        }

        pub(crate) fn wait<T>(&self, guard: &mut MutexGuard<'_, T>) {
            // loom's wait consumes the guard; models only use the in-place form through
            // `replace_with`, which loom cannot express, so waiting is not modelled.
            let _ = guard;
            loom::thread::yield_now();
        }

        pub(crate) fn wait_until<T>(&self, guard: &mut MutexGuard<'_, T>, _deadline: Instant) {
            self.wait(guard);
        }

        pub(crate) fn wait_for<T>(&self, guard: &mut MutexGuard<'_, T>, _timeout: Duration) {
            self.wait(guard);
        }
    }
}
