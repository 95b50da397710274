#!/usr/bin/env bash
# Byte-identity check for performance work: runs two ipsecmon binaries over every fixture
# capture (with its keys where it has them), every corpus capture, a two-file run, a policy
# run, and the bench captures, for report, report --json, diagnose --json, and compares.
#   scripts/same-output.sh OLD_BIN NEW_BIN [REPO]   (exit 0 when all identical)
# REPO defaults to this checkout; the corpus is read from REPO/../shared/corpus/external
# when it is there (a clone without ../shared compares the fixtures and bench captures).
set -u
A=$1; B=$2; REPO=${3:-$(cd "$(dirname "$0")/.." && pwd)}
CORPUS=$REPO/../shared/corpus/external
[ -d "$CORPUS" ] || CORPUS=
out=$(mktemp -d)
run() { # $1 tag, rest: args
  local tag=$1; shift
  for side in a b; do
    bin=$A; [ $side = b ] && bin=$B
    IPSECMON_LOG=error "$bin" "$@" >"$out/$side.$tag" 2>/dev/null; echo "rc=$?" >>"$out/$side.$tag"
  done
  cmp -s "$out/a.$tag" "$out/b.$tag" || { echo "DIFFERS: $*"; bad=1; }
}
bad=0; n=0
while IFS= read -r f; do
  d=$(dirname "$f"); t=$(echo "$f" | md5sum | cut -c1-10)
  run "$t.r" report "$f"; run "$t.j" report --json "$f"; run "$t.d" diagnose --json "$f"
  if [ -e "$d/keys" ]; then run "$t.k" report --json --keys "$d/keys" "$f"; fi
  n=$((n+1))
done < <(find "$REPO/fixtures" $CORPUS -type f \( -name '*.pcap' -o -name '*.pcapng' -o -name '*.cap' -o -name '*.pcap.gz' -o -name '*.pcapng.gz' \) | sort)
two=( $(find "$REPO/fixtures/lab" -name '*.pcap' | sort | head -2) )
run two report --json "${two[@]}"
run pol report --json --policy builtin:alice-bob "${two[0]}" 2>/dev/null
for f in "$REPO"/target/bench-data/gen-1000000-*.pcap; do
  [ -e "$f" ] || continue
  t=$(basename "$f"); run "$t.r" report "$f"; run "$t.j" report --json "$f"
  n=$((n+1))
done
rm -rf "$out"
echo "$n captures compared; $([ $bad = 0 ] && echo 'all identical' || echo 'DIFFERENCES FOUND')"
exit $bad
