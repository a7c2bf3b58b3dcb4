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
pub(crate) use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};

// The loom shim exists only in the crate's own test build: `--cfg loom` also reaches the
// library built as a dependency (the `test-util` dev-dependency on this crate, the binaries),
// which has no `loom` crate, so those builds keep parking_lot.
#[cfg(not(all(loom, test)))]
pub(crate) use parking_lot::{
    Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockUpgradableReadGuard,
    RwLockWriteGuard,
};

#[cfg(all(loom, test))]
pub(crate) use loom_shim::{
    Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockUpgradableReadGuard,
    RwLockWriteGuard,
};

/// Gives up the exclusive side of `guard` but keeps out every other writer: readers may take
/// the shared side meanwhile (`parking_lot`'s upgradable read). The cycle holds this while it
/// waits for a durable log's fsync.
#[cfg(not(all(loom, test)))]
pub(crate) fn downgrade_to_upgradable<T>(
    guard: RwLockWriteGuard<'_, T>,
) -> RwLockUpgradableReadGuard<'_, T> {
    RwLockWriteGuard::downgrade_to_upgradable(guard)
}

/// Takes the exclusive side back, waiting for the readers that came in meanwhile.
#[cfg(not(all(loom, test)))]
pub(crate) fn upgrade<T>(guard: RwLockUpgradableReadGuard<'_, T>) -> RwLockWriteGuard<'_, T> {
    RwLockUpgradableReadGuard::upgrade(guard)
}

/// loom has no upgradable reads: the model keeps the exclusive side throughout.
#[cfg(all(loom, test))]
pub(crate) fn downgrade_to_upgradable<T>(
    guard: RwLockWriteGuard<'_, T>,
) -> RwLockUpgradableReadGuard<'_, T> {
    guard
}

/// As [`downgrade_to_upgradable`]: the model's guard is exclusive already.
#[cfg(all(loom, test))]
pub(crate) fn upgrade<T>(guard: RwLockUpgradableReadGuard<'_, T>) -> RwLockWriteGuard<'_, T> {
    guard
}

/// parking_lot-shaped wrappers over loom's std-shaped primitives: no poisoning in the API,
/// and condition variables that wait on a `&mut` guard in place.
#[cfg(all(loom, test))]
mod loom_shim {
    use std::fmt;
    use std::ops::{Deref, DerefMut};
    use std::time::{Duration, Instant};

    pub(crate) type RwLockReadGuard<'a, T> = loom::sync::RwLockReadGuard<'a, T>;
    pub(crate) type RwLockWriteGuard<'a, T> = loom::sync::RwLockWriteGuard<'a, T>;
    pub(crate) type RwLockUpgradableReadGuard<'a, T> = RwLockWriteGuard<'a, T>;

    const NOT_POISONED: &str = "invariant: loom locks are not poisoned in models";

    #[derive(Debug, Default)]
    pub(crate) struct Mutex<T>(loom::sync::Mutex<T>);

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Self {
            Self(loom::sync::Mutex::new(value))
        }

        pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
            MutexGuard {
                inner: Some(self.0.lock().expect(NOT_POISONED)),
            }
        }

        pub(crate) fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
            self.0
                .try_lock()
                .ok()
                .map(|g| MutexGuard { inner: Some(g) })
        }

        pub(crate) fn get_mut(&mut self) -> &mut T {
            self.0.get_mut().expect(NOT_POISONED)
        }
    }

    /// A held lock. The loom guard inside is taken out only for the length of a
    /// [`Condvar`] wait, which holds the `&mut` to this guard throughout.
    pub(crate) struct MutexGuard<'a, T> {
        inner: Option<loom::sync::MutexGuard<'a, T>>,
    }

    const HELD: &str = "invariant: a guard holds its lock outside a condvar wait";

    impl<T> Deref for MutexGuard<'_, T> {
        type Target = T;

        fn deref(&self) -> &T {
            self.inner.as_deref().expect(HELD)
        }
    }

    impl<T> DerefMut for MutexGuard<'_, T> {
        fn deref_mut(&mut self) -> &mut T {
            self.inner.as_deref_mut().expect(HELD)
        }
    }

    impl<T: fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            fmt::Debug::fmt(&**self, f)
        }
    }

    #[derive(Debug, Default)]
    pub(crate) struct RwLock<T>(loom::sync::RwLock<T>);

    impl<T> RwLock<T> {
        pub(crate) fn new(value: T) -> Self {
            Self(loom::sync::RwLock::new(value))
        }

        pub(crate) fn read(&self) -> RwLockReadGuard<'_, T> {
            self.0.read().expect(NOT_POISONED)
        }

        pub(crate) fn read_recursive(&self) -> RwLockReadGuard<'_, T> {
            self.read()
        }

        pub(crate) fn write(&self) -> RwLockWriteGuard<'_, T> {
            self.0.write().expect(NOT_POISONED)
        }
    }

    /// Whether a timed wait timed out (parking_lot's shape).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) struct WaitTimeoutResult(bool);

    impl WaitTimeoutResult {
        #[allow(dead_code, reason = "parking_lot's API, for callers that ask")]
        pub(crate) fn timed_out(self) -> bool {
            self.0
        }
    }

    #[derive(Debug, Default)]
    pub(crate) struct Condvar(loom::sync::Condvar);

    impl Condvar {
        pub(crate) fn new() -> Self {
            Self(loom::sync::Condvar::new())
        }

        /// loom does not count waiters: reports one woken thread, as a hint only.
        pub(crate) fn notify_one(&self) -> bool {
            self.0.notify_one();
            true
        }

        /// loom does not count waiters: reports none, as a hint only.
        pub(crate) fn notify_all(&self) -> usize {
            self.0.notify_all();
            0
        }

        /// Releases the lock, waits for a notification, and takes the lock again.
        pub(crate) fn wait<T>(&self, guard: &mut MutexGuard<'_, T>) {
            let held = guard.inner.take().expect(HELD);
            guard.inner = Some(self.0.wait(held).expect(NOT_POISONED));
        }

        /// Modelled as [`wait`](Self::wait), as loom's own `wait_timeout` is: a model never
        /// times out, so a lost wake-up shows as a deadlock instead of as a delay.
        pub(crate) fn wait_until<T>(
            &self,
            guard: &mut MutexGuard<'_, T>,
            _deadline: Instant,
        ) -> WaitTimeoutResult {
            self.wait(guard);
            WaitTimeoutResult(false)
        }

        /// As [`wait_until`](Self::wait_until).
        pub(crate) fn wait_for<T>(
            &self,
            guard: &mut MutexGuard<'_, T>,
            _timeout: Duration,
        ) -> WaitTimeoutResult {
            self.wait(guard);
            WaitTimeoutResult(false)
        }
    }
}
