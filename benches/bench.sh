#!/usr/bin/env bash
# benches/bench.sh - throughput benchmark of postlens against pflogsumm and wc -l (called by `make bench`).
#
# Environment:
#   POSTLENS      postlens binary (default target/release/postlens); a missing binary or
#                 subcommand gives an "n/a" row, not a failure
#   POSTLENS_STATIC  the static musl binary that ships (`make static`), timed in rows of
#                 its own when it exists (default target/x86_64-unknown-linux-musl/release/postlens)
#   BENCH_LINES   size of the generated log (default 1000000)
#   BENCH_SEED    generator seed (default 1)
#   BENCH_FORMAT  classic|rfc3339 (default classic)
#   BENCH_DAYS    days the log spans (default 7)
#   BENCH_DIR     cache directory (default target/bench)
#   BENCH_NO_INSTALL=1  never call apt-get
#   BENCH_RUNS    runs of each tool (default 3): the median wall time is reported
#
# The log is generated once by benches/genlog.py and cached as
# $BENCH_DIR/mail-<lines>-<format>-s<seed>.log (regenerated when genlog.py is newer), with the
# generator's counts in the matching .truth.json.  Each tool runs BENCH_RUNS times in turn
# (wc, pflogsumm, bench-parse, bench-parse on one thread, import; then again), each run under /usr/bin/time -v: the
# median wall time (measured around the run) is reported, so that one run disturbed by
# another process does not decide a ratio, and the largest "Maximum resident set size".
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 1

LINES="${BENCH_LINES:-1000000}"
SEED="${BENCH_SEED:-1}"
FORMAT="${BENCH_FORMAT:-classic}"
DAYS="${BENCH_DAYS:-7}"
DIR="${BENCH_DIR:-target/bench}"
POSTLENS="${POSTLENS:-target/release/postlens}"
RUNS="${BENCH_RUNS:-3}"
STATIC="${POSTLENS_STATIC:-target/x86_64-unknown-linux-musl/release/postlens}"

say() { printf '%s\n' "$*" >&2; }

# ---- tools ------------------------------------------------------------------------------
need_pkgs=()
command -v pflogsumm >/dev/null 2>&1 || [ -x /usr/sbin/pflogsumm ] || need_pkgs+=(pflogsumm)
[ -x /usr/bin/time ] || need_pkgs+=(time)
if [ "${#need_pkgs[@]}" -gt 0 ] && [ "${BENCH_NO_INSTALL:-0}" != 1 ]; then
    SUDO=""
    [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && SUDO="sudo -n"
    say "bench: installing ${need_pkgs[*]} (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null 2>&1 ||
        { $SUDO apt-get update -qq >/dev/null 2>&1 &&
          $SUDO apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null 2>&1; } ||
        say "bench: warning: could not install ${need_pkgs[*]}"
fi
PFLOGSUMM="$(command -v pflogsumm 2>/dev/null || echo /usr/sbin/pflogsumm)"
if [ ! -x /usr/bin/time ]; then
    say "bench: /usr/bin/time missing (Debian package 'time'); cannot measure peak RSS"
    exit 1
fi

# ---- input ------------------------------------------------------------------------------
mkdir -p "$DIR"
LOG="$DIR/mail-${LINES}-${FORMAT}-s${SEED}.log"
TRUTH="${LOG%.log}.truth.json"
if [ ! -s "$LOG" ] || [ ! -s "$TRUTH" ] || [ benches/genlog.py -nt "$LOG" ]; then
    say "bench: generating $LOG ($LINES lines)"
    python3 benches/genlog.py --lines "$LINES" --seed "$SEED" --format "$FORMAT" --days "$DAYS" \
        -o "$LOG.tmp" --emit-truth "$TRUTH" || { say "bench: genlog.py failed"; exit 1; }
    mv -f "$LOG.tmp" "$LOG"
fi
NLINES=$(wc -l <"$LOG")
BYTES=$(stat -c %s "$LOG")
# warm the page cache so the first tool is not charged for disk reads
cat "$LOG" >/dev/null

WORK="$(mktemp -d "${TMPDIR:-/tmp}/postlens-bench.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

# run NAME CMD...: one run; appends its wall seconds and peak RSS (KiB) to the tool's
# samples, or marks the tool n/a when it fails
declare -A SECS RSS NOTE SAMPLES
ORDER=()
run() {
    local name="$1"; shift
    case " ${ORDER[*]} " in *" $name "*) ;; *) ORDER+=("$name"); NOTE[$name]="" ;; esac
    [ "${SECS[$name]:-}" = "n/a" ] && return
    local tf="$WORK/time.$RANDOM" out="$WORK/out.$RANDOM" t0 t1 rc rss
    t0=$(date +%s%N)
    /usr/bin/time -v -o "$tf" "$@" >/dev/null 2>"$out"
    rc=$?
    t1=$(date +%s%N)
    if [ "$rc" -ne 0 ]; then
        SECS[$name]="n/a"; RSS[$name]="n/a"
        NOTE[$name]="exit $rc: $(grep -v '^Command exited' "$out" | tail -n 1 | cut -c1-100)"
        return
    fi
    SAMPLES[$name]="${SAMPLES[$name]:-} $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", (b-a)/1e9}')"
    rss=$(awk -F': ' '/Maximum resident set size/{print $2}' "$tf")
    [ "${RSS[$name]:-0}" -ge "$rss" ] 2>/dev/null || RSS[$name]=$rss
}
# median NAME: the median of the tool's samples into SECS (unless it failed)
median() {
    [ "${SECS[$1]:-}" = "n/a" ] && return
    SECS[$1]=$(tr ' ' '\n' <<<"${SAMPLES[$1]}" | grep . | sort -n | awk '{v[NR]=$1} END{print (NR % 2) ? v[(NR+1)/2] : sprintf("%.3f", (v[NR/2]+v[NR/2+1])/2)}')
}
na() { ORDER+=("$1"); SECS[$1]="n/a"; RSS[$1]="n/a"; NOTE[$1]="$2"; }

# postlens_rows LABEL BINARY WHY: one run of bench-parse and of import (in a fresh
# workspace) of BINARY, or n/a rows saying WHY on the first round
postlens_rows() {
    if [ -x "$2" ]; then
        run "$1 bench-parse" "$2" bench-parse "$LOG"
        # The same on one thread: how an import on two cores parses.
        run "$1 parse inline" "$2" bench-parse --parse-thread off "$LOG"
        rm -rf "$WORK/ws-$1"
        run "$1 import" "$2" import --workspace "$WORK/ws-$1" "$LOG"
    elif [ "$i" = 1 ]; then
        na "$1 bench-parse" "$3"
        na "$1 parse inline" "$3"
        na "$1 import" "$3"
    fi
}

say "bench: timing on $LOG ($NLINES lines, $((BYTES / 1048576)) MiB), $RUNS runs of each tool"
for ((i = 1; i <= RUNS; i++)); do
    run "wc -l" wc -l "$LOG"
    if [ -x "$PFLOGSUMM" ]; then
        run "pflogsumm" "$PFLOGSUMM" --problems-first --rej-add-from --verbose-msg-detail "$LOG"
    elif [ "$i" = 1 ]; then
        na "pflogsumm" "pflogsumm not installed"
    fi
    postlens_rows "postlens" "$POSTLENS" "no binary at $POSTLENS"
    postlens_rows "static" "$STATIC" "no static binary at $STATIC (make static)"
done
for name in "${ORDER[@]}"; do median "$name"; done
[ -d "$WORK/ws-postlens" ] && NOTE["postlens import"]="${NOTE["postlens import"]:-workspace $(du -sh "$WORK/ws-postlens" | cut -f1)}"

# ---- table ------------------------------------------------------------------------------
lps() { awk -v n="$NLINES" -v s="$1" 'BEGIN{ if (s == "n/a" || s <= 0) print "n/a"; else printf "%.0f", n / s }'; }
PF_LPS=$(lps "${SECS[pflogsumm]:-n/a}")
WC_LPS=$(lps "${SECS["wc -l"]:-n/a}")
printf '\n%s: %d lines, %.1f MiB, format %s, seed %s (truth: %s)\n' "$LOG" "$NLINES" \
    "$(awk -v b="$BYTES" 'BEGIN{print b/1048576}')" "$FORMAT" "$SEED" "$TRUTH"
printf 'seconds: median of %s runs of each tool (runs interleaved); RSS: the largest\n' "$RUNS"
printf '%s cores: bench-parse parses on a thread of its own with two or more, import with three or more\n' "$(nproc)"
printf '%-22s %9s %12s %9s %10s %10s %9s  %s\n' tool seconds lines/s MB/s "x pflogsumm" "x wc -l" "RSS MiB" note
for name in "${ORDER[@]}"; do
    s="${SECS[$name]}"
    l=$(lps "$s")
    awk -v name="$name" -v s="$s" -v l="$l" -v bytes="$BYTES" -v pf="$PF_LPS" -v wc="$WC_LPS" \
        -v rss="${RSS[$name]}" -v note="${NOTE[$name]}" 'BEGIN{
        if (s == "n/a") { printf "%-22s %9s %12s %9s %10s %10s %9s  %s\n", name, "n/a", "n/a", "n/a", "n/a", "n/a", "n/a", note; exit }
        mbs = bytes / 1e6 / s
        rp = (pf == "n/a" || pf <= 0) ? "n/a" : sprintf("%.2f", l / pf)
        rw = (wc == "n/a" || wc <= 0) ? "n/a" : sprintf("%.4f", l / wc)
        rm = (rss == "" || rss == "n/a") ? "n/a" : sprintf("%.1f", rss / 1024)
        printf "%-22s %9.3f %12d %9.1f %10s %10s %9s  %s\n", name, s, l, mbs, rp, rw, rm, note
    }'
done
