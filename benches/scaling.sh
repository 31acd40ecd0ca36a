#!/usr/bin/env bash
# The scaling curve: wall time, GB/s and packets/s of smtpaudit with 1 and 2 threads on both
# generated corpora (large flows, a mail relay's day) at several sizes, medians of RUNS runs
# with a warm page cache, the 1-minute load average beside every row (the machine may be
# shared: a row measured under load says so). Time linear in bytes shows as a flat GB/s.
#
#   benches/scaling.sh [RUNS] [SIZES...]     e.g. benches/scaling.sh 5 100M 1G 4G
#
# Environment: FORMAT (default ndjson), MIXES (default "large mailday").
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${1:-5}
shift || true
SIZES=${*:-100M 1G}
FORMAT=${FORMAT:-ndjson}
MIXES=${MIXES:-large mailday}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
[ -x /usr/bin/time ] || { echo "scaling.sh: needs /usr/bin/time (apt-get install time)" >&2; exit 2; }

cargo build --release --quiet --bin smtpaudit --example gencorpus
BIN=target/release/smtpaudit

echo "# scaling, $(date -u +%Y-%m-%dT%H:%MZ), --format $FORMAT, $RUNS runs each, medians"
echo
echo "| corpus | size (MB) | packets | flows | threads | wall (s) | GB/s | Mpackets/s | CPU (s) | load avg |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
for MIX in $MIXES; do
  for SIZE in $SIZES; do
    case $MIX in
      large) CAP=bench-data/mixed-$SIZE.pcap ;;
      *) CAP=bench-data/$MIX-$SIZE.pcap ;;
    esac
    if [ ! -s "$CAP" ] || [ examples/gencorpus.rs -nt "$CAP" ]; then
      target/release/examples/gencorpus --mix "$MIX" --size "$SIZE" --out "$CAP" >&2
    fi
    BYTES=$(stat -c %s "$CAP")
    cat "$CAP" > /dev/null
    "$BIN" --format ndjson --threads 1 -q "$CAP" > "$TMP/ref" || true
    PACKETS=$(grep -m1 '"event_type":"capture"' "$TMP/ref" | sed 's/.*"packets":\([0-9]*\).*/\1/')
    FLOWS=$(grep -c '"event_type":"flow"' "$TMP/ref" || true)
    for T in 1 2; do
      LA=$(cut -d' ' -f1 /proc/loadavg)
      : > "$TMP/runs"
      for _ in $(seq "$RUNS"); do
        /usr/bin/time -f "%e %U %S" -o "$TMP/time" "$BIN" --format "$FORMAT" --threads "$T" -q "$CAP" > /dev/null 2>&1 || true
        tail -1 "$TMP/time" >> "$TMP/runs"
      done
      W=$(awk '{print $1}' "$TMP/runs" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
      C=$(awk '{print $2 + $3}' "$TMP/runs" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
      awk -v m="$MIX" -v b="$BYTES" -v p="$PACKETS" -v f="$FLOWS" -v t="$T" -v w="$W" -v c="$C" -v la="$LA" \
        'BEGIN { printf "| %s | %.0f | %d | %d | %d | %.2f | %.2f | %.2f | %.2f | %s |\n", m, b / 1e6, p, f, t, w, b / w / 1e9, p / w / 1e6, c, la }'
    done
  done
done
