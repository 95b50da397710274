# The two set-up commands of the README: `make demo` and `make test`.
CARGO ?= cargo
DEMO_CAPTURE ?= fixtures/demo/demo.pcap
RUST_VERSION := $(shell sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml)

.PHONY: deps toolchain build demo test lint unit fuzz-smoke soak bench bench-compare bench-live clean

deps: toolchain
	@bash scripts/install-deps.sh

# Rust comes from rustup, not from Debian (whose rustc is older than the crate needs): say
# so at once rather than fail later.
toolchain:
	@command -v $(CARGO) >/dev/null 2>&1 || { \
	  echo "$(CARGO) not found: install Rust $(RUST_VERSION) or later with rustup (https://rustup.rs), then run make again" >&2; \
	  exit 2; }

build: deps
	$(CARGO) build --release --locked

# The main job: the live view over the bundled lab capture, replayed at its recorded pace.
demo: build
	./target/release/ipsecmon --refresh 1 -r $(DEMO_CAPTURE)

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) fmt --manifest-path fuzz/Cargo.toml -- --check
	$(CARGO) clippy --locked --all-targets -- -D warnings

unit:
	$(CARGO) test --locked

# A time-boxed run of every fuzz target (FUZZ_SECONDS each); see FUZZING.md.
FUZZ_SECONDS ?= 25
fuzz-smoke:
	bash scripts/fuzz.sh $(FUZZ_SECONDS)

test: deps lint unit fuzz-smoke

# serve on a live interface in network namespaces for SOAK_SECONDS, with replayed traffic,
# rekeys, interface flaps and concurrent scrapes; memory sampled (root; RELIABILITY.md).
SOAK_SECONDS ?= 600
soak:
	bash scripts/soak.sh $(SOAK_SECONDS)

# Criterion benchmarks (decoders, tracker, memory per SA); none of them runs in `make test`.
bench:
	$(CARGO) bench --locked

# Whole-process timings against cat, tcpdump and tshark (BENCHMARKS.md); minutes to run.
bench-compare:
	bash scripts/bench.sh

# Live capture drops against tcpdump on a veth pair, /metrics scrape latency (root).
bench-live:
	bash scripts/live-bench.sh

clean:
	$(CARGO) clean
