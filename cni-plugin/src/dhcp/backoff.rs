//! Retransmission delays and the randomness behind them and transaction ids.
//!
//! RFC 2131 §4.1 suggests 4 s doubling to 64 s, randomized by ±1 s, for slow
//! links. A pod's first exchange runs inside a CNI ADD with a deadline of a
//! few seconds, so the first retransmission comes after 250 ms and the delay
//! doubles up to 4 s; the ±20 % jitter keeps pods started together (a node
//! reboot, a scaled deployment) from retransmitting in lockstep.

use std::hash::{BuildHasher, RandomState};
use std::time::Duration;

const FIRST: Duration = Duration::from_millis(250);
const MAX: Duration = Duration::from_secs(4);

pub struct Backoff {
    next: Duration,
}

impl Backoff {
    pub fn new() -> Backoff {
        Backoff { next: FIRST }
    }

    /// The delay before the next retransmission, jittered.
    pub fn next_delay(&mut self) -> Duration {
        let base = self.next;
        self.next = (base * 2).min(MAX);
        // A factor in [0.8, 1.2).
        let permille = 800 + random_u32() % 400;
        base * permille / 1000
    }
}

/// A random 32-bit value (transaction ids, jitter). std's `RandomState` is
/// seeded from the OS and SipHash-keyed, enough for values that must only
/// differ between clients and exchanges, not resist an attacker.
pub fn random_u32() -> u32 {
    RandomState::new().hash_one(std::time::Instant::now()) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_from_250ms_to_a_4s_cap_within_jitter() {
        let mut b = Backoff::new();
        for base_ms in [250u64, 500, 1000, 2000, 4000, 4000, 4000] {
            let d = b.next_delay();
            let base = Duration::from_millis(base_ms);
            assert!(
                d >= base * 8 / 10 && d < base * 12 / 10,
                "{d:?} vs {base:?}"
            );
        }
    }

    #[test]
    fn random_values_differ() {
        let v: std::collections::BTreeSet<u32> = (0..64).map(|_| random_u32()).collect();
        assert!(v.len() > 60);
    }
}
