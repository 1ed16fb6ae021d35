# benches/live_common.sh - shared helpers of the live-path benchmarks (soak.sh, wear.sh, lag.sh).
# Sourced, not run.  Defines:
#   ROOT POSTLENS BENCH_DIR     paths (cwd is $ROOT afterwards)
#   say MSG                     message on stderr
#   check_binary                prints a warning if the binary is missing or older than the sources
#   gen_log LINES DAYS SEED [START]  generates (once, cached) $BENCH_DIR/live-<lines>-d<days>-s<seed>[-<start>].log
#                               (START YYYY-MM-DD: first day; default genlog's)
#                               and its .truth.json; sets GEN_LOG and GEN_TRUTH
#   start_daemon WS WATCH PORT  starts `postlens run` in the background (PORT "" = a free one); sets DAEMON_PID;
#                               waits for the control socket; stderr goes to WS/../daemon.err
#   stop_daemon                 SIGTERM, waits (≤ 60 s), then SIGKILL; sets STOP_SECS
#   ctl WS ARGS...              asks the running daemon over WS/postlens.sock (python; decodes
#                               chunked answers, which `postlens stats --json` itself cannot yet)
#                               and prints its stdout; exit code = the daemon's answer code

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 1
export BENCHES="$ROOT/benches"  # for the Python helpers (postlens_ctl.py)
POSTLENS="${POSTLENS:-$ROOT/target/release/postlens}"
BENCH_DIR="${BENCH_DIR:-$ROOT/target/bench}"
mkdir -p "$BENCH_DIR"
BENCH_DIR="$(cd "$BENCH_DIR" && pwd)"

say() { printf '%s\n' "$*" >&2; }

check_binary() {
    if [ ! -x "$POSTLENS" ]; then
        say "bench: $POSTLENS is missing (build it with: cargo build --release)"
        return 1
    fi
    local newer
    echo "binary:    $POSTLENS (built $(date -u -r "$POSTLENS" '+%F %T UTC'), sha256 $(sha256sum "$POSTLENS" | cut -c1-12); HEAD $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)$( [ -n "$(git -C "$ROOT" status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null)" ] && echo ', src/ has uncommitted changes'))"
    newer=$(find "$ROOT/src" "$ROOT/Cargo.toml" "$ROOT/Cargo.lock" -newer "$POSTLENS" -type f 2>/dev/null | head -3)
    if [ -n "$newer" ]; then
        echo "WARNING: $POSTLENS is older than the sources (e.g. $(echo $newer | tr '\n' ' ')); figures are for the old binary"
    fi
    return 0
}

gen_log() {
    local lines="$1" days="$2" seed="$3" start="${4:-}"
    GEN_LOG="$BENCH_DIR/live-${lines}-d${days}-s${seed}${start:+-$start}.log"
    GEN_TRUTH="${GEN_LOG%.log}.truth.json"
    # genlog.py sets the file's mtime to its last line, so compare a hash of the generator instead
    local sum
    sum=$(sha256sum "$ROOT/benches/genlog.py" | cut -c1-16)
    if [ ! -s "$GEN_LOG" ] || [ ! -s "$GEN_TRUTH" ] || [ "$(cat "$GEN_LOG.genlog" 2>/dev/null)" != "$sum" ]; then
        say "bench: generating $GEN_LOG ($lines lines over $days days, seed $seed; ~4 s per million lines)"
        python3 "$ROOT/benches/genlog.py" --lines "$lines" --days "$days" --seed "$seed" ${start:+--start "$start"} --format classic \
            --utc-offset +00:00 --quiet -o "$GEN_LOG.tmp" --emit-truth "$GEN_TRUTH" ||
            { say "bench: genlog.py failed"; return 1; }
        mv -f "$GEN_LOG.tmp" "$GEN_LOG"
        echo "$sum" >"$GEN_LOG.genlog"
    fi
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start_daemon() {
    local ws="$1" watch="$2" port="$3"
    [ -n "$port" ] || port=$(free_port)
    local errf
    errf="$(dirname "$ws")/daemon.err"
    "$POSTLENS" run --workspace "$ws" --watch-dir "$watch" --listen "127.0.0.1:$port" \
        --retention 90d --log-timezone UTC >"$(dirname "$ws")/daemon.out" 2>"$errf" &
    DAEMON_PID=$!
    local i
    for i in $(seq 1 200); do
        [ -S "$ws/postlens.sock" ] && ctl "$ws" status --json >/dev/null 2>&1 && return 0
        kill -0 "$DAEMON_PID" 2>/dev/null || { say "bench: daemon exited at start-up:"; cat "$errf" >&2; return 1; }
        sleep 0.05
    done
    say "bench: daemon's control socket did not answer within 10 s"
    return 1
}

stop_daemon() {
    [ -n "${DAEMON_PID:-}" ] || return 0
    local t0 t1 i
    t0=$(date +%s%N)
    kill -TERM "$DAEMON_PID" 2>/dev/null
    for i in $(seq 1 600); do
        kill -0 "$DAEMON_PID" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$DAEMON_PID" 2>/dev/null; then
        say "bench: daemon $DAEMON_PID ignored SIGTERM for 60 s; SIGKILL"
        kill -KILL "$DAEMON_PID" 2>/dev/null
        STOP_KILLED=1
    fi
    wait "$DAEMON_PID" 2>/dev/null
    DAEMON_RC=$?
    t1=$(date +%s%N)
    STOP_SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", (b-a)/1e9}')
    DAEMON_PID=""
}

ctl() {
    local ws="$1"; shift
    python3 - "$ws" "$@" <<'PY'
import os, sys
sys.path.insert(0, os.environ["BENCHES"])
from postlens_ctl import call
code, out, err = call(sys.argv[1], sys.argv[2:], timeout=120)
sys.stdout.write(out)
sys.stderr.write(err)
sys.exit(code)
PY
}
