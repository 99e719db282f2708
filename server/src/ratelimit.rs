//! Failed license lookups per client address, so keys can't be enumerated (SPEC §4.1).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(60);

pub struct FailureLimiter {
    max_per_window: u32,
    windows: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl FailureLimiter {
    pub fn new(max_per_minute: u32) -> Self {
        FailureLimiter {
            max_per_window: max_per_minute,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// True when `ip` has used up its failures in the current window.
    pub fn is_blocked(&self, ip: IpAddr) -> bool {
        let windows = self.windows.lock().expect("limiter poisoned");
        windows
            .get(&ip)
            .is_some_and(|(start, count)| start.elapsed() < WINDOW && *count >= self.max_per_window)
    }

    pub fn record_failure(&self, ip: IpAddr) {
        let mut windows = self.windows.lock().expect("limiter poisoned");
        if windows.len() > 100_000 {
            windows.retain(|_, (start, _)| start.elapsed() < WINDOW);
        }
        let entry = windows.entry(ip).or_insert((Instant::now(), 0));
        if entry.0.elapsed() >= WINDOW {
            *entry = (Instant::now(), 0);
        }
        entry.1 = entry.1.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_limit_per_address() {
        let l = FailureLimiter::new(3);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        for _ in 0..3 {
            assert!(!l.is_blocked(a));
            l.record_failure(a);
        }
        assert!(l.is_blocked(a));
        assert!(!l.is_blocked(b));
    }
}
