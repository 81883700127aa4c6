//! A bounded set of recently seen identifiers (DPoP proof `jti`s, SET `jti`s).

use std::collections::{BTreeSet, HashMap};

use crate::secret::{Fingerprint, FingerprintBuild};

/// Seen identifiers with their expiry, indexed by expiry: entries may have different lifetimes
/// (a DPoP proof's window starts at its own `iat`), and every expired one is reclaimed.
#[derive(Debug)]
pub(crate) struct ReplaySet {
    seen: HashMap<Fingerprint, u64, FingerprintBuild>,
    order: BTreeSet<(u64, Fingerprint)>,
    max: usize,
}

/// Outcome of [`ReplaySet::insert`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Seen {
    New,
    Replay,
    /// Full of unexpired entries: refusing is the safe answer (a dropped entry would let a replay
    /// through).
    Full,
}

impl ReplaySet {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            seen: HashMap::default(),
            order: BTreeSet::new(),
            max,
        }
    }

    /// Whether `id` was recorded and has not expired.
    pub(crate) fn contains(&self, id: &Fingerprint, now_ms: u64) -> bool {
        self.seen.get(id).is_some_and(|&exp| exp > now_ms)
    }

    pub(crate) fn insert(&mut self, id: Fingerprint, expires_ms: u64, now_ms: u64) -> Seen {
        if self.contains(&id, now_ms) {
            return Seen::Replay;
        }
        self.expire(now_ms);
        if self.seen.len() >= self.max {
            return Seen::Full;
        }
        if let Some(old) = self.seen.insert(id, expires_ms) {
            self.order.remove(&(old, id));
        }
        self.order.insert((expires_ms, id));
        Seen::New
    }

    /// Forgets every entry that has expired.
    pub(crate) fn expire(&mut self, now_ms: u64) {
        while let Some(&(exp, id)) = self.order.first() {
            if exp > now_ms {
                break;
            }
            self.order.pop_first();
            self.seen.remove(&id);
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.seen.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replays_are_caught_and_the_set_stays_bounded() {
        let mut r = ReplaySet::new(2);
        assert_eq!(r.insert(Fingerprint([1; 16]), 100, 0), Seen::New);
        assert_eq!(r.insert(Fingerprint([1; 16]), 100, 10), Seen::Replay);
        assert!(r.contains(&Fingerprint([1; 16]), 10));
        assert_eq!(r.insert(Fingerprint([2; 16]), 110, 10), Seen::New);
        assert_eq!(r.insert(Fingerprint([3; 16]), 120, 20), Seen::Full);
        assert_eq!(r.insert(Fingerprint([3; 16]), 200, 100), Seen::New);
        assert!(!r.contains(&Fingerprint([1; 16]), 100));
        assert_eq!(r.len(), 2);
    }

    #[test]
    fn entries_expire_in_expiry_order_not_insertion_order() {
        let mut r = ReplaySet::new(3);
        // A long-lived entry first, then short ones: the short ones are reclaimed on time even
        // though an older entry is still alive.
        assert_eq!(r.insert(Fingerprint([1; 16]), 1_000, 0), Seen::New);
        assert_eq!(r.insert(Fingerprint([2; 16]), 50, 0), Seen::New);
        assert_eq!(r.insert(Fingerprint([3; 16]), 60, 0), Seen::New);
        assert_eq!(r.insert(Fingerprint([4; 16]), 500, 10), Seen::Full);
        assert_eq!(r.insert(Fingerprint([4; 16]), 500, 70), Seen::New);
        assert_eq!(r.len(), 2);
        assert!(r.contains(&Fingerprint([1; 16]), 70));
    }
}
