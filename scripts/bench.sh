#!/usr/bin/env bash
# Whole-process benchmark: `ipsecmon report` against `cat`, `tcpdump -r F -w /dev/null` and
# `tshark -T fields` (four IPsec fields) on the same generated captures, side by side in one
# run, pinned to one core. Prints a Markdown table of median wall times, peak RSS and the
# ratios the performance targets are stated in (BENCHMARKS.md).
#
#   scripts/bench.sh                       # 10^6 and 10^7 packets; 10, 10,000, 100,000 tunnels
#   PACKETS=1000000 RUNS=5 scripts/bench.sh
#   TSHARK_10M=0 scripts/bench.sh          # skip tshark on 10^7-packet files (minutes each)
#   TSHARK=0 scripts/bench.sh              # no tshark at all
#
# Environment: PACKETS, TUNNELS (space-separated lists), RUNS (runs per tool, median taken;
# tshark runs once per file), CPU (core to pin to, default 1), DATA (where the captures go,
# default target/bench-data), KEEP_10M=1 keeps the 10^7-packet files (about 7 GB each).
# tshark and GNU time are benchmark-only dependencies: installed here when missing (as root).
set -euo pipefail

cd "$(dirname "$0")/.."
PACKETS=${PACKETS:-"1000000 10000000"}
TUNNELS=${TUNNELS:-"10 10000 100000"}
RUNS=${RUNS:-3}
CPU=${CPU:-1}
DATA=${DATA:-target/bench-data}
TSHARK=${TSHARK:-1}
TSHARK_10M=${TSHARK_10M:-1}
KEEP_10M=${KEEP_10M:-0}

need() {
    # $1: command, $2: Debian package.
    command -v "$1" >/dev/null 2>&1 && return 0
    if [ "$(id -u)" = 0 ]; then
        echo "installing $2 (benchmark only)" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
    else
        echo "bench.sh: $1 is missing; install the Debian package $2 (apt-get install $2)" >&2
        exit 2
    fi
}

need tcpdump tcpdump
[ -x /usr/bin/time ] || need /usr/bin/time time
if [ "$TSHARK" = 1 ]; then need tshark tshark; fi

cargo build --release --locked --bins -q
BIN=target/release/ipsecmon
GEN=target/release/ipsecmon-gen
mkdir -p "$DATA"

# One measurement: prints "seconds max_rss_kib" for the command in "$@".
measure() {
    local out
    out=$(mktemp)
    /usr/bin/time -o "$out" -f '%e %M' taskset -c "$CPU" "$@" >/dev/null 2>&1 || true
    tail -n 1 "$out"
    rm -f "$out"
}

# Median of the numbers on stdin.
median() {
    sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# Runs a tool $1 times; prints "median_seconds min max median_rss_mib".
runs() {
    local n=$1
    shift
    local times=() rss=()
    for _ in $(seq "$n"); do
        read -r t m < <(measure "$@")
        times+=("$t")
        rss+=("$m")
    done
    local med min max mr
    med=$(printf '%s\n' "${times[@]}" | median)
    min=$(printf '%s\n' "${times[@]}" | sort -g | head -n 1)
    max=$(printf '%s\n' "${times[@]}" | sort -g | tail -n 1)
    mr=$(printf '%s\n' "${rss[@]}" | median | awk '{ printf "%.0f", $1 / 1024 }')
    echo "$med $min $max $mr"
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b <= 0) print "-"; else printf "%.2f", a / b }'; }

echo "# ipsecmon whole-process benchmark, $(date -u +%Y-%m-%dT%H:%MZ)"
echo "# $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), kernel $(uname -r); pinned to CPU $CPU; $RUNS runs each (tshark 1), medians [min–max]"
echo
echo "| packets | tunnels | MB | cat | tcpdump -w /dev/null | ipsecmon report | report --json | tshark -T fields | report / tcpdump | tshark / report | RSS tcpdump / report / --json / tshark (MiB) |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
for p in $PACKETS; do
    for t in $TUNNELS; do
        f="$DATA/gen-$p-$t.pcap"
        [ -s "$f" ] || "$GEN" --packets "$p" --tunnels "$t" --out "$f" 2>/dev/null
        mb=$(( $(stat -L -c %s "$f") / 1000000 ))
        cat "$f" >/dev/null # into the page cache
        read -r cat_s cat_lo cat_hi _ < <(runs "$RUNS" cat "$f")
        read -r td_s td_lo td_hi td_m < <(runs "$RUNS" tcpdump -r "$f" -w /dev/null)
        read -r im_s im_lo im_hi im_m < <(runs "$RUNS" "$BIN" report "$f")
        read -r js_s js_lo js_hi js_m < <(runs "$RUNS" "$BIN" report --json "$f")
        ts_s=-
        ts_m=-
        if [ "$TSHARK" = 1 ] && { [ "$p" -lt 10000000 ] || [ "$TSHARK_10M" = 1 ]; }; then
            read -r ts_s _ _ ts_m < <(runs 1 tshark -r "$f" -T fields -e esp.spi -e esp.sequence \
                -e isakmp.ispi -e isakmp.exchangetype)
        fi
        echo "| $p | $t | $mb | $cat_s | $td_s [$td_lo–$td_hi] | $im_s [$im_lo–$im_hi] | $js_s [$js_lo–$js_hi] | $ts_s | $(ratio "$im_s" "$td_s") | $(ratio "$ts_s" "$im_s") | $td_m / $im_m / $js_m / $ts_m |"
        if [ "$p" -ge 10000000 ] && [ "$KEEP_10M" != 1 ]; then rm -f "$f"; fi
    done
done
