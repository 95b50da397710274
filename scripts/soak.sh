#!/usr/bin/env bash
# Soak test: `ipsecmon serve` on a live interface for a long time, with continuous IPsec
# traffic (rekeys, new SPIs every cycle), concurrent Prometheus-style scraping, and the
# interface deleted and re-created now and then. Samples the process's memory and writes
# the figures; fails when serve dies or exits non-zero, a scrape fails, a flap is not
# followed by a reopen, or memory grows by more than 10 % over the second half of the run.
#
#   scripts/soak.sh [SECONDS] [OUT_DIR]        default: 600 s, target/soak
#   SOAK_PPS=2000 SOAK_FLAP_EVERY=300 IPSECMON=target/release/ipsecmon scripts/soak.sh 3600
#
# Traffic: captures written by ipsecmon-gen (a different seed each, so each cycle brings
# new SPIs and IKE SAs, each with rekeys), replayed with tcpreplay into one end of a veth
# pair whose other end serve captures. Everything lives in two network namespaces this
# script creates and removes; the replayed packets never leave them, and the scrapes go
# to serve's loopback inside its namespace. Needs root, ip, tcpreplay, curl.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${1:-600}
OUT=${2:-target/soak}
PPS=${SOAK_PPS:-1000}
FLAP_EVERY=${SOAK_FLAP_EVERY:-600}
SAMPLE_EVERY=${SOAK_SAMPLE_EVERY:-10}
SCRAPE_EVERY=${SOAK_SCRAPE_EVERY:-2}
SEEDS=${SOAK_SEEDS:-6}
TUNNELS=${SOAK_TUNNELS:-50}
BIN=${IPSECMON:-target/debug/ipsecmon}
GEN=${IPSECMON_GEN:-$(dirname "$BIN")/ipsecmon-gen}
NICE=${SOAK_NICE:-10}

[ "$(id -u)" -eq 0 ] || { echo "soak: needs root (network namespaces)" >&2; exit 2; }
for t in ip tcpreplay curl; do
  command -v "$t" >/dev/null || { echo "soak: $t is missing (scripts/install-deps.sh)" >&2; exit 2; }
done
[ -x "$BIN" ] && [ -x "$GEN" ] || cargo build --locked --bins

id=$$
NS_CAP="ipsm-soak-cap-$id"
NS_GEN="ipsm-soak-gen-$id"
IF_CAP="sk$id"c
IF_GEN="sk$id"g
PORT=9795
mkdir -p "$OUT"
rm -f "$OUT"/*.csv "$OUT"/*.log
pids=()

cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  ip netns del "$NS_CAP" 2>/dev/null || true
  ip netns del "$NS_GEN" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

link_up() {
  ip link add "$IF_GEN" type veth peer name "$IF_CAP"
  ip link set "$IF_CAP" netns "$NS_CAP"
  ip link set "$IF_GEN" netns "$NS_GEN"
  ip -n "$NS_CAP" link set "$IF_CAP" up
  ip -n "$NS_GEN" link set "$IF_GEN" up
}

ip netns add "$NS_CAP"
ip netns add "$NS_GEN"
ip -n "$NS_CAP" link set lo up
link_up

echo "soak: writing $SEEDS traffic captures"
caps=()
for s in $(seq 1 "$SEEDS"); do
  f="$OUT/traffic-$s.pcap"
  [ -s "$f" ] || "$GEN" --packets 20000 --tunnels "$TUNNELS" --seed "$s" --rekey-every 100 --out "$f"
  caps+=("$f")
done

ip netns exec "$NS_CAP" nice -n "$NICE" "$BIN" --log info serve -i "$IF_CAP" \
  --listen "127.0.0.1:$PORT" --refresh 1 2>"$OUT/serve.log" &
serve=$!
pids+=("$serve")
for _ in $(seq 50); do
  ip netns exec "$NS_CAP" curl -fs -m 1 -o /dev/null "http://127.0.0.1:$PORT/healthz" && break
  sleep 0.2
done

replay() {
  while :; do
    for f in "${caps[@]}"; do
      ip netns exec "$NS_GEN" tcpreplay -q --pps="$PPS" -i "$IF_GEN" "$f" >/dev/null 2>&1 || sleep 1
    done
  done
}
replay &
pids+=("$!")

# Scrapers: /metrics like Prometheus, plus the JSON API, each every SCRAPE_EVERY seconds
# with Prometheus's default 10 s timeout; a failure is written down with its time.
scrape() {
  local path=$1 n=0
  while :; do
    if ! ip netns exec "$NS_CAP" curl -fs -m 10 -o /dev/null "http://127.0.0.1:$PORT$path"; then
      echo "$(date +%s) $path" >>"$OUT/scrape-failures.log"
    fi
    n=$((n + 1))
    echo "$n" >"$OUT/scrapes-$2.count"
    sleep "$SCRAPE_EVERY"
  done
}
i=0
for p in /metrics /metrics /api/v1/report /api/v1/sas; do
  i=$((i + 1))
  scrape "$p" "$i" &
  pids+=("$!")
done

metric() {
  ip netns exec "$NS_CAP" curl -fs -m 10 "http://127.0.0.1:$PORT/metrics" 2>/dev/null |
    awk -v m="$1" '$1 == m { print $2; found = 1 } END { if (!found) print "" }'
}

echo "elapsed_s,rss_kib,hwm_kib,frames,kernel_dropped,reopens,ike_negotiating,ike_established,active" >"$OUT/samples.csv"
start=$(date +%s)
next_flap=$((start + FLAP_EVERY))
flaps=0
: >"$OUT/flaps.log"
while :; do
  now=$(date +%s)
  elapsed=$((now - start))
  kill -0 "$serve" 2>/dev/null || { echo "soak: serve died" >&2; tail -20 "$OUT/serve.log" >&2; exit 1; }
  rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$serve/status")
  hwm=$(awk '/^VmHWM/ { print $2 }' "/proc/$serve/status")
  echo "$elapsed,$rss,$hwm,$(metric ipsecmon_frames_total),$(metric 'ipsecmon_capture_dropped_packets_total{where="kernel"}'),$(metric ipsecmon_capture_reopens_total),$(metric 'ipsecmon_ike_sas{state="negotiating"}'),$(metric 'ipsecmon_ike_sas{state="established"}'),$(metric 'ipsecmon_ipsec_associations{kind="active"}')" >>"$OUT/samples.csv"
  [ "$elapsed" -ge "$DURATION" ] && break
  if [ "$now" -ge "$next_flap" ]; then
    echo "$(date +%s) down" >>"$OUT/flaps.log"
    ip -n "$NS_CAP" link del "$IF_CAP"
    sleep 3 & wait $!
    link_up
    echo "$(date +%s) up" >>"$OUT/flaps.log"
    flaps=$((flaps + 1))
    next_flap=$((now + FLAP_EVERY))
  fi
  # In the background so that a TERM is handled at once (bash defers traps until a
  # foreground child ends).
  sleep "$SAMPLE_EVERY" & wait $!
done

# Traffic and scrapers stop first, so that no scrape races serve's shutdown.
for p in "${pids[@]:1}"; do kill "$p" 2>/dev/null || true; done
for p in "${pids[@]:1}"; do wait "$p" 2>/dev/null || true; done
pids=("$serve")
kill -TERM "$serve"
code=0
wait "$serve" || code=$?
pids=()

# Figures: memory over the second half of the run (after the tables have filled) must
# stay flat; every flap must have been followed by a reopen; no scrape may fail.
python3 - "$OUT" "$DURATION" "$flaps" "$code" <<'PY'
import csv, glob, os, sys
out, duration, flaps, code = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rows = list(csv.DictReader(open(os.path.join(out, "samples.csv"))))
rss = [int(r["rss_kib"]) for r in rows]
half = rss[len(rss) // 2]
frames = int(float(rows[-1]["frames"] or 0))
scrapes = sum(int(open(f).read() or 0) for f in glob.glob(os.path.join(out, "scrapes-*.count")))
log = os.path.join(out, "scrape-failures.log")
fails = [f for f in open(log).read().split("\n") if f] if os.path.exists(log) else []
growth = (max(rss[len(rss) // 2:]) - half) / half * 100 if half else 0
lines = [
    f"duration_s {duration}",
    f"samples {len(rows)}",
    f"frames {frames} ({frames / max(1, duration):.0f}/s), kernel drops {rows[-1]['kernel_dropped']}",
    f"reopens {rows[-1]['reopens']} (interface deleted and re-created {flaps} times)",
    f"rss_kib start {rss[1] if len(rss) > 1 else rss[0]} half-time {half} end {rss[-1]} max {max(rss)} "
    f"(growth over the second half {growth:+.1f}%)",
    f"ike_sas established {rows[-1]['ike_established']}, active associations {rows[-1]['active']}",
    f"scrapes {scrapes} failed {len(fails)}",
    f"serve exit {code}",
]
open(os.path.join(out, "summary.txt"), "w").write("\n".join(lines) + "\n")
print("\n".join("soak: " + l for l in lines))
reopened = int(float(rows[-1]["reopens"] or 0)) >= flaps
ok = code == 0 and growth < 10 and reopened and not fails
sys.exit(0 if ok else 1)
PY
