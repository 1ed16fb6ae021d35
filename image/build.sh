#!/usr/bin/env bash
# Builds a Raspberry Pi (arm64: Pi 3, 3+, 4, 400, Zero 2 W) SD-card image of
# Debian with postlens: a minimal root file system made by debootstrap, run
# under qemu-user through binfmt_misc; Debian's `linux-image-arm64` and
# `raspi-firmware` for the kernel and the Pi's boot firmware; postlens
# installed by targets/vps/install.sh with its unit; first-boot set-up; a
# read-mostly root. Then it starts the installed postlens inside the root
# (chroot, qemu-user) and checks that it answers /healthz and imports a log,
# and packs an .img: MBR, a FAT boot partition, an ext4 root. image/verify.sh
# checks the result (`make image-verify`).
#
# Not the Pi 5: bookworm's kernel (6.1) and raspi-firmware carry no bcm2712
# device tree. The network is wired Ethernet only (no Wi-Fi set-up), so a
# Zero 2 W needs a USB Ethernet adapter.
#
#   image/build.sh                      (root; `make image`)
#
# Environment:
#   OUT        the image (default target/image/postlens-pi-arm64.img)
#   WORK       scratch directory (default target/image/work, removed after)
#   MIRROR     Debian mirror URL (default: the one this machine's apt uses)
#   SUITE      Debian release (default bookworm)
#   BINARY     the aarch64 postlens (default: built by targets/cross.sh)
#   ROOT_SIZE  root file system size (default 1536M; grows to the card on
#              first boot)
#   WITH_MAIL  1: also install Postfix and Dovecot (default 0)
#   COMPRESS   1: also write OUT.xz (default 0)
#   KEEP_WORK  1: keep WORK (the root file system) for inspection
set -euo pipefail
cd "$(dirname "$0")/.."
here=$PWD

OUT=${OUT:-target/image/postlens-pi-arm64.img}
WORK=${WORK:-target/image/work}
SUITE=${SUITE:-bookworm}
ROOT_SIZE=${ROOT_SIZE:-1536M}
BOOT_MIB=256
WITH_MAIL=${WITH_MAIL:-0}
ROOT_LABEL=postlens-root
BOOT_LABEL=PLFIRMWARE

log() { printf '=== %s\n' "$*" >&2; }
die() { printf 'image/build.sh: %s\n' "$*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, chroot, mounts): sudo make image"

# The mirror this machine's apt already uses for SUITE (deb822 .sources or
# one-line lists), unless MIRROR is given.
apt_mirror() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -r "$f" ] || continue
    awk -v suite="$SUITE" '
      /^URIs:/ { uri = $2 }
      /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == suite) found = 1 }
      /^$/ { if (found && uri) { print uri; exit } uri = ""; found = 0 }
      END { if (found && uri) print uri }' "$f"
  done
  cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
    awk -v suite="$SUITE" '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { if ($(i+1) == suite) print $i; break } }' || true
}
mirrors=$(apt_mirror)
MIRROR=${MIRROR:-${mirrors%%$'\n'*}}
[ -n "$MIRROR" ] || die "no Debian mirror for $SUITE in /etc/apt: set MIRROR=http://…/debian"

start=$(date +%s)
log "requirements"
missing=()
for pair in debootstrap:debootstrap mkfs.vfat:dosfstools mcopy:mtools sfdisk:fdisk mkfs.ext4:e2fsprogs \
  qemu-aarch64-static:qemu-user-static curl:curl xz:xz-utils python3:python3; do
  command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null ||
    { apt-get update -qq && env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null; }
fi
# arm64 programs run in the chroot (maintainer scripts, the check below).
targets/cross.sh binfmt || die "binfmt_misc is needed to run arm64 programs in the chroot"

BINARY=${BINARY:-}
if [ -z "$BINARY" ]; then
  targets/cross.sh build aarch64-unknown-linux-musl >/dev/null
  BINARY=${CARGO_TARGET_DIR:-target}/aarch64-unknown-linux-musl/release/postlens
fi
BINARY=$(realpath "$BINARY")

rootfs=$WORK/rootfs
mounts=()
cleanup() {
  local i
  for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do umount -l "${mounts[$i]}" 2>/dev/null || true; done
  if [ "${KEEP_WORK:-0}" != 1 ]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT
bind() { mount "$@"; mounts+=("${*: -1}"); }

rm -rf "$WORK"
mkdir -p "$WORK" "$(dirname "$OUT")"

log "debootstrap $SUITE arm64 from $MIRROR"
debootstrap --arch=arm64 --variant=minbase --components=main,non-free-firmware \
  --include=systemd-sysv,udev,kmod,apt,ca-certificates,curl,iproute2,tzdata \
  "$SUITE" "$rootfs" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 ||
  { tail -30 "$WORK/debootstrap.log" >&2; die "debootstrap failed (log above)"; }

in_root() { chroot "$rootfs" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive LC_ALL=C "$@"; }

bind -t proc proc "$rootfs/proc"
bind -t sysfs sysfs "$rootfs/sys"
bind --bind /dev "$rootfs/dev"
bind -t devpts devpts "$rootfs/dev/pts"
# raspi-firmware's kernel hook copies the kernel, initrd, device trees and
# writes config.txt/cmdline.txt into /boot/firmware only when that is a
# mount point (on the Pi it is the FAT partition): bind it onto itself.
mkdir -p "$rootfs/boot/firmware"
bind --bind "$rootfs/boot/firmware" "$rootfs/boot/firmware"
# No daemon starts inside the chroot.
printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"
chmod 0755 "$rootfs/usr/sbin/policy-rc.d"

log "packages"
cat >"$rootfs/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main non-free-firmware
deb $MIRROR $SUITE-updates main non-free-firmware
EOF
# cmdline.txt: root by label (the card's device name differs between models).
cat >"$rootfs/etc/default/raspi-firmware" <<EOF
ROOTPART=LABEL=$ROOT_LABEL
CONSOLES="ttyS1,115200 tty0"
EOF
pkgs=(firmware-brcm80211 systemd-resolved systemd-timesyncd openssh-server rsyslog logrotate
  cloud-guest-utils fdisk e2fsprogs dosfstools sudo less)
[ "$WITH_MAIL" != 1 ] || pkgs+=(postfix dovecot-imapd)
echo "postfix postfix/main_mailer_type select Local only" | in_root debconf-set-selections
in_root apt-get update -qq
# Our /etc/default/raspi-firmware stays (no conffile prompt). The kernel
# comes in a second run, after everything that triggers initramfs-tools:
# building the initramfs under qemu takes minutes, and so it is built once.
apt_in_root() {
  # systemd-resolved turns /etc/resolv.conf into a link into /run: name
  # lookups inside the chroot use the host's resolver until the end.
  if [ -L "$rootfs/etc/resolv.conf" ] || [ ! -e "$rootfs/etc/resolv.conf" ]; then
    rm -f "$rootfs/etc/resolv.conf"
    cp /etc/resolv.conf "$rootfs/etc/resolv.conf"
  fi
  in_root apt-get install -y -qq --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@" >>"$WORK/apt.log" 2>&1 ||
    { tail -30 "$WORK/apt.log" >&2; die "apt-get install failed (log above)"; }
}
apt_in_root "${pkgs[@]}"
# initramfs-tools' fsck hook puts fsck into the initramfs only for the root
# file system type it detects by probing the root device, which a chroot
# does not have: without FSTYPE (initramfs.conf(5)) the initramfs has no
# fsck and the root is never checked at boot ("fsck not present, so skipping
# root file system"). The root is made ext4 below.
mkdir -p "$rootfs/etc/initramfs-tools/conf.d"
echo FSTYPE=ext4 >"$rootfs/etc/initramfs-tools/conf.d/postlens-fstype"
apt_in_root linux-image-arm64 raspi-firmware
[ -n "$(find "$rootfs/boot/firmware" -name 'vmlinuz-*' -print -quit)" ] || die "no kernel in /boot/firmware: raspi-firmware's hook did not run"

log "postlens"
DIST="$WORK/dist" DIST_BINARY="$BINARY" targets/dist.sh aarch64-unknown-linux-musl >/dev/null
targets/vps/install.sh --root "$rootfs" "$WORK"/dist/postlens-*-aarch64-unknown-linux-musl.tar.gz >/dev/null
cp image/rootfs/etc/postlens/postlens.env "$rootfs/etc/postlens/postlens.env"

log "configuration"
# The files under image/rootfs go in as they are (fstab, network, journald,
# first-boot unit, console message); then the few that need a value.
cp -r --no-preserve=ownership image/rootfs/. "$rootfs/"
sed -i "s/@ROOT_LABEL@/$ROOT_LABEL/; s/@BOOT_LABEL@/$BOOT_LABEL/" "$rootfs/etc/fstab"
chmod 0755 "$rootfs/usr/local/sbin/postlens-firstboot"
echo postlens >"$rootfs/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tpostlens\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$rootfs/etc/hosts"
in_root systemctl enable systemd-networkd systemd-resolved systemd-timesyncd postlens-firstboot.service >/dev/null 2>&1
in_root systemctl enable postlens.service >/dev/null 2>&1
# The console logs in as root without a password until one is set; ssh
# accepts keys only (Debian's default for root). Host keys and the machine
# id are made on the first boot, so every card gets its own.
in_root passwd -d root >/dev/null
rm -f "$rootfs"/etc/ssh/ssh_host_*
: >"$rootfs/etc/machine-id"
rm -f "$rootfs/var/lib/dbus/machine-id"

log "check: the installed postlens in the root (chroot, qemu-user)"
check_ws=/tmp/postlens-check
mkdir -p "$rootfs$check_ws/logs"
python3 benches/genlog.py --lines 5000 --days 1 --seed 7 -o "$rootfs$check_ws/logs/mail.log"
ids=$(awk -F: '$1 == "postlens" { print $3 ":" $4 }' "$rootfs/etc/passwd")
chown -R "$ids" "$rootfs$check_ws"
port=18$((RANDOM % 900 + 100))
chroot --userspec="$ids" "$rootfs" /usr/local/bin/postlens run --workspace "$check_ws/ws" \
  --watch-dir "$check_ws/logs" --listen "127.0.0.1:$port" >"$WORK/check.log" 2>&1 &
pid=$!
ok=0
for _ in $(seq 1 120); do
  if [ "$(curl -fsS "http://127.0.0.1:$port/healthz" 2>/dev/null)" = ok ]; then ok=1; break; fi
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.5
done
stats=$(chroot --userspec="$ids" "$rootfs" /usr/local/bin/postlens stats --workspace "$check_ws/ws" --json 2>&1 || true)
kill -TERM "$pid" 2>/dev/null || true
wait "$pid" || true
rm -rf "${rootfs:?}$check_ws"
[ "$ok" = 1 ] || { cat "$WORK/check.log" >&2; die "postlens in the image did not answer /healthz"; }
log "/healthz answered ok from $(file -b "$rootfs/usr/local/bin/postlens" | cut -d, -f1-2) in the chroot"
printf '%s\n' "$stats" | head -c 300 >&2; echo >&2

log "clean up the root"
in_root apt-get clean
rm -f "$rootfs/usr/sbin/policy-rc.d"
ln -sfn ../run/systemd/resolve/stub-resolv.conf "$rootfs/etc/resolv.conf"
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/*.log "$rootfs"/var/log/apt/* "$rootfs"/tmp/*
for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do umount -l "${mounts[$i]}"; done
mounts=()

log "pack $OUT"
boot=$WORK/boot.vfat
root=$WORK/root.ext4
rm -f "$boot" "$root"
mkfs.vfat -F 32 -n "$BOOT_LABEL" -C "$boot" $((BOOT_MIB * 1024)) >/dev/null
mcopy -s -i "$boot" "$rootfs"/boot/firmware/* ::/
# On the Pi the FAT partition is mounted over /boot/firmware.
find "$rootfs/boot/firmware" -mindepth 1 -delete
mkfs.ext4 -q -L "$ROOT_LABEL" -O ^metadata_csum_seed -E root_owner=0:0 -d "$rootfs" "$root" "$ROOT_SIZE"
root_bytes=$(stat -c %s "$root")
first=8192 # sectors: 4 MiB before the first partition
boot_sectors=$((BOOT_MIB * 2048))
root_start=$((first + boot_sectors))
total=$(((root_start * 512) + root_bytes))
rm -f "$OUT"
truncate -s "$total" "$OUT"
sfdisk --quiet "$OUT" <<EOF
label: dos
start=$first, size=$boot_sectors, type=c, bootable
start=$root_start, size=$((root_bytes / 512)), type=83
EOF
dd if="$boot" of="$OUT" bs=512 seek="$first" conv=notrunc,sparse status=none
dd if="$root" of="$OUT" bs=512 seek="$root_start" conv=notrunc,sparse status=none
if [ "${COMPRESS:-0}" = 1 ]; then xz -T0 -6 -k -f "$OUT"; fi
log "done in $(($(date +%s) - start)) s: $(for f in "$OUT" "$OUT.xz"; do [ ! -e "$f" ] || printf '%s %s bytes (%s allocated)  ' "$f" "$(stat -c %s "$f")" "$(du -h "$f" | cut -f1)"; done)"
cd "$here"
