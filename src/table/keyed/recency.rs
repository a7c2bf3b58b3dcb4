//! The recency list of a keyed table with a capacity: its slots from the least to the most
//! recently written, as an intrusive doubly linked list over slot numbers.
//!
//! Every operation is O(1); memory is two `u32` per slot.

/// No slot: the end of the list.
const NIL: u32 = u32::MAX;

/// A slot as a list link.
///
/// # Panics
///
/// If the table holds 2^32 keys or more (see the key index).
fn link(slot: usize) -> u32 {
    u32::try_from(slot).expect("invariant: a keyed table holds fewer than 2^32 keys")
}

/// Slots from the least to the most recently written.
#[derive(Debug)]
pub(super) struct Recency {
    prev: Vec<u32>,
    next: Vec<u32>,
    /// The least recently written slot, or `NIL`.
    head: u32,
    /// The most recently written slot, or `NIL`.
    tail: u32,
}

impl Recency {
    /// An empty list.
    pub(super) fn new() -> Self {
        Self {
            prev: Vec::new(),
            next: Vec::new(),
            head: NIL,
            tail: NIL,
        }
    }

    /// Makes room for slots `0..len` (new slots are not linked yet) or drops the slots from
    /// `len` on (they must be unlinked).
    pub(super) fn resize(&mut self, len: usize) {
        self.prev.resize(len, NIL);
        self.next.resize(len, NIL);
    }

    /// The slots from the least recently written on. O(1) per slot.
    pub(super) fn oldest(&self) -> impl Iterator<Item = usize> + '_ {
        let mut s = self.head;
        std::iter::from_fn(move || {
            let at = (s != NIL).then_some(s as usize)?;
            s = self.next[at];
            Some(at)
        })
    }

    /// Takes slot `slot` out of the list.
    pub(super) fn unlink(&mut self, slot: usize) {
        let (p, n) = (self.prev[slot], self.next[slot]);
        if p == NIL {
            self.head = n;
        } else {
            self.next[p as usize] = n;
        }
        if n == NIL {
            self.tail = p;
        } else {
            self.prev[n as usize] = p;
        }
        self.prev[slot] = NIL;
        self.next[slot] = NIL;
    }

    /// Puts slot `to` (unlinked) where slot `from` is, and unlinks `from`: a row moving.
    pub(super) fn replace(&mut self, from: usize, to: usize) {
        let (p, n) = (self.prev[from], self.next[from]);
        let t = link(to);
        self.prev[to] = p;
        self.next[to] = n;
        if p == NIL {
            self.head = t;
        } else {
            self.next[p as usize] = t;
        }
        if n == NIL {
            self.tail = t;
        } else {
            self.prev[n as usize] = t;
        }
        self.prev[from] = NIL;
        self.next[from] = NIL;
    }

    /// Each of slots `0..len`'s place in the list (0 the least recently written): what a
    /// checkpoint keeps so that replay orders the slots again. O(len).
    pub(super) fn ranks(&self, len: usize) -> Vec<u32> {
        let mut ranks = vec![0; len];
        for (rank, slot) in self.oldest().enumerate() {
            ranks[slot] = link(rank);
        }
        ranks
    }

    /// The list of slots `0..order.len()`, `order` from the least recently written (a
    /// permutation of them, checked by the caller). O(len).
    pub(super) fn restore(&mut self, order: &[usize]) {
        self.prev.clear();
        self.next.clear();
        self.resize(order.len());
        self.head = NIL;
        self.tail = NIL;
        for &slot in order {
            self.push_newest(slot);
        }
    }

    /// Links slot `slot` (unlinked) as the most recently written.
    pub(super) fn push_newest(&mut self, slot: usize) {
        let s = link(slot);
        self.prev[slot] = self.tail;
        self.next[slot] = NIL;
        if self.tail == NIL {
            self.head = s;
        } else {
            self.next[self.tail as usize] = s;
        }
        self.tail = s;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(r: &Recency) -> Vec<usize> {
        r.oldest().collect()
    }

    #[test]
    fn smoke() {
        let mut r = Recency::new();
        r.resize(3);
        for s in [2, 0, 1] {
            r.push_newest(s);
        }
        assert_eq!(list(&r), vec![2, 0, 1]);
    }

    #[test]
    fn ranks_and_restore_give_the_same_list_back() {
        let mut r = Recency::new();
        r.resize(5);
        for s in [3, 0, 4, 1, 2] {
            r.push_newest(s);
        }
        r.unlink(4);
        r.push_newest(4);
        assert_eq!(r.ranks(5), vec![1, 2, 3, 0, 4]);
        let mut order = vec![0; 5];
        for (slot, &rank) in r.ranks(5).iter().enumerate() {
            order[rank as usize] = slot;
        }
        let mut back = Recency::new();
        back.restore(&order);
        assert_eq!(list(&back), list(&r));
        assert_eq!(list(&back), vec![3, 0, 1, 2, 4]);
    }

    #[test]
    fn unlink_and_replace_keep_the_order_of_the_others() {
        let mut r = Recency::new();
        r.resize(5);
        for s in 0..4 {
            r.push_newest(s);
        }
        r.unlink(0);
        r.unlink(3);
        assert_eq!(list(&r), vec![1, 2]);
        r.replace(2, 4);
        assert_eq!(list(&r), vec![1, 4]);
        r.replace(1, 0);
        r.push_newest(2);
        assert_eq!(list(&r), vec![0, 4, 2]);
        r.unlink(2);
        r.unlink(0);
        r.unlink(4);
        assert!(list(&r).is_empty());
        r.resize(1);
        r.push_newest(0);
        assert_eq!(list(&r), vec![0]);
    }
}
