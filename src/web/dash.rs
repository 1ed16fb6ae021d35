//! The dashboard's top lists (remote domains grouped by provider, attacking
//! IPs) without touching every domain and IP on every request.
//!
//! The store answers a window's per-domain and per-IP sums in two parts
//! ([`Split`]): its settled hours (all before the hour being written),
//! shared and unchanged between requests while those hours are, and the
//! rest (that hour, uncommitted records, messages in flight), small. What
//! the lists need from the settled part (rows grouped by provider, their
//! orders by each measure, the per-IP order and protocol totals) is
//! derived once per settled value and kept here; each request then merges
//! only the rest:
//!
//! the top `n` of (settled + rest) by a measure are among the groups the
//! rest touches (with their combined counts) and the first `n` groups of
//! the settled order that the rest does not touch (whose counts are the
//! settled ones).
//!
//! (The code calls the settled part "days", after `Split::days`.)
//!
//! Capacity: [`DAY_CACHE_ENTRIES`] derived entries of each kind, the
//! oldest replaced; each holds its settled map alive.
//!
//! [`DAY_CACHE_ENTRIES`]: crate::limits::DAY_CACHE_ENTRIES

use crate::store::DomainCounts;
use crate::store::query::{Split, add4};
use crate::web::domains::DomainMap;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Entries shown per list.
pub(crate) const TOP: usize = 10;

/// One row of the domain lists: a provider group or a single domain
/// (`name` empty: deliveries without a recipient domain).
#[derive(Serialize, Default, Clone, Debug, PartialEq, Eq)]
pub(crate) struct DomainRow {
    pub name: String,
    pub grouped: bool,
    pub sent: u64,
    pub bounced: u64,
    pub deferred: u64,
    pub total: u64,
}

impl DomainRow {
    fn add(&mut self, c: &DomainCounts) {
        self.sent += c.outbound[0] + c.inbound[0];
        self.bounced += c.outbound[1] + c.inbound[1];
        self.deferred += c.deferrals;
        self.total += c.total();
    }
    fn merge(&mut self, o: &DomainRow) {
        self.sent += o.sent;
        self.bounced += o.bounced;
        self.deferred += o.deferred;
        self.total += o.total;
    }
}

/// The measures a list is ordered by.
#[derive(Clone, Copy)]
pub(crate) enum By {
    Total,
    Bounced,
    Deferred,
}

impl By {
    fn of(self, r: &DomainRow) -> u64 {
        match self {
            By::Total => r.total,
            By::Bounced => r.bounced,
            By::Deferred => r.deferred,
        }
    }
}

/// Rows grouped by provider.
fn group(map: &DomainMap, counts: &HashMap<String, DomainCounts>) -> HashMap<String, DomainRow> {
    let mut groups: HashMap<String, DomainRow> = HashMap::new();
    for (dom, c) in counts {
        let (name, grouped) = match map.group(dom, None) {
            Some(g) => (g, true),
            None => (dom.as_str(), false),
        };
        if let Some(r) = groups.get_mut(name) {
            r.add(c);
        } else {
            let mut r = DomainRow { name: name.to_owned(), grouped, ..DomainRow::default() };
            r.add(c);
            groups.insert(name.to_owned(), r);
        }
    }
    groups
}

/// Descending by the measure, then by name; rows with nothing left out.
fn order(rows: &mut Vec<DomainRow>, by: By) {
    rows.retain(|r| by.of(r) > 0);
    rows.sort_by(|a, b| by.of(b).cmp(&by.of(a)).then_with(|| a.name.cmp(&b.name)));
}

/// What the domain lists need from a window's settled hours.
struct DomainDays {
    rows: HashMap<String, DomainRow>,
    /// Group names ordered by [`By::Total`], [`By::Bounced`], [`By::Deferred`].
    orders: [Vec<String>; 3],
}

/// One attacking IP: (ip, total, per protocol).
pub(crate) type IpRow = (String, u64, [u64; 4]);

/// What the attackers' list needs from a window's settled hours.
struct IpDays {
    /// (ip, total, per protocol), most failures first.
    ordered: Vec<IpRow>,
    protos: [u64; 4],
}

/// The entries and the lock held while one is derived (concurrent
/// requests wait for the first one's entry rather than each deriving).
type Derived<K, V> = (Mutex<Vec<(Arc<HashMap<String, K>>, Arc<V>)>>, Mutex<()>);

/// The derived entries, keyed by the settled value they came from.
#[derive(Default)]
pub(crate) struct DashCache {
    domains: Derived<DomainCounts, DomainDays>,
    ips: Derived<[u64; 4], IpDays>,
}

fn derive<K, V>(cache: &Derived<K, V>, days: &Arc<HashMap<String, K>>, build: impl FnOnce() -> V) -> Arc<V> {
    let find = || {
        let g = cache.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        g.iter().find(|(k, _)| Arc::ptr_eq(k, days)).map(|(_, v)| v.clone())
    };
    if let Some(v) = find() {
        return v;
    }
    let _building = cache.1.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(v) = find() {
        return v;
    }
    let v = Arc::new(build());
    // The store does not keep sums this large either: no entry would match.
    if days.len() > crate::limits::DAY_CACHE_MAX_KEYS {
        return v;
    }
    let mut g = cache.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if g.len() >= crate::limits::DAY_CACHE_ENTRIES {
        g.remove(0);
    }
    g.push((days.clone(), v.clone()));
    v
}

/// The top lists of remote domains: busiest, most bounced, most deferred.
pub(crate) fn domain_tops(cache: &DashCache, map: &DomainMap, split: &Split<DomainCounts>) -> [Vec<DomainRow>; 3] {
    let rest = group(map, &split.rest);
    let measures = [By::Total, By::Bounced, By::Deferred];
    let Some(days) = &split.days else {
        return measures.map(|by| {
            let mut rows: Vec<DomainRow> = rest.values().cloned().collect();
            order(&mut rows, by);
            rows.truncate(TOP);
            rows
        });
    };
    let d = derive(&cache.domains, days, || {
        let rows = group(map, days);
        let orders = measures.map(|by| {
            let mut v: Vec<DomainRow> = rows.values().cloned().collect();
            order(&mut v, by);
            v.into_iter().map(|r| r.name).collect()
        });
        DomainDays { rows, orders }
    });
    // The rest's groups with their settled counts added, once for all
    // three lists; each list then orders references and copies its top.
    let merged: Vec<DomainRow> = rest
        .into_values()
        .map(|r| match d.rows.get(&r.name) {
            Some(c) => {
                let mut c = c.clone();
                c.merge(&r);
                c
            }
            None => r,
        })
        .collect();
    let names: std::collections::HashSet<&str> = merged.iter().map(|r| r.name.as_str()).collect();
    std::array::from_fn(|i| {
        let by = measures[i];
        let mut cand: Vec<&DomainRow> = merged.iter().filter(|r| by.of(r) > 0).collect();
        cand.extend(d.orders[i].iter().filter(|n| !names.contains(n.as_str())).take(TOP).filter_map(|n| d.rows.get(n)));
        cand.sort_by(|a, b| by.of(b).cmp(&by.of(a)).then_with(|| a.name.cmp(&b.name)));
        cand.into_iter().take(TOP).cloned().collect()
    })
}

/// The attacking IPs with most failures (ip, total, per protocol), and the
/// failures per protocol over all IPs.
pub(crate) fn ip_tops(cache: &DashCache, split: &Split<[u64; 4]>) -> (Vec<IpRow>, [u64; 4]) {
    let sort = |v: &mut Vec<IpRow>| v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let mut protos = [0u64; 4];
    for c in split.rest.values() {
        add4(&mut protos, c);
    }
    let Some(days) = &split.days else {
        let mut v: Vec<_> = split.rest.iter().map(|(ip, c)| (ip.clone(), c.iter().sum(), *c)).collect();
        sort(&mut v);
        v.truncate(TOP);
        return (v, protos);
    };
    let d = derive(&cache.ips, days, || {
        let mut ordered: Vec<_> = days.iter().map(|(ip, c)| (ip.clone(), c.iter().sum(), *c)).collect();
        sort(&mut ordered);
        let mut protos = [0u64; 4];
        for (_, _, c) in &ordered {
            add4(&mut protos, c);
        }
        IpDays { ordered, protos }
    });
    add4(&mut protos, &d.protos);
    let mut cand: Vec<IpRow> = split
        .rest
        .iter()
        .map(|(ip, c)| {
            let mut t = days.get(ip).copied().unwrap_or_default();
            add4(&mut t, c);
            (ip.clone(), t.iter().sum(), t)
        })
        .collect();
    cand.extend(d.ordered.iter().filter(|(ip, _, _)| !split.rest.contains_key(ip)).take(TOP).cloned());
    sort(&mut cand);
    cand.truncate(TOP);
    (cand, protos)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(sent: u64, bounced: u64, deferrals: u64) -> DomainCounts {
        DomainCounts { outbound: [sent, bounced, 0], inbound: [0; 3], deferrals }
    }

    /// The top lists from a split equal those of the merged sums, whatever
    /// the rest touches (deterministic pseudo-random cases).
    #[test]
    fn split_tops_equal_merged_tops() {
        let map = DomainMap::builtin();
        // Grouped providers (several domains each), plain domains, no domain.
        let fixed = ["gmail.com", "googlemail.com", "outlook.com", "hotmail.com", ""];
        let names: Vec<String> =
            (0..40).map(|i| if i % 4 == 0 { fixed[i / 4 % fixed.len()].to_owned() } else { format!("d{i}.example") }).collect();
        let mut seed = 7u64;
        let mut next = |n: u64| {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) % n
        };
        for round in 0..300 {
            let mut days: HashMap<String, DomainCounts> = HashMap::new();
            let mut rest: HashMap<String, DomainCounts> = HashMap::new();
            let mut ip_days: HashMap<String, [u64; 4]> = HashMap::new();
            let mut ip_rest: HashMap<String, [u64; 4]> = HashMap::new();
            for _ in 0..next(60) {
                let n = &names[usize::try_from(next(40)).unwrap_or(0)];
                days.entry(n.clone()).or_default().add(&counts(next(50), next(4), next(6)));
                ip_days.entry(format!("10.0.0.{}", next(30))).or_default()[usize::try_from(next(4)).unwrap_or(0)] += next(20);
            }
            for _ in 0..next(8) {
                let n = &names[usize::try_from(next(40)).unwrap_or(0)];
                rest.entry(n.clone()).or_default().add(&counts(next(80), next(6), next(9)));
                ip_rest.entry(format!("10.0.0.{}", next(34))).or_default()[usize::try_from(next(4)).unwrap_or(0)] += next(30);
            }
            // The reference: everything merged, then ordered.
            let mut merged = days.clone();
            for (k, c) in &rest {
                merged.entry(k.clone()).or_default().add(c);
            }
            let all = group(&map, &merged);
            let want = [By::Total, By::Bounced, By::Deferred].map(|by| {
                let mut v: Vec<DomainRow> = all.values().cloned().collect();
                order(&mut v, by);
                v.truncate(TOP);
                v
            });
            let cache = DashCache::default();
            let days = Arc::new(days);
            let split = Split { days: Some(days.clone()), rest: rest.clone() };
            assert_eq!(domain_tops(&cache, &map, &split), want, "round {round}");
            // Again, from the derived entry.
            assert_eq!(domain_tops(&cache, &map, &split), want, "round {round} (cached)");
            let mut ips = merged_ips(&ip_days, &ip_rest);
            ips.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            let protos = ips.iter().fold([0u64; 4], |mut p, (_, _, c)| {
                for i in 0..4 {
                    p[i] += c[i];
                }
                p
            });
            ips.truncate(TOP);
            let split = Split { days: Some(Arc::new(ip_days)), rest: ip_rest };
            assert_eq!(ip_tops(&cache, &split), (ips.clone(), protos), "round {round}");
            assert_eq!(ip_tops(&cache, &split), (ips, protos), "round {round} (cached)");
        }
    }

    fn merged_ips(days: &HashMap<String, [u64; 4]>, rest: &HashMap<String, [u64; 4]>) -> Vec<(String, u64, [u64; 4])> {
        let mut m = days.clone();
        for (k, c) in rest {
            let e = m.entry(k.clone()).or_default();
            for i in 0..4 {
                e[i] += c[i];
            }
        }
        m.into_iter().map(|(k, c)| (k, c.iter().sum(), c)).collect()
    }
}
