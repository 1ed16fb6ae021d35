#!/usr/bin/env bash
# The static x86_64 build's own runtime pieces, in place: the split
# allocator and the memcpy/memmove/memset/memcmp/bcmp that replace musl's
# (src/main.rs). Their unit tests run on glibc too, but only a musl binary
# actually links the replacements, so this
#   1. runs src/main.rs's unit tests built for x86_64-unknown-linux-musl
#      (the test harness itself then copies, compares and allocates with
#      them), and
#   2. imports the same logs with a musl build and with the glibc build
#      ($POSTLENS, default target/release/postlens) and requires equal
#      `postlens stats --json` (a generated log, and the corpus's real one
#      when ../shared/corpus is there).
# Debug builds (quick to build, and -O0 code must not turn the copies'
# fixed-size loads into calls to memcpy, that is into recursion).
set -euo pipefail
cd "$(dirname "$0")/.."
target=x86_64-unknown-linux-musl
ref=${POSTLENS:-target/release/postlens}
log() { printf 'test-static: %s\n' "$*" >&2; }
[ -x "$ref" ] || { log "no glibc build at $ref (make build)"; exit 1; }

cargo test --locked --target "$target" --bin postlens
cargo build --locked --target "$target"
bin=target/$target/debug/postlens
file -b "$bin" | grep -q 'static' || { log "$bin is not static"; exit 1; }

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
python3 benches/genlog.py --lines 30000 --days 2 --seed 11 -o "$dir/gen.log"
logs=("$dir/gen.log")
if [ -r ../shared/corpus/all-postfix.log ]; then
  logs+=(../shared/corpus/all-postfix.log)
elif [ "${CI:-}" = true ]; then
  log "../shared/corpus/all-postfix.log is missing (CI needs it)"; exit 1
else
  log "NOTE: ../shared/corpus missing: the generated log only"
fi
for l in "${logs[@]}"; do
  "$ref" import --workspace "$dir/ws-ref" "$l" >/dev/null
  "$bin" import --workspace "$dir/ws-musl" "$l" >/dev/null
  "$ref" stats --json --workspace "$dir/ws-ref" >"$dir/ref.json"
  "$bin" stats --json --workspace "$dir/ws-musl" >"$dir/musl.json"
  if ! cmp -s "$dir/ref.json" "$dir/musl.json"; then
    log "stats --json of $l differ between $ref and $bin:"
    diff "$dir/ref.json" "$dir/musl.json" >&2 || true
    exit 1
  fi
  rm -rf "$dir/ws-ref" "$dir/ws-musl"
  log "$l: stats --json of the musl build equal to the glibc build's"
done
