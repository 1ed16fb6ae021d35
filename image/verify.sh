#!/usr/bin/env bash
# Verifies a built Raspberry Pi image (image/build.sh) without a Pi:
#
#  1. the pieces: the root and boot partitions and their labels against
#     fstab and cmdline.txt, the kernel, initrd and device trees on the boot
#     partition, the postlens binary (static aarch64), its unit and the
#     first-boot unit enabled, the first-boot script and every program it
#     calls, no ssh host keys or machine id baked in;
#  2. postlens as its unit runs it: the root partition (read-only, under a
#     RAM overlay so the image is never written) in a chroot where arm64
#     programs run under qemu-user (binfmt_misc), the fstab tmpfs mounts and
#     tmpfiles.d rules applied, then the unit's ExecStart with its User,
#     Group, SupplementaryGroups, UMask, Environment= and EnvironmentFile, in
#     a network namespace of its own (so the image's own listen address is
#     used as it is): GET /healthz answers ok, lines appended to
#     /var/log/mail.log are imported, `postlens stats --json` answers through
#     the running daemon, SIGTERM stops it cleanly;
#  3. with SYSTEM=1, a boot of the whole image in qemu-system-aarch64 (-M
#     virt, the image's own Debian kernel and initrd, a sparse copy of the
#     image grown by 512 MiB so that first boot has a card to grow into):
#     systemd runs the first-boot set-up and the hardened postlens unit, and
#     /healthz answers through a forwarded port.
#
#   image/verify.sh [IMAGE | ROOTFS_DIR]     (root; `make image-verify`)
#
# IMAGE defaults to $OUT or target/image/postlens-pi-arm64.img. A directory
# (the build's root file system, KEEP_WORK=1) skips the partition checks.
# Environment: SYSTEM=1 (needs qemu-system-aarch64: Debian's
# qemu-system-arm), BOOT_TIMEOUT seconds for it (default 900), CONSOLE_LOG
# a file to keep the booted system's serial console in.
set -euo pipefail
cd "$(dirname "$0")/.."

SRC=${1:-${OUT:-target/image/postlens-pi-arm64.img}}
SYSTEM=${SYSTEM:-0}
BOOT_TIMEOUT=${BOOT_TIMEOUT:-900}

log() { printf '=== %s\n' "$*" >&2; }
die() { printf 'image/verify.sh: %s\n' "$*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "needs root (loop devices, mounts, chroot): sudo make image-verify"
[ -e "$SRC" ] || die "no image at $SRC: build one with \`make image\` or give its path"
for pair in losetup:mount sfdisk:fdisk mtype:mtools blkid:util-linux curl:curl file:file \
  python3:python3 nsenter:util-linux qemu-aarch64-static:qemu-user-static; do
  command -v "${pair%%:*}" >/dev/null || die "needs ${pair%%:*} (apt-get install ${pair#*:})"
done
grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null || die "needs overlayfs"
targets/cross.sh binfmt || die "binfmt_misc is needed to run arm64 programs in the chroot"

tmp=$(mktemp -d /tmp/postlens-verify.XXXXXX)
mounts=() loops=() pids=()
disk=
cleanup() {
  local i
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill "${pids[$i]}" 2>/dev/null || true; done
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    for _ in $(seq 1 20); do kill -0 "${pids[$i]}" 2>/dev/null || break; sleep 0.5; done
    kill -KILL "${pids[$i]}" 2>/dev/null || true
    wait "${pids[$i]}" 2>/dev/null || true
  done
  for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do
    umount "${mounts[$i]}" 2>/dev/null || umount -l "${mounts[$i]}" 2>/dev/null || true
  done
  for ((i = ${#loops[@]} - 1; i >= 0; i--)); do losetup -d "${loops[$i]}" 2>/dev/null || true; done
  rm -rf "$tmp"
  [ -z "$disk" ] || rm -f "$disk"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mnt() { mount "$@"; mounts+=("${*: -1}"); }

failures=0
pass() { printf 'ok    %s\n' "$*"; }
fail() { printf 'FAIL  %s\n' "$*"; failures=$((failures + 1)); }
check() { # check DESCRIPTION COMMAND…
  local what=$1; shift
  if "$@" >/dev/null 2>&1; then pass "$what"; else fail "$what"; fi
}

lower=$tmp/lower   # the image's root, read-only
root=$tmp/root     # lower + a RAM upper layer: what the chroot sees
boot_img=          # image file for mtools (FAT is read without mounting)
boot_off=0
mkdir -p "$lower" "$root" "$tmp/rw"

# --- the root file system ---------------------------------------------------
if [ -d "$SRC" ]; then
  log "root file system: directory $SRC (no partition checks)"
  mnt --bind -o ro "$SRC" "$lower"
  mount -o remount,bind,ro "$lower"
else
  img=$(realpath "$SRC")
  log "image $img: $(stat -c %s "$img") bytes ($(du -h "$img" | cut -f1) allocated)"
  # start and size (sectors) of partitions 1 (FAT boot) and 2 (ext4 root).
  read -r b_start b_size b_type r_start r_size r_type < <(sfdisk -d "$img" | awk -F'[=,]' 'BEGIN { n = 0 }
    /^[^ ]+ *: *start=/ { gsub(/ /, ""); s[n] = $2; z[n] = $4; t[n] = $6; n++ }
    END { print s[0], z[0], t[0], s[1], z[1], t[1] }')
  [ -n "${r_size:-}" ] || die "$img: no second partition in its table"
  check "partition 1: FAT32 LBA (type $b_type), $((b_size / 2048)) MiB" test "$b_type" = c
  check "partition 2: Linux (type $r_type), $((r_size / 2048)) MiB" test "$r_type" = 83
  # Partition device nodes (loopNpM) need udev, which a container may lack:
  # one loop device per partition, by offset, read-only.
  rdev=$(losetup -f --show -r -o $((r_start * 512)) --sizelimit $((r_size * 512)) "$img")
  loops+=("$rdev")
  # noload: no journal replay, nothing is written to the image.
  mnt -t ext4 -o ro,noload "$rdev" "$lower"
  root_label=$(blkid -o value -s LABEL "$rdev" || true)
  boot_img=$img
  boot_off=$((b_start * 512))
  boot_label=$(mlabel -s -i "$img@@$boot_off" :: 2>/dev/null | sed 's/^ *Volume label is *//; s/ *$//' || true)
fi
mnt -t tmpfs -o size=512M,mode=0755 tmpfs "$tmp/rw"
mkdir -p "$tmp/rw/upper" "$tmp/rw/work"
mnt -t overlay overlay -o "lowerdir=$lower,upperdir=$tmp/rw/upper,workdir=$tmp/rw/work" "$root"

# --- the pieces ---------------------------------------------------------------
log "pieces"
unit=$root/etc/systemd/system/postlens.service
firstboot_unit=$root/etc/systemd/system/postlens-firstboot.service
# KEY of the [Service] section (the last one given).
unit_key() { awk -F= -v k="$1" '/^\[/ { s = ($0 == "[Service]") } s && $1 == k { sub(/^[^=]*=/, ""); v = $0 } END { print v }' "$unit"; }
fstab_src() { awk -v mp="$1" '$1 !~ /^#/ && $2 == mp { print $1 }' "$root/etc/fstab"; }

check "postlens unit installed (/etc/systemd/system/postlens.service)" test -f "$unit"
check "postlens unit enabled (multi-user.target.wants)" test -L "$root/etc/systemd/system/multi-user.target.wants/postlens.service"
exec_start=$(unit_key ExecStart)
bin=${exec_start%% *}
check "ExecStart binary $bin present and executable" test -x "$root$bin"
desc=$(file -b "$root$bin" 2>/dev/null || true)
case $desc in
  *ARM\ aarch64*statically\ linked*stripped*) pass "$bin: static aarch64 ELF, stripped ($(stat -c %s "$root$bin") bytes)" ;;
  *) fail "$bin is not a static stripped aarch64 ELF: $desc" ;;
esac
if [ -f targets/systemd/postlens.service ]; then
  if cmp -s targets/systemd/postlens.service "$unit"; then pass "unit is targets/systemd/postlens.service"
  else printf 'note  the image unit differs from targets/systemd/postlens.service (image built from another revision)\n'; fi
fi
user=$(unit_key User) group=$(unit_key Group) supp=$(unit_key SupplementaryGroups)
env_file=$(unit_key EnvironmentFile)
env_file=${env_file#-}
check "user $user exists in the image" grep -q "^$user:" "$root/etc/passwd"
check "group $group exists in the image" grep -q "^$group:" "$root/etc/group"
for g in $supp; do check "supplementary group $g exists in the image" grep -q "^$g:" "$root/etc/group"; done
check "environment file $env_file present" test -f "$root$env_file"

check "first-boot unit installed" test -f "$firstboot_unit"
check "first-boot unit enabled (sysinit.target.wants)" test -L "$root/etc/systemd/system/sysinit.target.wants/postlens-firstboot.service"
fb=$(awk -F= '$1 == "ExecStart" { print $2 }' "$firstboot_unit" 2>/dev/null || true)
check "first-boot script ${fb:-?} executable" test -x "$root$fb"
check "first-boot script parses (sh -n)" sh -n "$root$fb"
for p in findmnt lsblk growpart resize2fs ssh-keygen hostname install tr tail sed; do
  found=
  for d in usr/local/sbin usr/local/bin usr/sbin usr/bin sbin bin; do
    if [ -x "$root/$d/$p" ]; then found=/$d/$p; break; fi
  done
  check "first boot's $p is in the image (${found:-missing})" test -n "$found"
done
check "no ssh host keys baked in (each card makes its own)" sh -c "! ls '$root'/etc/ssh/ssh_host_* >/dev/null 2>&1"
check "machine id empty (systemd makes one on first boot)" test ! -s "$root/etc/machine-id"
check "console message (/etc/issue.d/postlens.issue)" test -f "$root/etc/issue.d/postlens.issue"
check "journal in RAM (journald.conf.d Storage=volatile)" grep -qs '^Storage=volatile' "$root"/etc/systemd/journald.conf.d/*.conf

if [ -n "$boot_img" ]; then
  want_root=$(fstab_src /) want_boot=$(fstab_src /boot/firmware)
  check "fstab / is $want_root; root partition label $root_label" test "$want_root" = "LABEL=$root_label"
  check "fstab /boot/firmware is $want_boot; boot partition label $boot_label" test "$want_boot" = "LABEL=$boot_label"
  mdir -b -i "$boot_img@@$boot_off" :: >"$tmp/boot.list" 2>/dev/null || true
  cmdline=$(mtype -i "$boot_img@@$boot_off" ::/cmdline.txt 2>/dev/null || true)
  config=$(mtype -i "$boot_img@@$boot_off" ::/config.txt 2>/dev/null || true)
  case " $cmdline " in
    *" root=LABEL=$root_label "*) pass "cmdline.txt: root=LABEL=$root_label" ;;
    *) fail "cmdline.txt does not name the root partition (LABEL=$root_label): $cmdline" ;;
  esac
  kernel=$(printf '%s\n' "$config" | awk -F= '$1 == "kernel" { print $2 }')
  initrd=$(printf '%s\n' "$config" | awk '$1 == "initramfs" { print $2 }')
  check "config.txt: arm_64bit=1" grep -qx 'arm_64bit=1' <<<"$config"
  check "config.txt's kernel ${kernel:-?} is on the boot partition" grep -qx "::/$kernel" "$tmp/boot.list"
  check "config.txt's initramfs ${initrd:-?} is on the boot partition" grep -qx "::/$initrd" "$tmp/boot.list"
  # Pi 3 / 3+ / Zero 2 W (bcm2837), Pi 4 / 400 (bcm2711): firmware and tree.
  for f in bootcode.bin start.elf fixup.dat start4.elf fixup4.dat bcm2837-rpi-3-b.dtb bcm2837-rpi-3-b-plus.dtb \
    bcm2837-rpi-zero-2-w.dtb bcm2711-rpi-4-b.dtb bcm2711-rpi-400.dtb; do
    check "boot partition has $f" grep -qx "::/$f" "$tmp/boot.list"
  done
  if grep -q '^::/bcm2712' "$tmp/boot.list"; then pass "boot partition has a Pi 5 device tree (bcm2712)"
  else printf 'note  no bcm2712 device tree: this kernel does not boot a Raspberry Pi 5\n'; fi
fi

# The initramfs checks the root before mounting it only if it carries fsck
# and the root's fsck.<type> (its hook picks them from /etc/fstab).
root_type=$(awk '$1 !~ /^#/ && $2 == "/" { print $3 }' "$root/etc/fstab")
initrd_in_root=/boot/${initrd:-none}
if [ ! -e "$root$initrd_in_root" ]; then
  initrd_in_root=/$(cd "$root" && find boot -maxdepth 1 -name 'initrd.img-*' | sort -V | tail -n1)
fi
chroot "$root" /usr/bin/lsinitramfs "$initrd_in_root" >"$tmp/initrd.list" 2>/dev/null || true
check "initramfs $initrd_in_root has fsck and fsck.$root_type (the root is checked at boot)" \
  sh -c "grep -qE '^(usr/)?sbin/fsck\$' '$tmp/initrd.list' && grep -qE '^(usr/)?sbin/fsck\.$root_type\$' '$tmp/initrd.list'"

# --- postlens as its unit runs it, in a chroot under qemu-user -------------------
log "postlens in a chroot (qemu-user), as ${unit#"$root"} runs it"
mnt -t proc proc "$root/proc"
mnt --bind /dev "$root/dev"
mnt -t tmpfs -o mode=0755,size=16M tmpfs "$root/run"
# The fstab's tmpfs mounts (/var/log, /tmp, /var/tmp), with its options.
while read -r src mp type opts _; do
  case $src in \#*|'') continue ;; esac
  [ "$type" = tmpfs ] || continue
  mnt -t tmpfs -o "$opts" tmpfs "$root$mp"
done <"$root/etc/fstab"
# What systemd-tmpfiles does at boot for /var/log (the root's own rules).
chroot "$root" /usr/bin/systemd-tmpfiles --create --prefix=/var/log >"$tmp/tmpfiles.log" 2>&1 ||
  printf 'note  systemd-tmpfiles: %s\n' "$(tail -n1 "$tmp/tmpfiles.log")"
adm_gid=$(awk -F: '$1 == "adm" { print $3 }' "$root/etc/group")
check "tmpfiles.d made /var/log/mail.log 0640 root:adm" test "$(stat -c '%a %u %g' "$root/var/log/mail.log" 2>/dev/null)" = "640 0 $adm_gid"

uid=$(awk -F: -v u="$user" '$1 == u { print $3 }' "$root/etc/passwd")
gid=$(awk -F: -v g="$group" '$1 == g { print $3 }' "$root/etc/group")
home=$(awk -F: -v u="$user" '$1 == u { print $6 }' "$root/etc/passwd")
shell=$(awk -F: -v u="$user" '$1 == u { print $7 }' "$root/etc/passwd")
gids=
for g in $supp; do gids=${gids:+$gids,}$(awk -F: -v g="$g" '$1 == g { print $3 }' "$root/etc/group"); done
umask_=$(unit_key UMask)
# The environment systemd gives the service: its own variables, then each
# Environment= in order, then the EnvironmentFile (which overrides).
envs=(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "HOME=$home" "USER=$user"
  "LOGNAME=$user" "SHELL=$shell")
while IFS= read -r line; do
  read -ra words <<<"$line"
  envs+=("${words[@]}")
done < <(awk '/^\[/ { s = ($0 == "[Service]") } s && /^Environment=/ { sub(/^Environment=/, ""); print }' "$unit")
while IFS= read -r line; do
  line=${line#"${line%%[![:space:]]*}"}
  case $line in \#*|'') continue ;; *=*) ;; *) continue ;; esac
  v=${line#*=}; v=${v#\"}; v=${v%\"}
  envs+=("${line%%=*}=$v")
done <"$root$env_file"
env_get() { local e v=; for e in "${envs[@]}"; do [ "${e%%=*}" != "$1" ] || v=${e#*=}; done; printf '%s' "$v"; }
workspace=$(env_get POSTLENS_WORKSPACE)
listen=$(env_get POSTLENS_LISTEN)
watch=$(env_get POSTLENS_WATCH_DIR)
printf 'note  %s as %s:%s (+%s), umask %s, environment (later wins): %s\n' "$exec_start" "$user" "$group" "$supp" "${umask_:-0022}" \
  "$(printf '%s ' "${envs[@]}" | grep -o 'POSTLENS_[A-Z_]*=[^ ]*' | tr '\n' ' ')"
# StateDirectory= and RuntimeDirectory=, as systemd makes them.
for d in "$(unit_key StateDirectory):/var/lib:$(unit_key StateDirectoryMode)" \
  "$(unit_key RuntimeDirectory):/run:$(unit_key RuntimeDirectoryMode)"; do
  IFS=: read -r name base mode <<<"$d"
  [ -n "$name" ] || continue
  install -d -m "${mode:-0755}" -o "$uid" -g "$gid" "$root$base/$name"
done
check "workspace $workspace writable by $user (under ReadWritePaths)" grep -q "^ReadWritePaths=.*$workspace" "$unit"

# A network namespace with only loopback: the image's listen address as it
# is, no clash with anything on this machine, nothing reaches out.
unshare -n sleep 100000 &
netns=$!
pids+=("$netns")
sleep 0.2
nsenter -t "$netns" -n ip link set lo up
in_ns() { nsenter -t "$netns" -n "$@"; }
as_unit() { # as_unit COMMAND…: in the chroot, as the unit's user, with its environment
  umask "${umask_:-0022}"
  exec nsenter -t "$netns" -n env -i "${envs[@]}" chroot --userspec="$uid:$gid" ${gids:+--groups="$gids"} "$root" "$@"
}
port=${listen##*:}
url=http://127.0.0.1:$port
# shellcheck disable=SC2086 # ExecStart is split into words, as systemd does
(as_unit $exec_start) >"$tmp/postlens.log" 2>&1 &
daemon=$!
pids+=("$daemon")
ok=0
for _ in $(seq 1 240); do
  if [ "$(in_ns curl -fsS --max-time 5 "$url/healthz" 2>/dev/null)" = ok ]; then ok=1; break; fi
  kill -0 "$daemon" 2>/dev/null || break
  sleep 0.5
done
if [ "$ok" = 1 ]; then
  pass "GET /healthz on $listen answers ok"
  code=$(in_ns curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$url/" || true)
  case $code in 2??|3??) pass "GET / answers $code" ;; *) fail "GET / answers $code" ;; esac
  version=$( (as_unit "$bin" --version) 2>/dev/null || true)
  printf 'note  %s\n' "${version:-postlens --version gave nothing}"

  # Lines arrive in mail.log as rsyslog would write them.
  python3 benches/genlog.py --lines 3000 --days 0.5 --start "$(date -u -d yesterday +%F)" --seed 11 --quiet -o "$tmp/mail.log"
  want=$(wc -l <"$tmp/mail.log")
  cat "$tmp/mail.log" >>"$root$watch/mail.log"
  read_=0
  for _ in $(seq 1 120); do
    (as_unit "$bin" stats --json) >"$tmp/stats.json" 2>"$tmp/stats.err" || true
    read_=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["lines"]["read"])' "$tmp/stats.json" 2>/dev/null || echo 0)
    [ "$read_" -lt "$want" ] || break
    kill -0 "$daemon" 2>/dev/null || break
    sleep 1
  done
  if [ "$read_" -ge "$want" ]; then
    pass "$want lines appended to $watch/mail.log imported; postlens stats --json (through the daemon) answers"
    python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print("note  stats: lines", s["lines"], "deliveries", s["deliveries"])' "$tmp/stats.json"
  else
    fail "postlens stats --json: $read_ of $want lines read ($(head -c 300 "$tmp/stats.err" "$tmp/stats.json" | tr '\n' ' '))"
  fi
else
  fail "GET /healthz on $listen did not answer ok"
fi
# SIGTERM, as systemctl stop; the unit allows TimeoutStopSec.
stop=$(unit_key TimeoutStopSec)
kill -TERM "$daemon" 2>/dev/null || true
for _ in $(seq 1 $((${stop:-10} * 2))); do kill -0 "$daemon" 2>/dev/null || break; sleep 0.5; done
if kill -0 "$daemon" 2>/dev/null; then
  fail "postlens still running ${stop:-10} s after SIGTERM"
else
  status=0; wait "$daemon" || status=$?
  check "SIGTERM: postlens stopped, exit $status" test "$status" = 0
fi
if [ "$failures" -gt 0 ]; then printf -- '--- postlens output\n'; tail -n 30 "$tmp/postlens.log"; fi

# --- optional: boot the whole image -----------------------------------------
if [ "$SYSTEM" = 1 ]; then
  log "boot in qemu-system-aarch64 (-M virt)"
  [ -n "$boot_img" ] || die "SYSTEM=1 needs an image file, not a directory"
  command -v qemu-system-aarch64 >/dev/null || die "SYSTEM=1 needs qemu-system-aarch64 (apt-get install qemu-system-arm)"
  kernel_file=$(find "$lower/boot" -maxdepth 1 -name 'vmlinuz-*' | sort -V | tail -n1)
  initrd_file=$(find "$lower/boot" -maxdepth 1 -name 'initrd.img-*' | sort -V | tail -n1)
  if [ -z "$kernel_file" ] || [ -z "$initrd_file" ]; then die "no kernel or initrd in the image's /boot"; fi
  cp "$kernel_file" "$tmp/vmlinuz"
  cp "$initrd_file" "$tmp/initrd"
  # A card larger than the image, as on a Pi: first boot grows the root.
  disk=$(mktemp "${TMPDIR:-/var/tmp}/postlens-verify-disk.XXXXXX")
  cp --sparse=always "$img" "$disk"
  truncate -s +512M "$disk"
  hostport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  qemu-system-aarch64 -M virt -cpu cortex-a72 -smp 2 -m 1024 -display none -no-reboot \
    -serial "file:$tmp/console.log" -monitor none \
    -kernel "$tmp/vmlinuz" -initrd "$tmp/initrd" \
    -append "root=LABEL=$root_label rw rootwait console=ttyAMA0 net.ifnames=0 panic=-1" \
    -drive "if=none,id=card,file=$disk,format=raw" -device virtio-blk-pci,drive=card \
    -netdev "user,id=lan,hostfwd=tcp:127.0.0.1:$hostport-:$port" -device virtio-net-pci,netdev=lan,romfile= 2>"$tmp/qemu.err" &
  qemu=$!
  pids+=("$qemu")
  t0=$(date +%s) ok=0
  while [ $(($(date +%s) - t0)) -lt "$BOOT_TIMEOUT" ]; do
    if [ "$(curl -fsS --max-time 5 "http://127.0.0.1:$hostport/healthz" 2>/dev/null)" = ok ]; then ok=1; break; fi
    kill -0 "$qemu" 2>/dev/null || break
    sleep 5
  done
  if [ "$ok" = 1 ]; then
    pass "booted: postlens.service answers /healthz after $(($(date +%s) - t0)) s (systemd, hardened unit)"
  else
    fail "booted image: no /healthz within $BOOT_TIMEOUT s"
    if ! kill -0 "$qemu" 2>/dev/null; then printf 'note  qemu exited: %s\n' "$(head -c 500 "$tmp/qemu.err")"; fi
  fi
  tr -d '\r' <"$tmp/console.log" | sed 's/\x1b\[[0-9;]*[a-zA-Z]//g' >"$tmp/console.txt"
  if [ -n "${CONSOLE_LOG:-}" ]; then cp "$tmp/console.txt" "$CONSOLE_LOG"; fi
  if grep -q 'postlens-firstboot: host name' "$tmp/console.txt"; then
    pass "first boot: $(grep -o 'postlens-firstboot: host name.*' "$tmp/console.txt" | head -n1)"
  else
    fail "first boot: no 'postlens-firstboot: host name' on the console"
  fi
  check "first boot grew the root partition (CHANGED)" grep -q 'CHANGED: partition=2' "$tmp/console.txt"
  check "the initramfs checked the root (no 'fsck not present')" sh -c "! grep -q 'fsck not present' '$tmp/console.txt'"
  if grep -q 'FAILED' "$tmp/console.txt"; then
    printf 'note  units that failed on the console:\n'; grep 'FAILED' "$tmp/console.txt" | head -n 10
  fi
  kill "$qemu" 2>/dev/null || true
  wait "$qemu" 2>/dev/null || true
  rm -f "$disk"
  if [ "$failures" -gt 0 ]; then printf -- '--- console (last 40 lines)\n'; tail -n 40 "$tmp/console.txt"; fi
fi

if [ "$failures" -gt 0 ]; then die "$failures check(s) failed"; fi
log "all checks passed"
