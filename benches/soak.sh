#!/usr/bin/env bash
# benches/soak.sh - soak test of the daemon's LIVE path: a month of a busy server, fed into a
# followed mail.log as fast as the daemon keeps up, with rotation by rename.
#
# Environment:
#   SOAK_LINES        lines to feed (default 10000000)
#   SOAK_DAYS         days the log spans (default 30)
#   SOAK_SEED         generator seed (default 7)
#   SOAK_ROTATE       rotate mail.log (mv mail.log mail.log.1; new mail.log) every ~N lines (default 1000000)
#   SOAK_CHUNK        bytes per write(2) to mail.log (default 4194304; cut at a line end)
#   SOAK_AHEAD        max lines written but not yet read by the daemon (back-pressure; default 300000;
#                     0 = no back-pressure: write as fast as possible)
#   SOAK_PORT         HTTP port of the daemon (default 18181)
#   SOAK_TIMEOUT      seconds to wait for the daemon to catch up after the last write (default 600)
#   POSTLENS, BENCH_DIR   binary (default target/release/postlens), cache dir (default target/bench)
#   SOAK_RUN          work dir (default BENCH_DIR/soak-run; removed at start)
#
# The log is generated once (benches/genlog.py, classic format, UTC) and cached in BENCH_DIR; the
# workspace and watch dir live in BENCH_DIR/soak-run (real disk, not tmpfs).  The daemon's RSS
# is sampled every 0.5 s from /proc/PID/status.  At the end the script waits until the daemon has
# read every line (status: lines.read = lines written, nothing behind, nothing uncommitted), then
# reports throughput, memory, disk use and compares `stats --json` with the generator's truth.
# Targets (printed as MET / NOT MET; the script exits 0 either way):
#   peak RSS <= 24 MiB and flat (the max of the second half <= the max of 10-50 % + 1 MiB);
#   DB <= 150 bytes per delivery not counting raw log lines: the file's disk blocks (du) and redb's allocated
#   pages, each minus the raw_blocks table's pages (`postlens status --json` after shutdown: measured then,
#   not the running daemon's figures, which may be a minute old); the file's length is shown too (redb
#   doubles a file below 4 GiB as it grows, sparse until used); raw lines stored <= 25 % of their original size.
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/live_common.sh"

LINES="${SOAK_LINES:-10000000}"
DAYS="${SOAK_DAYS:-30}"
SEED="${SOAK_SEED:-7}"
ROTATE="${SOAK_ROTATE:-1000000}"
CHUNK="${SOAK_CHUNK:-4194304}"
AHEAD="${SOAK_AHEAD:-300000}"
PORT="${SOAK_PORT:-$(free_port)}"
TIMEOUT="${SOAK_TIMEOUT:-600}"

echo "== postlens soak (live path) =="
check_binary || exit 0
gen_log "$LINES" "$DAYS" "$SEED" || exit 0
echo "log:       $GEN_LOG ($(wc -c <"$GEN_LOG") bytes)"
cat "$GEN_LOG" >/dev/null # warm the page cache: measure the daemon, not our reads

RUN="${SOAK_RUN:-$BENCH_DIR/soak-run}"
rm -rf "$RUN"
mkdir -p "$RUN/ws" "$RUN/watch"
WS="$RUN/ws"
WATCH="$RUN/watch"
SAMPLER_PID=""
cleanup() {
    [ -n "$SAMPLER_PID" ] && kill "$SAMPLER_PID" 2>/dev/null
    stop_daemon
}
trap cleanup EXIT

echo "workspace: $WS"
echo "watch dir: $WATCH (empty at start)"
echo "command:   $POSTLENS run --workspace $WS --watch-dir $WATCH --listen 127.0.0.1:$PORT --retention 90d --log-timezone UTC"
start_daemon "$WS" "$WATCH" "$PORT" || exit 0
echo "daemon pid $DAEMON_PID"

# ---- RSS sampler ------------------------------------------------------------------------
python3 - "$DAEMON_PID" "$RUN/rss.tsv" <<'PY' &
import sys, time
pid, out = sys.argv[1], sys.argv[2]
t0 = time.time()
with open(out, "w", buffering=1) as f:
    while True:
        try:
            st = open(f"/proc/{pid}/status").read()
        except OSError:
            break
        v = {l.split(":")[0]: l.split()[1] for l in st.splitlines() if l.startswith(("VmRSS", "VmHWM", "RssAnon", "RssFile"))}
        f.write(f"{time.time() - t0:.2f}\t{v.get('VmRSS', 0)}\t{v.get('VmHWM', 0)}\t{v.get('RssAnon', 0)}\t{v.get('RssFile', 0)}\n")
        time.sleep(0.5)
PY
SAMPLER_PID=$!

# ---- feeder: chunks into mail.log, rotation by rename, back-pressure on lines.read --------
python3 - "$GEN_LOG" "$WATCH" "$WS" "$CHUNK" "$ROTATE" "$AHEAD" "$TIMEOUT" "$RUN/feed.json" "$DAEMON_PID" <<'PY'
import http.client, json, os, socket, sys, time
log, watch, ws, chunk, rotate, ahead, timeout, out, pid = sys.argv[1:10]
chunk, rotate, ahead, timeout = int(chunk), int(rotate), int(ahead), float(timeout)

sys.path.insert(0, os.environ["BENCHES"])
from postlens_ctl import status as _status
def status():
    return _status(ws)
def alive():
    return os.path.exists(f"/proc/{pid}")

path = os.path.join(watch, "mail.log")
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
written = in_file = rotations = waits = polls = 0
rot_times = []
waited = 0.0
t0 = time.time()
rest = b""
with open(log, "rb") as src:
    while True:
        buf = src.read(chunk)
        if not buf:
            break
        buf = rest + buf
        cut = buf.rfind(b"\n") + 1
        buf, rest = buf[:cut], buf[cut:]
        if not buf:
            continue
        if ahead > 0:
            w0 = time.time()
            while True:
                polls += 1
                st = status()
                if st is None or written - st["lines"]["read"] <= ahead or not alive():
                    break
                time.sleep(0.01)
            if time.time() - w0 > 0.011:
                waits += 1; waited += time.time() - w0
        if in_file >= rotate:
            os.close(fd)
            os.rename(path, path + ".1")  # like logrotate without compression: the old .1 goes
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            in_file = 0; rotations += 1; rot_times.append(time.time() - t0)
        mv = memoryview(buf)
        while mv:
            n = os.write(fd, mv); mv = mv[n:]
        k = buf.count(b"\n"); written += k; in_file += k
os.close(fd)
t_written = time.time()

# wait until the daemon has read and committed everything
caught = stalled = False
t_read = None  # every line read (nothing behind); committing may come later
last = None
prev, since = -1, time.time()
while time.time() - t_written < timeout and alive():
    st = status()
    if st:
        last = st
        live = st.get("live", {})
        behind = sum(s.get("behind", 0) for s in live.get("sources", []))
        idle = behind == 0 and live.get("uncommitted_lines", 0) == 0
        if t_read is None and behind == 0 and live.get("sources"):
            t_read = time.time()
        if st["lines"]["read"] >= written and idle:
            caught = True
            break
        if st["lines"]["read"] != prev or not idle:
            prev, since = st["lines"]["read"], time.time()
        elif time.time() - since > 10:
            stalled = True  # idle, nothing behind, and lines.read has not moved for 10 s: it will not
            break
    time.sleep(0.05)
t_done = time.time()
json.dump({"written": written, "rotations": rotations, "t_write": t_written - t0, "t_done": t_done - t0,
           "t_read": (t_read - t0) if t_read else None,
           "caught_up": caught, "stalled": stalled, "alive": alive(), "backpressure_waits": waits, "backpressure_secs": waited,
           "status_polls": polls, "rotation_times": rot_times, "last_status": last, "t0_epoch": t0}, open(out, "w"))
PY

# ---- final figures while running ----------------------------------------------------------
sleep 1 # one more sampler tick after catching up
# memory after ingestion, before any query (a query's own allocations are reported separately)
RSS_IDLE=$(awk '/VmRSS/{print $2}' /proc/"$DAEMON_PID"/status 2>/dev/null)
HWM_INGEST=$(awk '/VmHWM/{print $2}' /proc/"$DAEMON_PID"/status 2>/dev/null)
kill "$SAMPLER_PID" 2>/dev/null; wait "$SAMPLER_PID" 2>/dev/null; SAMPLER_PID=""
ctl "$WS" status --json >"$RUN/status.json" 2>"$RUN/status.err"
ctl "$WS" stats --json >"$RUN/stats.json" 2>"$RUN/stats.err"
# the CLI's own path (a chunked answer broke it once; record whether it works)
"$POSTLENS" stats --workspace "$WS" --json >"$RUN/stats-cli.json" 2>"$RUN/stats-cli.err"
CLI_RC=$?
DU_RUN=$(du -sb "$WS" | cut -f1)
DU_RUN_ALLOC=$(du -sk "$WS" | awk '{print $1*1024}')
RSS_BEFORE_STOP=$(awk '/VmRSS/{print $2}' /proc/"$DAEMON_PID"/status 2>/dev/null)
HWM=$(awk '/VmHWM/{print $2}' /proc/"$DAEMON_PID"/status 2>/dev/null)

stop_daemon
DU_STOP=$(du -sb "$WS" | cut -f1)
DU_STOP_ALLOC=$(du -sk "$WS" | awk '{print $1*1024}')
"$POSTLENS" stats --workspace "$WS" --json >"$RUN/stats-offline.json" 2>"$RUN/stats-offline.err"
"$POSTLENS" status --workspace "$WS" --json >"$RUN/status-offline.json" 2>"$RUN/status-offline.err"

# ---- report ---------------------------------------------------------------------------------
python3 - "$RUN" "$GEN_TRUTH" "$DU_RUN" "$DU_RUN_ALLOC" "$DU_STOP" "$DU_STOP_ALLOC" "${RSS_BEFORE_STOP:-0}" "${HWM:-0}" \
    "$CLI_RC" "${STOP_SECS:-?}" "${DAEMON_RC:-?}" "${STOP_KILLED:-0}" "${RSS_IDLE:-0}" "${HWM_INGEST:-0}" <<'PY'
import copy, json, os, sys
(run, truthf, du_run, du_run_alloc, du_stop, du_stop_alloc, rss_end, hwm_all, cli_rc, stop_secs, drc,
 killed, rss_idle, hwm) = sys.argv[1:15]
du_run, du_run_alloc, du_stop, du_stop_alloc, rss_end, hwm_all, rss_idle, hwm = map(
    int, (du_run, du_run_alloc, du_stop, du_stop_alloc, rss_end, hwm_all, rss_idle, hwm))
feed = json.load(open(f"{run}/feed.json"))
truth = json.load(open(truthf))
MiB = 1024.0
def load(p):
    try:
        return json.load(open(p))
    except Exception:
        return None
stats, offline, status = load(f"{run}/stats.json"), load(f"{run}/stats-offline.json"), load(f"{run}/status.json")

N = feed["written"]
print()
print(f"lines written:      {N:,} in {feed['rotations']} rotations (mv mail.log mail.log.1)")
print(f"writing took:       {feed['t_write']:.1f} s (back-pressure waits: {feed['backpressure_waits']}, {feed['backpressure_secs']:.1f} s)")
print(f"caught up:          {'yes' if feed['caught_up'] else 'NO'} after {feed['t_done']:.1f} s (daemon alive: {feed['alive']})")
if feed.get("stalled"):
    ls = feed["last_status"]["lines"]["read"] if feed.get("last_status") else "?"
    print(f"                    the daemon went idle with lines.read = {ls:,} < {N:,} written (waited 10 s without progress)")
    if int(os.environ.get("SOAK_AHEAD", "300000")) == 0 and feed["rotations"] > 1:
        print("                    (SOAK_AHEAD=0: a mail.log that is rotated away twice (mv over mail.log.1) before the daemon")
        print("                    opened it is gone; losing it is the feeder's doing, not the daemon's, though worth a warning)")
wall = feed["t_done"] - (10 if feed.get("stalled") else 0)
print(f"wall time:          {wall:.1f} s  ->  {N / wall:,.0f} lines/s through the live path (until committed)")
if feed.get("t_read"):
    print(f"read by:            {feed['t_read']:.1f} s  ->  {N / feed['t_read']:,.0f} lines/s until every line was read (the daemon answers reads with uncommitted lines; its durable commit comes within 60 s)")

# RSS
rows = []
for l in open(f"{run}/rss.tsv"):
    p = l.split()
    if len(p) == 5 and int(p[1]) > 0:
        rows.append((float(p[0]), int(p[1]), int(p[2]), int(p[3]), int(p[4])))
peak_sample = max(r[1] for r in rows) if rows else 0
peak = max(hwm, peak_sample)
print(f"RSS samples:        {len(rows)} (every 0.5 s)")
print(f"peak RSS (ingest):  {peak / MiB:.1f} MiB (VmHWM before any query {hwm / MiB:.1f} MiB, highest sample {peak_sample / MiB:.1f} MiB)")
print(f"final RSS:          {rss_idle / MiB:.1f} MiB (caught up, idle, before queries)")
print(f"after the queries:  RSS {rss_end / MiB:.1f} MiB, VmHWM {hwm_all / MiB:.1f} MiB (status --json + stats --json over the socket, stats --json via the CLI)")
if rows:
    T = rows[-1][0]
    print("RSS over time:      " + "  ".join(
        f"{t:5.1f}s {r / MiB:4.1f}" for t, r, *_ in [min(rows, key=lambda x: abs(x[0] - T * f)) for f in (0, .1, .2, .3, .4, .5, .6, .7, .8, .9, 1)]))
    print("  of which anon/file: " + "  ".join(
        f"{t:5.1f}s {a / MiB:.1f}/{fl / MiB:.1f}" for t, _, _, a, fl in [min(rows, key=lambda x: abs(x[0] - T * f)) for f in (0, .2, .4, .6, .8, 1)]))
    # the feeder's clock starts ~0.1 s after the sampler's; close enough at 0.5 s resolution
    rt = feed.get("rotation_times", [])
    if rt:
        print("RSS at rotations:   " + "  ".join(
            f"#{i + 1} {min(rows, key=lambda x: abs(x[0] - t))[1] / MiB:.1f}" for i, t in enumerate(rt)) + " (MiB)")
    a = [r[1] for r in rows if 0.1 * T <= r[0] <= 0.5 * T]
    b = [r[1] for r in rows if r[0] > 0.5 * T]
    flat = bool(a and b and max(b) <= max(a) + 1024)
    if a and b:
        print(f"                    max 10-50 %: {max(a) / MiB:.1f} MiB, max 50-100 %: {max(b) / MiB:.1f} MiB -> {'flat' if flat else 'GROWING'}")
else:
    flat = False
ok_rss = peak <= 24 * 1024 and flat
print(f"TARGET RSS <= 24 MiB and flat: {'MET' if ok_rss else 'NOT MET'} (peak while ingesting {peak / MiB:.1f} MiB, {'flat' if flat else 'not flat'}; "
      f"{'including' if max(peak, hwm_all) <= 24 * 1024 else 'NOT met including'} the final queries: {max(peak, hwm_all) / MiB:.1f} MiB)")

# disk
src = stats or offline
if src:
    d = src["deliveries"]
    nd = d["sent"] + d["bounced"] + d["expired"] + d["pending"]
else:
    nd = 0
print(f"DB on disk (du):    running: {du_run_alloc / 1048576:.1f} MiB allocated ({du_run:,} B apparent); "
      f"after SIGTERM: {du_stop_alloc / 1048576:.1f} MiB allocated ({du_stop:,} B apparent)")
if status:
    print(f"status db_bytes:    {status.get('db_bytes', 0):,}")
print(f"deliveries:         {nd:,} (sent+bounced+expired+pending)")
if nd:
    bpd = max(du_stop, du_stop_alloc) / nd
    print(f"bytes per delivery: {bpd:.1f} (after shutdown, larger of allocated/apparent; {max(du_run, du_run_alloc) / nd:.1f} while running)")
    print(f"DB with raw lines:  {bpd:.1f} B/delivery")
    sto = load(f"{run}/status-offline.json")
    if sto:
        sp, rl = sto["db_space"], sto["raw_lines"]
        rt = sto["db_tables"]["raw_blocks"]
        raw_pages = rt["stored_bytes"] + rt["fragmented_bytes"]
        # per table, the tables other than raw_blocks (what the 150 B are made of)
        parts = sorted(((k, v["stored_bytes"] + v["fragmented_bytes"]) for k, v in sto["db_tables"].items() if k != "raw_blocks"),
                       key=lambda kv: -kv[1])
        f_file = (du_stop - raw_pages) / nd
        f_disk = (du_stop_alloc - raw_pages) / nd
        f_alloc = (sp["allocated_bytes"] - raw_pages) / nd
        f_stored = (sp["stored_bytes"] - rt["stored_bytes"]) / nd
        print(f"raw lines:          {rl['lines']:,} lines, {rl['stored_bytes']:,} B stored of {rl['original_bytes']:,} "
              f"({100 * rl['stored_bytes'] / max(rl['original_bytes'], 1):.1f} %; target <= 25 %); raw_blocks table: "
              f"{rt['stored_bytes']:,} B stored + {rt['fragmented_bytes']:,} B fragmented")
        print(f"DB without raw:     stored {f_stored:.1f}, allocated {f_alloc:.1f}, on disk {f_disk:.1f}, file size {f_file:.1f} B/delivery "
              f"(redb's stored / allocated bytes, the file's disk blocks (du) and its length after shutdown, each minus the "
              f"raw_blocks table's pages)")
        print(f"                    free in the file: {(du_stop - sp['allocated_bytes']) / 1048576:.1f} MiB, of which never written "
              f"(sparse: redb doubles a file below 4 GiB when it grows and writes pages as it uses them): "
              f"{max(du_stop - du_stop_alloc, 0) / 1048576:.1f} MiB")
        print("  by table (stored + fragmented, B/delivery): " + ", ".join(f"{k} {b / nd:.1f}" for k, b in parts if b / nd >= 0.1)
              + f"; metadata {sp['metadata_bytes'] / nd:.1f}")
        worst = max(f_disk, f_alloc)
        print(f"TARGET DB <= 150 B/delivery not counting raw lines: {'MET' if worst <= 150 else 'NOT MET'} "
              f"(on disk {f_disk:.1f}, allocated {f_alloc:.1f} B/delivery; the file's length says {f_file:.1f})")
    else:
        print("TARGET DB <= 150 B/delivery not counting raw lines: NOT MEASURED (no status --json after shutdown)")
else:
    print("TARGET DB <= 150 B/delivery not counting raw lines: NOT MEASURED (no stats)")

# shutdown
print(f"shutdown:           SIGTERM -> exit in {stop_secs} s, exit code {drc}{' (SIGKILLed)' if killed == '1' else ''}")
print(f"`postlens stats --json` via the CLI while running: {'ok' if cli_rc == '0' else 'FAILED (rc ' + cli_rc + '): ' + open(f'{run}/stats-cli.err').read().strip()}")

# truth comparison
def leaves(o, pre=""):
    if isinstance(o, dict):
        for k, v in o.items():
            yield from leaves(v, f"{pre}.{k}" if pre else k)
    else:
        yield pre, o
def compare(name, got):
    if got is None:
        print(f"{name}: no stats JSON")
        return
    t = copy.deepcopy({k: v for k, v in truth.items() if k not in ("generator", "pflogsumm", "first", "last")})
    tb = t.get("auth_failures", {}).pop("by_ip", {})
    gb = (got.get("auth_failures") or {}).get("by_ip", {})
    g = dict(leaves(got))
    bad = []
    n = 0
    for k, v in leaves(t):
        n += 1
        if k not in g:
            bad.append(f"{k}: missing (truth {v})")
        elif g[k] != v:
            d = f" ({g[k] - v:+d})" if isinstance(v, int) and isinstance(g[k], int) else ""
            bad.append(f"{k}: {g[k]} vs truth {v}{d}")
    ipbad = [ip for ip in gb if tb.get(ip) != gb[ip]]
    top = sorted(tb, key=lambda ip: -sum(tb[ip].values()))
    cap_ok = len(gb) >= min(len(tb), 1000)
    print(f"{name}: {n - len(bad)}/{n} keys equal the truth" + ("" if not bad else "; differences:"))
    for b in bad:
        print(f"    {b}")
    print(f"    auth_failures.by_ip: {len(gb)} IPs listed (truth {len(tb)}; capped at 1000 by src/limits.rs), "
          f"{len(gb) - len(ipbad)} equal the truth, {len(ipbad)} differ or unknown to truth"
          + ("" if cap_ok else " - FEWER than expected"))
    for ip in ipbad[:5]:
        print(f"      {ip}: {gb[ip]} vs truth {tb.get(ip)}")
    if gb and tb:
        least = min(sum(v.values()) for v in gb.values())
        above = [ip for ip in tb if sum(tb[ip].values()) > least and ip not in gb]
        if above:
            print(f"      {len(above)} truth IPs with more failures than the least listed one are missing")
    return not bad and not ipbad
print()
print(f"lines.read (running): {stats['lines']['read'] if stats else '?'}; lines written: {N}")
r1 = compare("stats --json (running daemon, control socket)", stats)
r2 = compare("stats --json (after shutdown, opened directly)", offline)
if stats and offline:
    same = stats == offline
    print(f"running vs after-shutdown stats: {'identical' if same else 'DIFFERENT'}")
err = open(f"{run}/daemon.err").read().strip().splitlines()
print()
print(f"daemon stderr ({len(err)} lines, {run}/daemon.err):")
for l in err[:15]:
    print(f"    {l}")
if len(err) > 15:
    print(f"    ... {len(err) - 15} more")
PY
exit 0
