//! The login rate limiter: in memory, pure logic, time passed in.
//!
//! Failed logins are counted per client IP (IPv6 by its /64, which one
//! subscriber usually holds whole) and per e-mail address (as typed, lower-
//! cased, kept as a 16-byte SHA-256 prefix). Once a key has
//! [`LOGIN_MAX_FAILURES`] failures in the fixed window of
//! [`LOGIN_WINDOW_SECS`] that began with its first failure, every attempt
//! for it is refused ([`Blocked`], HTTP 429) until that window ends; then
//! its count starts again. A successful login clears its address's count,
//! not its IP's (one good account must not buy guesses against others).
//!
//! Memory is fixed: at most `capacity` keys ([`LIMITER_CAPACITY`] by
//! default), allocated up front. A new key in a full table takes the slot of
//! an entry whose window has ended; failing that, the entry with the fewest
//! failures, ties going to the oldest window (the least evidence of an
//! attack is forgotten first; blocked keys go last). Such evictions are
//! counted ([`LoginLimiter::evictions`]).
//!
//! Counting by address lets anyone lock an address out for one window: the
//! price of stopping slow guessing from many IPs, and bounded by the window.

use super::{LIMITER_CAPACITY, LOGIN_MAX_FAILURES, LOGIN_WINDOW_SECS, digest};
use crate::clock::Timestamp;
use std::net::IpAddr;

/// What is counted: a client network or an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Key {
    /// IPv4 as mapped IPv6; IPv6 cut to its /64.
    Net([u8; 16]),
    /// The first 16 bytes of SHA-256 of the lower-cased, trimmed address.
    Email([u8; 16]),
}

impl Key {
    fn net(ip: IpAddr) -> Key {
        let v6 = match ip {
            IpAddr::V4(v4) => v4.to_ipv6_mapped(),
            IpAddr::V6(v6) => v6,
        };
        let mut b = v6.octets();
        if v6.to_ipv4_mapped().is_none() {
            b[8..].fill(0);
        }
        Key::Net(b)
    }

    fn email(email: &str) -> Key {
        let d = digest(email.trim().to_lowercase().as_bytes());
        let mut k = [0u8; 16];
        k.copy_from_slice(&d[..16]);
        Key::Email(k)
    }
}

#[derive(Clone, Copy, Debug)]
struct Slot {
    key: Key,
    /// Start of the current window (the first failure in it).
    start: Timestamp,
    failures: u32,
}

impl Slot {
    fn live(&self, now: Timestamp) -> bool {
        now.0 < self.start.0.saturating_add(LOGIN_WINDOW_SECS)
    }

    fn blocked(&self, now: Timestamp) -> bool {
        self.live(now) && self.failures >= LOGIN_MAX_FAILURES
    }
}

/// An attempt refused: answer 429 with `Retry-After: retry_after_secs`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Blocked {
    pub retry_after_secs: i64,
}

/// Failed-login counts by IP and by address, in a fixed-size table.
#[derive(Debug)]
pub struct LoginLimiter {
    /// Invariant: `slots.len() <= capacity`, no key twice.
    slots: Vec<Slot>,
    capacity: usize,
    evictions: u64,
}

impl Default for LoginLimiter {
    fn default() -> Self {
        LoginLimiter::new(LIMITER_CAPACITY)
    }
}

impl LoginLimiter {
    /// A limiter remembering at most `capacity` keys (at least 2: one IP
    /// and one address).
    pub fn new(capacity: usize) -> LoginLimiter {
        let capacity = capacity.max(2);
        LoginLimiter { slots: Vec::with_capacity(capacity), capacity, evictions: 0 }
    }

    /// Whether a login from `ip` for `email` may be tried now. Call before
    /// verifying the password.
    ///
    /// # Errors
    /// [`Blocked`] with the seconds until the later of the two windows ends.
    pub fn check(&self, ip: IpAddr, email: &str, now: Timestamp) -> Result<(), Blocked> {
        let wait = [Key::net(ip), Key::email(email)]
            .iter()
            .filter_map(|k| self.find(*k))
            .filter(|s| s.blocked(now))
            .map(|s| s.start.0 + LOGIN_WINDOW_SECS - now.0)
            .max();
        match wait {
            Some(retry_after_secs) => Err(Blocked { retry_after_secs }),
            None => Ok(()),
        }
    }

    /// Counts a failed login against `ip` and `email`.
    pub fn record_failure(&mut self, ip: IpAddr, email: &str, now: Timestamp) {
        // The address's slot must not evict the IP's, just made.
        let mut keep = None;
        for key in [Key::net(ip), Key::email(email)] {
            let i = self.slot_for(key, now, keep);
            let s = &mut self.slots[i];
            if s.live(now) {
                s.failures = s.failures.saturating_add(1);
            } else {
                *s = Slot { key, start: now, failures: 1 };
            }
            keep = Some(i);
        }
    }

    /// A successful login: forgets the address's failures (the IP's stay).
    pub fn record_success(&mut self, email: &str) {
        let key = Key::email(email);
        self.slots.retain(|s| s.key != key);
    }

    /// Entries evicted while their window was still open.
    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    /// Keys remembered now.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    fn find(&self, key: Key) -> Option<&Slot> {
        self.slots.iter().find(|s| s.key == key)
    }

    /// The index of `key`'s slot, making one (with no live window) if
    /// needed by the eviction rule, never taking the slot `keep`.
    fn slot_for(&mut self, key: Key, now: Timestamp, keep: Option<usize>) -> usize {
        if let Some(i) = self.slots.iter().position(|s| s.key == key) {
            return i;
        }
        let fresh = Slot { key, start: Timestamp(i64::MIN / 2), failures: 0 };
        if self.slots.len() < self.capacity {
            self.slots.push(fresh);
            return self.slots.len() - 1;
        }
        let candidates = || (0..self.slots.len()).filter(|&i| Some(i) != keep);
        let i = if let Some(i) = candidates().find(|&i| !self.slots[i].live(now)) {
            i
        } else {
            self.evictions += 1;
            // Fewest failures, then oldest window. Some: capacity >= 2.
            candidates().min_by_key(|&i| (self.slots[i].failures, self.slots[i].start)).unwrap_or(0)
        };
        self.slots[i] = fresh;
        i
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Timestamp = Timestamp(1_800_000_000);

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn at(secs: i64) -> Timestamp {
        Timestamp(T0.0 + secs)
    }

    #[test]
    fn five_failures_block_until_the_window_ends() {
        let mut l = LoginLimiter::default();
        let a = ip("192.0.2.1");
        for i in 0..LOGIN_MAX_FAILURES {
            assert_eq!(l.check(a, "alice@example.org", at(i.into())), Ok(()), "attempt {i}");
            l.record_failure(a, "alice@example.org", at(i.into()));
        }
        assert_eq!(l.check(a, "alice@example.org", at(10)), Err(Blocked { retry_after_secs: LOGIN_WINDOW_SECS - 10 }));
        assert_eq!(l.check(a, "alice@example.org", at(LOGIN_WINDOW_SECS - 1)), Err(Blocked { retry_after_secs: 1 }));
        assert_eq!(l.check(a, "alice@example.org", at(LOGIN_WINDOW_SECS)), Ok(()));
        // A new window counts from one again.
        l.record_failure(a, "alice@example.org", at(LOGIN_WINDOW_SECS));
        assert_eq!(l.check(a, "alice@example.org", at(LOGIN_WINDOW_SECS + 1)), Ok(()));
    }

    #[test]
    fn four_failures_do_not_block() {
        let mut l = LoginLimiter::default();
        for i in 0..LOGIN_MAX_FAILURES - 1 {
            l.record_failure(ip("192.0.2.1"), "alice@example.org", at(i.into()));
        }
        assert_eq!(l.check(ip("192.0.2.1"), "alice@example.org", at(5)), Ok(()));
    }

    #[test]
    fn failures_spread_over_more_than_a_window_do_not_block() {
        let mut l = LoginLimiter::default();
        for i in 0..10 {
            l.record_failure(ip("192.0.2.1"), "alice@example.org", at(i * (LOGIN_WINDOW_SECS / 3)));
        }
        // Windows restart at failures 1, 4, 7, 10: never five in one.
        assert_eq!(l.check(ip("192.0.2.1"), "alice@example.org", at(9 * (LOGIN_WINDOW_SECS / 3) + 1)), Ok(()));
    }

    #[test]
    fn an_ip_is_blocked_for_every_address_and_an_address_from_every_ip() {
        let mut l = LoginLimiter::default();
        for i in 0..LOGIN_MAX_FAILURES {
            l.record_failure(ip("192.0.2.1"), &format!("user{i}@example.org"), at(0));
        }
        assert!(l.check(ip("192.0.2.1"), "someone-else@example.org", at(1)).is_err(), "the IP is blocked");
        assert_eq!(l.check(ip("192.0.2.2"), "user0@example.org", at(1)), Ok(()), "one failure per address");
        for i in 0..LOGIN_MAX_FAILURES {
            l.record_failure(ip(&format!("198.51.100.{i}")), "Bob@Example.org", at(0));
        }
        assert!(l.check(ip("203.0.113.9"), " bob@example.org", at(1)).is_err(), "the address is blocked, in any case");
        assert_eq!(l.check(ip("203.0.113.9"), "carol@example.org", at(1)), Ok(()));
    }

    #[test]
    fn ipv6_counts_by_slash_64_and_mapped_ipv4_as_ipv4() {
        let mut l = LoginLimiter::default();
        for i in 0..LOGIN_MAX_FAILURES {
            l.record_failure(ip(&format!("2001:db8:1:2::{i:x}")), &format!("u{i}@example.org"), at(0));
        }
        assert!(l.check(ip("2001:db8:1:2:ffff::1"), "x@example.org", at(1)).is_err());
        assert_eq!(l.check(ip("2001:db8:1:3::1"), "x@example.org", at(1)), Ok(()));
        for i in 0..LOGIN_MAX_FAILURES {
            l.record_failure(ip("::ffff:192.0.2.7"), &format!("v{i}@example.org"), at(0));
        }
        assert!(l.check(ip("192.0.2.7"), "x@example.org", at(1)).is_err());
        assert_eq!(l.check(ip("192.0.2.8"), "x@example.org", at(1)), Ok(()), "IPv4 is not cut to a prefix");
    }

    #[test]
    fn success_clears_the_address_not_the_ip() {
        let mut l = LoginLimiter::default();
        for i in 0..LOGIN_MAX_FAILURES - 1 {
            l.record_failure(ip("192.0.2.1"), "alice@example.org", at(i.into()));
        }
        l.record_success("alice@example.org");
        l.record_failure(ip("192.0.2.9"), "alice@example.org", at(10));
        assert_eq!(l.check(ip("192.0.2.9"), "alice@example.org", at(11)), Ok(()), "the address count restarted");
        l.record_failure(ip("192.0.2.1"), "mallory@example.org", at(12));
        assert!(l.check(ip("192.0.2.1"), "carol@example.org", at(13)).is_err(), "the IP kept its four");
    }

    #[test]
    fn capacity_is_fixed_and_eviction_follows_the_rule() {
        let mut l = LoginLimiter::new(4);
        // A blocked IP and its address (two keys, five failures each).
        for _ in 0..LOGIN_MAX_FAILURES {
            l.record_failure(ip("192.0.2.1"), "victim@example.org", at(0));
        }
        // One failure from another IP against another address: full.
        l.record_failure(ip("192.0.2.2"), "other@example.org", at(1));
        assert_eq!((l.len(), l.evictions()), (4, 0));
        // Two new keys evict the two with one failure, not the blocked ones.
        l.record_failure(ip("192.0.2.3"), "third@example.org", at(2));
        assert_eq!((l.len(), l.evictions()), (4, 2));
        assert!(l.check(ip("192.0.2.1"), "x@example.org", at(3)).is_err());
        assert!(l.check(ip("192.0.2.99"), "victim@example.org", at(3)).is_err());
        // Ties in failures: the oldest window goes first.
        l.record_failure(ip("192.0.2.4"), "fourth@example.org", at(4));
        assert_eq!(l.evictions(), 4);
        assert!(l.find(Key::net(ip("192.0.2.3"))).is_none());
        assert!(l.find(Key::net(ip("192.0.2.4"))).is_some());
        // Expired entries are reused before anything is evicted.
        let later = at(LOGIN_WINDOW_SECS + 5);
        l.record_failure(ip("192.0.2.5"), "fifth@example.org", later);
        assert_eq!((l.len(), l.evictions()), (4, 4));
        assert_eq!(l.check(ip("192.0.2.1"), "victim@example.org", later), Ok(()));
        assert_eq!(l.slots.capacity(), 4, "never grew");
    }

    #[test]
    fn a_full_table_of_blocked_keys_still_takes_new_ones() {
        let mut l = LoginLimiter::new(2);
        for _ in 0..LOGIN_MAX_FAILURES {
            l.record_failure(ip("192.0.2.1"), "a@example.org", at(0));
        }
        l.record_failure(ip("192.0.2.2"), "b@example.org", at(1));
        assert_eq!((l.len(), l.evictions()), (2, 2));
        assert!(l.find(Key::net(ip("192.0.2.2"))).is_some());
        assert_eq!(l.check(ip("192.0.2.1"), "a@example.org", at(2)), Ok(()), "evicted, so forgotten");
    }
}
