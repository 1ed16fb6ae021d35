#!/usr/bin/env bash
# benches/wear.sh - flash wear of the daemon on a quiet server: a steady 20 lines/s appended to a
# followed mail.log, one write(2) per line like syslog, for WEAR_SECS seconds.
#
# Environment:
#   WEAR_SECS      seconds of steady traffic measured (default 600; WEAR_SECS=60 for a quick check)
#   WEAR_RATE      lines per second (default 20)
#   WEAR_HISTORY   lines of history in mail.log.1 imported before measuring (default 100000), so the
#                  database is not empty
#   WEAR_PORT      HTTP port of the daemon (default: a free port)
#   POSTLENS, BENCH_DIR   binary (default target/release/postlens), cache dir (default target/bench)
#
# Lines come from a generated log (benches/genlog.py, cached) with their time stamps rewritten to
# the current time.  The workspace is on the real disk (BENCH_DIR/wear-run), because
# /proc/PID/io write_bytes counts bytes the process caused to be sent to the block layer (a page
# is counted when it turns dirty; tmpfs would show 0).  write_bytes is read after the history
# import has been committed and again just before SIGTERM (so the shutdown's final durable commit
# is not in the figure).  For comparison the feeder's own write_bytes (the log's own writes, same
# accounting) and both processes' wchar (bytes passed to write(2)/pwrite(2), before the page cache
# merges rewrites of the same page) are shown.
# Target (printed as MET / NOT MET; exits 0 either way): daemon write_bytes <= 2 x the log's own bytes.
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/live_common.sh"

SECS="${WEAR_SECS:-600}"
RATE="${WEAR_RATE:-20}"
HIST="${WEAR_HISTORY:-100000}"
PORT="${WEAR_PORT:-$(free_port)}"

echo "== postlens flash wear: $RATE lines/s for $SECS s =="
check_binary || exit 0
gen_log 1000000 3 7 || exit 0
NEED=$((HIST + SECS * RATE + 10))
if [ "$NEED" -gt 1000000 ]; then gen_log 10000000 30 7 || exit 0; fi
echo "lines from: $GEN_LOG"

RUN="$BENCH_DIR/wear-run"
rm -rf "$RUN"
mkdir -p "$RUN/ws" "$RUN/watch"
WS="$RUN/ws"
WATCH="$RUN/watch"
trap 'stop_daemon' EXIT
echo "workspace:  $WS ($(df --output=fstype "$RUN" | tail -1 | tr -d ' ') on $(df --output=source "$RUN" | tail -1))"
[ "$HIST" -gt 0 ] && head -n "$HIST" "$GEN_LOG" >"$WATCH/mail.log.1"
: >"$WATCH/mail.log"
echo "command:    $POSTLENS run --workspace $WS --watch-dir $WATCH --listen 127.0.0.1:$PORT --retention 90d --log-timezone UTC"
start_daemon "$WS" "$WATCH" "$PORT" || exit 0
echo "daemon pid $DAEMON_PID"

python3 - "$GEN_LOG" "$HIST" "$WATCH/mail.log" "$WS" "$DAEMON_PID" "$SECS" "$RATE" "$RUN/wear.json" <<'PY'
import http.client, json, os, socket, sys, time
log, hist, path, ws, pid, secs, rate, out = sys.argv[1:9]
hist, secs, rate = int(hist), float(secs), float(rate)

sys.path.insert(0, os.environ["BENCHES"])
from postlens_ctl import status as _status
def status():
    return _status(ws)
def io(p):
    d = {}
    for l in open(f"/proc/{p}/io"):
        k, v = l.split(":"); d[k] = int(v)
    return d

# wait until the history is imported and committed, then let it settle
t0 = time.time()
while time.time() - t0 < 300:
    st = status()
    if st and st["lines"]["read"] >= hist and st.get("live", {}).get("uncommitted_lines", 0) == 0 \
            and all(s.get("behind", 0) == 0 for s in st.get("live", {}).get("sources", [])):
        break
    time.sleep(0.2)
print(f"history:    {hist:,} lines imported in {time.time() - t0:.1f} s")
time.sleep(3)
os.sync()

lines = []
with open(log, "rb") as f:
    for i, l in enumerate(f):
        if i >= hist:
            lines.append(l[15:])  # drop the classic stamp "Mmm dd HH:MM:SS"
        if len(lines) >= secs * rate + 5:
            break

fd = os.open(path, os.O_WRONLY | os.O_APPEND)
d0, w0 = io(pid), io("self")
start = time.time()
n = nbytes = 0
series = []
next_sample = start + 10
while True:
    now = time.time()
    if now - start >= secs:
        break
    due = start + n / rate
    if due > now:
        time.sleep(due - now)
        continue
    b = time.strftime("%b %e %H:%M:%S", time.gmtime()).encode() + lines[n % len(lines)]
    os.write(fd, b)
    n += 1; nbytes += len(b)
    if now >= next_sample:
        series.append((round(now - start), io(pid)["write_bytes"] - d0["write_bytes"], nbytes))
        next_sample += 10
end = time.time()
time.sleep(0.5)  # let the last line be read and committed (non-durably)
d1, w1 = io(pid), io("self")
os.close(fd)
st = status()
json.dump({"secs": end - start, "lines": n, "log_bytes": nbytes, "d0": d0, "d1": d1, "w0": w0, "w1": w1,
           "series": series, "read": st["lines"]["read"] if st else None, "hist": hist}, open(out, "w"))
PY
stop_daemon

python3 - "$RUN/wear.json" "$RUN/daemon.err" "${STOP_SECS:-?}" "${DAEMON_RC:-?}" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
secs, n, lb = r["secs"], r["lines"], r["log_bytes"]
d = {k: r["d1"][k] - r["d0"][k] for k in r["d0"]}
w = {k: r["w1"][k] - r["w0"][k] for k in r["w0"]}
h = 3600.0 / secs
MiB = 1048576.0
print(f"measured:   {secs:.1f} s, {n:,} lines appended ({n / secs:.2f} lines/s), {lb:,} bytes")
print(f"daemon read {r['read'] - r['hist'] if r['read'] is not None else '?'} of the {n} streamed lines (status lines.read - history)")
print(f"log's own bytes:          {lb * h / MiB:8.2f} MiB/h  (feeder write_bytes {w['write_bytes'] * h / MiB:.2f} MiB/h, wchar {w['wchar'] * h / MiB:.2f} MiB/h)")
print(f"daemon write_bytes:       {d['write_bytes'] * h / MiB:8.2f} MiB/h  ({d['write_bytes']:,} B in {secs:.0f} s; cancelled_write_bytes {d['cancelled_write_bytes']:,})")
print(f"daemon wchar (syscalls):  {d['wchar'] * h / MiB:8.2f} MiB/h  ({d['syscw']:,} write syscalls = {d['syscw'] * h:,.0f}/h)")
print(f"daemon read_bytes/rchar:  {d['read_bytes'] * h / MiB:.2f} / {d['rchar'] * h / MiB:.2f} MiB/h")
ratio = d["write_bytes"] / lb if lb else float("inf")
print(f"ratio daemon write_bytes / log bytes: {ratio:.2f}   (wchar / log bytes: {d['wchar'] / lb:.2f})")
print(f"TARGET daemon writes <= 2x the log's own bytes: {'MET' if ratio <= 2 else 'NOT MET'} ({ratio:.2f}x)")
if r["series"]:
    print("cumulative daemon write_bytes (KiB) vs log bytes (KiB), every 10 s:")
    row = [f"{t:4d}s {wb / 1024:7.0f}/{l / 1024:5.0f}" for t, wb, l in r["series"]]
    for i in range(0, len(row), 6):
        print("    " + "  ".join(row[i:i + 6]))
print(f"shutdown: {sys.argv[3]} s, exit code {sys.argv[4]}")
err = open(sys.argv[2]).read().strip().splitlines()
print(f"daemon stderr ({len(err)} lines):")
for l in err[:10]:
    print(f"    {l}")
PY
exit 0
