//! Memoising decisions.
//!
//! A Cedar evaluation is a pure function of (principal, action, resource, context)
//! over the engine's entities and policies, which never change for the life of a
//! [`PolicyEngine`](crate::PolicyEngine): a changed inventory builds a new engine,
//! with a new, empty cache. So a cached outcome is exactly what Cedar would say
//! again. Contexts are interned: equal facts share one Cedar `Context` and one id.
//!
//! The cache is sharded and bounded; a full shard is cleared, which keeps the
//! bound without bookkeeping on the hot path.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use cedar_policy::Context;
use parking_lot::Mutex;

use crate::{Facts, Outcome, PolicyError};

pub(crate) const DEFAULT_CAPACITY: usize = 65_536;
const SHARDS: usize = 16;
const CONTEXTS: usize = 4_096;

/// What one part's outcome depends on (see [`crate::Part`]); coordinates a part
/// does not read are zero or `u32::MAX`, so its entries are shared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    pub principal: u32,
    pub action: u8,
    pub part: u8,
    pub resource: u32,
    pub context: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct FactsKey {
    label: i64,
    categories: Vec<String>,
    untrusted: bool,
    risk_level: &'static str,
    injection: bool,
    findings: Vec<String>,
    content: i64,
    content_categories: Vec<String>,
}

impl FactsKey {
    fn of(f: &Facts, risk_level: &'static str) -> Self {
        FactsKey {
            label: f.session.confidentiality.rank(),
            categories: f
                .session
                .categories
                .iter()
                .map(|c| c.as_str().to_owned())
                .collect(),
            untrusted: f.session.integrity == zt4ai_core::Integrity::Untrusted,
            risk_level,
            injection: f.injection,
            findings: f.findings.iter().cloned().collect(),
            content: f.content.confidentiality.rank(),
            content_categories: f
                .content
                .categories
                .iter()
                .map(|c| c.as_str().to_owned())
                .collect(),
        }
    }
}

#[derive(Debug)]
pub(crate) struct DecisionCache {
    shards: Vec<Mutex<HashMap<Key, Outcome>>>,
    contexts: Mutex<HashMap<FactsKey, (Context, u64)>>,
    next_context: AtomicU64,
    per_shard: AtomicUsize,
    hasher: std::collections::hash_map::RandomState,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl DecisionCache {
    pub(crate) fn new(capacity: usize) -> Self {
        DecisionCache {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            contexts: Mutex::new(HashMap::new()),
            next_context: AtomicU64::new(0),
            per_shard: AtomicUsize::new(capacity.div_ceil(SHARDS)),
            hasher: std::collections::hash_map::RandomState::new(),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    pub(crate) fn set_capacity(&self, capacity: usize) {
        self.per_shard
            .store(capacity.div_ceil(SHARDS), Ordering::Relaxed);
        for s in &self.shards {
            s.lock().clear();
        }
    }

    pub(crate) fn stats(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }

    /// The Cedar context for `facts` and its interned id, building it on first use.
    pub(crate) fn context(
        &self,
        facts: &Facts,
        risk_level: &'static str,
        build: impl FnOnce() -> Result<Context, PolicyError>,
    ) -> Result<(Context, u64), PolicyError> {
        let key = FactsKey::of(facts, risk_level);
        if let Some((c, id)) = self.contexts.lock().get(&key) {
            return Ok((c.clone(), *id));
        }
        let context = build()?;
        let id = self.next_context.fetch_add(1, Ordering::Relaxed);
        let mut map = self.contexts.lock();
        if map.len() >= CONTEXTS {
            // Ids are never reused, so decisions cached under old ids simply miss.
            map.clear();
        }
        map.insert(key, (context.clone(), id));
        Ok((context, id))
    }

    fn shard(&self, key: &Key) -> Option<&Mutex<HashMap<Key, Outcome>>> {
        let i = (self.hasher.hash_one(key) as usize) % SHARDS;
        self.shards.get(i)
    }

    pub(crate) fn get(&self, key: &Key) -> Option<Outcome> {
        if self.per_shard.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let found = self.shard(key).and_then(|s| s.lock().get(key).cloned());
        match found {
            Some(_) => self.hits.fetch_add(1, Ordering::Relaxed),
            None => self.misses.fetch_add(1, Ordering::Relaxed),
        };
        found
    }

    pub(crate) fn put(&self, key: Key, outcome: Outcome) {
        let cap = self.per_shard.load(Ordering::Relaxed);
        if cap == 0 {
            return;
        }
        if let Some(s) = self.shard(&key) {
            let mut map = s.lock();
            if map.len() >= cap {
                map.clear();
            }
            map.insert(key, outcome);
        }
    }
}
