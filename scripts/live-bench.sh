#!/usr/bin/env bash
# Live capture under load: a veth pair between two network namespaces this script creates
# (and removes), `tcpreplay --topspeed` sending a generated capture from one end, and on
# the other end, in turn, `tcpdump -w /dev/null` and `ipsecmon serve -i` with the same BPF
# filter, each pinned to one core. Prints libpcap's received/dropped counters for both and,
# for ipsecmon, the latency of /metrics scrapes made during the replay and after it (with
# every tunnel of the capture labelled: --max-tunnels 100000).
#
#   sudo scripts/live-bench.sh                 # 10^6 packets, 10,000 tunnels, 3 rounds
#   FILE=x.pcap ROUNDS=5 sudo scripts/live-bench.sh
#
# Needs root, iproute2, tcpreplay, tcpdump, curl. Traffic stays on the veth pair and on
# the loopback of the capturing namespace.
set -euo pipefail

cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
TUNNELS=${TUNNELS:-10000}
PACKETS=${PACKETS:-1000000}
DATA=${DATA:-target/bench-data}
FILE=${FILE:-$DATA/gen-$PACKETS-$TUNNELS.pcap}
PORT=${PORT:-19795}
if [ "$(id -u)" != 0 ]; then
    echo "live-bench.sh: needs root (network namespaces and capture)" >&2
    exit 2
fi
for c in ip tcpreplay tcpdump curl; do
    command -v "$c" >/dev/null || { echo "live-bench.sh: $c is missing" >&2; exit 2; }
done

cargo build --release --locked --bins -q
BIN=$PWD/target/release/ipsecmon
mkdir -p "$DATA"
[ -s "$FILE" ] || target/release/ipsecmon-gen --packets "$PACKETS" --tunnels "$TUNNELS" --out "$FILE" 2>/dev/null
# The BPF filter ipsecmon applies by default (capture::DEFAULT_FILTER), given to tcpdump too.
FILTER="udp port 500 or udp port 4500 or ip proto 50 or ip proto 51 or ip6 proto 50 or ip6 proto 51 or icmp or icmp6 or (ip[6:2] & 0x1fff != 0) or (ip6 and (ip6[6] == 44 or ip6[6] == 0 or ip6[6] == 43 or ip6[6] == 60))"

ID=perfbench$$
NS_TX=$ID-tx
NS_RX=$ID-rx
WORK=$(mktemp -d)
cleanup() {
    ip netns pids "$NS_RX" 2>/dev/null | xargs -r kill 2>/dev/null || true
    ip netns pids "$NS_TX" 2>/dev/null | xargs -r kill 2>/dev/null || true
    ip netns del "$NS_TX" 2>/dev/null || true
    ip netns del "$NS_RX" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
ip netns add "$NS_TX"
ip netns add "$NS_RX"
ip -n "$NS_TX" link add tx0 type veth peer name rx0 netns "$NS_RX"
for ns in "$NS_TX" "$NS_RX"; do ip -n "$ns" link set lo up; done
ip -n "$NS_TX" link set tx0 up
ip -n "$NS_RX" link set rx0 up
sleep 1

replay() {
    ip netns exec "$NS_TX" taskset -c 0 tcpreplay --topspeed -q -i tx0 "$FILE" 2>&1 |
        grep -Eo 'Rated: [0-9.]+ Bps, [0-9.]+ Mbps, [0-9.]+ pps' | head -n 1
}

# Scrapes /metrics every 100 ms until the file $1 exists; appends each time_total to $2.
scrape_loop() {
    while [ ! -e "$1" ]; do
        ip netns exec "$NS_RX" curl -s -o /dev/null -w '%{time_total}\n' \
            "http://127.0.0.1:$PORT/metrics" >>"$2" 2>/dev/null || true
        sleep 0.1
    done
}

stats() {
    sort -g "$1" | awk '{ v[NR] = $1 } END { if (NR) printf "%d scrapes, median %.1f ms, max %.1f ms", NR, 1000 * v[int((NR + 1) / 2)], 1000 * v[NR]; else print "no scrape" }'
}

metric() {
    # Sum of a metric's samples in the exposition text in $2.
    awk -v m="$1" '$1 == m || index($1, m "{") == 1 { s += $2 } END { printf "%d", s }' "$2"
}

echo "# live capture, $FILE ($(stat -L -c %s "$FILE") bytes), $(nproc) CPUs, kernel $(uname -r)"
echo "| round | sender rate | tcpdump received / dropped | ipsecmon received / dropped | /metrics during replay | /metrics after the replay |"
echo "|---|---|---|---|---|---|"
for r in $(seq "$ROUNDS"); do
    ip netns exec "$NS_RX" taskset -c 1 tcpdump -q -n -i rx0 -w /dev/null "$FILTER" 2>"$WORK/td.err" &
    td=$!
    sleep 1
    rate=$(replay)
    sleep 1
    kill -INT "$td"
    wait "$td" || true
    td_rx=$(grep -Eo '[0-9]+ packets received by filter' "$WORK/td.err" | grep -Eo '^[0-9]+')
    td_drop=$(grep -Eo '[0-9]+ packets dropped by kernel' "$WORK/td.err" | grep -Eo '^[0-9]+')

    rm -f "$WORK/done" "$WORK/during" "$WORK/after"
    ip netns exec "$NS_RX" taskset -c 1 "$BIN" serve -i rx0 --listen "127.0.0.1:$PORT" \
        --max-tunnels 100000 --refresh 1 2>"$WORK/im.err" &
    im=$!
    for _ in $(seq 50); do
        ip netns exec "$NS_RX" curl -s -o /dev/null "http://127.0.0.1:$PORT/metrics" && break
        sleep 0.1
    done
    scrape_loop "$WORK/done" "$WORK/during" &
    sl=$!
    replay >/dev/null
    touch "$WORK/done"
    wait "$sl"
    # The counters come with the next snapshot, and snapshots of many SAs are spaced out:
    # wait until the received count stays the same over three looks and every packet
    # received is either tracked or counted as dropped (a stale snapshot shows neither).
    last=-1
    same=0
    for _ in $(seq 60); do
        sleep 2
        ip netns exec "$NS_RX" curl -s "http://127.0.0.1:$PORT/metrics" >"$WORK/metrics" || true
        now=$(metric ipsecmon_capture_received_packets_total "$WORK/metrics")
        seen=$(( $(metric ipsecmon_frames_total "$WORK/metrics") + $(metric ipsecmon_capture_dropped_packets_total "$WORK/metrics") ))
        if [ "$now" = "$last" ] && [ "$now" != 0 ] && [ "$seen" -ge "$now" ]; then same=$((same + 1)); else same=0; fi
        [ "$same" -ge 2 ] && break
        last=$now
    done
    for _ in $(seq 20); do
        ip netns exec "$NS_RX" curl -s -o /dev/null -w '%{time_total}\n' \
            "http://127.0.0.1:$PORT/metrics" >>"$WORK/after"
    done
    ip netns exec "$NS_RX" curl -s "http://127.0.0.1:$PORT/metrics" >"$WORK/metrics"
    kill -INT "$im"
    wait "$im" || true
    im_rx=$(metric ipsecmon_capture_received_packets_total "$WORK/metrics")
    im_drop=$(metric ipsecmon_capture_dropped_packets_total "$WORK/metrics")
    tunnels=$(grep -o 'tunnel="[^"]*"' "$WORK/metrics" | sort -u | wc -l)
    echo "| $r | $rate | $td_rx / $td_drop | $im_rx / $im_drop | $(stats "$WORK/during") | $(stats "$WORK/after"), $tunnels tunnel series |"
done
