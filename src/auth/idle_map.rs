//! [`IdleMap`]: what the server keeps per user while the user is active (`--oauth`).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Entries kept while they are used: one not used for `idle` is dropped at the next sweep,
/// which runs on use, at most every tenth of `idle`.
pub struct IdleMap<K, V> {
    idle: Duration,
    inner: Mutex<Inner<K, V>>,
}

struct Inner<K, V> {
    entries: HashMap<K, (V, Instant)>,
    swept: Option<Instant>,
}

impl<K: Eq + Hash + Clone, V: Clone> IdleMap<K, V> {
    pub fn new(idle: Duration) -> Self {
        IdleMap { idle, inner: Mutex::new(Inner { entries: HashMap::new(), swept: None }) }
    }

    /// The entry of `key`, marked used, when `keep` accepts it; else the one `make` builds
    /// (told how many entries there are besides it), stored in its place.
    pub fn get_or_make<E>(
        &self,
        key: &K,
        keep: impl FnOnce(&V) -> bool,
        make: impl FnOnce(usize) -> Result<V, E>,
    ) -> Result<V, E> {
        let now = Instant::now();
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if inner.swept.is_none_or(|at| now.duration_since(at) >= self.idle / 10) {
            let idle = self.idle;
            inner.entries.retain(|_, (_, used)| now.duration_since(*used) < idle);
            inner.swept = Some(now);
        }
        if let Some((value, used)) = inner.entries.get_mut(key)
            && keep(value)
        {
            *used = now;
            return Ok(value.clone());
        }
        let others = inner.entries.len() - usize::from(inner.entries.contains_key(key));
        let value = make(others)?;
        inner.entries.insert(key.clone(), (value.clone(), now));
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_kept_while_used_and_replaced_when_refused() {
        let map: IdleMap<&str, u32> = IdleMap::new(Duration::from_secs(60));
        let made = |n: u32| move |_| Ok::<_, ()>(n);
        assert_eq!(map.get_or_make(&"a", |_| true, made(1)), Ok(1));
        assert_eq!(map.get_or_make(&"a", |_| true, made(2)), Ok(1), "kept");
        assert_eq!(map.get_or_make(&"a", |v| *v == 2, made(3)), Ok(3), "refused, so made again");
        assert_eq!(map.get_or_make(&"b", |_| true, |others| Ok::<_, ()>(others as u32)), Ok(1));
    }

    #[test]
    fn idle_entries_are_dropped() {
        let map: IdleMap<&str, u32> = IdleMap::new(Duration::ZERO);
        map.get_or_make(&"a", |_| true, |_| Ok::<_, ()>(1)).unwrap_or_default();
        assert_eq!(map.get_or_make(&"a", |_| true, |_| Ok::<_, ()>(2)), Ok(2));
    }
}
