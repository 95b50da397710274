# The two set-up commands of the README: `make demo` and `make test`.
CARGO ?= cargo
DEMO_CAPTURE ?= fixtures/demo/demo.pcap

.PHONY: deps build demo test lint unit fuzz-smoke bench clean

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

bench:
	$(CARGO) bench --locked

clean:
	$(CARGO) clean
