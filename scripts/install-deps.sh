#!/usr/bin/env bash
# Installs the Debian packages that ipsecmon's build, demo and tests need, if missing.
# Idempotent: installs nothing when everything is present. Needs root (or sudo).
set -euo pipefail

packages=(
  libpcap-dev pkg-config
  strongswan-charon strongswan-swanctl libcharon-extra-plugins libstrongswan-standard-plugins
  strongswan-pki
  nftables iproute2 iptables iputils-ping tcpdump
  tmux
  prometheus
  tcpreplay
  python3
  libcap2-bin curl
)

missing=()
for p in "${packages[@]}"; do
  [[ $p == \#* ]] && continue
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "installing: ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The Debian prometheus package starts a server on :9090; the tests run their own.
if command -v systemctl >/dev/null 2>&1; then
  $SUDO systemctl disable --now prometheus prometheus-node-exporter >/dev/null 2>&1 || true
fi
