//! Fair stream limits: each connection has its own share of live streams and of snapshot
//! streams, and snapshots have their own budget, so one client holding many live streams can
//! neither lock others out nor make their snapshots fail.
//!
//! A permit counts one open `DoGet` against the server's totals and its connection's; it is
//! given back when the stream ends or is dropped. A live stream whose client has stopped
//! reading (its queue holds events nobody took for the stall timeout of
//! [`FlightOptions`](crate::flight::FlightOptions)) is ended by the server, which gives its
//! permit back at once.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::sync::Mutex;

/// Which budget a stream counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StreamKind {
    Live,
    Snapshot,
}

/// The limits of one kind of stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Budget {
    pub(crate) total: usize,
    pub(crate) per_peer: usize,
}

#[derive(Debug, Default)]
struct Counts {
    live: usize,
    snapshot: usize,
}

impl Counts {
    fn of(&mut self, kind: StreamKind) -> &mut usize {
        match kind {
            StreamKind::Live => &mut self.live,
            StreamKind::Snapshot => &mut self.snapshot,
        }
    }
}

/// Open streams, in total and per connection. A leaf lock.
#[derive(Debug)]
pub(crate) struct StreamLimits {
    live: Budget,
    snapshot: Budget,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    total: Counts,
    peers: HashMap<Option<SocketAddr>, Counts>,
}

/// Why a stream was refused: which limit it hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    Total(usize),
    Peer(usize),
}

impl StreamLimits {
    pub(crate) fn new(live: Budget, snapshot: Budget) -> Self {
        Self {
            live,
            snapshot,
            state: Mutex::new(State::default()),
        }
    }

    fn budget(&self, kind: StreamKind) -> Budget {
        match kind {
            StreamKind::Live => self.live,
            StreamKind::Snapshot => self.snapshot,
        }
    }

    /// A permit for one more stream of `kind` from `peer`, if both limits have room.
    pub(crate) fn acquire(
        self: &Arc<Self>,
        peer: Option<SocketAddr>,
        kind: StreamKind,
    ) -> Result<StreamPermit, Refusal> {
        let budget = self.budget(kind);
        let mut st = self.state.lock();
        if *st.total.of(kind) >= budget.total {
            return Err(Refusal::Total(budget.total));
        }
        let mine = st.peers.entry(peer).or_default();
        if *mine.of(kind) >= budget.per_peer {
            return Err(Refusal::Peer(budget.per_peer));
        }
        *mine.of(kind) += 1;
        *st.total.of(kind) += 1;
        Ok(StreamPermit {
            limits: self.clone(),
            peer,
            kind,
        })
    }

    fn release(&self, peer: Option<SocketAddr>, kind: StreamKind) {
        let mut st = self.state.lock();
        *st.total.of(kind) -= 1;
        if let Some(c) = st.peers.get_mut(&peer) {
            *c.of(kind) -= 1;
            if c.live == 0 && c.snapshot == 0 {
                st.peers.remove(&peer);
            }
        }
    }

    /// Streams of `kind` open now.
    #[cfg(test)]
    pub(crate) fn open(&self, kind: StreamKind) -> usize {
        *self.state.lock().total.of(kind)
    }
}

/// One open stream's place; given back on drop.
#[derive(Debug)]
pub(crate) struct StreamPermit {
    limits: Arc<StreamLimits>,
    peer: Option<SocketAddr>,
    kind: StreamKind,
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        self.limits.release(self.peer, self.kind);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Arc<StreamLimits> {
        Arc::new(StreamLimits::new(
            Budget {
                total: 3,
                per_peer: 2,
            },
            Budget {
                total: 2,
                per_peer: 1,
            },
        ))
    }

    #[allow(clippy::unnecessary_wraps)] // the shape `remote_addr()` gives
    fn peer(port: u16) -> Option<SocketAddr> {
        Some(SocketAddr::from(([127, 0, 0, 1], port)))
    }

    #[test]
    fn smoke() {
        let l = limits();
        let p = l.acquire(peer(1), StreamKind::Live).unwrap();
        assert_eq!(l.open(StreamKind::Live), 1);
        drop(p);
        assert_eq!(l.open(StreamKind::Live), 0);
    }

    #[test]
    fn a_connection_at_its_share_leaves_room_for_others_and_for_snapshots() {
        let l = limits();
        let _a = l.acquire(peer(1), StreamKind::Live).unwrap();
        let _b = l.acquire(peer(1), StreamKind::Live).unwrap();
        assert_eq!(
            l.acquire(peer(1), StreamKind::Live).unwrap_err(),
            Refusal::Peer(2)
        );
        let _c = l.acquire(peer(2), StreamKind::Live).unwrap();
        assert_eq!(
            l.acquire(peer(3), StreamKind::Live).unwrap_err(),
            Refusal::Total(3)
        );
        let _s = l.acquire(peer(1), StreamKind::Snapshot).unwrap();
        assert_eq!(
            l.acquire(peer(1), StreamKind::Snapshot).unwrap_err(),
            Refusal::Peer(1)
        );
        assert!(l.acquire(peer(3), StreamKind::Snapshot).is_ok());
    }
}
