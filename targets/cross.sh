#!/usr/bin/env bash
# Static musl release binaries for the Pi (aarch64, armv7) and x86_64 VPSes,
# without Docker: rustup's std for each target, rust-lld as the linker
# (.cargo/config.toml), clang for any C source. Prints each binary's size and
# fails when one is over the budget.
#
#   targets/cross.sh setup            install what the builds and ARM tests need
#   targets/cross.sh build [TARGET…]  build (default: all three), print sizes
#   targets/cross.sh toolchain TARGET print the rustup toolchain used for TARGET
#   targets/cross.sh binfmt           let the kernel run ARM binaries via qemu
#
# Environment: CROSS=1 builds with the `cross` tool instead (only when it and
# docker or podman exist); SIZE_BUDGET (bytes, default 6000000; 0: no check);
# ARMV7_TOOLCHAIN (default 1.94.1: rust-std for armv7 musl was not
# downloadable for 1.95.0); BUILD_STD_TOOLCHAIN (default nightly-2026-05-20)
# and BUILD_STD_TARGETS (default: x86_64 only), see build(); CARGO_TARGET_DIR
# as usual.
set -euo pipefail
cd "$(dirname "$0")/.."

ALL_TARGETS=(x86_64-unknown-linux-musl aarch64-unknown-linux-musl armv7-unknown-linux-musleabihf)
SIZE_BUDGET=${SIZE_BUDGET:-6000000}
ARMV7_TOOLCHAIN=${ARMV7_TOOLCHAIN:-1.94.1}
BUILD_STD_TOOLCHAIN=${BUILD_STD_TOOLCHAIN:-nightly-2026-05-20}
BUILD_STD_TARGETS=${BUILD_STD_TARGETS-x86_64-unknown-linux-musl}
TARGET_DIR=${CARGO_TARGET_DIR:-target}
SUDO=$([ "$(id -u)" -eq 0 ] || echo sudo)

log() { printf '%s\n' "$*" >&2; }

apt_install() {
  log "installing $*"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null ||
    { $SUDO apt-get update -qq && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null; }
}

# The toolchain rust-toolchain.toml selects in this directory.
active_toolchain() {
  rustup show active-toolchain | cut -d' ' -f1
}

# Which toolchain builds TARGET: the project's own when rustup has that
# target's std for it, else (armv7 only) the pinned ARMV7_TOOLCHAIN. Installs
# what is missing.
toolchain_for() {
  local target=$1 active
  active=$(active_toolchain)
  if rustup target list --toolchain "$active" --installed | grep -qx "$target"; then
    echo "$active"; return
  fi
  if rustup target add --toolchain "$active" "$target" >/dev/null 2>&1; then
    echo "$active"; return
  fi
  if [ "$target" != armv7-unknown-linux-musleabihf ]; then
    log "rustup could not add $target to $active"; return 1
  fi
  log "rust-std for $target is not available for $active: using $ARMV7_TOOLCHAIN (see CROSS.md)"
  if ! rustup target list --toolchain "$ARMV7_TOOLCHAIN" --installed 2>/dev/null | grep -qx "$target"; then
    rustup toolchain install "$ARMV7_TOOLCHAIN" --profile minimal --target "$target" >&2
  fi
  echo "$ARMV7_TOOLCHAIN"
}

# Whether the release build of TARGET compiles std itself (see build()).
builds_std() {
  case " $BUILD_STD_TARGETS " in *" $1 "*) return 0 ;; esac
  return 1
}

# The toolchain of TARGET's release build: BUILD_STD_TOOLCHAIN (a dated
# nightly, with the std sources and, for musl's start files and libc, the
# target's rust-std) where std is built, else toolchain_for's. Installed
# here, on the first release build, not by setup: the tests (test-arm.sh,
# CI) keep using toolchain_for and do not need it.
release_toolchain_for() {
  local target=$1
  if ! builds_std "$target"; then toolchain_for "$target"; return; fi
  if ! rustup component list --toolchain "$BUILD_STD_TOOLCHAIN" --installed 2>/dev/null | grep -q '^rust-src' ||
    ! rustup target list --toolchain "$BUILD_STD_TOOLCHAIN" --installed 2>/dev/null | grep -qx "$target"; then
    log "installing $BUILD_STD_TOOLCHAIN with rust-src and $target (release build of $target, see cross.sh build)"
    rustup toolchain install "$BUILD_STD_TOOLCHAIN" --profile minimal --component rust-src --target "$target" >&2
  fi
  echo "$BUILD_STD_TOOLCHAIN"
}

setup() {
  local missing=()
  command -v clang >/dev/null || missing+=(clang)
  command -v qemu-aarch64-static >/dev/null || missing+=(qemu-user-static)
  command -v update-binfmts >/dev/null || missing+=(binfmt-support)
  command -v file >/dev/null || missing+=(file)
  if [ ${#missing[@]} -gt 0 ]; then apt_install "${missing[@]}"; fi
  local t
  for t in "${ALL_TARGETS[@]}"; do toolchain_for "$t" >/dev/null; done
}

# Registers qemu-user for aarch64 and arm ELF files with binfmt_misc (root;
# the F flag opens the interpreter now, so it also works inside chroots). The
# integration tests spawn the binary they test, and the image build runs
# arm64 programs in a chroot: both need the kernel to hand ARM executables
# to qemu. Returns 1 when it cannot (not root, or a container without
# binfmt_misc).
binfmt() {
  local fs=/proc/sys/fs/binfmt_misc arch
  if [ ! -e "$fs/register" ]; then
    $SUDO mount -t binfmt_misc binfmt_misc "$fs" 2>/dev/null || { log "binfmt_misc cannot be mounted here"; return 1; }
  fi
  for arch in aarch64 arm; do
    [ -e "$fs/qemu-$arch" ] && continue
    if [ ! -r "/usr/lib/binfmt.d/qemu-$arch.conf" ]; then
      log "no /usr/lib/binfmt.d/qemu-$arch.conf (is qemu-user-static installed?)"; return 1
    fi
    # The file holds one registration line in the kernel's own format.
    $SUDO sh -c "cat /usr/lib/binfmt.d/qemu-$arch.conf > $fs/register" || { log "cannot register qemu-$arch"; return 1; }
  done
  log "binfmt_misc: qemu-aarch64 and qemu-arm registered"
}

build() {
  local targets=("$@") t tc p bin size status=0 std_args
  [ ${#targets[@]} -gt 0 ] || targets=("${ALL_TARGETS[@]}")
  if [ "${CROSS:-0}" = 1 ]; then
    command -v cross >/dev/null || { log "CROSS=1 needs the cross tool (cargo install cross)"; exit 2; }
    command -v docker >/dev/null || command -v podman >/dev/null || { log "CROSS=1 needs docker or podman"; exit 2; }
    for t in "${targets[@]}"; do cross build --release --locked --target "$t"; done
  else
    setup
    for t in "${targets[@]}"; do
      tc=$(release_toolchain_for "$t")
      log "--- $t (toolchain $tc)"
      # Size (none of it on the hot path): the unwind tables are dropped
      # (targets/no-eh-frame.ld, 0.6 MB on x86_64; panic = "abort" never
      # unwinds, so a panic prints its message and place but no backtrace)
      # and identical functions folded by the linker (0.08 MB; Rust makes
      # no promise that distinct functions have distinct addresses). Only
      # here, for the release binaries: test builds unwind. The binaries
      # stay static-pie (ASLR for the code too); its relative relocations
      # are packed as RELR (-z pack-relative-relocs: 2.8 KB instead of
      # 0.19 MB of .rela.dyn on x86_64; musl >= 1.2.4 applies DT_RELR at
      # start-up, and Rust's self-contained musl is 1.2.5).
      flags="-C link-arg=-T$PWD/targets/no-eh-frame.ld -C link-arg=--icf=all -C link-arg=-zpack-relative-relocs"
      # armv7: Thumb-2 for postlens and its dependencies (std, prebuilt,
      # stays ARM; interworking is free on ARMv7-A): 1.66 MB smaller. rustc
      # calls thumb-mode an unstable target feature and warns; the stable
      # alternative, the thumbv7neon musl target, has no rustup std.
      case $t in armv7-*) flags+=" -C target-feature=+thumb-mode" ;; esac
      # x86_64 (BUILD_STD_TARGETS): std is compiled with the binary (a
      # nightly cargo feature, hence the pinned nightly for this build
      # only; `cargo build` and the tests use rust-toolchain.toml's), with
      # std's optimize_for_size feature and without its backtrace feature:
      # a small stable sort instead of one driftsort copy per sort call
      # site, no DWARF symbolizer (useless without the unwind tables
      # dropped above): 0.53 MB. Panic messages and places are printed as
      # before. core, alloc and std at opt-level 3 as rustup ships them
      # (the profile's "*" would give them "z"; package overrides cannot
      # be set from the environment, hence --config): at "z" the parser
      # ran 1.1 % more instructions (from_utf8 among others) and the
      # binary was 0.13 MB larger, not smaller.
      std_args=()
      if builds_std "$t"; then
        std_args=("-Zbuild-std=std,panic_abort" -Zbuild-std-features=optimize_for_size)
        for p in core alloc std; do std_args+=(--config "profile.release.package.$p.opt-level=3"); done
      fi
      RUSTFLAGS="${RUSTFLAGS:-} $flags" cargo "+$tc" build --release --locked --target "$t" "${std_args[@]}"
    done
  fi
  printf '%-34s %10s  %s\n' target bytes "file"
  for t in "${targets[@]}"; do
    bin=$TARGET_DIR/$t/release/postlens
    size=$(stat -c %s "$bin")
    printf '%-34s %10s  %s\n' "$t" "$size" "$(file -b "$bin" | cut -d, -f1,2,4-)"
    if file -b "$bin" | grep -q 'not stripped'; then log "$bin is not stripped"; status=1; fi
    if file -b "$bin" | grep -q 'dynamically linked'; then log "$bin is not static"; status=1; fi
    if [ "$SIZE_BUDGET" -gt 0 ] && [ "$size" -gt "$SIZE_BUDGET" ]; then log "$bin: $size bytes is over the budget of $SIZE_BUDGET"; status=1; fi
  done
  return $status
}

cmd=${1:-build}
shift || true
case $cmd in
  setup) setup ;;
  build) build "$@" ;;
  toolchain) toolchain_for "$1" ;;
  binfmt) binfmt ;;
  *) log "usage: $0 setup|build [TARGET…]|toolchain TARGET|binfmt"; exit 2 ;;
esac
