# postlens: build, test, benchmark. Everything a fresh Debian machine needs
# beyond the Rust toolchain is installed here, not by hand.

CARGO ?= cargo
BIN    = target/release/postlens
SUDO  := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

.PHONY: all build static musl-deps test-static demo test lint unit e2e bench bench-web fuzz deps clean \
	cross test-arm test-arm64 dist verify-unit test-install test-mailinabox test-targets lint-sh image

all: build

build:
	$(CARGO) build --release --locked

# The static binary that ships (musl: no glibc, no per-thread malloc arenas),
# built with profile-guided optimisation: targets/pgo.sh builds it
# instrumented and trains it on a generated log (and the corpus when
# present), then this build uses the profile (README "Figures"). PGO=0
# builds without. clang compiles ring's C for musl (.cargo/config.toml).
PGO ?= 1
static: musl-deps
	@if [ "$(PGO)" = 1 ]; then prof=$$(targets/pgo.sh x86_64-unknown-linux-musl) && \
	  RUSTFLAGS="$${RUSTFLAGS:-} -Cprofile-use=$$prof" $(CARGO) build --release --locked --target x86_64-unknown-linux-musl; \
	else $(CARGO) build --release --locked --target x86_64-unknown-linux-musl; fi
	@ls -la target/x86_64-unknown-linux-musl/release/postlens

# What a static x86_64 build needs: the target's std, and clang.
musl-deps:
	rustup target add x86_64-unknown-linux-musl
	@command -v clang >/dev/null || { echo "installing clang"; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang >/dev/null || \
	  { $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang >/dev/null; }; }

# The static x86_64 build's allocator and string functions in place (CI):
# src/main.rs's unit tests built for musl, and a musl build's stats --json
# equal to the glibc build's on the same logs.
test-static: build musl-deps
	POSTLENS=$(BIN) targets/test-static.sh

# The first command of the README: a real import and its answers. Uses your
# /var/log/mail.log (and rotated archives) when readable, else a generated
# week of a busy server.
demo: build deps
	@set -e; ws=$${WORKSPACE:-target/demo-workspace}; rm -rf "$$ws"; \
	logs=$$(ls -tr /var/log/mail.log* 2>/dev/null | tr '\n' ' '); \
	if [ -n "$$logs" ] && [ -r /var/log/mail.log ]; then echo "importing $$logs"; \
	else mkdir -p target/bench; python3 benches/genlog.py --lines 200000 --days 3 --seed 7 -o target/demo.log; logs=target/demo.log; \
	  echo "no readable /var/log/mail.log here: importing a generated busy-server log ($$logs)"; fi; \
	$(BIN) import --progress --workspace "$$ws" $$logs; \
	$(BIN) stats --workspace "$$ws"; \
	$(BIN) search --workspace "$$ws" --status bounced --limit 3; \
	$(BIN) report --workspace "$$ws" | head -40

# Packages the tests and benchmarks use (python3 for the log generator and
# the e2e harness; /usr/bin/time for peak RSS; dnsmasq as the real DNS
# server of the DNSBL test in tests/insights.rs; nsd and Postfix for the
# health checks in tests/check.rs; Dovecot, whose doveconf checks the
# settings `dovecot-conf` prints in tests/protect.rs).
deps:
	@missing=""; command -v python3 >/dev/null || missing="$$missing python3"; \
	[ -x /usr/bin/time ] || missing="$$missing time"; \
	[ -x /usr/sbin/dnsmasq ] || missing="$$missing dnsmasq-base"; \
	[ -x /usr/sbin/nsd ] || missing="$$missing nsd"; \
	[ -x /usr/sbin/postconf ] || missing="$$missing postfix"; \
	command -v dovecot >/dev/null || [ -x /usr/sbin/dovecot ] || missing="$$missing dovecot-core"; \
	if [ -n "$$missing" ]; then echo "installing$$missing"; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null || \
	  { $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; }; fi

# The README's test command: formatting, lints, unit/integration/corpus tests.
test: deps lint unit

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets --locked -- -D warnings

unit:
	$(CARGO) test --locked

# Real Postfix + Dovecot on loopback (root; installs Debian packages).
e2e: build
	$(SUDO) env POSTLENS=$(CURDIR)/$(BIN) bash tests/e2e/run.sh

bench: build static deps
	POSTLENS=$(BIN) bash benches/bench.sh

# Web UI latency under ingestion (wrk; installs it when missing).
bench-web: build
	POSTLENS=$(BIN) bash benches/web.sh

fuzz:
	command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked
	cd fuzz && $(CARGO) +nightly fuzz run parse -- -max_total_time=$${FUZZ_SECS:-60}
	cd fuzz && $(CARGO) +nightly fuzz run pipeline -- -max_total_time=$${FUZZ_SECS:-60}

clean:
	$(CARGO) clean

# --- appliance delivery (targets/, image/; README "Installing") -----------
# Static, stripped musl binaries for x86_64, aarch64 and armv7 in
# target/<triple>/release/postlens; prints sizes, fails over SIZE_BUDGET
# (6 MB). Installs clang, qemu-user-static and the rustup targets itself.
# CROSS=1 uses the `cross` tool (needs docker or podman) instead.
cross:
	targets/cross.sh build

# The unit and integration tests for aarch64 and armv7 under qemu-user, then
# the smoke test (ARM and x86_64 binaries give the same stats --json).
test-arm:
	targets/test-arm.sh

# What CI runs: the aarch64 suite and smoke test only.
test-arm64:
	targets/test-arm.sh aarch64-unknown-linux-musl

# target/dist/postlens-VERSION-TARGET.tar.gz for the three targets + SHA256SUMS.
dist:
	targets/dist.sh

# The systemd unit: systemd-analyze verify (no warnings) and security review.
verify-unit: build
	targets/systemd/verify.sh $(BIN)

# targets/vps/install.sh twice into a scratch root, a damaged archive, uninstall.
test-install: build lint-sh
	$(SUDO) targets/vps/test.sh

# The Mail-in-a-Box addon against a fake box, nginx -t and a real proxy run.
test-mailinabox: build lint-sh
	$(SUDO) env POSTLENS=$(CURDIR)/$(BIN) targets/mailinabox/test.sh

# Everything above that is quick (CI runs it).
test-targets: verify-unit test-install test-mailinabox

# shellcheck over every shell script of targets/ and image/.
lint-sh:
	@command -v shellcheck >/dev/null || { echo "installing shellcheck"; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq shellcheck >/dev/null || \
	  { $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq shellcheck >/dev/null; }; }
	shellcheck targets/*.sh targets/*/*.sh image/build.sh image/verify.sh image/rootfs/usr/local/sbin/postlens-firstboot \
	  $$(ls targets/mailinabox/postlens-miab 2>/dev/null)

# Raspberry Pi arm64 SD-card image (root; slow: see README "Raspberry Pi image").
image:
	$(SUDO) image/build.sh

# Checks a built Pi image without a Pi (root): partitions, labels, boot
# files, units; postlens started as its unit runs it, in a chroot under
# qemu-user (/healthz, a log imported, stats --json, SIGTERM). IMAGE=path
# (default target/image/postlens-pi-arm64.img, or the build's root directory);
# SYSTEM=1 also boots the image in qemu-system-aarch64 (-M virt).
.PHONY: image-verify
image-verify:
	$(SUDO) env SYSTEM="$(SYSTEM)" BOOT_TIMEOUT="$(BOOT_TIMEOUT)" image/verify.sh $(IMAGE)
