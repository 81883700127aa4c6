//! The positive and negative decision caches: keyed by fingerprint, bounded by entries and
//! bytes, least-recently-used first out.

use std::sync::Arc;

use lru::LruCache;

use crate::action::Reason;
use crate::secret::{Fingerprint, FingerprintBuild};
use crate::token::TokenInfo;

/// An upstream JWT the edge minted for one route.
#[derive(Debug, Clone)]
pub(crate) struct Minted {
    pub(crate) route: usize,
    pub(crate) value: Arc<str>,
    pub(crate) exp_ms: u64,
}

impl Minted {
    /// Its share of the entry's size (see `Entry::bytes`).
    pub(crate) fn bytes(&self) -> usize {
        self.value.len() + 48
    }
}

/// What the edge knows of an active token.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) info: Arc<TokenInfo>,
    /// Never beyond the token's exp, the response's max-age, or max_ttl (invariant 3).
    pub(crate) expires_ms: u64,
    /// Revocation epoch this entry was last checked at.
    pub(crate) epoch: u64,
    /// Prebuilt upstream header value with the AS-issued JWT (Curity, Keycloak, split).
    pub(crate) forward: Option<Arc<str>>,
    /// JWTs minted for routes (when `[assertions]` is configured).
    pub(crate) minted: Vec<Minted>,
}

impl Entry {
    pub(crate) fn bytes(&self) -> usize {
        // Fixed part: the LRU node, key, Arc headers and this struct; measured in BENCHMARKS.md.
        160 + size_of::<TokenInfo>()
            + self.info.heap_bytes()
            + self.forward.as_ref().map_or(0, |f| f.len() + 16)
            + self.minted.iter().map(Minted::bytes).sum::<usize>()
    }
}

#[derive(Debug)]
pub(crate) struct Cache {
    pos: LruCache<Fingerprint, Entry, FingerprintBuild>,
    neg: LruCache<Fingerprint, (u64, Reason), FingerprintBuild>,
    bytes: usize,
    max_entries: usize,
    max_bytes: usize,
    neg_max: usize,
    pub(crate) evictions: u64,
}

impl Cache {
    pub(crate) fn new(max_entries: usize, max_bytes: usize, neg_max: usize) -> Self {
        Self {
            pos: LruCache::unbounded_with_hasher(FingerprintBuild::default()),
            neg: LruCache::unbounded_with_hasher(FingerprintBuild::default()),
            bytes: 0,
            max_entries,
            max_bytes,
            neg_max,
            evictions: 0,
        }
    }

    /// A live entry (moved to most-recently-used); an expired one is dropped.
    pub(crate) fn get_mut(&mut self, fp: &Fingerprint, now_ms: u64) -> Option<&mut Entry> {
        let expired = self.pos.peek(fp)?.expires_ms <= now_ms;
        if expired {
            self.remove(fp);
            return None;
        }
        self.pos.get_mut(fp)
    }

    pub(crate) fn peek(&self, fp: &Fingerprint) -> Option<&Entry> {
        self.pos.peek(fp)
    }

    pub(crate) fn insert(&mut self, fp: Fingerprint, entry: Entry) {
        self.remove(&fp);
        self.bytes += entry.bytes();
        self.pos.push(fp, entry);
        self.shrink();
    }

    /// Accounts for a change in an entry's size (a newly minted JWT).
    pub(crate) fn resized(&mut self, before: usize, after: usize) {
        self.bytes = (self.bytes + after).saturating_sub(before);
        self.shrink();
    }

    fn shrink(&mut self) {
        while self.pos.len() > self.max_entries
            || (self.bytes > self.max_bytes && self.pos.len() > 1)
        {
            match self.pos.pop_lru() {
                Some((_, e)) => {
                    self.bytes = self.bytes.saturating_sub(e.bytes());
                    self.evictions += 1;
                }
                None => break,
            }
        }
    }

    pub(crate) fn remove(&mut self, fp: &Fingerprint) -> Option<Entry> {
        let e = self.pos.pop(fp)?;
        self.bytes = self.bytes.saturating_sub(e.bytes());
        Some(e)
    }

    /// Drops every entry whose claims match.
    pub(crate) fn purge(&mut self, pred: impl Fn(&Fingerprint, &TokenInfo) -> bool) -> usize {
        let doomed: Vec<Fingerprint> = self
            .pos
            .iter()
            .filter(|(k, e)| pred(k, &e.info))
            .map(|(k, _)| *k)
            .collect();
        for fp in &doomed {
            self.remove(fp);
        }
        doomed.len()
    }

    pub(crate) fn negative(&mut self, fp: &Fingerprint, now_ms: u64) -> Option<Reason> {
        let &(exp, reason) = self.neg.get(fp)?;
        if exp <= now_ms {
            self.neg.pop(fp);
            return None;
        }
        Some(reason)
    }

    pub(crate) fn insert_negative(&mut self, fp: Fingerprint, expires_ms: u64, reason: Reason) {
        self.neg.push(fp, (expires_ms, reason));
        while self.neg.len() > self.neg_max {
            self.neg.pop_lru();
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.pos.len()
    }

    pub(crate) fn negative_len(&self) -> usize {
        self.neg.len()
    }

    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(exp: u64) -> Entry {
        Entry {
            info: Arc::new(TokenInfo::default()),
            expires_ms: exp,
            epoch: 0,
            forward: None,
            minted: vec![],
        }
    }

    #[test]
    fn bounded_by_entries_lru_first() {
        let mut c = Cache::new(2, usize::MAX, 2);
        c.insert(Fingerprint([1; 16]), entry(100));
        c.insert(Fingerprint([2; 16]), entry(100));
        assert!(c.get_mut(&Fingerprint([1; 16]), 0).is_some());
        c.insert(Fingerprint([3; 16]), entry(100));
        assert_eq!(c.len(), 2);
        assert!(
            c.peek(&Fingerprint([2; 16])).is_none(),
            "least recently used goes first"
        );
        assert_eq!(c.evictions, 1);
    }

    #[test]
    fn bounded_by_bytes() {
        let one = entry(100).bytes();
        let mut c = Cache::new(100, one * 3, 2);
        for i in 0..10u8 {
            c.insert(Fingerprint([i; 16]), entry(100));
        }
        assert_eq!(c.len(), 3);
        assert!(c.bytes() <= one * 3);
    }

    #[test]
    fn expired_entries_are_not_returned() {
        let mut c = Cache::new(10, usize::MAX, 2);
        c.insert(Fingerprint([1; 16]), entry(100));
        assert!(c.get_mut(&Fingerprint([1; 16]), 99).is_some());
        assert!(c.get_mut(&Fingerprint([1; 16]), 100).is_none());
        assert_eq!(c.len(), 0);
        assert_eq!(c.bytes(), 0);
    }
}
