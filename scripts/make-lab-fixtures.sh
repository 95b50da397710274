#!/usr/bin/env bash
# Regenerates the lab captures under fixtures/lab/<scenario>/ with real strongSwan daemons.
#
#   scripts/make-lab-fixtures.sh [SCENARIO...]      (root; default: every scenario)
#
# For each scenario: `ipsecmon lab up --scenario S` in namespaces of its own (prefix
# "fx"), the scenario's workload (below), `ipsecmon lab down --save`, then into
# fixtures/lab/S/: the capture(s), Wireshark key tables read from both charons' logs and
# checked against the capture (`ipsecmon lab keys`), the rendered configuration, and a
# README.md with how the run was made and what charon itself logged (the ground truth).
#
# Workloads (the lab's retransmit schedule is short: a give-up takes 15 s):
#   ok, ikev1:  traffic; CHILD rekey; traffic; IKE rekey (IKEv2: CREATE_CHILD_SA; IKEv1:
#               a new Main Mode); traffic; delete of the IKE SA
#   nat-t:      traffic; 11 s idle (NAT keepalives every 5 s); traffic
#   esp-blocked, reversed-ports: traffic (short); 28 s; traffic again (ipsecmon expects
#               ESP within 30 s)
#   esp-one-way, not-mirrored: traffic twice, 1 s apart (over 5 s of ESP one way)
#   pfs-mismatch, ts-mismatch, no-common-proposal, psk-mismatch, nat:
#               traffic (short), then 2 s
#   responder-down: wait 17 s (four IKE_SA_INIT, give-up at +15 s)
#   nat-4500-blocked: traffic (short); 10 s; traffic again
#   dh-mismatch, dh-retry and every other scenario: traffic (short), then 2 s
# Needs a built ipsecmon (IPSECMON=path, default target/debug/ipsecmon) and what
# scripts/install-deps.sh installs.
#
# A new recording has new SPIs, keys and times: the exact expected documents beside the
# captures (*.expected.json, tests/track_lab.rs) no longer match it and must be checked
# again and re-blessed. The script keeps them; it replaces only what it makes.
set -euo pipefail
cd "$(dirname "$0")/.."
IPSECMON=${IPSECMON:-target/debug/ipsecmon}
[ -x "$IPSECMON" ] || { echo "build ipsecmon first (cargo build), or set IPSECMON" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "make-lab-fixtures.sh: needs root (network namespaces)" >&2; exit 2; }
PREFIX=fx
WORK=$(mktemp -d /tmp/ipsecmon-fixtures.XXXXXX)
LABDIR=$WORK/lab
trap '"$IPSECMON" lab down --prefix $PREFIX --dir "$LABDIR" >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT

mapfile -t ALL < <("$IPSECMON" lab scenarios | awk '{print $1}')
SCENARIOS=("$@")
[ ${#SCENARIOS[@]} -gt 0 ] || SCENARIOS=("${ALL[@]}")

lab() { "$IPSECMON" lab "$@" --prefix $PREFIX --dir "$LABDIR"; }
alice() {
  STRONGSWAN_CONF=$LABDIR/alice/strongswan.conf swanctl "$@" --uri "unix://$LABDIR/alice/run/charon.vici" >/dev/null
}
traffic() { lab traffic "$@" || true; }

workload() {
  case $1 in
    ok)
      traffic
      alice --rekey --child abczz-with-bob-1; sleep 1
      traffic
      alice --rekey --ike lab-abczz-with-bob; sleep 1
      traffic
      alice --terminate --ike lab-abczz-with-bob; sleep 1 ;;
    ikev1)
      traffic
      alice --rekey --child abczz-with-bob-1; sleep 1
      traffic
      alice --terminate --ike lab-abczz-with-bob; sleep 1 ;;
    nat-t)
      traffic
      sleep 11
      traffic --lines 2 --pings 1 ;;
    responder-down)
      sleep 17 ;;
    nat-4500-blocked)
      # A second round past the 10 s stall threshold puts frames into the outside capture
      # after the silence that follows IKE_SA_INIT there.
      traffic --lines 2 --pings 1
      sleep 10
      traffic --lines 1 --pings 1 ;;
    esp-blocked|reversed-ports)
      # ipsecmon expects ESP within 30 s of IKE completing.
      traffic --lines 2 --pings 1
      sleep 28
      traffic --lines 1 --pings 1 ;;
    esp-one-way|not-mirrored)
      # Two connection attempts 3 s apart: over 5 s of ESP from Alice, none back.
      traffic --lines 2 --pings 1
      sleep 1
      traffic --lines 2 --pings 0 ;;
    *)
      traffic --lines 2 --pings 1
      sleep 2 ;;
  esac
}

# The lines of a charon log that say what happened, without key material.
events() {
  grep -E "established|rekeyed|received [A-Z_]+ notify|giving up|peer not responding|behind NAT|no IKE config|no matching peer config|failed to establish|no acceptable proposal|traffic selectors|sending DELETE|received DELETE|unable to install|selected proposal|authentication of .* (successful|failed)" "$1" \
    | grep -vE '\] (<[^>]*> )? *[0-9]+: ' | sed -E 's/^[A-Z][a-z]{2} +[0-9]+ //' || true
}

for s in "${SCENARIOS[@]}"; do
  echo "== $s"
  OUT=fixtures/lab/$s
  rm -rf "$OUT"/*.pcap "$OUT"/keys "$OUT"/config "$OUT"/README.md; mkdir -p "$OUT"
  START=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  lab up --scenario "$s" >/dev/null
  sleep 1
  workload "$s"
  lab status > "$WORK/status.txt" 2>&1 || true
  SAVE=$WORK/save-$s
  lab down --save "$SAVE" >/dev/null
  cp "$SAVE"/*.pcap "$OUT"/
  for h in alice bob; do
    if [ -d "$SAVE/$h/enforce" ]; then
      mkdir -p "$OUT/config/$h"
      cp "$SAVE/$h/enforce/"* "$OUT/config/$h/"
    fi
  done
  # A secret in a committed swanctl.conf is the lab's published example key: still, keep
  # only the connection part next to the capture.
  for f in "$OUT"/config/*/swanctl.conf; do
    [ -f "$f" ] && sed -i '/^secrets {/,$d' "$f"
  done
  LOGS=()
  for h in alice bob; do [ -f "$SAVE/$h/charon.log" ] && LOGS+=("$SAVE/$h/charon.log"); done
  CAPS=()
  for p in "$OUT"/*.pcap; do CAPS+=(-c "$p"); done
  "$IPSECMON" lab keys "${LOGS[@]}" "${CAPS[@]}" -o "$OUT/keys" > "$WORK/keys.txt"
  {
    echo "# Lab capture: scenario \`$s\`"
    echo
    echo "$("$IPSECMON" lab scenarios | awk -v s="$s" '$1 == s { $1 = ""; sub(/^ +/, ""); print }')."
    echo "How the scenario is made: [examples/lab/$s/](../../../examples/lab/$s/README.md)."
    echo
    echo "## How this capture was made"
    echo
    echo "\`scripts/make-lab-fixtures.sh $s\` on $START (Debian 12, strongSwan 5.9.8 with"
    echo "kernel-libipsec, tcpdump 4.99): \`ipsecmon lab up --scenario $s\`, then the workload"
    echo "of that script for \`$s\`, then \`ipsecmon lab down --save\`. Captures (whole frames,"
    echo "tcpdump on the lab's link):"
    echo
    for p in "$OUT"/*.pcap; do
      echo "- \`$(basename "$p")\`: $(tcpdump -nr "$p" 2>/dev/null | wc -l) frames, $(stat -c %s "$p") bytes"
    done
    echo
    echo "\`config/\` holds what \`ipsecmon enforce render\` made of each host's policy (without"
    echo "the secrets section); \`keys/\` the session keys in Wireshark's formats, read from both"
    echo "charons' logs by \`ipsecmon lab keys\` and checked against the capture:"
    echo
    sed 's/^/    /' "$WORK/keys.txt" | grep -v "^    wrote"
    echo
    echo "## What charon logged (the ground truth)"
    echo
    for h in alice bob; do
      if [ -f "$SAVE/$h/charon.log" ]; then
        echo "$h:"
        echo
        events "$SAVE/$h/charon.log" | sed 's/^/    /'
        echo
      else
        echo "$h: no IKE daemon in this scenario."
        echo
      fi
    done
  } > "$OUT/README.md"
  ls -l "$OUT"/*.pcap
done
