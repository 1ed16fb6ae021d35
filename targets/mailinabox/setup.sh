#!/usr/bin/env bash
# Installs postlens beside Mail-in-a-Box: postlens itself (the VPS installer:
# binary, hardened unit, user, /var/lib/postlens), then postlens-miab, which
# serves the UI at https://PRIMARY_HOSTNAME/admin/postlens/ through the box's
# nginx and TLS, wires Dovecot's auth policy when postlens supports it, and
# re-applies itself whenever Mail-in-a-Box's setup runs again.
#
#   sudo ./setup.sh postlens-VERSION-TARGET.tar.gz
#   sudo ./setup.sh --uninstall [--purge]
#   ./setup.sh --root DIR …      against a directory laid out like the box (tests)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
ROOT=
MODE=install
args=()
while [ $# -gt 0 ]; do
  case $1 in
    --root) ROOT=$(cd "$2" && pwd); shift 2 ;;
    --uninstall) MODE=uninstall; shift ;;
    --purge) args+=(--purge); shift ;;
    -h|--help) sed -n '/^#   /s/^#   //p' "$0"; exit 2 ;;
    -*) echo "setup.sh: unknown option $1" >&2; exit 2 ;;
    *) args+=("$1"); shift ;;
  esac
done
export ROOT  # postlens-miab acts on the same root
root_args=()
[ -z "$ROOT" ] || root_args=(--root "$ROOT")

[ "$(id -u)" -eq 0 ] || { echo "setup.sh: run as root" >&2; exit 1; }
[ -r "$ROOT/etc/mailinabox.conf" ] || { echo "setup.sh: no $ROOT/etc/mailinabox.conf: this is not a Mail-in-a-Box box" >&2; exit 1; }
command -v python3 >/dev/null || { echo "setup.sh: python3 is missing" >&2; exit 1; }

# In a release archive install.sh sits one level up; in the repository it is
# targets/vps/install.sh.
installer=$here/../install.sh
[ -x "$installer" ] || installer=$here/../vps/install.sh
live() { [ -z "$ROOT" ] && [ -d /run/systemd/system ]; }
units=(postlens-miab.path postlens-miab.service)

if [ "$MODE" = uninstall ]; then
  if [ -x "$ROOT/usr/local/sbin/postlens-miab" ]; then
    "$ROOT/usr/local/sbin/postlens-miab" remove
  fi
  if live; then systemctl disable --now "${units[@]}" 2>/dev/null || true; fi
  for u in "${units[@]}"; do
    rm -f "$ROOT/etc/systemd/system/$u" "$ROOT/etc/systemd/system/multi-user.target.wants/$u"
  done
  rm -rf "$ROOT/usr/local/sbin/postlens-miab" "$ROOT/usr/local/share/postlens-miab"
  "$installer" "${root_args[@]}" --uninstall "${args[@]}"
  exit 0
fi

"$installer" "${root_args[@]}" "${args[@]}" >/dev/null
install -d -m 0755 "$ROOT/usr/local/sbin" "$ROOT/usr/local/share/postlens-miab" "$ROOT/etc/systemd/system/multi-user.target.wants"
put() { # put MODE SOURCE DEST: install unless DEST is already the same
  cmp -s "$2" "$3" || install -m "$1" "$2" "$3"
}
put 0755 "$here/postlens-miab" "$ROOT/usr/local/sbin/postlens-miab"
put 0644 "$here/custom_yaml.py" "$ROOT/usr/local/share/postlens-miab/custom_yaml.py"
for u in "${units[@]}"; do
  put 0644 "$here/$u" "$ROOT/etc/systemd/system/$u"
done
if live; then
  systemctl daemon-reload
  systemctl enable --now postlens-miab.path >/dev/null 2>&1
  systemctl enable postlens-miab.service >/dev/null 2>&1
else
  for u in "${units[@]}"; do
    [ -L "$ROOT/etc/systemd/system/multi-user.target.wants/$u" ] ||
      ln -s "/etc/systemd/system/$u" "$ROOT/etc/systemd/system/multi-user.target.wants/$u"
  done
fi
"$ROOT/usr/local/sbin/postlens-miab" apply
cat <<EOT

Next: create the postlens admin account,
  sudo -u postlens /usr/local/bin/postlens user add --workspace /var/lib/postlens --email you@$(sed -n 's/^PRIMARY_HOSTNAME=//p' "$ROOT/etc/mailinabox.conf")
then open the address above. Remove with: sudo $0 --uninstall [--purge]
EOT
