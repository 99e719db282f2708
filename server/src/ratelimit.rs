//! Failures per key in a one-minute window: unknown license keys per client address, so keys
//! can't be enumerated (SPEC §4.1), and failed logins per address and per (user, address).

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(60);
/// Above this many tracked keys, expired windows are dropped, so a flood of addresses cannot
/// grow the map without bound.
const PRUNE_ABOVE: usize = 100_000;

pub struct FailureLimiter<K = IpAddr> {
    max_per_window: u32,
    windows: Mutex<HashMap<K, (Instant, u32)>>,
}

impl<K: Hash + Eq> FailureLimiter<K> {
    pub fn new(max_per_minute: u32) -> Self {
        FailureLimiter {
            max_per_window: max_per_minute,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// True when `key` has used up its failures in the current window.
    pub fn is_blocked(&self, key: &K) -> bool {
        self.is_blocked_at(key, Instant::now())
    }

    pub fn record_failure(&self, key: K) {
        self.record_failure_at(key, Instant::now());
    }

    /// Forgets `key`'s failures (a successful login).
    pub fn forget(&self, key: &K) {
        self.windows.lock().expect("limiter poisoned").remove(key);
    }

    fn is_blocked_at(&self, key: &K, now: Instant) -> bool {
        let windows = self.windows.lock().expect("limiter poisoned");
        windows.get(key).is_some_and(|(start, count)| {
            now.duration_since(*start) < WINDOW && *count >= self.max_per_window
        })
    }

    fn record_failure_at(&self, key: K, now: Instant) {
        let mut windows = self.windows.lock().expect("limiter poisoned");
        if windows.len() > PRUNE_ABOVE {
            windows.retain(|_, (start, _)| now.duration_since(*start) < WINDOW);
        }
        let entry = windows.entry(key).or_insert((now, 0));
        if now.duration_since(entry.0) >= WINDOW {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_limit_per_key_until_the_window_ends() {
        let l = FailureLimiter::new(3);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(!l.is_blocked_at(&a, t0));
            l.record_failure_at(a, t0);
        }
        assert!(l.is_blocked_at(&a, t0));
        assert!(!l.is_blocked_at(&b, t0));
        let later = t0 + WINDOW;
        assert!(!l.is_blocked_at(&a, later));
        l.record_failure_at(a, later);
        assert!(
            !l.is_blocked_at(&a, later),
            "a new window starts at one failure"
        );
    }

    #[test]
    fn forget_clears_a_key() {
        let l = FailureLimiter::new(1);
        let key = ("admin".to_owned(), IpAddr::from([127, 0, 0, 1]));
        l.record_failure(key.clone());
        assert!(l.is_blocked(&key));
        l.forget(&key);
        assert!(!l.is_blocked(&key));
    }
}
