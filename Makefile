# The two set-up commands of the README: `make demo` and `make test`.
CARGO ?= cargo
DEMO_CAPTURE ?= fixtures/demo/demo.pcap

.PHONY: deps build demo test lint unit fuzz-smoke bench bench-compare bench-live clean

deps:
	@bash scripts/install-deps.sh

build: deps
	$(CARGO) build --release --locked

# The main job: the live view over the bundled lab capture, replayed at its recorded pace.
demo: build
	./target/release/ipsecmon --refresh 1 -r $(DEMO_CAPTURE)

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --all-targets -- -D warnings

unit:
	$(CARGO) test --locked

test: deps lint unit

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
