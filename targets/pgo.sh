#!/usr/bin/env bash
# targets/pgo.sh TARGET - the profile for a profile-guided (PGO) release build
# of TARGET (`make static`): builds postlens instrumented, runs it on a
# training workload, merges what it recorded, and prints the .profdata path.
#
# The training workload: a generated busy-server log (benches/genlog.py with
# seed 2, which the benchmark does not use; classic and RFC 3339 lines)
# imported, searched and summed, and parsed by bench-parse; plus, when
# ../shared/corpus is there, its real Postfix and Dovecot logs. LLVM then
# lays out and inlines the parser, tracker and store code for the paths a
# mail log takes. The training runs the binary, so TARGET must run here
# (x86_64); the ARM builds stay without a profile.
#
# Environment: TOOLCHAIN (default: the project's) builds and merges;
# CARGO_TARGET_DIR as for cargo (the instrumented build goes to its
# pgo-gen/ subdirectory, the profile to pgo/TARGET/).
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:-x86_64-unknown-linux-musl}
tc=${TOOLCHAIN:-$(rustup show active-toolchain | cut -d' ' -f1)}
dir=${CARGO_TARGET_DIR:-target}
out=$PWD/$dir/pgo/$target
log() { printf 'pgo: %s\n' "$*" >&2; }

rustup component list --toolchain "$tc" --installed | grep -q '^llvm-tools' ||
  rustup component add --toolchain "$tc" llvm-tools >&2
host=$(rustc "+$tc" -vV | sed -n 's/^host: //p')
profdata=$(rustc "+$tc" --print sysroot)/lib/rustlib/$host/bin/llvm-profdata

rm -rf "$out/raw"
mkdir -p "$out/raw"
log "instrumented build of $target ($tc)"
CARGO_TARGET_DIR=$dir/pgo-gen RUSTFLAGS="${RUSTFLAGS:-} -Cprofile-generate=$out/raw" \
  cargo "+$tc" build --release --locked --target "$target" >&2
bin=$dir/pgo-gen/$target/release/postlens

log "training"
python3 benches/genlog.py --lines 300000 --days 2 --seed 2 -o "$out/train.log" >/dev/null
python3 benches/genlog.py --lines 30000 --days 1 --seed 3 --format rfc3339 -o "$out/train-rfc3339.log" >/dev/null
logs=("$out/train.log" "$out/train-rfc3339.log")
corpus=../shared/corpus
if [ -r "$corpus/all-postfix.log" ]; then
  logs+=("$corpus/all-postfix.log" "$corpus/all-other-mail-lines.log")
else
  log "no $corpus: training on generated logs only"
fi
ws=$(mktemp -d "${TMPDIR:-/tmp}/postlens-pgo.XXXXXX")
trap 'rm -rf "$ws"' EXIT
"$bin" import --workspace "$ws" "${logs[@]}" >&2
"$bin" bench-parse "$out/train.log" >&2
"$bin" stats --json --workspace "$ws" >/dev/null
"$bin" search --json --workspace "$ws" --status bounced --limit 1000 >/dev/null
"$bin" report --workspace "$ws" >/dev/null

"$profdata" merge -o "$out/postlens.profdata" "$out/raw"
rm -rf "$out/raw" "$out/train.log" "$out/train-rfc3339.log"
echo "$out/postlens.profdata"
