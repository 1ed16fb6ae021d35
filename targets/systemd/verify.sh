#!/usr/bin/env bash
# Checks targets/systemd/postlens.service with systemd's own tools: `verify`
# must pass without a single warning (it only warns about unknown or
# misspelt keys), and the offline `security` review must rate its exposure
# at most MAX_EXPOSURE (default 2.0; 0 = locked down, 10 = unprotected).
#
#   targets/systemd/verify.sh [BINARY]
# BINARY replaces /usr/local/bin/postlens in a copy of the unit (verify
# insists that ExecStart exists); default target/release/postlens.
set -euo pipefail
cd "$(dirname "$0")/../.."

MAX_EXPOSURE=${MAX_EXPOSURE:-2.0}
bin=$(realpath "${1:-target/release/postlens}")
[ -x "$bin" ] || { echo "no $bin: build first (make build)" >&2; exit 1; }
command -v systemd-analyze >/dev/null || {
  echo "systemd-analyze is missing: installing systemd" >&2
  sudo=$([ "$(id -u)" -eq 0 ] || echo sudo)
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd >/dev/null
}

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
sed "s|/usr/local/bin/postlens|$bin|" targets/systemd/postlens.service >"$dir/postlens.service"

out=$(systemd-analyze verify "$dir/postlens.service" 2>&1) || { echo "$out"; echo "systemd-analyze verify failed" >&2; exit 1; }
if [ -n "$out" ]; then echo "$out"; echo "systemd-analyze verify warned" >&2; exit 1; fi
echo "systemd-analyze verify: clean"

# `security` reads units from a root: give it one holding only this unit.
mkdir -p "$dir/root/etc/systemd/system"
cp "$dir/postlens.service" "$dir/root/etc/systemd/system/"
score=$(systemd-analyze security --offline=yes --root="$dir/root" postlens.service 2>/dev/null |
  sed -n 's/.*Overall exposure level for postlens.service: \([0-9.]*\).*/\1/p')
[ -n "$score" ] || { echo "systemd-analyze security gave no score" >&2; exit 1; }
echo "systemd-analyze security: exposure $score (at most $MAX_EXPOSURE)"
awk -v s="$score" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(s <= m) }'
