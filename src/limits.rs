//! Every capacity, size and age bound in postlens, in one place.
//!
//! Anything that grows with input is capped here; each cap names what happens
//! when it is reached (eviction rule) so memory stays flat on a small box.

/// Longest log line accepted. Longer lines are counted as malformed and
/// skipped (Postfix truncates its own lines well below this, at
/// `line_length_limit` = 2048 by default; headers and long replies stay under).
pub const MAX_LINE: usize = 16 * 1024;

/// Read buffer of the line reader.
pub const READ_BUF: usize = 64 * 1024;

/// Messages tracked in flight (seen but not finished) per tracker. Each entry
/// is bounded (see the per-entry caps below) to a few hundred bytes, so the
/// table stays under ~8 MiB. Eviction: when full, the 1/16 of entries with
/// the oldest activity are finalised with what is known (final outcomes are
/// kept, undecided recipients dropped) and counted in `evictions`.
pub const MAX_INFLIGHT: usize = 16_384;

/// Recipients remembered per message; further recipients of one message are
/// counted as dropped (a mass mailing to thousands of recipients is still one
/// entry of bounded size).
pub const MAX_RCPT_PER_MSG: usize = 256;

/// Longest address, message-id or relay kept (bytes); longer values are cut.
pub const MAX_FIELD: usize = 320;

/// Longest remote response text kept per recipient (bytes).
pub const MAX_RESPONSE: usize = 400;

/// Messages with no activity for this long (log time) are finalised as
/// stale: longer than Postfix's default `maximal_queue_lifetime` of 5 days.
pub const STALE_AFTER_SECS: i64 = 8 * 86_400;

/// A finished message whose hop into a content filter named a `queued as`
/// ID not yet seen waits this long (log time) for that ID before its
/// recipients count as delivered to the filter host.
pub const HANDOFF_GRACE_SECS: i64 = 300;

/// Pending `queued as` links (child ID → parent) remembered; oldest dropped.
pub const MAX_LINKS: usize = 4_096;

/// IPs listed in `auth_failures.by_ip` of `stats` (most failures first).
pub const MAX_AUTH_IPS_REPORTED: usize = 1_000;

/// Events per sealed block.
pub const BLOCK_RECORDS: usize = 4_096;

/// Deliveries per sealed block (an import batch of `COMMIT_LINES` holds
/// about 1,200, so most are sealed straight from their batch).
pub const BLOCK_DELIVERIES: usize = 1_024;

/// redb page cache: its read cache and write buffer together (the write
/// buffer takes at most half). redb defaults to 1 GiB; a Pi has less. The
/// daemon's working set is the paths from the roots to the newest blocks
/// and rollup rows; long reads (raw blocks, history) stream past the cache
/// anyway. Every page held costs a little more on musl (4 KiB + header
/// lands in a larger size class): 2 MiB is ~2.5 MiB of RSS. Measured at 2
/// and 4 MiB: the same soak and import throughput, 2 MiB less RSS.
pub const DB_CACHE_BYTES: usize = 2 * 1024 * 1024;

/// Cached per-domain and per-IP sums over a window's settled hours (long
/// dashboard windows; `store::query::SumCaches`, and the dashboard's top
/// lists derived from them, `web::dash`), of each kind. Eviction: the
/// least recently used; an entry whose hours changed is slid or rebuilt.
pub const DAY_CACHE_ENTRIES: usize = 4;

/// Domains or IPs in one cached sum at most (a few MiB with the derived
/// lists); a larger sum is computed per request instead of kept.
pub const DAY_CACHE_MAX_KEYS: usize = 20_000;

/// A write transaction is committed at least this often while importing.
pub const COMMIT_INTERVAL_MS: u64 = 500;

/// ... or after this many lines, whichever comes first.
pub const COMMIT_LINES: u64 = 20_000;

/// Batches queued for the writer thread. Each batch holds at most
/// `COMMIT_LINES` lines' worth of records, so this bounds the memory between
/// parsing and committing.
pub const WRITER_QUEUE: usize = 1;

/// The same for `postlens import`: one more batch may wait, so the ingesting
/// thread goes on while the writer takes longer over a batch than usual
/// (1M-line import 0.551 -> 0.523 s, eight interleaved runs; peak RSS
/// +1.1 MiB, about 20 MiB in all). The daemon keeps one: its soak peaks
/// near its 24 MiB budget.
pub const IMPORT_WRITER_QUEUE: usize = 2;

/// Chunk size of the read-ahead thread, and how many chunks may be in
/// flight: bounds the read-ahead memory to about 1 MiB.
pub const READ_CHUNK: usize = 256 * 1024;
pub const READ_AHEAD_CHUNKS: usize = 2;

/// Chunk size of the parse-ahead thread (`ingest::ahead`, imports and
/// archives). Each chunk travels with its parsed lines (232 bytes a line,
/// 1.6 times the text of a typical line), so its chunks are half the size:
/// the `READ_AHEAD_CHUNKS` + 3 that may exist take about 0.7 MiB.
pub const PARSE_CHUNK: usize = 128 * 1024;

/// Parsed lines handed over at a time by the parse-ahead thread (a chunk
/// holds about 900 typical lines): a chunk of many short lines goes over
/// in several hand-overs, so the parsed lines in flight stay below about
/// (`READ_AHEAD_CHUNKS` + 3) x 1024 x 232 bytes, 1.2 MiB, whatever the
/// input (a chunk of empty lines would otherwise be 30 MiB of them).
pub const PARSE_LINES: usize = 1024;

/// First wait before retrying a failed commit (doubles up to 30 s).
pub const WRITE_RETRY_MS: u64 = 500;

/// Source positions remembered in memory between hand-over to the writer
/// and the commit (one per followed file, archive, socket or journal).
pub const MAX_SOURCES: usize = 1_024;

/// Clients served at once per socket; more are refused.
pub const MAX_SOCKET_CLIENTS: usize = 64;

/// Stream sources hand over lines in chunks of about this many bytes, at
/// most `STREAM_QUEUE` chunks queued (about 1 MiB in all).
pub const STREAM_CHUNK: usize = 64 * 1024;
pub const STREAM_QUEUE: usize = 16;

/// Lines read per source per turn of the daemon's loop, so one busy source
/// (a history import) cannot starve the others or signal handling.
pub const PUMP_BUDGET: usize = 20_000;

/// Non-durable commits while data flows; a durable one at least this often.
pub const LIVE_COMMIT_MS: u64 = 200;
pub const DURABLE_COMMIT_SECS: u64 = 60;

/// Raw log text per stored block (before compression).
pub const RAW_BLOCK_BYTES: usize = 256 * 1024;
/// A one-shot import's ingesting thread keeps the two working buffers of
/// its last raw block (`store::raw::encode_block_reusing`); one that grew
/// past this (a block of very long lines) is dropped after use instead.
pub const RAW_SCRATCH_KEEP: usize = 2 * RAW_BLOCK_BYTES;

/// A batch is committed once it holds this much raw log text, whatever its
/// line count: bounds the memory a batch of long lines can take.
pub const RAW_BATCH_BYTES: usize = 1024 * 1024;

/// A one-shot import's batch bound in lines. Its raw blocks are sealed as
/// they fill, so `RAW_BATCH_BYTES` bounds their compressed size (usually a
/// quarter of the text): a batch can take more lines than the daemon's,
/// and needs fewer commits, each with its fixed costs (tracker state,
/// counter rows, open blocks written only to be merged). 1M-line glibc
/// import, six interleaved runs each, mean wall and peak RSS: 1 MiB of
/// plain text per batch 0.543-0.548 s, 21.8 MiB; 12,000 lines 0.533 s,
/// 22.3 MiB; 16,000 lines 0.522 s, 23.5 MiB (at most 23.9); 20,000 lines
/// 0.507-0.522 s, 23.8-24.0 MiB (at most 25.4: over the 24 MiB budget);
/// 40,000 lines no faster, 26-28 MiB.
pub const IMPORT_COMMIT_LINES: u64 = 16_000;

/// While a batch after batch is committed (history import, a burst), one
/// commit in this interval is durable: bounds the pages redb cannot reuse.
pub const DURABLE_BULK_MS: u64 = 2_000;

/// The daemon checks for free space worth compacting at most this often
/// (after a durable commit with nothing queued); compaction rewrites the
/// file and pauses ingestion meanwhile. Imports compact when they end.
pub const COMPACT_EVERY_SECS: u64 = 3_600;

/// A running daemon's `status --json` reports the store's space as
/// measured at most this long ago (measuring reads every table and waits
/// for the writer; the soak's feeder polls `status` continuously).
pub const STATUS_SPACE_MAX_AGE_SECS: i64 = 60;

/// A control-socket request is a command line: anything longer is refused.
pub const MAX_CONTROL_REQUEST: u64 = 64 * 1024;

/// Largest answer the CLI reads from the daemon (a `search --json` of many
/// deliveries); a longer one is cut and fails to decode, clearly.
pub const MAX_CONTROL_ANSWER: u64 = 64 * 1024 * 1024;

/// A stored block never decompresses to more than this, whatever its bytes
/// say (corrupt or hostile data cannot exhaust memory).
pub const MAX_DECODED_BLOCK: u64 = 64 * 1024 * 1024;

/// Web UI: worker threads serving HTTP (reads never block ingestion:
/// they use redb read transactions).
pub const HTTP_WORKERS: usize = 4;

/// Pending connections the HTTP listener queues before refusing.
pub const HTTP_BACKLOG: u32 = 128;

/// Web UI: largest request body accepted (forms are small; 413 beyond).
pub const MAX_FORM_BODY: u64 = 64 * 1024;

/// Web UI: query/form fields and cookies read per request.
pub const MAX_FORM_FIELDS: usize = 64;

/// Public detective: searches allowed per client IP per window.
pub const PUBLIC_SEARCHES: u32 = 20;
pub const PUBLIC_WINDOW_SECS: i64 = 600;

/// Public detective: client IPs remembered by its rate limiter (when full,
/// expired windows are reused first, then the oldest window is dropped).
pub const PUBLIC_LIMITER_CLIENTS: usize = 4_096;

/// Message detective: results shown per search (newest first).
pub const DETECTIVE_RESULTS: usize = 200;

/// Message detective: raw log lines shown behind one delivery, and the
/// raw text scanned for them.
pub const DETECTIVE_RAW_LINES: usize = 200;
pub const DETECTIVE_RAW_SCAN_BYTES: u64 = 256 * 1024 * 1024;

/// Raw log page: lines per page; a download streams at most this many
/// (one decoded block in memory at a time).
pub const RAW_PAGE_LINES: usize = 500;
pub const RAW_DOWNLOAD_LINES: usize = 2_000_000;

/// Escalations kept from the public detective (oldest dropped).
pub const MAX_ESCALATIONS: usize = 1_000;

/// A browser session lasts this long from login (absolute, not sliding).
pub const SESSION_TTL_SECS: i64 = 7 * 86_400;

/// Sessions kept per user; a new login beyond this ends the first of the
/// user's sessions made. Bounds the `sessions` table together with
/// [`MAX_USERS`].
pub const MAX_SESSIONS_PER_USER: usize = 10;

/// API tokens kept per user; a new token beyond this revokes the first of
/// the user's tokens made, and the command says so.
pub const MAX_TOKENS_PER_USER: usize = 10;

/// Users in one installation; `create_user` refuses more. Accounts are made
/// by an administrator, so refusing (not evicting) is the right rule.
pub const MAX_USERS: usize = 256;

/// Longest password accepted, in bytes: argon2 pre-hashes its input, but a
/// cap keeps request bodies and prompts small and is far above any real
/// passphrase.
pub const MAX_PASSWORD_BYTES: usize = 1_024;

/// Failed logins per key (client IP, and e-mail address) within
/// [`LOGIN_WINDOW_SECS`] after which further attempts are refused (HTTP 429)
/// until the window passes.
pub const LOGIN_MAX_FAILURES: u32 = 5;

/// The rate limiter's window, counted from a key's first failure.
pub const LOGIN_WINDOW_SECS: i64 = 15 * 60;

/// Keys (IPs and e-mail addresses) the login limiter remembers: about 40
/// bytes each, so 160 KiB. When full, an expired entry is reused, else the
/// entry with the fewest failures (ties: the oldest window) is evicted and
/// counted in `LoginLimiter::evictions`.
pub const LIMITER_CAPACITY: usize = 4_096;

/// Bars one stacked chart draws at most: about 1.8 units per bar on the
/// 664-unit plot. Beyond this, runs of adjacent buckets are summed into
/// one bar (its tooltip names the first and last bucket).
pub const CHART_MAX_BARS: usize = 360;

/// Series one stacked chart draws at most (the legend's room); further
/// series are left out and counted in the description.
pub const CHART_MAX_SERIES: usize = 8;

/// Rows one horizontal bar list draws at most; further rows are left out
/// and counted in the description.
pub const CHART_MAX_ROWS: usize = 50;

/// Parts one proportion bar draws at most; further parts are left out and
/// counted in the description (and do not count towards the 100 %).
pub const CHART_MAX_PARTS: usize = 12;

/// Patterns one parsed file may hold: generous (the built-in file has a
/// few hundred) yet keeps a map under about 1 MiB.
pub const DOMAIN_MAP_MAX_ENTRIES: usize = 10_000;

/// Largest mapping file accepted, in bytes; callers reading the file
/// should stop there too.
pub const DOMAIN_MAP_MAX_FILE_BYTES: usize = 1024 * 1024;

/// Notifications waiting for the notifier's thread. Each is capped to
/// about 4 KiB (title and text below), so the queue stays under ~1 MiB.
/// When full, `Notifier::submit` drops the new one and counts it per channel.
pub const NOTIFY_QUEUE: usize = 256;

/// Failed notifications waiting for a retry, over all channels. When
/// full, a further failure is given up at once (counted as failed).
pub const NOTIFY_MAX_RETRYING: usize = 64;

/// Waits before the retries of a failed notification (three retries).
pub const NOTIFY_RETRY_DELAYS_SECS: [u64; 3] = [30, 120, 600];

/// A channel sends at most this many notifications per window; the rest
/// are folded into one "N more notifications suppressed" message sent when
/// the window ends.
pub const NOTIFY_RATE_MAX: u32 = 20;
pub const NOTIFY_RATE_WINDOW_SECS: i64 = 3_600;

/// One delivery (connect, TLS, request, answer) must finish within this.
pub const NOTIFY_TIMEOUT_SECS: u64 = 10;

/// At shutdown, pending notifications are tried for at most this long
/// (the daemon must exit within 2 s of SIGTERM).
pub const NOTIFY_SHUTDOWN_GRACE_MS: u64 = 1_500;

/// The notifier looks for ended rate windows at least this often.
pub const NOTIFY_TICK_SECS: u64 = 30;

/// A notification dated more than this before now is not sent (counted as
/// stale): a history import replays old insights, which are not news.
pub const NOTIFY_MAX_AGE_SECS: i64 = 6 * 3_600;

/// Channels, extra headers per webhook, and recipients per e-mail channel.
pub const NOTIFY_MAX_CHANNELS: usize = 16;
pub const NOTIFY_MAX_HEADERS: usize = 16;
pub const NOTIFY_MAX_RECIPIENTS: usize = 20;

/// A notification's title and text are cut to these many bytes.
pub const NOTIFY_MAX_TITLE: usize = 200;
pub const NOTIFY_MAX_TEXT: usize = 4_000;

/// Bytes of an HTTP answer read (Slack's JSON, a webhook's error text).
pub const NOTIFY_MAX_RESPONSE: u64 = 64 * 1024;

/// Largest CA file read (a PEM bundle of a few hundred certificates).
pub const NOTIFY_MAX_CA_FILE: u64 = 1024 * 1024;

/// Segments of uncommitted records a daemon shares with its readers (each
/// reader between two commits adds one; beyond this they are joined).
pub const OVERLAY_MAX_SEGMENTS: usize = 64;

/// A reader's overlay copies the raw lines not yet handed to the writer one
/// by one (about twice their size in memory, up to a whole batch in a
/// burst). Beyond this much text the daemon commits them first, and the
/// reader finds them in the store: a trickle of live lines stays below it.
pub const OVERLAY_MAX_RAW_BYTES: usize = 256 * 1024;

// --- Insights (src/insights) ---------------------------------------------

/// Stored insights; beyond this archived ones are dropped first, then the
/// oldest (`insights::record`).
pub const MAX_INSIGHTS: usize = 500;

/// Keys the engine remembers as active (a key quiet for longer than the
/// quiet period is forgotten first; then the least recently found).
pub const MAX_ACTIVE_KEYS: usize = 2_000;

/// SASL users whose sending baseline is kept (least active dropped first).
pub const MAX_BASELINE_USERS: usize = 5_000;

/// Seconds between two live evaluations of the detectors.
pub const INSIGHTS_EVERY_SECS: u64 = 60;

/// Hours of deliveries the compromised-account detector holds in memory at
/// once (a busy server's ~25 k deliveries; longer spans are read in turns).
pub const INSIGHT_READ_HOURS: i64 = 6;

/// Per SASL user and hour, distinct messages and recipients remembered
/// (beyond this the counts stop growing: far past any threshold).
pub const INSIGHT_MAX_DISTINCT: usize = 100_000;

/// Raw lines the remote-block detector reads per evaluation step, and the
/// examples an insight keeps (messages, log lines).
pub const INSIGHT_SCAN_LINES: usize = 200_000;
pub const INSIGHT_EXAMPLES: usize = 5;

/// DNSBL look-ups: zones per check, seconds to wait for an answer.
pub const MAX_DNSBL_ZONES: usize = 32;
pub const DNS_TIMEOUT_MS: u64 = 2_000;

// --- Local protection (src/protect) --------------------------------------

/// Addresses (IPv4, or IPv6 /64) whose recent failures are remembered. The
/// table is allocated at start-up (about 0.5 KB an entry, resident only
/// once used: `protect::table`) so recording a failure never allocates.
/// When full: entries idle for longer than the window go first, then the
/// unblocked entry seen longest ago, then the block ending first
/// (`protect::Protect::evictions` counts them).
pub const PROTECT_MAX_IPS: usize = 8_192;

/// Distinct truncated password hashes (`pwhash` of Dovecot's policy
/// requests) and distinct logins remembered per address. The rule's
/// thresholds may not exceed these; when a set is full the entry seen
/// longest ago is replaced (the count stays saturated, which is all the
/// rule needs).
pub const PROTECT_MAX_HASHES_PER_IP: usize = 8;
pub const PROTECT_MAX_LOGINS_PER_IP: usize = 8;

/// Buckets of an address's sliding failure window (window / buckets is the
/// granularity: 10 minutes for the default hour).
pub const PROTECT_WINDOW_BUCKETS: usize = 6;

/// Addresses with a recent successful login (never blocked). When full,
/// expired entries go first, then the oldest success.
pub const PROTECT_MAX_SUCCESS_IPS: usize = 16_384;

/// Largest policy request body read: Dovecot's JSON is a few hundred bytes;
/// the cap keeps a misbehaving client from making the server buffer more.
pub const PROTECT_MAX_REQUEST_BYTES: usize = 8 * 1024;

/// Allowlist and `mynetworks` entries (CIDRs) in the protection config.
pub const PROTECT_MAX_NETWORKS: usize = 256;

/// Postfix policy delegation connections served at once (one thread each;
/// Postfix opens one per busy smtpd process); more are closed at once, and
/// Postfix answers per its `default_action` for them.
pub const POSTFIX_POLICY_MAX_CONNECTIONS: usize = 64;

/// An idle Postfix policy connection is closed after this long (Postfix's
/// own `max_idle` is 300 s).
pub const POSTFIX_POLICY_IDLE_SECS: u64 = 330;

/// Sending domains a health-check run looks at (each costs a dozen DNS
/// questions); further domains from the logs or settings are left out.
pub const CHECK_MAX_DOMAINS: usize = 20;

/// Sender domains counted when the health checks pick the busiest ones
/// from a week of outbound mail; further new domains are not counted.
pub const CHECK_MAX_SENDER_DOMAINS: usize = 10_000;

/// DKIM selectors looked up per domain in a health-check run.
pub const CHECK_MAX_SELECTORS: usize = 8;

/// Raw log bytes a health-check run scans for opendkim's
/// "DKIM-Signature field added" (selectors in use), newest first.
pub const CHECK_DKIM_SCAN_BYTES: u64 = 32 << 20;

/// The store compacts its file (gives free pages back) when at least this
/// much of its disk blocks are free pages and ...
pub const COMPACT_MIN_FREE_BYTES: u64 = 16 << 20;

/// ... at least this fraction (1/N) of the file is free.
pub const COMPACT_FREE_PART: u64 = 8;

/// Compaction needs no read transaction open: readers already reading get
/// this long to finish (new ones wait); after that it is skipped.
pub const COMPACT_WAIT_READERS_MS: u64 = 1_000;

/// After this many lines committed since the last compaction check (a
/// history import, a catch-up) ...
pub const COMPACT_AFTER_LINES: u64 = 500_000;

/// ... the writer checks for free space as soon as it has had no job for
/// this long: the burst is over (while lines flow, a batch comes at least
/// every `COMMIT_INTERVAL_MS`; a writer faster than the parser waits up
/// to that long between batches).
pub const COMPACT_IDLE_MS: u64 = 1_000;

/// A running daemon compacts only files taking up to this much disk: redb's
/// compaction holds every page's path in memory at once (~110 B per 4 KiB
/// page: +14.5 MB of RSS for a 540 MB store, measured) and shuts readers
/// and the shutdown's last commit out while it runs (4 s for that store).
/// `import` compacts any size when it ends.
pub const COMPACT_LIVE_MAX_BYTES: u64 = 96 << 20;

/// While `postlens import` runs, the static builds' allocator keeps up to
/// this many bytes of freed large blocks (at most `IMPORT_KEPT_BLOCKS` of
/// them) for the next large allocation instead of unmapping them: batches
/// of records, encoded blocks and serialised tracker state come and go
/// every commit, and mapping them afresh cost a 1M-line import 33,000 page
/// faults (4,000 with them kept) and a TLB flush on both cores per unmap.
/// The daemon keeps none: its soak already peaks near its 24 MiB budget
/// (README "Figures").
pub const IMPORT_KEPT_BYTES: usize = 4 << 20;
pub const IMPORT_KEPT_BLOCKS: usize = 16;

/// Set by `postlens import` for its whole run: see `IMPORT_KEPT_BYTES`.
pub static BULK_IMPORT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
