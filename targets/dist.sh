#!/usr/bin/env bash
# Release archives: target/dist/postlens-VERSION-TARGET.tar.gz for each
# target, each holding one directory with
#   postlens          the static, stripped binary
#   postlens.service  the systemd unit (targets/systemd)
#   postlens.env      the example settings (installed as /etc/postlens/postlens.env)
#   install.sh        the VPS installer (targets/vps/install.sh)
#   mailinabox/       the Mail-in-a-Box addon (targets/mailinabox)
#   LICENSE           the licence text, or the SPDX id from Cargo.toml when the
#                     repository has no licence file
#   README.md
#   SHA256SUMS        of the files above
# and target/dist/SHA256SUMS over the archives. The archives are
# reproducible: sorted names, owner root, mtime of the last commit.
#
#   targets/dist.sh [TARGET…]   default: the three musl targets; builds them first
#   DIST_BINARY=PATH targets/dist.sh LABEL
#                               packs an existing binary under the name LABEL
#                               (the install tests use the glibc build)
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET_DIR=${CARGO_TARGET_DIR:-target}
DIST=${DIST:-target/dist}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(x86_64-unknown-linux-musl aarch64-unknown-linux-musl armv7-unknown-linux-musleabihf)

version=$(sed -n '/^\[package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -1)
license=$(sed -n '/^\[package\]/,/^\[/s/^license *= *"\(.*\)"/\1/p' Cargo.toml | head -1)
[ -n "$version" ] || { echo "no version in Cargo.toml" >&2; exit 1; }
mtime=$(git log -1 --format=%cI 2>/dev/null || date -u +%Y-%m-%dT%H:%M:%SZ)

binary_of() { echo "$TARGET_DIR/$1/release/postlens"; }
if [ -n "${DIST_BINARY:-}" ]; then
  [ ${#targets[@]} -eq 1 ] || { echo "DIST_BINARY packs one binary: name one target" >&2; exit 2; }
  binary_of() { echo "$DIST_BINARY"; }
else
  targets/cross.sh build "${targets[@]}"
fi

mkdir -p "$DIST"
archives=()
for t in "${targets[@]}"; do
  name=postlens-$version-$t
  stage=$(mktemp -d)
  dir=$stage/$name
  mkdir "$dir"
  install -m 0755 "$(binary_of "$t")" "$dir/postlens"
  install -m 0644 targets/systemd/postlens.service targets/systemd/postlens.env README.md "$dir/"
  install -m 0755 targets/vps/install.sh "$dir/install.sh"
  install -d "$dir/mailinabox"
  install -m 0755 targets/mailinabox/setup.sh targets/mailinabox/postlens-miab "$dir/mailinabox/"
  install -m 0644 targets/mailinabox/custom_yaml.py targets/mailinabox/postlens-miab.path \
    targets/mailinabox/postlens-miab.service "$dir/mailinabox/"
  lic=$(find . -maxdepth 1 \( -name 'LICENSE*' -o -name 'COPYING*' \) -type f | sort | head -1)
  if [ -n "$lic" ]; then
    install -m 0644 "$lic" "$dir/LICENSE"
  else
    printf 'SPDX-License-Identifier: %s\n\n%s\n' "${license:-unknown}" \
      "postlens is licensed under ${license:-(no licence declared)} (Cargo.toml); the full text is at https://spdx.org/licenses/${license:-}.html" \
      >"$dir/LICENSE"
  fi
  sums=$(cd "$dir" && find . -type f -printf '%P\n' | LC_ALL=C sort | xargs sha256sum)
  printf '%s\n' "$sums" >"$dir/SHA256SUMS"
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="$mtime" \
    -C "$stage" -cf - "$name" | gzip -n -9 >"$DIST/$name.tar.gz"
  rm -rf "$stage"
  archives+=("$name.tar.gz")
done
(cd "$DIST" && sha256sum "${archives[@]}" >SHA256SUMS && ls -l "${archives[@]}" SHA256SUMS)
