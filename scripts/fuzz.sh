#!/usr/bin/env bash
# Builds the fuzz targets with libFuzzer and runs each for a bounded time.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     default: 25 s for every target
#   FUZZ_JOBS=1 FUZZ_NICE=10 scripts/fuzz.sh 600 pipeline
#
# Built the way cargo-fuzz builds (SanitizerCoverage with libFuzzer's counters, `--cfg
# fuzzing`, release with debug assertions and overflow checks) but with plain cargo on the
# stable toolchain: no nightly, no cargo-fuzz install. AddressSanitizer is left out; it
# needs -Zsanitizer (nightly), and the fuzzed code is safe Rust.
#
# Seeds come from the fixtures, the example policies and, when present, the third-party
# corpus in ../shared (derived at run time into fuzz/seeds/, never committed). Inputs in
# fuzz/regressions/TARGET/ (each a past crash, fixed) run first and must pass. The
# growing corpus is kept in fuzz/corpus/TARGET/ and crashes land in fuzz/artifacts/TARGET/.
# Exits non-zero when any target crashes, leaks or times out.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_TARGET=${1:-25}
shift || true
ALL=(decode_frame parse_ike read_capture policy_file pipeline decrypt nflog)
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=("${ALL[@]}")
NICE=${FUZZ_NICE:-0}

host=$(rustc -vV | sed -n 's/^host: //p')
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cforce-frame-pointers"
# --target keeps RUSTFLAGS away from build scripts and proc macros. Not --locked: when the
# main crate gains a dependency, cargo adds it to fuzz/Cargo.lock rather than failing.
nice -n "$NICE" cargo build --release --manifest-path fuzz/Cargo.toml \
  --target "$host" --bins
unset RUSTFLAGS
bin=fuzz/target/$host/release

shared=""
for d in ../shared ../../shared; do
  [ -d "$d/corpus/external" ] && { shared="$d/corpus/external"; break; }
done
[ -n "$shared" ] || echo "fuzz: no ../shared corpus; seeding from the fixtures only"
rm -rf fuzz/seeds
cargo run --locked -q --example fuzz_seeds -- fuzz/seeds fixtures examples $shared

failed=()
for t in "${TARGETS[@]}"; do
  mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t" "fuzz/seeds/$t"
  if [ -d "fuzz/regressions/$t" ] && [ -n "$(ls -A "fuzz/regressions/$t")" ]; then
    echo "fuzz: $t: replaying fuzz/regressions/$t"
    "$bin/$t" -runs=1 "fuzz/regressions/$t"/* >"fuzz/artifacts/$t/regressions.log" 2>&1 \
      || { tail -20 "fuzz/artifacts/$t/regressions.log"; failed+=("$t (regression)"); continue; }
  fi
  echo "fuzz: $t: ${SECONDS_PER_TARGET}s"
  log="fuzz/artifacts/$t/fuzz.log"
  if nice -n "$NICE" "$bin/$t" "fuzz/corpus/$t" "fuzz/seeds/$t" \
      -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 -max_len=16384 \
      -print_final_stats=1 -artifact_prefix="fuzz/artifacts/$t/" >"$log" 2>&1; then
    grep -E '^stat::(number_of_executed_units|peak_rss_mb)|cov: ' "$log" | tail -3 | sed "s/^/fuzz: $t: /"
  else
    tail -30 "$log"
    failed+=("$t")
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: FAILED: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
  exit 1
fi
echo "fuzz: ${#TARGETS[@]} targets ran ${SECONDS_PER_TARGET}s each without a crash"
