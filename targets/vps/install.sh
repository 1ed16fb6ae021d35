#!/usr/bin/env bash
# Installs postlens from a release archive on a systemd machine (a VPS, a
# home server): the binary, the hardened unit, /etc/postlens/postlens.env,
# the `postlens` system user and /var/lib/postlens; enables and starts the
# service and prints the URL and next steps. Downloads nothing. Running it
# again upgrades the binary and unit and keeps settings and data.
#
#   install.sh [--root DIR] postlens-VERSION-TARGET.tar.gz
#   install.sh [--root DIR]                 (inside an unpacked archive)
#   install.sh [--root DIR] --uninstall [--purge]
#
# --root DIR  install into DIR as a system root (image builds, tests): no
#             systemctl, users go into DIR/etc/passwd.
# --uninstall stops and removes the service and binary; keeps the settings
#             and the database unless --purge, which also removes the user.
set -euo pipefail

ROOT=
MODE=install
PURGE=0
ARCHIVE=
SERVICE=postlens
BIN=/usr/local/bin/postlens
UNIT=/etc/systemd/system/postlens.service
CONF_DIR=/etc/postlens
STATE_DIR=/var/lib/postlens

die() { printf 'install.sh: %s\n' "$*" >&2; exit 1; }
say() { printf '%s\n' "$*"; }

usage() {
  sed -n '/^#   install.sh/s/^#   //p' "$0"
  exit 2
}

while [ $# -gt 0 ]; do
  case $1 in
    --root) [ $# -ge 2 ] || usage; ROOT=${2%/}; shift 2 ;;
    --root=*) ROOT=${1#--root=}; ROOT=${ROOT%/}; shift ;;
    --uninstall) MODE=uninstall; shift ;;
    --purge) PURGE=1; shift ;;
    -h|--help) usage ;;
    -*) die "unknown option $1" ;;
    *) [ -z "$ARCHIVE" ] || usage; ARCHIVE=$1; shift ;;
  esac
done

[ "$(id -u)" -eq 0 ] || die "run as root (sudo $0 …)"
if [ -n "$ROOT" ]; then
  [ -d "$ROOT" ] || die "--root $ROOT is not a directory"
  ROOT=$(cd "$ROOT" && pwd)
fi

# systemctl only on a live systemd machine, never for --root.
live_systemd() { [ -z "$ROOT" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null; }

# The user tools act on ROOT's /etc files with --prefix.
prefix_args=()
[ -z "$ROOT" ] || prefix_args=(--prefix "$ROOT")

user_exists() { grep -q '^postlens:' "$ROOT/etc/passwd" 2>/dev/null; }
uid_of() { awk -F: -v n="$1" '$1 == n { print $3 }' "$ROOT/etc/passwd"; }
gid_of() { awk -F: -v n="$1" '$1 == n { print $3 }' "$ROOT/etc/group"; }

uninstall() {
  if live_systemd; then
    systemctl disable --now "$SERVICE" 2>/dev/null || true
  fi
  rm -f "$ROOT$UNIT" "$ROOT$BIN"
  rm -f "$ROOT/etc/systemd/system/multi-user.target.wants/postlens.service"
  live_systemd && systemctl daemon-reload
  if [ "$PURGE" = 1 ]; then
    rm -rf "${ROOT:?}$CONF_DIR" "${ROOT:?}$STATE_DIR" "$ROOT/var/lib/private/postlens"
    if user_exists; then userdel "${prefix_args[@]}" postlens; fi
    if grep -q '^postlens:' "$ROOT/etc/group" 2>/dev/null; then groupdel "${prefix_args[@]}" postlens; fi
    say "postlens removed, with its settings, database and user."
  else
    say "postlens removed. Kept: $CONF_DIR (settings), $STATE_DIR (database), the user postlens."
    say "Remove those too with: $0 --uninstall --purge"
  fi
}

# Unpacks ARCHIVE (or uses the directory this script sits in) into $src and
# checks SHA256SUMS.
unpack() {
  if [ -n "$ARCHIVE" ]; then
    [ -r "$ARCHIVE" ] || die "cannot read $ARCHIVE"
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    tar -xzf "$ARCHIVE" -C "$tmp"
    src=$(find "$tmp" -mindepth 1 -maxdepth 1 -type d | head -1)
    [ -n "$src" ] || die "$ARCHIVE holds no directory"
  else
    src=$(cd "$(dirname "$0")" && pwd)
  fi
  if [ ! -f "$src/postlens" ] || [ ! -f "$src/postlens.service" ]; then
    die "no release here: give the path of a postlens-VERSION-TARGET.tar.gz"
  fi
  if [ -f "$src/SHA256SUMS" ]; then
    (cd "$src" && sha256sum --quiet -c SHA256SUMS) || die "checksums do not match: the archive is damaged"
  fi
  # A binary for another architecture would only fail at start-up.
  if [ -z "$ROOT" ] && ! "$src/postlens" --version >/dev/null 2>&1; then
    die "$src/postlens does not run on this machine ($(uname -m)): pick the archive for this architecture"
  fi
}

install_files() {
  local changed=0
  install -d -m 0755 "$ROOT/usr/local/bin" "$ROOT/etc/systemd/system"
  if ! cmp -s "$src/postlens" "$ROOT$BIN"; then
    # Beside the old one, then renamed: a running daemon keeps its inode.
    install -m 0755 "$src/postlens" "$ROOT$BIN.new"
    mv -f "$ROOT$BIN.new" "$ROOT$BIN"
    changed=1
  fi
  if ! cmp -s "$src/postlens.service" "$ROOT$UNIT"; then
    install -m 0644 "$src/postlens.service" "$ROOT$UNIT"
    changed=1
  fi
  install -d -m 0755 "$ROOT$CONF_DIR"
  if [ ! -e "$ROOT$CONF_DIR/postlens.env" ]; then
    install -m 0644 "$src/postlens.env" "$ROOT$CONF_DIR/postlens.env"
  elif ! cmp -s "$src/postlens.env" "$ROOT$CONF_DIR/postlens.env" &&
    ! cmp -s "$src/postlens.env" "$ROOT$CONF_DIR/postlens.env.dist"; then
    # The admin's settings stay; the shipped example goes beside them.
    install -m 0644 "$src/postlens.env" "$ROOT$CONF_DIR/postlens.env.dist"
  fi
  echo "$changed"
}

create_user() {
  if ! grep -q '^postlens:' "$ROOT/etc/group" 2>/dev/null; then
    groupadd "${prefix_args[@]}" --system postlens
  fi
  if ! user_exists; then
    useradd "${prefix_args[@]}" --system --gid postlens --no-create-home \
      --home-dir "$STATE_DIR" --shell /usr/sbin/nologin --comment "postlens mail log monitor" postlens
  fi
  install -d -m 0750 "$ROOT$STATE_DIR"
  chown "$(uid_of postlens):$(gid_of postlens)" "$ROOT$STATE_DIR"
}

# Warn about what would keep the daemon from reading the mail log.
check_logs() {
  local log=$ROOT/var/log/mail.log
  if [ ! -e "$log" ]; then
    say "note: there is no /var/log/mail.log: on a journald-only system set POSTLENS_JOURNAL=true in $CONF_DIR/postlens.env (README, Troubleshooting)."
  elif [ "$(stat -c %G "$log")" != adm ] && [ "$(stat -c %a "$log" | cut -c3)" -lt 4 ]; then
    say "note: /var/log/mail.log is neither group adm nor world-readable: postlens cannot read it (README, Troubleshooting)."
  fi
}

listen_addr() {
  local v
  v=$(sed -n 's/^POSTLENS_LISTEN=//p' "$ROOT$CONF_DIR/postlens.env" | tail -1)
  echo "${v:-127.0.0.1:8080}"
}

do_install() {
  unpack
  create_user
  local changed
  changed=$(install_files)
  if live_systemd; then
    systemctl daemon-reload
    systemctl enable "$SERVICE" >/dev/null 2>&1
    if [ "$changed" = 1 ] && systemctl is-active -q "$SERVICE"; then
      systemctl restart "$SERVICE"
    else
      systemctl start "$SERVICE"
    fi
    local addr ok=0
    addr=$(listen_addr)
    for _ in $(seq 1 20); do
      if command -v curl >/dev/null && curl -fsS "http://$addr/healthz" >/dev/null 2>&1; then ok=1; break; fi
      sleep 0.5
    done
    if [ "$ok" = 1 ]; then
      say "postlens is running: http://$addr/healthz answers."
    else
      say "postlens did not answer on http://$addr/healthz yet: journalctl -u postlens -n 50"
    fi
  else
    [ -n "$ROOT" ] || say "systemd is not running here: start postlens yourself (ExecStart in $UNIT)."
    # Enable as systemctl would, so the unit starts on the target's first boot.
    local wants=$ROOT/etc/systemd/system/multi-user.target.wants
    install -d -m 0755 "$wants"
    [ "$(readlink "$wants/postlens.service")" = "$UNIT" ] || ln -sfn "$UNIT" "$wants/postlens.service"
  fi
  check_logs
  cat <<EOF

$(basename "$src" | sed -n 's/^postlens-\([^-]*\)-.*/postlens \1 /p')is installed.
  binary    $BIN
  service   $UNIT (enabled)
  settings  $CONF_DIR/postlens.env
  database  $STATE_DIR

Next steps:
  1. Create the admin account:
       sudo -u postlens $BIN user add --workspace $STATE_DIR --email you@example.com
  2. Open the web UI at http://$(listen_addr)/ : it listens on loopback, so
     either tunnel it (ssh -L 8080:$(listen_addr) this-host) or put a TLS proxy
     in front (README "Installing", the nginx example).
  3. Check what it reads: $BIN status --workspace $STATE_DIR
EOF
}

if [ "$MODE" = uninstall ]; then uninstall; else do_install; fi
