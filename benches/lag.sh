#!/usr/bin/env bash
# benches/lag.sh - live lag: time from appending a complete message flow to mail.log until
# `postlens search --id QUEUEID --json` returns its delivery.
#
# Environment:
#   LAG_REPS      repetitions per phase (default 20)
#   LAG_PHASES    "idle busy" (default): idle = nothing else is written; busy = a background
#                 stream of 20 realistic lines/s is appended meanwhile
#   LAG_PORT      HTTP port of the daemon (default: a free port)
#   POSTLENS, BENCH_DIR   binary (default target/release/postlens), cache dir (default target/bench)
#
# The watch dir starts with 20,000 lines of generated history in mail.log.1 and an empty mail.log.
# Each repetition appends, in one write(2), a 5-line pickup -> qmgr -> smtp status=sent -> removed
# flow with a fresh queue ID, stamped with the current time (UTC; the daemon runs with
# --log-timezone UTC), then runs `postlens search` in a loop until the delivery shows up.  The lag
# reported is write -> end of the first search that returned it (so it includes one CLI round trip,
# whose duration is shown as well).  Repetitions are 0.3-1.3 s apart at random, so they do not
# line up with the daemon's commit timer.
# Target (MET / NOT MET; exits 0 either way): every lag <= 1 s.
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/live_common.sh"

REPS="${LAG_REPS:-20}"
PHASES="${LAG_PHASES:-idle busy}"
PORT="${LAG_PORT:-$(free_port)}"

echo "== postlens live lag =="
check_binary || exit 0
gen_log 1000000 3 7 || exit 0

RUN="$BENCH_DIR/lag-run"
rm -rf "$RUN"
mkdir -p "$RUN/ws" "$RUN/watch"
WS="$RUN/ws"
WATCH="$RUN/watch"
trap 'stop_daemon' EXIT
head -n 20000 "$GEN_LOG" >"$WATCH/mail.log.1"
: >"$WATCH/mail.log"
echo "command: $POSTLENS run --workspace $WS --watch-dir $WATCH --listen 127.0.0.1:$PORT --retention 90d --log-timezone UTC"
echo "probe:   $POSTLENS search --id QUEUEID --json --workspace $WS"
start_daemon "$WS" "$WATCH" "$PORT" || exit 0
sleep 1

python3 - "$POSTLENS" "$WS" "$WATCH/mail.log" "$GEN_LOG" "$REPS" "$PHASES" <<'PY'
import json, os, random, statistics, subprocess, sys, threading, time
postlens, ws, path, genlog, reps, phases = sys.argv[1:7]
reps = int(reps)
rng = random.Random(20261121)

def stamp():
    return time.strftime("%b %e %H:%M:%S", time.gmtime())

def background(stop):
    # realistic lines at 20/s, one write per line (their own queue IDs; stamps rewritten to now)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    with open(genlog, "rb") as f:
        for _ in range(20000):
            next(f)
        t0, n = time.time(), 0
        for line in f:
            if stop.is_set():
                break
            due = t0 + n / 20.0
            d = due - time.time()
            if d > 0:
                time.sleep(d)
            os.write(fd, stamp().encode() + line[15:])
            n += 1
    os.close(fd)

def search(q):
    t = time.time()
    r = subprocess.run([postlens, "search", "--id", q, "--json", "--workspace", ws], capture_output=True, text=True)
    dt = time.time() - t
    found = False
    if r.returncode == 0:
        try:
            found = any(h.get("queue_id") == q or q in (h.get("queue_ids") or []) for h in json.loads(r.stdout))
        except ValueError:
            pass
    return found, dt, r

results = {}
problems = []
for phase in phases.split():
    stop = threading.Event()
    th = None
    if phase == "busy":
        th = threading.Thread(target=background, args=(stop,), daemon=True)
        th.start()
        time.sleep(2)
    lags, rtts = [], []
    for i in range(reps):
        time.sleep(0.3 + rng.random())
        q = "%012X" % rng.getrandbits(48)
        pid = 30000 + i
        s = stamp()
        flow = (
            f"{s} mail postfix/pickup[{pid}]: {q}: uid=0 from=<root>\n"
            f"{s} mail postfix/cleanup[{pid + 1}]: {q}: message-id=<lag-{phase}-{i}-{q}@mail.example.org>\n"
            f"{s} mail postfix/qmgr[{pid + 2}]: {q}: from=<root@mail.example.org>, size=1234, nrcpt=1 (queue active)\n"
            f"{s} mail postfix/smtp[{pid + 3}]: {q}: to=<lag-{i}@example.net>, relay=mx.example.net[192.0.2.25]:25, "
            f"delay=0.2, delays=0.05/0.01/0.07/0.07, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as LAG{i})\n"
            f"{s} mail postfix/qmgr[{pid + 2}]: {q}: removed\n").encode()
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        t0 = time.time()
        os.write(fd, flow)
        os.close(fd)
        last = None
        while True:
            found, dt, r = search(q)
            if found:
                lags.append(time.time() - t0); rtts.append(dt)
                break
            if r.returncode != 0 and r.stderr.strip() != last:
                last = r.stderr.strip()
                problems.append(f"{phase} #{i}: search rc {r.returncode}: {last[:200]}")
            if time.time() - t0 > 30:
                lags.append(float("inf")); rtts.append(dt)
                problems.append(f"{phase} #{i}: {q} not found after 30 s")
                break
    stop.set()
    if th:
        th.join(timeout=5)
    results[phase] = (lags, rtts)

ok = True
print()
for phase, (lags, rtts) in results.items():
    fin = [x for x in lags if x != float("inf")]
    ms = lambda x: f"{x * 1000:.0f} ms"
    print(f"{phase:5s} ({'nothing else written' if phase == 'idle' else '+ 20 background lines/s'}): {len(lags)} flows, "
          f"lag min {ms(min(lags))}, median {ms(statistics.median(lags))}, max {ms(max(lags))}"
          + (f", mean {ms(statistics.mean(fin))}" if fin else ""))
    print(f"      each: " + " ".join(f"{x * 1000:.0f}" for x in lags) + " (ms)")
    print(f"      one `postlens search` round trip: min {ms(min(rtts))}, median {ms(statistics.median(rtts))}, max {ms(max(rtts))}")
    ok = ok and max(lags) <= 1.0
print(f"TARGET lag <= 1 s (every flow, all phases): {'MET' if ok else 'NOT MET'}")
if problems:
    print("problems:")
    for p in problems[:20]:
        print("    " + p)
PY
stop_daemon
echo "shutdown: ${STOP_SECS:-?} s, exit code ${DAEMON_RC:-?}"
echo "daemon stderr ($(wc -l <"$RUN/daemon.err") lines):"
sed 's/^/    /' "$RUN/daemon.err" | head -15
exit 0
