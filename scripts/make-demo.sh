#!/usr/bin/env bash
# Records the demo capture that `make demo` replays (fixtures/demo/demo.pcap).
#
#   scripts/make-demo.sh OUT.pcap [LOGDIR]
#
# Three lab hosts in network namespaces on one bridge, each with its own charon
# (strongSwan, kernel-libipsec data plane): Alice 192.0.2.1, Bob 192.0.2.2, Eve 192.0.2.3.
# Alice's rules follow examples/alice.toml: Abczz (TCP 6667/6668) with Bob under Bob's
# preshared key, SIP (UDP 5060) with Eve under Eve's key. Eve typed Bob's key into her
# rule, so every attempt with Eve fails authentication. The capture is taken on Alice's
# interface. Timeline (seconds from the start of the capture, +-0.1 s):
#   0.5  Alice brings up the SA with Bob; chat on 6667 every second, 6668 every 3 s
#   1-9  five cleartext pings to Bob (permitted: no filter covers ICMP)
#   4    Alice tries Eve: AUTHENTICATION_FAILED
#   20   CHILD SA rekey with Bob
#   30   Alice tries Eve again: AUTHENTICATION_FAILED
#   40   IKE SA rekey with Bob
#   58   end (the SA with Bob is still up)
# LOGDIR, when given, receives each host's charon log (key derivations at level 4) and
# configuration, for key tables. Needs root, iproute2, strongSwan (strongswan-charon,
# strongswan-swanctl, libcharon-extra-plugins, libstrongswan-standard-plugins), tcpdump,
# python3. Uses only namespaces it creates (ipmd<pid>-*) and removes them on exit.
set -euo pipefail
OUT=${1:?usage: make-demo.sh OUT.pcap [LOGDIR]}
LOGDIR=${2:-}
[ "$(id -u)" -eq 0 ] || { echo "make-demo.sh: needs root (network namespaces)" >&2; exit 2; }
for cmd in ip tcpdump swanctl python3 /usr/lib/ipsec/charon; do
  command -v "$cmd" >/dev/null || { echo "make-demo.sh: $cmd missing; run scripts/install-deps.sh" >&2; exit 2; }
done
P=ipmd$$
W=$(mktemp -d /tmp/ipsecmon-demo.XXXXXX)
PIDS=()

cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for h in alice bob eve; do
    [ -f "$W/$h/run/charon.pid" ] && kill "$(cat "$W/$h/run/charon.pid")" 2>/dev/null || true
  done
  sleep 0.5
  for h in alice bob eve sw; do ip netns del "$P-$h" 2>/dev/null || true; done
  if [ -n "$LOGDIR" ]; then
    mkdir -p "$LOGDIR"
    for h in alice bob eve; do
      [ -f "$W/$h/charon.log" ] && cp "$W/$h/charon.log" "$LOGDIR/$h.charon.log"
      [ -f "$W/$h.swanctl.conf" ] && cp "$W/$h.swanctl.conf" "$LOGDIR/$h.swanctl.conf"
    done
  fi
  rm -rf "$W"
}
trap cleanup EXIT

addr() { case $1 in alice) echo 192.0.2.1;; bob) echo 192.0.2.2;; eve) echo 192.0.2.3;; esac; }

ip netns add "$P-sw"
ip -n "$P-sw" link add br0 type bridge
ip -n "$P-sw" link set br0 up
for h in alice bob eve; do
  ip netns add "$P-$h"
  ip -n "$P-$h" link set lo up
  ip netns exec "$P-$h" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv4.conf.all.rp_filter=0
  ip link add eth0 netns "$P-$h" type veth peer name "$h" netns "$P-sw"
  ip -n "$P-sw" link set "$h" master br0 up
  ip -n "$P-$h" addr add "$(addr $h)/24" dev eth0
  ip -n "$P-$h" link set eth0 up
done

strongswan_conf() { # host
  cat <<EOC
charon {
  load_modular = no
  load = random nonce aes sha1 sha2 md5 hmac gmp openssl kdf pem pkcs1 pubkey x509 socket-default kernel-libipsec kernel-netlink vici updown
  install_routes = no
  retransmit_tries = 3
  retransmit_timeout = 1.0
  retransmit_base = 2.0
  filelog {
    lab {
      path = $W/$1/charon.log
      time_format = %b %e %T
      time_add_ms = yes
      ike_name = yes
      default = 1
      ike = 4
      chd = 4
      flush_line = yes
    }
  }
  plugins {
    vici {
      socket = unix://$W/$1/run/charon.vici
    }
    kernel-libipsec {
      allow_peer_ts = yes
    }
  }
}
swanctl {
  load = pem pkcs1 x509 pubkey openssl random
}
EOC
}

conn() { # name me peer lid rid local_ts remote_ts child
  cat <<EOC
  $1 {
    version = 2
    local_addrs = $2
    remote_addrs = $3
    proposals = aes128-sha256-modp2048
    local {
      auth = psk
      id = $4
    }
    remote {
      auth = psk
      id = $5
    }
    children {
      $8 {
        local_ts = $6
        remote_ts = $7
        esp_proposals = aes128-sha256-modp2048
        mode = tunnel
      }
    }
  }
EOC
}

secret() { # name id1 id2 key
  printf '  %s {\n    id-1 = %s\n    id-2 = %s\n    secret = "%s"\n  }\n' "$1" "$2" "$3" "$4"
}

BOBKEY=lab-only-abczz-alice-bob-2026-not-a-secret
EVEKEY=lab-only-sip-alice-eve-2026-not-a-secret
{
  echo connections {
  conn bob 192.0.2.1 192.0.2.2 alice@example.org bob@example.org 192.0.2.1/32 \
    "192.0.2.2/32[tcp/6667],192.0.2.2/32[tcp/6668]" abczz
  conn eve 192.0.2.1 192.0.2.3 alice@example.org eve@example.org 192.0.2.1/32 \
    "192.0.2.3/32[udp/5060]" sip
  echo "}"; echo secrets {
  secret ike-bob alice@example.org bob@example.org "$BOBKEY"
  secret ike-eve alice@example.org eve@example.org "$EVEKEY"
  echo "}"
} > "$W/alice.swanctl.conf"
{
  echo connections {
  conn alice 192.0.2.2 192.0.2.1 bob@example.org alice@example.org \
    "192.0.2.2/32[tcp/6667],192.0.2.2/32[tcp/6668]" 192.0.2.1/32 abczz
  echo "}"; echo secrets {
  secret ike-alice alice@example.org bob@example.org "$BOBKEY"
  echo "}"
} > "$W/bob.swanctl.conf"
{
  echo connections {
  conn alice 192.0.2.3 192.0.2.1 eve@example.org alice@example.org \
    "192.0.2.3/32[udp/5060]" 192.0.2.1/32 sip
  echo "}"; echo secrets {
  # Eve typed Bob's key into the rule for Alice: authentication fails.
  secret ike-alice alice@example.org eve@example.org "$BOBKEY"
  echo "}"
} > "$W/eve.swanctl.conf"

for h in alice bob eve; do
  mkdir -p "$W/$h/run"
  strongswan_conf $h > "$W/$h/strongswan.conf"
  ip netns exec "$P-$h" sh -c "mount --bind '$W/$h/run' /run && exec env STRONGSWAN_CONF='$W/$h/strongswan.conf' /usr/lib/ipsec/charon" \
    > "$W/$h/charon.out" 2>&1 &
  PIDS+=($!)
done

sw() { # host op args...
  local h=$1 op=$2; shift 2
  env STRONGSWAN_CONF="$W/$h/strongswan.conf" swanctl "$op" --uri "unix://$W/$h/run/charon.vici" "$@"
}
for h in alice bob eve; do
  for _ in $(seq 100); do [ -S "$W/$h/run/charon.vici" ] && break; sleep 0.1; done
  sw $h --load-all --file "$W/$h.swanctl.conf" >/dev/null 2>&1
done

# Protected traffic goes to the TUN device of kernel-libipsec by protocol and port only
# (routes cannot select ports; policy rules can).
route_ts() { # host peer proto dport|sport port
  ip -n "$P-$1" route replace "$2" dev ipsec0 table 2200
  ip -n "$P-$1" rule add pref 90 to "$2" ipproto "$3" "$4" "$5" lookup 2200
  ip -n "$P-$1" rule del pref 100 to "$2" lookup main 2>/dev/null || true
  ip -n "$P-$1" rule add pref 100 to "$2" lookup main
}
route_ts alice 192.0.2.2 tcp dport 6667
route_ts alice 192.0.2.2 tcp dport 6668
route_ts alice 192.0.2.3 udp dport 5060
route_ts bob 192.0.2.1 tcp sport 6667
route_ts bob 192.0.2.1 tcp sport 6668
route_ts eve 192.0.2.1 udp sport 5060

# Bob's Abczz servers: echo every line back.
cat > "$W/echo.py" <<'EOP'
import socket, sys, threading
def serve(port):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port)); s.listen()
    while True:
        c, _ = s.accept()
        threading.Thread(target=lambda c=c: [c.sendall(d) for d in iter(lambda: c.recv(4096), b"")], daemon=True).start()
for p in sys.argv[1:]:
    threading.Thread(target=serve, args=(int(p),), daemon=True).start()
threading.Event().wait()
EOP
cat > "$W/chat.py" <<'EOP'
import socket, sys, time
host, port, every, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
end = time.time() + seconds
while time.time() < end:
    try:
        s = socket.create_connection((host, port), timeout=2)
        n = 0
        while time.time() < end:
            s.sendall(b"PRIVMSG #abczz :hello %d\r\n" % n); s.recv(4096); n += 1
            time.sleep(every)
    except OSError:
        time.sleep(0.5)
EOP
ip netns exec "$P-bob" python3 "$W/echo.py" 6667 6668 & PIDS+=($!)
sleep 0.5

ip netns exec "$P-alice" tcpdump -i eth0 -n --immediate-mode -U -s 0 -Z root -w "$OUT" "udp or icmp" 2>/dev/null & PIDS+=($!)
sleep 1

# at SECONDS: waits until SECONDS (a whole or tenths value) after the start of the script's timeline.
T0=${EPOCHREALTIME/./}
at() {
  local want=$(( T0 + ${1%.*} * 1000000 + ${1#*.} * 100000 ))
  [[ $1 == *.* ]] || want=$(( T0 + $1 * 1000000 ))
  while (( ${EPOCHREALTIME/./} < want )); do sleep 0.05; done
}

at 0.5; sw alice --initiate --child abczz >/dev/null &
at 1.0
ip netns exec "$P-alice" python3 "$W/chat.py" 192.0.2.2 6667 1.0 57 & PIDS+=($!)
ip netns exec "$P-alice" python3 "$W/chat.py" 192.0.2.2 6668 3.0 56 & PIDS+=($!)
ip netns exec "$P-alice" ping -q -i 2 -c 5 192.0.2.2 >/dev/null & 
at 4;  sw alice --initiate --child sip >/dev/null 2>&1 &
at 20; sw alice --rekey --child abczz >/dev/null
at 30; sw alice --initiate --child sip >/dev/null 2>&1 &
at 40; sw alice --rekey --ike bob >/dev/null
at 58
sw alice --list-sas > "$W/list-sas.txt"
sleep 0.5
for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
PIDS=()
sleep 0.5
echo "wrote $OUT; charon's view at the end:"
cat "$W/list-sas.txt"
