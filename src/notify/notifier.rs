//! The [`Notifier`]: a thread of its own that delivers submitted
//! notifications to every channel that wants them, so blocking HTTP and
//! SMTP never run on the daemon's event loop.
//!
//! Bounds and rules, each counted in the channel's [`ChannelStatus`]:
//! - the queue holds [`NOTIFY_QUEUE`] notifications; [`Notifier::submit`]
//!   never waits: when the queue is full the notification is `dropped`;
//! - a notification dated more than [`Timing::max_age_secs`] before now is
//!   `stale` and not sent (a history import replays old insights);
//! - a channel sends at most [`Timing::rate_max`] per
//!   [`Timing::rate_window_secs`] (a fixed window from its first send);
//!   the rest are `suppressed` and, when the window ends, announced in one
//!   "N more notifications suppressed" message;
//! - a failed send is retried after each delay of [`Timing::retry_delays`]
//!   unless the error is permanent; at most [`NOTIFY_MAX_RETRYING`] wait
//!   (a failure beyond that is given up at once); given up = `failed`;
//! - [`Notifier::shutdown`] stops accepting, tries what is queued or
//!   waiting for a retry until [`Timing::shutdown_grace`] has passed
//!   (`dropped` after that), and returns.

use super::config::{ChannelKind, SENDMAIL_PATH, SLACK_API_URL, SmtpSecurity};
use super::{ChannelConfig, Notification, NotifyConfig, SendError, Severity, format, http, net, smtp};
use crate::clock::Timestamp;
use crate::limits::{
    NOTIFY_MAX_AGE_SECS, NOTIFY_MAX_RETRYING, NOTIFY_MAX_TEXT, NOTIFY_MAX_TITLE, NOTIFY_QUEUE, NOTIFY_RATE_MAX, NOTIFY_RATE_WINDOW_SECS,
    NOTIFY_RETRY_DELAYS_SECS, NOTIFY_SHUTDOWN_GRACE_MS, NOTIFY_TICK_SECS, NOTIFY_TIMEOUT_SECS,
};
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// The notifier's time parameters and its wall clock. Defaults come from
/// `limits.rs`; tests shrink them to milliseconds and freeze the clock.
#[derive(Clone)]
pub struct Timing {
    /// Wait before each retry; its length is the number of retries.
    pub retry_delays: Vec<Duration>,
    pub rate_max: u32,
    pub rate_window_secs: i64,
    /// Limit of one whole delivery (connect, TLS, request, answer).
    pub timeout: Duration,
    pub shutdown_grace: Duration,
    /// How often the thread looks for ended rate windows when idle.
    pub tick: Duration,
    pub max_age_secs: i64,
    /// Wall clock for status times, e-mail dates, rate windows and staleness.
    pub clock: Arc<dyn Fn() -> Timestamp + Send + Sync>,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            retry_delays: NOTIFY_RETRY_DELAYS_SECS.iter().map(|s| Duration::from_secs(*s)).collect(),
            rate_max: NOTIFY_RATE_MAX,
            rate_window_secs: NOTIFY_RATE_WINDOW_SECS,
            timeout: Duration::from_secs(NOTIFY_TIMEOUT_SECS),
            shutdown_grace: Duration::from_millis(NOTIFY_SHUTDOWN_GRACE_MS),
            tick: Duration::from_secs(NOTIFY_TICK_SECS),
            max_age_secs: NOTIFY_MAX_AGE_SECS,
            clock: Arc::new(crate::clock::now),
        }
    }
}

impl std::fmt::Debug for Timing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Timing")
            .field("retry_delays", &self.retry_delays)
            .field("rate_max", &self.rate_max)
            .field("rate_window_secs", &self.rate_window_secs)
            .field("timeout", &self.timeout)
            .field("shutdown_grace", &self.shutdown_grace)
            .field("tick", &self.tick)
            .field("max_age_secs", &self.max_age_secs)
            .finish_non_exhaustive()
    }
}

/// The last failure of a channel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LastError {
    pub time: Timestamp,
    /// For the admin; no secrets.
    pub text: String,
}

/// What the UI shows per channel. Counts are since the notifier started
/// (or the channel was added).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ChannelStatus {
    pub name: String,
    pub enabled: bool,
    pub last_success: Option<Timestamp>,
    pub last_error: Option<LastError>,
    /// Delivered (test notifications included).
    pub sent: u64,
    /// Given up: a permanent error, or the retries ran out.
    pub failed: u64,
    /// Never attempted: queue full, or shutting down.
    pub dropped: u64,
    /// Held back by the rate limit (announced in a summary message).
    pub suppressed: u64,
    /// Dated too long ago to be news (history replay).
    pub stale: u64,
    /// Waiting for a retry now.
    pub retrying: u32,
}

/// How one channel sends, built once from its configuration: the TLS
/// trust of a network channel (an unreadable CA file is kept as the error
/// every send reports).
pub(crate) enum Transport {
    Net(Result<Arc<rustls::ClientConfig>, SendError>),
    Sendmail,
}

impl Transport {
    pub(crate) fn new(c: &ChannelConfig) -> Transport {
        match &c.kind {
            ChannelKind::Sendmail { .. } => Transport::Sendmail,
            _ => Transport::Net(net::tls_client(c.ca_file.as_deref())),
        }
    }

    /// Delivers `n` through channel `c` (the configuration this transport
    /// was built from) within `timeout`. Errors are redacted.
    pub(crate) fn send(&self, c: &ChannelConfig, n: &Notification, now: Timestamp, timeout: Duration) -> Result<(), SendError> {
        self.send_raw(c, n, now, timeout).map_err(|e| redact(c, e))
    }

    fn send_raw(&self, c: &ChannelConfig, n: &Notification, now: Timestamp, timeout: Duration) -> Result<(), SendError> {
        let tls = match self {
            Transport::Net(tls) => Some(tls.as_ref().map_err(Clone::clone)?),
            Transport::Sendmail => None,
        };
        match (tls, &c.kind) {
            (Some(tls), ChannelKind::SlackBot { token, channel, api_url }) => {
                let base = api_url.as_deref().unwrap_or(SLACK_API_URL).trim_end_matches('/');
                let auth = format!("Bearer {}", token.expose());
                let url = format!("{base}/chat.postMessage");
                let answer = http::post_json(&url, &[("Authorization", &auth)], &format::slack_body(n, Some(channel)), Some(tls), timeout)?;
                http::slack_ok(&http::expect_2xx(answer)?)
            }
            (Some(tls), ChannelKind::SlackWebhook { url }) => {
                http::expect_2xx(http::post_json(url.expose(), &[], &format::slack_body(n, None), Some(tls), timeout)?).map(drop)
            }
            (Some(tls), ChannelKind::Webhook { url, headers }) => {
                let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.expose())).collect();
                http::expect_2xx(http::post_json(url.expose(), &h, &format::webhook_body(n), Some(tls), timeout)?).map(drop)
            }
            (Some(tls), ChannelKind::Smtp { host, port, security, username, password, from, to }) => {
                let message = format::email(n, from, to, now, unique(now));
                let sub = smtp::Submission {
                    host,
                    port: port.unwrap_or_else(|| security.default_port()),
                    security: *security,
                    auth: username.as_deref().zip(password.as_ref().map(super::Secret::expose)),
                    from,
                    to,
                    tls: (*security != SmtpSecurity::None).then(|| Arc::clone(tls)),
                };
                smtp::send(&sub, &message, timeout)
            }
            (None, ChannelKind::Sendmail { path, from, to }) => {
                let message = format::email(n, from, to, now, unique(now));
                smtp::sendmail(path.as_deref().unwrap_or(Path::new(SENDMAIL_PATH)), from, &message, timeout)
            }
            _ => Err(SendError::Config("transport does not match the channel".into())),
        }
    }
}

/// Random bits for a Message-ID (the process and the time if the OS has
/// no random source: unique enough for one message a second).
fn unique(now: Timestamp) -> u64 {
    let mut b = [0u8; 8];
    if getrandom::fill(&mut b).is_err() {
        return u64::from(std::process::id()) << 32 ^ now.0.cast_unsigned();
    }
    u64::from_le_bytes(b)
}

/// `e` with the channel's secrets blanked from every text.
fn redact(c: &ChannelConfig, e: SendError) -> SendError {
    match e {
        SendError::Config(t) => SendError::Config(c.redact(&t)),
        SendError::Transport(t) => SendError::Transport(c.redact(&t)),
        SendError::Status { status, body } => SendError::Status { status, body: c.redact(&body) },
        SendError::Slack(t) => SendError::Slack(c.redact(&t)),
        SendError::Smtp { code, text } => SendError::Smtp { code, text: c.redact(&text) },
        SendError::Sendmail(t) => SendError::Sendmail(c.redact(&t)),
        SendError::Shutdown => SendError::Shutdown,
    }
}

/// A channel ready to send.
struct Channel {
    cfg: ChannelConfig,
    transport: Transport,
}

/// What the submitting side, the UI and the thread share.
struct State {
    channels: Arc<Vec<Arc<Channel>>>,
    /// Invariant: one entry per channel, same order.
    status: Vec<ChannelStatus>,
    /// `None` once shutting down.
    tx: Option<SyncSender<Arc<Notification>>>,
}

struct Shared {
    state: Mutex<State>,
    timing: Timing,
    /// Set by `shutdown`: the time until which pending sends are tried.
    deadline: OnceLock<Instant>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves counters at worst stale.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn with_status(&self, name: &str, f: impl FnOnce(&mut ChannelStatus)) {
        let mut st = self.lock();
        if let Some(s) = st.status.iter_mut().find(|s| s.name == name) {
            f(s);
        }
    }

    fn channel(&self, name: &str) -> Option<Arc<Channel>> {
        self.lock().channels.iter().find(|c| c.cfg.name == name).cloned()
    }

    /// Records the outcome of one attempt; `gave_up` counts a failure as final.
    fn record(&self, name: &str, r: &Result<(), SendError>, gave_up: bool) {
        let now = (self.timing.clock)();
        self.with_status(name, |s| match r {
            Ok(()) => {
                s.sent += 1;
                s.last_success = Some(now);
            }
            Err(e) => {
                s.last_error = Some(LastError { time: now, text: e.to_string() });
                if gave_up {
                    s.failed += 1;
                }
            }
        });
    }
}

fn build(config: &NotifyConfig, old: &[ChannelStatus]) -> (Arc<Vec<Arc<Channel>>>, Vec<ChannelStatus>) {
    let channels: Vec<Arc<Channel>> =
        config.channels.iter().map(|c| Arc::new(Channel { cfg: c.clone(), transport: Transport::new(c) })).collect();
    let status = config
        .channels
        .iter()
        .map(|c| {
            let mut s = old.iter().find(|s| s.name == c.name).cloned().unwrap_or_default();
            s.name.clone_from(&c.name);
            s.enabled = c.enabled;
            s
        })
        .collect();
    (Arc::new(channels), status)
}

/// Delivers notifications on its own thread. Share it (`Arc`) between the
/// daemon (submit, shutdown) and the UI (status, test, reconfigure).
pub struct Notifier {
    shared: Arc<Shared>,
    /// The thread's "I have finished" (it drops its end).
    done: Mutex<Option<(Receiver<()>, std::thread::JoinHandle<()>)>>,
}

impl Notifier {
    /// Starts the thread. Channels whose transport cannot be built (an
    /// unreadable CA file) are kept: each send reports that error.
    ///
    /// # Errors
    /// The thread could not be started.
    pub fn start(config: &NotifyConfig, timing: Timing) -> std::io::Result<Notifier> {
        let (tx, rx) = std::sync::mpsc::sync_channel(NOTIFY_QUEUE);
        let (channels, status) = build(config, &[]);
        let shared = Arc::new(Shared { state: Mutex::new(State { channels, status, tx: Some(tx) }), timing, deadline: OnceLock::new() });
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let s = Arc::clone(&shared);
        let handle = std::thread::Builder::new().name("notify".into()).spawn(move || {
            Worker { shared: s, retries: VecDeque::new(), windows: HashMap::new() }.run(&rx);
            drop(done_tx);
        })?;
        Ok(Notifier { shared, done: Mutex::new(Some((done_rx, handle))) })
    }

    /// Queues `n` for every enabled channel whose minimum severity it
    /// reaches. Never blocks: answers `false` (and counts it) when the
    /// notification is stale, the queue is full or the notifier stopped;
    /// also `false` when no channel wants it.
    pub fn submit(&self, mut n: Notification) -> bool {
        // Bounded before queueing: the queue's memory depends on it.
        if n.title.len() > NOTIFY_MAX_TITLE {
            n.title = format::cut(&n.title, NOTIFY_MAX_TITLE).into_owned();
        }
        if n.text.len() > NOTIFY_MAX_TEXT {
            n.text = format::cut(&n.text, NOTIFY_MAX_TEXT).into_owned();
        }
        if n.kind.len() > 64 || n.link.as_ref().is_some_and(|l| l.len() > 2_048) {
            n.kind = format::cut(&n.kind, 64).into_owned();
            n.link = n.link.filter(|l| l.len() <= 2_048);
        }
        let now = (self.shared.timing.clock)();
        let stale = n.time.0 < now.0.saturating_sub(self.shared.timing.max_age_secs);
        let mut st = self.shared.lock();
        let st = &mut *st;
        let wanted: Vec<usize> = st.channels.iter().enumerate().filter(|(_, c)| c.cfg.wants(n.severity)).map(|(i, _)| i).collect();
        if wanted.is_empty() {
            return false;
        }
        let queued = !stale
            && st.tx.as_ref().is_some_and(|tx| match tx.try_send(Arc::new(n)) {
                Ok(()) => true,
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
            });
        if !queued {
            for i in wanted {
                if stale {
                    st.status[i].stale += 1;
                } else {
                    st.status[i].dropped += 1;
                }
            }
        }
        queued
    }

    /// Sends a test notification through channel `name` now, on the
    /// caller's thread (enabled or not, whatever its minimum severity),
    /// and records the outcome in its status.
    ///
    /// # Errors
    /// No such channel, or why the delivery failed.
    pub fn send_test(&self, name: &str, severity: Severity) -> Result<(), SendError> {
        let Some(ch) = self.shared.channel(name) else { return Err(SendError::Config(format!("no channel named '{name}'"))) };
        let now = (self.shared.timing.clock)();
        let r = ch.transport.send(&ch.cfg, &Notification::test(severity, now), now, self.shared.timing.timeout);
        self.shared.record(name, &r, true);
        r
    }

    /// One status per configured channel, in the configuration's order.
    pub fn status(&self) -> Vec<ChannelStatus> {
        self.shared.lock().status.clone()
    }

    /// Replaces the channels (after the settings changed). Status and
    /// rate windows stay with channels that keep their name; retries for
    /// channels that are gone are dropped when due.
    pub fn reconfigure(&self, config: &NotifyConfig) {
        // Built outside the lock (CA files are read): `submit` never waits
        // for that. Counts that changed meanwhile are carried over below.
        let old = self.status();
        let (channels, mut status) = build(config, &old);
        let mut st = self.shared.lock();
        for s in &mut status {
            if let (Some(now), Some(then)) = (st.status.iter().find(|x| x.name == s.name), old.iter().find(|x| x.name == s.name)) {
                s.sent += now.sent.saturating_sub(then.sent);
                s.failed += now.failed.saturating_sub(then.failed);
                s.dropped += now.dropped.saturating_sub(then.dropped);
                s.suppressed += now.suppressed.saturating_sub(then.suppressed);
                s.stale += now.stale.saturating_sub(then.stale);
                s.retrying = now.retrying;
                s.last_success = now.last_success;
                s.last_error.clone_from(&now.last_error);
            }
        }
        st.channels = channels;
        st.status = status;
    }

    /// Stops accepting, tries what is pending for at most the grace time,
    /// and returns once the thread has finished (or the grace time and
    /// half a second more have passed). Later calls do nothing.
    pub fn shutdown(&self) {
        let _ = self.shared.deadline.set(Instant::now() + self.shared.timing.shutdown_grace);
        self.shared.lock().tx = None;
        let Some((done, handle)) = self.done.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take() else { return };
        match done.recv_timeout(self.shared.timing.shutdown_grace + Duration::from_millis(500)) {
            Err(RecvTimeoutError::Disconnected) => {
                let _ = handle.join();
            }
            // Still inside a send whose timeout did not fit the grace
            // (name resolution cannot be bounded): leave it behind.
            Ok(()) | Err(RecvTimeoutError::Timeout) => {}
        }
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// A notification waiting to be tried again.
struct Retry {
    channel: String,
    n: Arc<Notification>,
    /// Retries done so far.
    done: usize,
    due: Instant,
}

/// One channel's rate window.
struct Window {
    start: Timestamp,
    sent: u32,
    suppressed: u32,
    worst: Severity,
    first_title: String,
}

/// The thread's own state.
struct Worker {
    shared: Arc<Shared>,
    /// Invariant: at most `NOTIFY_MAX_RETRYING` entries.
    retries: VecDeque<Retry>,
    /// Per channel name; pruned to the configured channels.
    windows: HashMap<String, Window>,
}

impl Worker {
    fn timing(&self) -> &Timing {
        &self.shared.timing
    }

    fn run(mut self, rx: &Receiver<Arc<Notification>>) {
        loop {
            let next = self.retries.iter().map(|r| r.due).min();
            let wait = next.map_or(self.timing().tick, |d| d.saturating_duration_since(Instant::now()).min(self.timing().tick));
            match rx.recv_timeout(wait) {
                Ok(n) => self.dispatch(&n),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            self.retry_due(false);
            self.end_windows();
        }
        // Shutting down: the queue is drained (its items went through
        // `dispatch` above); now every retry gets one last try.
        self.retry_due(true);
    }

    /// Time for one attempt: the usual timeout, or what is left of the
    /// shutdown grace. `None` when the grace has run out.
    fn budget(&self) -> Option<Duration> {
        match self.shared.deadline.get() {
            None => Some(self.timing().timeout),
            Some(d) => Some(d.saturating_duration_since(Instant::now()).min(self.timing().timeout)).filter(|t| !t.is_zero()),
        }
    }

    fn dispatch(&mut self, n: &Arc<Notification>) {
        let channels = Arc::clone(&self.shared.lock().channels);
        for ch in channels.iter().filter(|c| c.cfg.wants(n.severity)) {
            self.end_window(&ch.cfg.name);
            let now = (self.timing().clock)();
            let max = self.timing().rate_max;
            let w = self.windows.entry(ch.cfg.name.clone()).or_insert_with(|| Window {
                start: now,
                sent: 0,
                suppressed: 0,
                worst: Severity::Info,
                first_title: String::new(),
            });
            if w.sent >= max {
                if w.suppressed == 0 {
                    w.first_title = format::cut(&n.title, 200).into_owned();
                }
                w.suppressed += 1;
                w.worst = w.worst.max(n.severity);
                self.shared.with_status(&ch.cfg.name, |s| s.suppressed += 1);
                continue;
            }
            w.sent += 1;
            self.attempt(ch, Arc::clone(n), 0);
        }
    }

    /// One try; on failure, a retry is scheduled or the notification given up.
    fn attempt(&mut self, ch: &Channel, n: Arc<Notification>, done: usize) {
        let name = &ch.cfg.name;
        let Some(timeout) = self.budget() else {
            self.shared.with_status(name, |s| s.dropped += 1);
            return;
        };
        let now = (self.timing().clock)();
        let r = ch.transport.send(&ch.cfg, &n, now, timeout);
        let stopping = self.shared.deadline.get().is_some();
        let retry = matches!(&r, Err(e) if !e.is_permanent())
            && done < self.timing().retry_delays.len()
            && self.retries.len() < NOTIFY_MAX_RETRYING
            && !stopping;
        self.shared.record(name, &r, !retry);
        if retry {
            let due = Instant::now() + self.timing().retry_delays[done];
            self.retries.push_back(Retry { channel: name.clone(), n, done: done + 1, due });
            self.shared.with_status(name, |s| s.retrying += 1);
        }
    }

    /// Tries the retries that are due (all of them when `all`).
    fn retry_due(&mut self, all: bool) {
        let now = Instant::now();
        let (due, wait): (VecDeque<Retry>, VecDeque<Retry>) =
            std::mem::take(&mut self.retries).into_iter().partition(|r| all || r.due <= now);
        self.retries = wait;
        for r in due {
            self.shared.with_status(&r.channel, |s| s.retrying = s.retrying.saturating_sub(1));
            match self.shared.channel(&r.channel) {
                Some(ch) if ch.cfg.enabled => self.attempt(&ch, r.n, r.done),
                Some(_) => self.shared.with_status(&r.channel, |s| s.dropped += 1),
                None => {}
            }
        }
    }

    /// Ends every rate window whose time is up (and forgets channels that
    /// are gone).
    fn end_windows(&mut self) {
        let names: Vec<String> = self.windows.keys().cloned().collect();
        for name in names {
            self.end_window(&name);
        }
    }

    /// If `name`'s window is over: announces what it suppressed (the
    /// announcement opens the next window) or forgets the window.
    fn end_window(&mut self, name: &str) {
        let now = (self.timing().clock)();
        let len = self.timing().rate_window_secs;
        let Some(w) = self.windows.get(name) else { return };
        if now.0 < w.start.0.saturating_add(len) {
            return;
        }
        let Some(w) = self.windows.remove(name) else { return };
        let Some(ch) = self.shared.channel(name) else { return };
        if w.suppressed == 0 || !ch.cfg.enabled {
            return;
        }
        let minutes = len / 60;
        let per = if minutes >= 1 { format!("{minutes} minutes") } else { format!("{len} seconds") };
        let summary = Notification {
            kind: "suppressed".into(),
            severity: w.worst,
            title: format!("{} more notifications suppressed", w.suppressed),
            text: format!(
                "postlens sends at most {} notifications per {per} to this channel. {} more were held back; the first was \"{}\". The insights page lists them all.",
                self.timing().rate_max,
                w.suppressed,
                w.first_title
            ),
            link: None,
            time: now,
        };
        self.windows
            .insert(name.to_owned(), Window { start: now, sent: 1, suppressed: 0, worst: Severity::Info, first_title: String::new() });
        self.attempt(&ch, Arc::new(summary), 0);
    }
}
