#!/usr/bin/env bash
# Tests targets/vps/install.sh against a scratch system root: install, a
# second install that must change nothing but keep the admin's settings, an
# archive whose checksums do not match (refused), --uninstall (keeps settings
# and data), --uninstall --purge (removes everything it made).
#
#   targets/vps/test.sh [ARCHIVE]
# Without ARCHIVE it packs target/release/postlens (the glibc build, when
# present) or builds the x86_64 musl release with targets/dist.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."

fails=0
check() { # check DESCRIPTION COMMAND…
  local what=$1; shift
  if "$@"; then printf 'ok    %s\n' "$what"; else printf 'FAIL  %s\n' "$what"; fails=$((fails + 1)); fi
}
count_lines() { grep -c "$1" "$2" || true; }

[ "$(id -u)" -eq 0 ] || { echo "needs root (useradd --prefix, chown)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

archive=${1:-}
if [ -z "$archive" ]; then
  if [ -x target/release/postlens ]; then
    DIST="$work/dist" DIST_BINARY=target/release/postlens targets/dist.sh x86_64-unknown-linux-gnu >/dev/null
    archive=$(echo "$work"/dist/postlens-*-x86_64-unknown-linux-gnu.tar.gz)
  else
    DIST="$work/dist" targets/dist.sh x86_64-unknown-linux-musl >/dev/null
    archive=$(echo "$work"/dist/postlens-*-x86_64-unknown-linux-musl.tar.gz)
  fi
fi
echo "archive: $archive"
tar -xzf "$archive" -C "$work"
shipped=$(find "$work" -mindepth 1 -maxdepth 1 -type d -name 'postlens-*')

# A scratch root with the account files useradd --prefix edits.
root=$work/root
mkdir -p "$root/etc" "$root/var/log"
printf 'root:x:0:0:root:/root:/bin/bash\n' >"$root/etc/passwd"
printf 'root:x:0:\nadm:x:4:\n' >"$root/etc/group"
printf 'root:*:19000:0:99999:7:::\n' >"$root/etc/shadow"
printf 'root:*::\nadm:*::\n' >"$root/etc/gshadow"
chmod 0640 "$root/etc/shadow" "$root/etc/gshadow"
install -m 0640 -g adm /dev/null "$root/var/log/mail.log"

installer=targets/vps/install.sh

echo "--- first install"
"$installer" --root "$root" "$archive" >"$work/out1"
check "prints the next steps" grep -q 'user add --workspace /var/lib/postlens' "$work/out1"
check "binary installed, identical" cmp -s "$shipped/postlens" "$root/usr/local/bin/postlens"
check "binary executable" test -x "$root/usr/local/bin/postlens"
check "unit installed, identical" cmp -s targets/systemd/postlens.service "$root/etc/systemd/system/postlens.service"
check "unit enabled (wants link)" test "$(readlink "$root/etc/systemd/system/multi-user.target.wants/postlens.service")" = /etc/systemd/system/postlens.service
check "settings installed" cmp -s targets/systemd/postlens.env "$root/etc/postlens/postlens.env"
check "one postlens user" test "$(count_lines '^postlens:' "$root/etc/passwd")" = 1
check "one postlens group" test "$(count_lines '^postlens:' "$root/etc/group")" = 1
check "system user, no login shell" grep -q '^postlens:x:[0-9]*:[0-9]*:.*:/var/lib/postlens:/usr/sbin/nologin$' "$root/etc/passwd"
uid=$(awk -F: '$1 == "postlens" { print $3 }' "$root/etc/passwd")
check "system uid (< 1000)" test "$uid" -lt 1000
check "workspace owned by postlens, 0750" test "$(stat -c '%u %a' "$root/var/lib/postlens")" = "$uid 750"

echo "--- the admin edits the settings, then a second install"
echo 'POSTLENS_LISTEN=127.0.0.1:9090' >>"$root/etc/postlens/postlens.env"
before=$(find "$root" -path "$root/etc/postlens" -prune -o -printf '%p %s %Y %i %T@\n' | sort)
"$installer" --root "$root" "$archive" >"$work/out2"
after=$(find "$root" -path "$root/etc/postlens" -prune -o -printf '%p %s %Y %i %T@\n' | sort)
check "second install touches nothing outside /etc/postlens" test "$before" = "$after"
[ "$before" = "$after" ] || diff <(echo "$before") <(echo "$after") || true
check "admin's settings kept" grep -q '^POSTLENS_LISTEN=127.0.0.1:9090$' "$root/etc/postlens/postlens.env"
check "shipped example beside them" cmp -s targets/systemd/postlens.env "$root/etc/postlens/postlens.env.dist"
check "URL follows the settings" grep -q 'http://127.0.0.1:9090/' "$work/out2"
check "still one postlens user" test "$(count_lines '^postlens:' "$root/etc/passwd")" = 1

echo "--- an archive whose binary does not match its checksums"
bad=$work/bad
mkdir -p "$bad"
cp -a "$shipped" "$bad/"
printf 'x' >>"$bad/$(basename "$shipped")/postlens"
tar -C "$bad" -czf "$work/bad.tar.gz" "$(basename "$shipped")"
refused() { ! "$installer" --root "$root" "$work/bad.tar.gz" >/dev/null 2>&1; }
check "damaged archive refused" refused
check "installed binary untouched" cmp -s "$shipped/postlens" "$root/usr/local/bin/postlens"

echo "--- uninstall"
echo 'data' >"$root/var/lib/postlens/db"
"$installer" --root "$root" --uninstall >/dev/null
check "binary removed" test ! -e "$root/usr/local/bin/postlens"
check "unit removed" test ! -e "$root/etc/systemd/system/postlens.service"
check "wants link removed" test ! -L "$root/etc/systemd/system/multi-user.target.wants/postlens.service"
check "settings kept" test -f "$root/etc/postlens/postlens.env"
check "database kept" test -f "$root/var/lib/postlens/db"
check "uninstall twice is fine" "$installer" --root "$root" --uninstall
"$installer" --root "$root" "$archive" >/dev/null
check "reinstall keeps the database" test -f "$root/var/lib/postlens/db"
"$installer" --root "$root" --uninstall --purge >/dev/null
check "purge: settings gone" test ! -e "$root/etc/postlens"
check "purge: database gone" test ! -e "$root/var/lib/postlens"
check "purge: user gone" test "$(count_lines '^postlens:' "$root/etc/passwd")" = 0
check "purge: group gone" test "$(count_lines '^postlens:' "$root/etc/group")" = 0
check "purge: other accounts intact" grep -q '^adm:x:4:' "$root/etc/group"

if [ "$fails" -gt 0 ]; then echo "$fails check(s) failed"; exit 1; fi
echo "install.sh: all checks passed"
