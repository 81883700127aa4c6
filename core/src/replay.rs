//! A bounded set of recently seen identifiers (DPoP proof `jti`s, SET `jti`s).

use lru::LruCache;

use crate::secret::{Fingerprint, FingerprintBuild};

/// Seen identifiers with their expiry. Entries share one lifetime window, so insertion order is
/// expiry order and the oldest entry is the first to expire.
#[derive(Debug)]
pub(crate) struct ReplaySet {
    seen: LruCache<Fingerprint, u64, FingerprintBuild>,
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
            seen: LruCache::unbounded_with_hasher(FingerprintBuild::default()),
            max,
        }
    }

    pub(crate) fn insert(&mut self, id: Fingerprint, expires_ms: u64, now_ms: u64) -> Seen {
        if let Some(&exp) = self.seen.peek(&id)
            && exp > now_ms
        {
            return Seen::Replay;
        }
        self.expire(now_ms);
        if self.seen.len() >= self.max {
            return Seen::Full;
        }
        self.seen.push(id, expires_ms);
        Seen::New
    }

    pub(crate) fn expire(&mut self, now_ms: u64) {
        while let Some((_, &exp)) = self.seen.peek_lru() {
            if exp > now_ms {
                break;
            }
            self.seen.pop_lru();
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
        assert_eq!(r.insert(Fingerprint([2; 16]), 110, 10), Seen::New);
        assert_eq!(r.insert(Fingerprint([3; 16]), 120, 20), Seen::Full);
        assert_eq!(r.insert(Fingerprint([3; 16]), 200, 100), Seen::New);
        assert_eq!(r.len(), 2);
    }
}
