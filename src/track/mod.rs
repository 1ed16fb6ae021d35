//! The message tracker: a bounded table of in-flight messages keyed by
//! (syslog host, Postfix instance, queue ID) that turns parsed events into
//! counted [`EventRec`]s and finished per-recipient [`DeliveryRec`]s, following
//! DESIGN.md's counting definitions.
//!
//! Bounds: at most [`MAX_INFLIGHT`] messages (oldest activity evicted, counted
//! in `evictions`), [`MAX_RCPT_PER_MSG`] recipients each, text fields cut to
//! [`MAX_FIELD`]/[`MAX_RESPONSE`]. Time is the log's own time, passed in with
//! each event; nothing here reads the clock or does I/O. The whole table is
//! serialisable so it can be committed with each checkpoint.

pub mod record;

use crate::clock::Timestamp;
use crate::limits::{HANDOFF_GRACE_SECS, MAX_FIELD, MAX_INFLIGHT, MAX_LINKS, MAX_RCPT_PER_MSG, MAX_RESPONSE, STALE_AFTER_SECS};
use crate::parse::{Daemon, Delivery, Event, Kind, QueueId, Status};
pub use record::{DeliveryRec, Direction, EventKind, EventRec, NoticeKind, Outcome, Proto};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};

/// Where a message came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum Origin {
    /// Began before the log, or not yet known.
    Unknown,
    Client,
    Pickup,
    /// Postfix-generated (bounce/delay/success notice).
    Notification,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Rcpt {
    to: String,
    orig_to: Option<String>,
    outcome: Option<Outcome>,
    time: i64,
    deferrals: u32,
    attempts: u32,
    direction: Option<Direction>,
    relay: Option<String>,
    dsn: Option<String>,
    response: Option<String>,
    /// Handed to a content filter on this host: `Some(child)` once linked
    /// (not a delivery), or awaiting the child ID in `awaiting`.
    handed_off: bool,
    awaiting: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Msg {
    qid: String,
    origin: Origin,
    /// A line that only exists for messages entering the queue in this log
    /// (client=, pickup, cleanup) was seen.
    began_in_log: bool,
    queue_time: Option<i64>,
    first_seen: i64,
    last_seen: i64,
    sender: Option<String>,
    message_id: Option<String>,
    nrcpt: u32,
    qmgr_seen: bool,
    queued_counted: bool,
    deferral_counted: bool,
    /// Earlier queue IDs of a content-filter chain, client-facing first.
    chain: Vec<String>,
    rcpts: Vec<Rcpt>,
    notification_qid: Option<String>,
    removed: bool,
    client_ip: Option<String>,
    sasl_user: Option<String>,
    /// The client was on this host (loopback): a candidate re-injection.
    local_client: bool,
}

/// Lifetime tracker counters (not windowed).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct TrackerCounters {
    pub evictions: u64,
    pub stale: u64,
    pub rcpt_dropped: u64,
    pub preceded_log: u64,
}

/// What the tracker produced since the last drain.
#[derive(Debug, Default)]
pub struct Output {
    pub events: Vec<EventRec>,
    pub deliveries: Vec<DeliveryRec>,
}

impl Output {
    pub fn is_empty(&self) -> bool {
        self.events.is_empty() && self.deliveries.is_empty()
    }
}

/// Keys are already FNV-1a hashes: pass them through instead of hashing
/// them again with `SipHash`.
#[derive(Default, Clone, Copy)]
pub struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = crate::hash::Fnv::resume(self.0);
        h.write(bytes);
        self.0 = h.finish();
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type KeyMap<V> = HashMap<u64, V, std::hash::BuildHasherDefault<KeyHasher>>;

/// The in-flight table. Invariant: `msgs.len() <= MAX_INFLIGHT`,
/// `links.len() <= MAX_LINKS`.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Tracker {
    msgs: KeyMap<Msg>,
    /// child key -> parent key for `queued as` hops not yet linked.
    links: KeyMap<u64>,
    link_order: VecDeque<u64>,
    pub counters: TrackerCounters,
    /// Log time of the latest event seen.
    now: i64,
    #[serde(skip)]
    out: Output,
    /// Events since the last sweep. Persisted: where sweeps fall must not
    /// depend on how the input was split between runs.
    since_sweep: u32,
}

/// FNV-1a: a stable hash, since keys are persisted across runs.
fn key(host: &[u8], instance: &[u8], qid: &[u8]) -> u64 {
    let mut h = crate::hash::Fnv::default();
    for part in [host, b"\0", instance, b"\0", qid] {
        h.write(part);
    }
    h.finish()
}

/// Owned, length-capped, lossy-UTF-8 copy of a log field.
fn text(s: &[u8], cap: usize) -> String {
    let s = &s[..s.len().min(cap)];
    match std::str::from_utf8(s) {
        Ok(v) => v.to_owned(),
        Err(e) => {
            // A cut in the middle of a character: keep the valid prefix.
            let valid = e.valid_up_to();
            if e.error_len().is_none() {
                String::from_utf8_lossy(&s[..valid]).into_owned()
            } else {
                String::from_utf8_lossy(s).into_owned()
            }
        }
    }
}

/// Sets `slot` to [`text`] of `s`, reusing the allocation already there.
fn set_text(slot: &mut Option<String>, s: Option<&[u8]>, cap: usize) {
    match (slot.as_mut(), s) {
        (_, None) => *slot = None,
        (Some(cur), Some(s)) => {
            let s = &s[..s.len().min(cap)];
            if let Ok(v) = std::str::from_utf8(s) {
                cur.clear();
                cur.push_str(v);
            } else {
                *cur = text(s, cap);
            }
        }
        (None, Some(s)) => *slot = Some(text(s, cap)),
    }
}

/// Ends a text cut at `cap` bytes with "…" (within `cap`), so that a
/// response shown or searched is not taken for the whole of it (the raw
/// line holds the rest). Rare: kept out of the tracker's hot path.
#[cold]
#[inline(never)]
fn mark_cut(s: &mut String, cap: usize) {
    const MARK: char = '…';
    while s.len() + MARK.len_utf8() > cap {
        if s.pop().is_none() {
            return;
        }
    }
    s.push(MARK);
}

/// The lower-cased domain of an address (`""` when it has none).
pub(crate) fn domain_of(addr: &[u8]) -> String {
    let d = memchr::memrchr(b'@', addr).map_or(&b""[..], |i| &addr[i + 1..]);
    let mut s = text(d, MAX_FIELD);
    s.make_ascii_lowercase();
    s
}

fn is_loopback(addr: &[u8]) -> bool {
    addr.starts_with(b"127.") || addr == b"::1" || addr == b"::ffff:127.0.0.1"
}

/// `relay=` names a host on this machine (content filter, local LMTP).
fn relay_is_local(relay: &[u8]) -> bool {
    match (memchr::memchr(b'[', relay), memchr::memchr(b']', relay)) {
        (Some(o), Some(c)) if o < c => is_loopback(&relay[o + 1..c]),
        _ => relay.starts_with(b"127.") || relay.starts_with(b"localhost"),
    }
}

fn transport_direction(d: Daemon) -> Option<Direction> {
    match d {
        Daemon::Smtp => Some(Direction::Outbound),
        Daemon::Local | Daemon::Virtual | Daemon::Lmtp | Daemon::Pipe => Some(Direction::Inbound),
        _ => None,
    }
}

impl Msg {
    fn new(qid: &[u8], now: i64) -> Msg {
        Msg {
            qid: text(qid, 32),
            origin: Origin::Unknown,
            began_in_log: false,
            queue_time: None,
            first_seen: now,
            last_seen: now,
            sender: None,
            message_id: None,
            nrcpt: 0,
            qmgr_seen: false,
            queued_counted: false,
            deferral_counted: false,
            chain: Vec::new(),
            rcpts: Vec::new(),
            notification_qid: None,
            removed: false,
            client_ip: None,
            sasl_user: None,
            local_client: false,
        }
    }

    fn counts_as_client(&self) -> bool {
        matches!(self.origin, Origin::Client | Origin::Pickup)
    }

    /// Postfix-generated mail: its recipients are not deliveries.
    fn is_generated(&self) -> bool {
        self.origin == Origin::Notification || (self.origin == Origin::Unknown && self.began_in_log && self.chain.is_empty())
    }

    fn queue_time(&self) -> i64 {
        self.queue_time.unwrap_or(self.first_seen)
    }

    /// The delivery view of each recipient (final or pending), plus
    /// placeholders for recipients announced by `nrcpt` but never seen.
    fn base(&self) -> DeliveryRec {
        let mut ids = Vec::with_capacity(self.chain.len() + 1);
        ids.extend(self.chain.iter().cloned());
        ids.push(self.qid.clone());
        DeliveryRec {
            time: Timestamp(self.queue_time()),
            queue_time: Timestamp(self.queue_time()),
            queue_ids: ids,
            message_id: self.message_id.clone(),
            sender: self.sender.clone(),
            notification_queue_id: self.notification_qid.clone(),
            sasl_user: self.sasl_user.clone(),
            client_ip: self.client_ip.clone(),
            ..DeliveryRec::default()
        }
    }

    /// The delivery of recipient `r` on top of the message fields in `base`.
    fn fill(mut d: DeliveryRec, r: Rcpt) -> DeliveryRec {
        if let Some(o) = r.outcome {
            d.time = Timestamp(r.time);
            d.outcome = Some(o);
        }
        d.recipient = Some(r.to);
        d.orig_recipient = r.orig_to;
        d.direction = r.direction;
        d.relay = r.relay;
        d.dsn = r.dsn;
        d.response = r.response;
        d.attempts = r.attempts;
        d.deferrals = r.deferrals;
        d
    }

    /// Consumes the message into its deliveries (decided ones, and pending
    /// ones if `include_pending`), moving rather than copying the text: the
    /// last recipient takes the message's fields, the others get copies.
    fn into_deliveries(mut self, include_pending: bool, out: &mut Vec<DeliveryRec>) {
        if self.is_generated() {
            return;
        }
        let rcpts = std::mem::take(&mut self.rcpts);
        let mut keep = rcpts.into_iter().filter(|r| !r.handed_off && (r.outcome.is_some() || include_pending)).peekable();
        if keep.peek().is_none() {
            return;
        }
        let qt = Timestamp(self.queue_time());
        let mut ids = std::mem::take(&mut self.chain);
        ids.push(std::mem::take(&mut self.qid));
        let base = DeliveryRec {
            time: qt,
            queue_time: qt,
            queue_ids: ids,
            message_id: self.message_id,
            sender: self.sender,
            notification_queue_id: self.notification_qid,
            sasl_user: self.sasl_user,
            client_ip: self.client_ip,
            ..DeliveryRec::default()
        };
        while let Some(r) = keep.next() {
            if keep.peek().is_none() {
                out.push(Msg::fill(base, r));
                return;
            }
            out.push(Msg::fill(base.clone(), r));
        }
    }

    /// The current view of an in-flight message: decided and pending
    /// recipients, plus placeholders for recipients announced by `nrcpt`
    /// but not seen yet.
    fn view(&self, out: &mut Vec<DeliveryRec>) {
        if self.is_generated() {
            return;
        }
        let base = self.base();
        for r in self.rcpts.iter().filter(|r| !r.handed_off) {
            out.push(Msg::fill(base.clone(), r.clone()));
        }
        // A re-injected copy (chain non-empty) carries the recipients of its
        // chain: its announced ones are pending too.
        if self.counts_as_client() {
            let seen = u32::try_from(self.rcpts.len()).unwrap_or(u32::MAX);
            for _ in seen..self.nrcpt.min(u32::try_from(MAX_RCPT_PER_MSG).unwrap_or(u32::MAX)) {
                out.push(base.clone());
            }
        }
    }
}

impl Tracker {
    pub fn new() -> Self {
        Tracker::default()
    }

    /// Messages currently in flight.
    pub fn len(&self) -> usize {
        self.msgs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.msgs.is_empty()
    }

    /// What was produced since the last drain, without taking it.
    pub fn pending(&self) -> &Output {
        &self.out
    }

    /// Takes what was produced since the last call.
    pub fn drain(&mut self) -> Output {
        // The next batch is about as large: keep the capacity.
        let next = Output { events: Vec::with_capacity(self.out.events.len()), deliveries: Vec::with_capacity(self.out.deliveries.len()) };
        std::mem::replace(&mut self.out, next)
    }

    /// The deliveries of messages still in flight, as `stats`/`search`
    /// should see them now (final outcomes and pending recipients).
    pub fn inflight_deliveries(&self) -> Vec<DeliveryRec> {
        let mut v = Vec::new();
        for m in self.msgs.values() {
            m.view(&mut v);
        }
        // Deterministic order whatever the hash map's.
        v.sort_by(|a, b| (a.time, &a.queue_ids, &a.recipient).cmp(&(b.time, &b.queue_ids, &b.recipient)));
        // Readers share this view until the next line is fed: no room to spare.
        v.shrink_to_fit();
        v
    }

    fn emit(&mut self, time: i64, kind: EventKind) {
        self.out.events.push(EventRec { time: Timestamp(time), kind });
    }

    /// Feeds one parsed event dated `t` (already resolved to UTC).
    pub fn push(&mut self, ev: &Event<'_>, t: Timestamp) {
        let t = t.0;
        if t > self.now {
            self.now = t;
        }
        let (host, inst) = (ev.host, ev.instance);
        match ev.kind {
            Kind::Connect { .. } if ev.daemon == Daemon::Smtpd => self.emit(t, EventKind::Connection),
            Kind::Reject { qid, stage, .. } => {
                self.emit(t, EventKind::Rejected);
                // The whole message was refused: it never reaches the queue.
                if let Some(q) = qid
                    && matches!(stage, b"END-OF-MESSAGE" | b"header" | b"body" | b"DATA" | b"CONNECT")
                {
                    let k = key(host, inst, q.0);
                    if self.msgs.get(&k).is_some_and(|m| !m.qmgr_seen) {
                        self.msgs.remove(&k);
                    }
                }
            }
            Kind::SaslFailed { client, .. } => {
                self.emit(t, EventKind::AuthFailure { ip: text(client.addr, 64), proto: Proto::Smtp, count: 1 });
            }
            Kind::AuthFailed { rip, attempts, .. } => {
                let proto = match ev.daemon {
                    Daemon::ImapLogin => Proto::Imap,
                    Daemon::Pop3Login => Proto::Pop3,
                    _ => Proto::Other,
                };
                let ip = rip.map_or_else(|| "unknown".to_owned(), |r| text(r, 64));
                self.emit(t, EventKind::AuthFailure { ip, proto, count: attempts.max(1) });
            }
            Kind::Client { qid, client, sasl_user } => {
                let k = self.fresh(host, inst, qid);
                let local = is_loopback(client.addr);
                let linked_parent = self.take_link(k);
                let m = self.get(k, qid, t);
                m.origin = Origin::Client;
                m.began_in_log = true;
                m.queue_time = Some(t);
                m.client_ip = Some(text(client.addr, 64));
                m.sasl_user = sasl_user.map(|u| text(u, MAX_FIELD));
                m.local_client = local;
                if let Some(p) = linked_parent {
                    self.link(p, k);
                }
            }
            Kind::Pickup { qid, from } => {
                let k = self.fresh(host, inst, qid);
                let m = self.get(k, qid, t);
                m.origin = Origin::Pickup;
                m.began_in_log = true;
                m.queue_time = Some(t);
                if m.sender.is_none() {
                    m.sender = Some(text(from, MAX_FIELD));
                }
            }
            Kind::MessageId { qid, message_id } => {
                let k = key(host, inst, qid.0);
                let m = self.get(k, qid, t);
                m.began_in_log = true;
                let id = crate::parse::scan::unbracket(message_id);
                m.message_id = Some(text(id, MAX_FIELD));
            }
            Kind::QueueActive { qid, from, nrcpt, .. } => {
                let k = key(host, inst, qid.0);
                let m = self.get(k, qid, t);
                if !m.qmgr_seen {
                    m.qmgr_seen = true;
                    m.sender = Some(text(from, MAX_FIELD));
                    m.nrcpt = nrcpt;
                    if m.counts_as_client() && !m.queued_counted && m.chain.is_empty() {
                        m.queued_counted = true;
                        let qt = m.queue_time();
                        self.emit(qt, EventKind::Queued(1));
                    }
                }
            }
            Kind::Delivery(d) => self.delivery(host, inst, ev.daemon, &d, t),
            Kind::Expired { qid, .. } => {
                let k = key(host, inst, qid.0);
                let m = self.get(k, qid, t);
                for r in &mut m.rcpts {
                    if r.outcome.is_none() && !r.handed_off {
                        r.outcome = Some(Outcome::Expired);
                        r.time = t;
                    }
                }
            }
            Kind::Removed { qid } | Kind::AdminRemoved { qid } => {
                let k = key(host, inst, qid.0);
                if let Some(m) = self.msgs.get_mut(&k) {
                    m.removed = true;
                    m.last_seen = t;
                    if !m.rcpts.iter().any(|r| r.awaiting.is_some()) {
                        self.finalize(k, false);
                    }
                }
            }
            Kind::Notification { qid, kind, new_qid } => {
                if let Some(n) = NoticeKind::from_notice(kind) {
                    self.emit(t, EventKind::Notification(n));
                }
                let new_id = text(new_qid.0, 32);
                let pk = key(host, inst, qid.0);
                if let Some(p) = self.msgs.get_mut(&pk) {
                    p.notification_qid = Some(new_id);
                }
                let ck = key(host, inst, new_qid.0);
                let c = self.get(ck, new_qid, t);
                c.origin = Origin::Notification;
                c.began_in_log = true;
            }
            _ => {}
        }
        self.since_sweep += 1;
        if self.since_sweep >= 4096 {
            self.since_sweep = 0;
            self.sweep();
        }
    }

    /// A `client=`/pickup line starts a new message: if the key still holds
    /// an older message that already went through the queue, the ID was
    /// reused; finish the old one first.
    fn fresh(&mut self, host: &[u8], inst: &[u8], qid: QueueId<'_>) -> u64 {
        let k = key(host, inst, qid.0);
        if self.msgs.get(&k).is_some_and(|m| m.qmgr_seen || m.removed) {
            self.finalize(k, false);
        }
        k
    }

    fn get(&mut self, k: u64, qid: QueueId<'_>, t: i64) -> &mut Msg {
        if !self.msgs.contains_key(&k) && self.msgs.len() >= MAX_INFLIGHT {
            self.evict();
        }
        let m = self.msgs.entry(k).or_insert_with(|| Msg::new(qid.0, t));
        m.last_seen = m.last_seen.max(t);
        m
    }

    fn take_link(&mut self, child: u64) -> Option<u64> {
        let p = self.links.remove(&child)?;
        self.link_order.retain(|&c| c != child);
        Some(p)
    }

    fn delivery(&mut self, host: &[u8], inst: &[u8], daemon: Daemon, d: &Delivery<'_>, t: i64) {
        if d.status == Status::Probe {
            return;
        }
        let k = key(host, inst, d.qid.0);
        let m = self.get(k, d.qid, t);
        let pos = if let Some(p) = m.rcpts.iter().position(|r| r.to.as_bytes().eq_ignore_ascii_case(&d.to[..d.to.len().min(MAX_FIELD)])) {
            p
        } else {
            if m.rcpts.len() >= MAX_RCPT_PER_MSG {
                self.counters.rcpt_dropped += 1;
                return;
            }
            // Most messages have one recipient: room for one, not the four
            // a first push reserves (a block too large for the allocator's
            // quick small-size bins).
            if m.rcpts.is_empty() {
                m.rcpts.reserve_exact(1);
            }
            m.rcpts.push(Rcpt {
                to: text(d.to, MAX_FIELD),
                orig_to: d.orig_to.map(|o| text(o, MAX_FIELD)),
                outcome: None,
                time: t,
                deferrals: 0,
                attempts: 0,
                direction: None,
                relay: None,
                dsn: None,
                response: None,
                handed_off: false,
                awaiting: None,
            });
            m.rcpts.len() - 1
        };
        let filter_hop = d.status == Status::Sent && d.queued_as.is_some() && relay_is_local(d.relay) && daemon != Daemon::Local;
        let r = &mut m.rcpts[pos];
        r.attempts += 1;
        if let Some(dir) = transport_direction(daemon)
            && !filter_hop
        {
            r.direction = Some(dir);
        }
        // A recipient's later attempts overwrite these in place.
        set_text(&mut r.relay, (d.relay != b"none").then_some(d.relay), MAX_FIELD);
        set_text(&mut r.dsn, d.dsn, 16);
        set_text(&mut r.response, Some(d.response), MAX_RESPONSE);
        if d.response.len() > MAX_RESPONSE
            && let Some(resp) = r.response.as_mut()
        {
            mark_cut(resp, MAX_RESPONSE);
        }
        let mut deferral = false;
        match d.status {
            Status::Sent => {
                r.outcome = Some(Outcome::Sent);
                r.time = t;
            }
            Status::Bounced => {
                r.outcome = Some(Outcome::Bounced);
                r.time = t;
            }
            Status::Expired => {
                r.outcome = Some(Outcome::Expired);
                r.time = t;
            }
            Status::Deferred => {
                r.deferrals += 1;
                deferral = true;
            }
            Status::Probe => {}
        }
        if deferral {
            let domain = domain_of(d.to);
            self.emit(t, EventKind::Deferral { domain });
            let m = self.msgs.get_mut(&k).expect("message inserted above");
            if m.counts_as_client() && !m.deferral_counted {
                m.deferral_counted = true;
                let qt = m.queue_time();
                self.emit(qt, EventKind::WithDeferral(1));
            }
        }
        if filter_hop && let Some(child) = d.queued_as {
            let ck = key(host, inst, child.0);
            let parent_qid = self.msgs.get(&k).map(|m| m.qid.clone());
            let already_linked = self.msgs.get(&ck).is_some_and(|c| c.chain.last().is_some_and(|q| Some(q) == parent_qid.as_ref()));
            if already_linked {
                // Another recipient of the same hop: the copy carries it.
                if let Some(m) = self.msgs.get_mut(&k) {
                    m.rcpts[pos].handed_off = true;
                }
            } else if self.msgs.get(&ck).is_some_and(|c| c.local_client && c.origin == Origin::Client && c.chain.is_empty()) {
                if let Some(m) = self.msgs.get_mut(&k) {
                    m.rcpts[pos].handed_off = true;
                }
                self.link(k, ck);
            } else {
                if let Some(m) = self.msgs.get_mut(&k) {
                    m.rcpts[pos].awaiting = Some(text(child.0, 32));
                }
                if self.links.len() >= MAX_LINKS
                    && let Some(old) = self.link_order.pop_front()
                {
                    self.links.remove(&old);
                }
                self.links.insert(ck, k);
                self.link_order.push_back(ck);
            }
        }
    }

    /// The child `ck` is the copy re-injected by a content filter for the
    /// parent `pk`: it inherits the parent's identity and is not a new
    /// client message.
    fn link(&mut self, pk: u64, ck: u64) {
        let child_qid = self.msgs.get(&ck).map(|c| c.qid.clone());
        let Some(parent) = self.msgs.get_mut(&pk) else { return };
        let mut awaiting_left = false;
        for r in &mut parent.rcpts {
            if r.awaiting.is_some() && r.awaiting == child_qid {
                r.awaiting = None;
                r.handed_off = true;
            }
            awaiting_left |= r.awaiting.is_some();
        }
        // Once every announced recipient went to the copy, the parent's own
        // deliveries and in-flight view are empty: its fields move over.
        let all_handed_off = parent.qmgr_seen
            && parent.rcpts.len() >= usize::try_from(parent.nrcpt).unwrap_or(usize::MAX)
            && parent.rcpts.iter().all(|r| r.handed_off);
        let mut chain = parent.chain.clone();
        chain.push(parent.qid.clone());
        let (origin, qt, dc) = (parent.origin, parent.queue_time(), parent.deferral_counted);
        let (sender, mid, sasl, ip) = if all_handed_off {
            (parent.sender.take(), parent.message_id.take(), parent.sasl_user.take(), parent.client_ip.take())
        } else {
            (parent.sender.clone(), parent.message_id.clone(), parent.sasl_user.clone(), parent.client_ip.clone())
        };
        let parent_done = parent.removed && !awaiting_left;
        let Some(c) = self.msgs.get_mut(&ck) else { return };
        let retract = c.queued_counted.then(|| c.queue_time());
        let retract_def = c.deferral_counted.then(|| c.queue_time());
        c.chain = chain;
        c.origin = origin;
        c.queue_time = Some(qt);
        c.queued_counted = true;
        c.deferral_counted = dc || c.deferral_counted;
        if c.sender.is_none() {
            c.sender = sender;
        }
        if c.message_id.is_none() {
            c.message_id = mid;
        }
        c.sasl_user = sasl.or(c.sasl_user.take());
        c.client_ip = ip;
        if let Some(at) = retract {
            self.emit(at, EventKind::Queued(-1));
        }
        if let Some(at) = retract_def {
            // Counted for the copy; the parent's own flag decides now.
            self.emit(at, EventKind::WithDeferral(-1));
            if !dc {
                self.emit(qt, EventKind::WithDeferral(1));
                if let Some(p) = self.msgs.get_mut(&pk) {
                    p.deferral_counted = true;
                }
            }
        }
        if parent_done {
            self.finalize(pk, false);
        }
    }

    /// Removes message `k`, emitting its deliveries. `dropped`: it left for
    /// capacity or staleness, so undecided recipients are not reported.
    fn finalize(&mut self, k: u64, dropped: bool) {
        let Some(mut m) = self.msgs.remove(&k) else { return };
        for r in &mut m.rcpts {
            // A hop into a filter whose re-injected copy never showed up
            // is a delivery to that host after all.
            r.awaiting = None;
        }
        if m.origin == Origin::Unknown && !m.began_in_log && m.chain.is_empty() {
            self.counters.preceded_log += 1;
        }
        let include_pending = !dropped && m.removed;
        m.into_deliveries(include_pending, &mut self.out.deliveries);
    }

    fn evict(&mut self) {
        let mut ages: Vec<(i64, u64)> = self.msgs.iter().map(|(k, m)| (m.last_seen, *k)).collect();
        let n = (MAX_INFLIGHT / 16).max(1).min(ages.len());
        if n == 0 {
            return;
        }
        ages.select_nth_unstable(n - 1);
        for &(_, k) in &ages[..n] {
            self.finalize(k, true);
            self.counters.evictions += 1;
        }
    }

    /// Finishes stale messages and filter hops whose copy never appeared.
    fn sweep(&mut self) {
        let now = self.now;
        let due: Vec<(u64, bool)> = self
            .msgs
            .iter()
            .filter_map(|(k, m)| {
                if m.removed && m.last_seen + HANDOFF_GRACE_SECS < now {
                    Some((*k, false))
                } else if m.last_seen + STALE_AFTER_SECS < now {
                    Some((*k, true))
                } else {
                    None
                }
            })
            .collect();
        for (k, stale) in due {
            if stale {
                self.counters.stale += 1;
            }
            self.finalize(k, stale);
        }
    }
}

#[cfg(test)]
mod tests;
