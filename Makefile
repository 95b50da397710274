# The two set-up commands of the README: `make demo` and `make test`.
CARGO ?= cargo
DEMO_CAPTURE ?= fixtures/demo/demo.pcap

.PHONY: deps build demo test lint unit fuzz-smoke soak bench bench-compare bench-live clean

deps:
	@bash scripts/install-deps.sh

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
