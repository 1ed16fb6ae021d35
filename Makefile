# postlens: build, test, benchmark. Everything a fresh Debian machine needs
# beyond the Rust toolchain is installed here, not by hand.

CARGO ?= cargo
BIN    = target/release/postlens
SUDO  := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

.PHONY: all build static demo test lint unit e2e bench bench-web fuzz deps clean

all: build

build:
	$(CARGO) build --release --locked

# The static binary that ships (musl: no glibc, no per-thread malloc arenas).
static:
	rustup target add x86_64-unknown-linux-musl
	$(CARGO) build --release --locked --target x86_64-unknown-linux-musl
	@ls -la target/x86_64-unknown-linux-musl/release/postlens

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
# the e2e harness; /usr/bin/time for peak RSS).
deps:
	@missing=""; command -v python3 >/dev/null || missing="$$missing python3"; \
	[ -x /usr/bin/time ] || missing="$$missing time"; \
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

bench: build deps
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
