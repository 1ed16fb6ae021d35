#!/usr/bin/env bash
# The test suite for ARM under qemu-user, then a smoke test of the release
# binaries: the same logs imported by the x86_64 and the ARM binaries must
# give the same `postlens stats --json`.
#
#   targets/test-arm.sh [TARGET…]   default: aarch64 and armv7
#   SMOKE_ONLY=1 / SUITE_ONLY=1     run one half
#   ARM_TESTS="--lib --test cli"    run these test targets instead
#   ARM_TEST_OPT_LEVEL=N            opt-level of the ARM test builds (default
#                                   1: unoptimised code under qemu made the lib
#                                   tests alone take 7+ minutes; debug
#                                   assertions and overflow checks stay on)
#   ARM_TEST_DEBUG=V                debug info of the ARM test builds (default
#                                   line-tables-only: panics and backtraces
#                                   keep file and line; full debug info, of
#                                   no use under qemu-user, made the aarch64
#                                   build take 551 instead of 450 CPU seconds
#                                   and 3.5 instead of 1.7 GB)
#   SMOKE_FAST=1                    smoke-test the debug ARM binary the suite
#                                   built against target/release/postlens (or
#                                   debug) instead of building three release
#                                   binaries (CI; the generated log only)
#
# Which tests: the unit tests (--lib), the corpus conformance suites, and the
# integration tests that start the binary (cli, daemon, users, web). Left
# out: tests/browser.rs (needs Chromium and chromedriver, x86_64 only here)
# and tests/e2e (real Postfix/Dovecot as root); doc tests do not run for a
# cross target. The integration tests spawn the ARM binary they test, which
# needs binfmt_misc to hand it to qemu (targets/cross.sh binfmt, root). When
# that is impossible only the tests that spawn nothing run, and the script
# says so (under CI=true it fails instead).
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET_DIR=${CARGO_TARGET_DIR:-target}
# Only the ARM targets' dev builds see this (the x86_64 ones live elsewhere
# in target/ and are untouched).
export CARGO_PROFILE_DEV_OPT_LEVEL=${ARM_TEST_OPT_LEVEL:-1}
export CARGO_PROFILE_DEV_DEBUG=${ARM_TEST_DEBUG:-line-tables-only}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(aarch64-unknown-linux-musl armv7-unknown-linux-musleabihf)

log() { printf '%s\n' "$*" >&2; }

targets/cross.sh setup

spawning=(--test cli --test daemon --test users --test web)
standalone=(--lib --test corpus_coverage --test conformance_crowdsec --test conformance_exporters
  --test conformance_fail2ban --test conformance_whyscream)

suite() {
  local t=$1 tc start
  tc=$(targets/cross.sh toolchain "$t")
  local tests=("${standalone[@]}")
  if [ -n "${ARM_TESTS:-}" ]; then
    # An explicit selection, e.g. ARM_TESTS="--lib --test cli" (CI time).
    read -r -a tests <<<"$ARM_TESTS"
    targets/cross.sh binfmt || true
  elif targets/cross.sh binfmt; then
    tests+=("${spawning[@]}")
  elif [ "${CI:-}" = true ]; then
    log "binfmt_misc is needed for the integration tests under CI"; return 1
  else
    log "NOTE: binfmt_misc unavailable: skipping the tests that spawn the binary (${spawning[*]})"
  fi
  log "--- cargo +$tc test --target $t ${tests[*]}"
  start=$(date +%s)
  cargo "+$tc" test --locked --no-fail-fast --target "$t" "${tests[@]}"
  log "--- $t suite: $(( $(date +%s) - start )) s"
}

# stats --json of one import of LOGS by BINARY (a command line: the ARM ones
# run through qemu explicitly, so this half needs no binfmt).
stats_of() {
  local ws=$1; shift
  local -a bin
  read -r -a bin <<<"$1"; shift
  rm -rf "$ws"
  "${bin[@]}" import --workspace "$ws" "$@" >/dev/null
  "${bin[@]}" stats --workspace "$ws" --json
}

smoke() {
  local dir logs=() t qemu ref ref_gz out
  dir=$(mktemp -d)
  trap 'rm -rf "$dir"' RETURN
  local profile=release ref_bin=$TARGET_DIR/x86_64-unknown-linux-musl/release/postlens
  if [ "${SMOKE_FAST:-0}" = 1 ]; then
    profile=debug
    ref_bin=
    for b in "$TARGET_DIR/release/postlens" target/release/postlens "$TARGET_DIR/debug/postlens" target/debug/postlens; do
      if [ -x "$b" ]; then ref_bin=$b; break; fi
    done
    [ -n "$ref_bin" ] || { log "SMOKE_FAST=1 needs an x86_64 build (make build)"; return 1; }
    for t in "${targets[@]}"; do
      [ -x "$TARGET_DIR/$t/debug/postlens" ] || cargo "+$(targets/cross.sh toolchain "$t")" build --locked --target "$t"
    done
  else
    # The size budget is `make cross`'s business, not this test's.
    SIZE_BUDGET=0 targets/cross.sh build x86_64-unknown-linux-musl "${targets[@]}"
    # A real log (the shared corpus) when it is there.
    if [ -r ../shared/corpus/all-postfix.log ]; then logs+=(../shared/corpus/all-postfix.log); fi
  fi
  # And a generated one, also as a gzipped archive (the decoders' path).
  python3 benches/genlog.py --lines 20000 --days 2 --seed 7 -o "$dir/gen.log"
  gzip -1 -c "$dir/gen.log" >"$dir/gen.log.1.gz"
  logs+=("$dir/gen.log")
  ref=$(stats_of "$dir/ws-x86" "$ref_bin" "${logs[@]}")
  ref_gz=$(stats_of "$dir/ws-x86-gz" "$ref_bin" "$dir/gen.log.1.gz")
  for t in "${targets[@]}"; do
    case $t in
      aarch64-*) qemu="qemu-aarch64-static" ;;
      armv7-*) qemu="qemu-arm-static" ;;
      *) log "no qemu for $t"; return 1 ;;
    esac
    out=$(stats_of "$dir/ws-$t" "$qemu $TARGET_DIR/$t/$profile/postlens" "${logs[@]}")
    if [ "$out" != "$ref" ]; then
      log "smoke: $t stats differ from x86_64:"
      diff <(printf '%s\n' "$ref") <(printf '%s\n' "$out") >&2 || true
      return 1
    fi
    out=$(stats_of "$dir/ws-$t-gz" "$qemu $TARGET_DIR/$t/$profile/postlens" "$dir/gen.log.1.gz")
    if [ "$out" != "$ref_gz" ]; then
      log "smoke: $t stats of the gzipped log differ from x86_64:"
      diff <(printf '%s\n' "$ref_gz") <(printf '%s\n' "$out") >&2 || true
      return 1
    fi
    log "smoke: $t ($profile) stats --json equal to $ref_bin's over ${logs[*]} and its .gz"
  done
}

if [ "${SMOKE_ONLY:-0}" != 1 ]; then
  for t in "${targets[@]}"; do suite "$t"; done
fi
if [ "${SUITE_ONLY:-0}" != 1 ]; then
  smoke
fi
