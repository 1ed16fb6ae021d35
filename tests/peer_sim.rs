//! The peer-network simulator: seeded randomness, simulated time, the real
//! aggregator, the real signed batches and the real hub engine (the code
//! `postlens hub` runs), with 500 honest instances, slow distributed brute
//! force, offices with stale passwords and six adversaries. It asserts the
//! listing rule's promises and prints the figures the README quotes.
//!
//! Timeline: keys register two days before T0 (so honest keys are past the
//! key-age rule); 2 hours of warm-up (honest keys earn trust by reporting
//! attackers others report too); 2 hours measured. Each 10-minute bucket:
//! events, then every instance drains and submits, then the hub scores
//! (one tick per bucket, so a listing is at most 11 minutes behind its
//! bucket's end).

#![expect(clippy::cast_precision_loss, reason = "printed figures and probabilities; every count is far below 2^52")]

use postlens::clock::Timestamp;
use postlens::peer::{Addr, Aggregator, BUCKET_SECS, Engine, Identity, Passwords, Proto, Ranges, Reject, Signal};
use postlens::protect::net::Cidr;
use postlens::track::record::Proto as LogProto;
use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr};

const SEED: u64 = 0x5eed_2026;
const HONEST: usize = 500;
/// Instances that run the Dovecot policy server (they see password hashes);
/// the rest know failures from logs only.
const POLICY_SHARE: f64 = 0.7;
const WARMUP_BUCKETS: i64 = 12;
const MEASURED_BUCKETS: i64 = 12;
/// New attacker addresses per bucket; each is active for three buckets.
const ATTACKERS_PER_BUCKET: usize = 60;
/// Each attacker spreads over 1..=this many instances.
const MAX_TARGETS: usize = 40;
const OFFICES: usize = 100;
/// Estimated HTTP overhead per exchange (request line and headers of ureq,
/// response status and headers of `tiny_http`, signature header), bytes.
/// TLS framing is not counted.
const HTTP_OVERHEAD: usize = 400;
const T0: i64 = 1_800_000_000;

/// `SplitMix64`: small, seeded, good enough for a simulation.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).expect("below n")
    }
    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}

struct Instance {
    id: Identity,
    agg: Aggregator,
    from: IpAddr,
    policy: bool,
    list_version: u64,
    bytes_up: usize,
    bytes_down: usize,
}

struct Attacker {
    ip: IpAddr,
    start: i64,
    targets: Vec<usize>,
    spray_logins: bool,
    /// Honest instances that saw it in its first two buckets.
    seen: HashSet<usize>,
}

/// A reporter that writes its own signals (adversaries).
struct Forger {
    id: Identity,
    agg: Aggregator,
    from: IpAddr,
}

impl Forger {
    fn new(from: IpAddr) -> Forger {
        Forger { id: Identity::generate().expect("key"), agg: Aggregator::new(), from }
    }
    fn submit(&mut self, hub: &mut Engine, signals: Vec<Signal>, now: i64) -> Result<(), Reject> {
        let (_, body, sig) = self.agg.seal(signals, Timestamp(now), &self.id);
        hub.submit(&body, &sig, self.from, Timestamp(now)).map(|_| ())
    }
}

fn strong(ip: IpAddr, bucket: i64) -> Signal {
    Signal { ip: Addr::of(ip), bucket, proto: Proto::Imap, failures: 50, passwords: Passwords::Many, logins: 16 }
}

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

fn net_addr(n: usize) -> IpAddr {
    // One /24 per n, inside 11.0.0.0/8 (public, unused by the other roles).
    let n = u32::try_from(n).expect("small");
    IpAddr::V4(Ipv4Addr::from(0x0b00_0000 + (n << 8) + 10))
}

#[test]
fn simulated_peer_network() {
    let started = std::time::Instant::now();
    let mut rng = Rng(SEED);
    let canaries = Cidr::parse("77.77.0.0/16").expect("cidr");
    let mut hub = Engine::new(Ranges { canaries: vec![canaries], ..Ranges::default() });
    let register_at = T0 - 2 * 86_400;

    // Honest instances, one network each.
    let mut honest: Vec<Instance> = (0..HONEST)
        .map(|i| Instance {
            id: Identity::generate().expect("key"),
            agg: Aggregator::new(),
            from: net_addr(i),
            policy: rng.chance(POLICY_SHARE),
            list_version: 0,
            bytes_up: 0,
            bytes_down: 0,
        })
        .collect();
    for h in &mut honest {
        let (_, body, sig) = h.agg.seal(Vec::new(), Timestamp(register_at), &h.id);
        hub.submit(&body, &sig, h.from, Timestamp(register_at)).expect("honest registration");
    }

    // Adversary A: many fake instances in one network, registered over
    // weeks (the hub takes 4 new keys a network a day), so all are aged.
    let net_a = v4(66, 0, 0, 10);
    let mut fakes_a: Vec<Forger> = Vec::new();
    let mut refused_a = 0;
    for day in 0..13 {
        for _ in 0..6 {
            let mut f = Forger::new(net_a);
            let t = T0 - (20 - day) * 86_400;
            match f.submit(&mut hub, Vec::new(), t) {
                Ok(()) => fakes_a.push(f),
                Err(Reject::KeyRefused(_)) => refused_a += 1,
                Err(e) => panic!("unexpected: {e}"),
            }
        }
    }
    // Adversary C: a colluding minority, aged, each in its own network.
    let mut colluders: Vec<Forger> = (0..7).map(|i| Forger::new(v4(88, i, 0, 10))).collect();
    // Adversary F: aged sprayers that copy real attackers to earn trust and
    // also report made-up addresses, canaries among them.
    let mut sprayers: Vec<Forger> = (0..10).map(|i| Forger::new(v4(99, i, 0, 10))).collect();
    for f in colluders.iter_mut().chain(sprayers.iter_mut()) {
        f.submit(&mut hub, Vec::new(), register_at).expect("aged adversary registration");
    }
    let innocents_of = |tag: u8| -> Vec<IpAddr> { (1..=10).map(|d| v4(52, tag, 0, d)).collect() };
    let (inn_a, inn_b, inn_c, inn_e, inn_f) = (innocents_of(1), innocents_of(2), innocents_of(3), innocents_of(5), innocents_of(6));

    // Offices with a stale password, each at one instance; half also have
    // users who log in fine from the same address.
    let offices: Vec<(IpAddr, usize, bool)> =
        (0..OFFICES).map(|i| (v4(31, 0, u8::try_from(i).expect("small"), 7), rng.below(HONEST), i % 2 == 0)).collect();

    let mut attackers: Vec<Attacker> = Vec::new();
    let mut next_attacker = 0u32;
    let mut churn_n = 0usize;
    let mut replay_log: Vec<(Vec<u8>, [u8; 64], IpAddr, i64)> = Vec::new();
    let (mut replays, mut replays_rejected, mut forged, mut forged_rejected) = (0, 0, 0, 0);
    let mut innocent_listed: Vec<String> = Vec::new();
    let mut batch_sizes: Vec<usize> = Vec::new();
    let mut full_list_bytes = 0;

    for k in -WARMUP_BUCKETS..MEASURED_BUCKETS {
        let b = T0 + k * BUCKET_SECS;
        // New attackers.
        for _ in 0..ATTACKERS_PER_BUCKET {
            next_attacker += 1;
            let ip = IpAddr::V4(Ipv4Addr::from(0x2d00_0000 + next_attacker * 7));
            let n = 1 + rng.below(MAX_TARGETS);
            let targets = (0..n).map(|_| rng.below(HONEST)).collect();
            attackers.push(Attacker { ip, start: b, targets, spray_logins: rng.chance(0.5), seen: HashSet::new() });
        }
        // Slow distributed brute force: each active attacker tries each of
        // its targets with probability 0.7, 2-4 attempts, a new password
        // each time.
        for a in attackers.iter_mut().filter(|a| a.start <= b && b < a.start + 3 * BUCKET_SECS) {
            for &t in &a.targets {
                if !rng.chance(0.7) {
                    continue;
                }
                let attempts = 2 + rng.below(3);
                let h = &mut honest[t];
                for n in 0..attempts {
                    let pw = rng.next().to_be_bytes();
                    let login: &[u8] = if a.spray_logins { [b"admin".as_slice(), b"info", b"test", b"sales"][n % 4] } else { b"info" };
                    let at = Timestamp(b + i64::try_from(rng.below(600)).expect("small"));
                    h.agg.failure(a.ip, LogProto::Imap, if h.policy { &pw } else { b"" }, login, 1, at);
                }
                if b < a.start + 2 * BUCKET_SECS {
                    a.seen.insert(t);
                }
            }
        }
        // Offices: the same stale password, 3-12 times a bucket.
        for &(ip, at, with_users) in &offices {
            let h = &mut honest[at];
            if with_users {
                h.agg.success(ip, Timestamp(b + 1));
            }
            let tries = 3 + rng.below(10);
            for _ in 0..tries {
                h.agg.failure(ip, LogProto::Imap, if h.policy { b"same-old" } else { b"" }, b"reception", 1, Timestamp(b + 5));
            }
        }

        // Drain, submit, and fetch.
        let now = b + BUCKET_SECS + 60;
        for h in &mut honest {
            let Some((_, body, sig)) = h.agg.drain(Timestamp(now), &h.id) else { continue };
            hub.submit(&body, &sig, h.from, Timestamp(now)).expect("honest batch accepted");
            if k >= 0 {
                h.bytes_up += body.len() + HTTP_OVERHEAD;
                batch_sizes.push(body.len());
            }
            if replay_log.len() < 200 && rng.chance(0.05) {
                replay_log.push((body, sig, h.from, now));
            }
        }
        // Adversaries report every bucket.
        let sb = b;
        for f in &mut fakes_a {
            f.submit(&mut hub, inn_a.iter().map(|&ip| strong(ip, sb)).collect(), now).expect("fake A batch");
        }
        // B: fresh keys spread over 40 networks, a new set each bucket.
        for i in 0..40u8 {
            let mut f = Forger::new(v4(70, u8::try_from(k + WARMUP_BUCKETS).expect("small"), i, 10));
            let _ = f.submit(&mut hub, inn_b.iter().map(|&ip| strong(ip, sb)).collect(), now);
        }
        for f in &mut colluders {
            f.submit(&mut hub, inn_c.iter().map(|&ip| strong(ip, sb)).collect(), now).expect("colluder batch");
        }
        // E: key churn, a new key each bucket in each of 5 networks.
        for net in 0..5u8 {
            churn_n += 1;
            let mut f = Forger::new(v4(81, net, 0, 10));
            let _ = f.submit(&mut hub, inn_e.iter().map(|&ip| strong(ip, sb)).collect(), now);
        }
        // F: copy this bucket's real attackers, add innocents, and from the
        // measured phase on, made-up addresses in a range with canaries.
        let real: Vec<IpAddr> = attackers.iter().filter(|a| a.start <= b && b < a.start + 3 * BUCKET_SECS).take(40).map(|a| a.ip).collect();
        for f in &mut sprayers {
            let mut s: Vec<Signal> = real.iter().map(|&ip| strong(ip, sb)).collect();
            if k >= 0 {
                s.extend(inn_f.iter().map(|&ip| strong(ip, sb)));
                s.extend((0..20).map(|_| strong(v4(77, 77, u8::try_from(rng.below(256)).expect("byte"), 1), sb)));
            }
            let _ = f.submit(&mut hub, s, now);
        }
        // D: replays of captured honest batches: at once, from elsewhere,
        // a bucket later, a day later; and forged copies.
        for (body, sig, from, at) in replay_log.iter().filter(|r| r.3 == now || r.3 + BUCKET_SECS == now) {
            for (f, t) in [(*from, now), (v4(123, 0, 0, 1), now), (*from, at + 86_400)] {
                replays += 1;
                if matches!(hub.submit(body, sig, f, Timestamp(t)), Err(Reject::Replay(_))) {
                    replays_rejected += 1;
                }
            }
            let mut bumped = body.clone();
            let pos = bumped.windows(6).position(|w| w == b"\"seq\":").expect("seq field") + 6;
            bumped[pos] = if bumped[pos] == b'9' { b'1' } else { bumped[pos] + 1 };
            forged += 1;
            if matches!(hub.submit(&bumped, sig, *from, Timestamp(now)), Err(Reject::BadSignature)) {
                forged_rejected += 1;
            }
        }

        hub.tick(Timestamp(now));

        // Clients fetch twice per bucket (every 5 minutes): a delta, then
        // usually nothing new.
        for h in &mut honest {
            for _ in 0..2 {
                let l = hub.list(if h.list_version == 0 { None } else { Some(h.list_version) }, Timestamp(now));
                let bytes = serde_json::to_vec(&l).expect("json").len() + HTTP_OVERHEAD;
                if h.list_version == 0 {
                    full_list_bytes = bytes;
                }
                h.list_version = l.version;
                if k >= 0 {
                    h.bytes_down += bytes;
                }
            }
        }

        for ip in inn_a.iter().chain(&inn_b).chain(&inn_c).chain(&inn_e).chain(&inn_f).chain(offices.iter().map(|o| &o.0)) {
            if hub.is_listed(Addr::of(*ip)) {
                innocent_listed.push(format!("{ip} at bucket {k}"));
            }
        }
        // Attackers that started two buckets ago are now 30 minutes old
        // (minus a minute): record whether they are listed.
        for a in attackers.iter_mut().filter(|a| a.start + BUCKET_SECS == b) {
            if hub.is_listed(Addr::of(a.ip)) {
                a.seen.insert(usize::MAX); // marker: listed in time
            }
        }
    }

    let measured: Vec<&Attacker> =
        attackers.iter().filter(|a| a.start >= T0 && a.start + BUCKET_SECS < T0 + MEASURED_BUCKETS * BUCKET_SECS).collect();
    let eligible: Vec<&&Attacker> = measured.iter().filter(|a| a.seen.iter().filter(|&&s| s != usize::MAX).count() >= 3).collect();
    let in_time = eligible.iter().filter(|a| a.seen.contains(&usize::MAX)).count();
    let below3 = measured.iter().filter(|a| a.seen.iter().filter(|&&s| s != usize::MAX).count() < 3).count();
    let below3_listed =
        measured.iter().filter(|a| a.seen.iter().filter(|&&s| s != usize::MAX).count() < 3 && a.seen.contains(&usize::MAX)).count();
    let stats = hub.stats();
    let hours = MEASURED_BUCKETS as f64 * BUCKET_SECS as f64 / 3600.0;
    let up: usize = honest.iter().map(|h| h.bytes_up).sum();
    let down: usize = honest.iter().map(|h| h.bytes_down).sum();
    let per_hour_up = up as f64 / HONEST as f64 / hours;
    let per_hour_down = down as f64 / HONEST as f64 / hours;
    let mean_batch = batch_sizes.iter().sum::<usize>() as f64 / batch_sizes.len().max(1) as f64;
    let rate = in_time as f64 / eligible.len().max(1) as f64;

    println!("peer-network simulation (seed {SEED:#x}, {HONEST} honest instances, {:.0}% with the policy server)", POLICY_SHARE * 100.0);
    println!(
        "  attackers measured: {} ({} new a bucket, 1-{MAX_TARGETS} targets each, 2-4 attempts a target a bucket)",
        measured.len(),
        ATTACKERS_PER_BUCKET
    );
    println!(
        "  seen by >= 3 honest instances in their first 20 minutes: {}; listed within 30 minutes: {in_time} ({:.1} %)",
        eligible.len(),
        rate * 100.0
    );
    println!("  seen by fewer than 3: {below3}; of those listed within 30 minutes: {below3_listed}");
    println!("  innocent addresses listed (offices with stale passwords, adversaries' targets): {}", innocent_listed.len());
    println!("  adversary A: {} aged fake keys in one /24 ({refused_a} registrations refused): nothing listed", fakes_a.len());
    println!("  adversary B: 40 fresh keys a bucket over 40 networks: nothing listed");
    println!("  adversary C: {} aged colluding keys in {} networks: nothing listed", colluders.len(), colluders.len());
    println!(
        "  adversary D: {replays} replays, {replays_rejected} rejected as replays; {forged} forged copies, {forged_rejected} rejected as bad signatures"
    );
    println!("  adversary E: {churn_n} churned keys in 5 networks: nothing listed");
    println!("  adversary F: 10 aged sprayers copying real attackers, then canaries: {} keys zeroed", stats.zeroed_keys);
    println!(
        "  hub: {} accepted, {} keys refused, {} rate limited, list version {}, {} listed",
        stats.accepted,
        stats.keys_refused,
        stats.rate_limited,
        hub.version(),
        hub.listed_len()
    );
    println!(
        "  bandwidth per instance: {per_hour_up:.0} B/h up (mean batch {mean_batch:.0} B), {per_hour_down:.0} B/h down (deltas every 5 min), full list once {full_list_bytes} B; HTTP overhead {HTTP_OVERHEAD} B an exchange included, TLS not"
    );
    println!(
        "  total {:.1} KB/hour per instance; simulated in {:.1} s",
        (per_hour_up + per_hour_down) / 1000.0,
        started.elapsed().as_secs_f64()
    );

    assert!(
        innocent_listed.is_empty(),
        "{} innocent listings, first: {:?}",
        innocent_listed.len(),
        &innocent_listed[..innocent_listed.len().min(10)]
    );
    assert!(eligible.len() >= 100, "too few measured attackers to judge: {}", eligible.len());
    assert!(rate >= 0.9, "only {:.1} % of attackers seen by >= 3 instances were listed within 30 minutes", rate * 100.0);
    assert_eq!(replays_rejected, replays, "every replay rejected");
    assert!(replays > 0 && forged > 0);
    assert_eq!(forged_rejected, forged, "every forged copy rejected");
    assert_eq!(stats.zeroed_keys, 10, "every sprayer zeroed");
    assert!(refused_a > 0, "the per-network key limit held");
    assert!(per_hour_up + per_hour_down < 100_000.0, "bandwidth {:.0} B/h", per_hour_up + per_hour_down);
}
