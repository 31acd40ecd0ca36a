#!/usr/bin/env bash
# Looks for a quadratic corner: generates each stress shape at two sizes (the second FACTOR
# times the first) and compares the time per byte. Linear work keeps the ratio near 1.
#
#   benches/corners.sh [SMALL] [FACTOR]      default: 100M 4
#
# CPU time (user + sys, mean of RUNS runs) is compared rather than wall time, because wall
# time on a shared machine says more about the neighbours than about smtpaudit. Captures go
# to bench-data/ and are deleted afterwards (KEEP=1 keeps them). FORMAT (ndjson) and THREADS
# (1) choose the run.
set -euo pipefail
cd "$(dirname "$0")/.."

SMALL=${1:-100M}
FACTOR=${2:-4}
FORMAT=${FORMAT:-ndjson}
THREADS=${THREADS:-1}
RUNS=${RUNS:-5}
[ -x /usr/bin/time ] || { echo "corners.sh: needs /usr/bin/time (apt-get install time)" >&2; exit 2; }
num=${SMALL%[KkMmGg]}
unit=${SMALL#"$num"}
LARGE=$((num * FACTOR))$unit

cargo build --release --quiet --bin smtpaudit --example gencorpus
GEN=target/release/examples/gencorpus
BIN=target/release/smtpaudit

# name|gencorpus options
SHAPES=(
  "mixed|"
  "many concurrent flows (up to 20000 live)|--concurrent 20000 --arrival-us 5 --body 20K --tls 20K"
  "tiny packets (16-byte payloads)|--mss 16 --body 20K --tls 20K"
  "huge DATA bodies (200 MB each)|--body 200M --tls 0 --concurrent 4"
  "long TLS sessions (200 MB each)|--tls 200M --body 0 --concurrent 4"
  "short connections, no payload filler|--body 0 --tls 0 --arrival-us 20"
)

echo "## $(date -u +%Y-%m-%d) quadratic-corner check: $SMALL vs $LARGE, --format $FORMAT --threads $THREADS"
echo
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| shape | flows ($LARGE) | packets ($LARGE) | MB/s CPU $SMALL | MB/s CPU $LARGE | CPU per byte, $LARGE / $SMALL | peak RSS $SMALL / $LARGE (MiB) |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
for shape in "${SHAPES[@]}"; do
  name=${shape%%|*}
  opts=${shape#*|}
  row=()
  for size in "$SMALL" "$LARGE"; do
    cap=bench-data/corner-$size.pcap
    # shellcheck disable=SC2086
    info=$("$GEN" --size "$size" --out "$cap" --no-truth $opts 2>&1 | tail -1)
    cat "$cap" > /dev/null
    bytes=$(stat -c %s "$cap")
    # /usr/bin/time counts in 10 ms steps: time RUNS runs in one go, then divide.
    /usr/bin/time -f "%e %U %S %M" -o bench-data/corner.time sh -c \
      'for i in $(seq "$1"); do "$2" --format "$3" --threads "$4" -q "$5" > /dev/null || true; done' \
      sh "$RUNS" "$BIN" "$FORMAT" "$THREADS" "$cap"
    read -r wall user sys kib < <(tail -1 bench-data/corner.time)
    best="$(awk -v u="$user" -v s="$sys" -v n="$RUNS" 'BEGIN { print (u + s) / n }') $kib"
    row+=("$bytes ${best} ${info}")
    [ "${KEEP:-0}" = 1 ] || rm -f "$cap"
  done
  rm -f bench-data/corner.time
  # shellcheck disable=SC2206
  s=(${row[0]}) l=(${row[1]})
  flows=$(echo "${row[1]}" | sed -n 's/.*gencorpus: \([0-9]*\) flows, \([0-9]*\) packets.*/\1/p')
  packets=$(echo "${row[1]}" | sed -n 's/.*gencorpus: \([0-9]*\) flows, \([0-9]*\) packets.*/\2/p')
  awk -v n="$name" -v f="$flows" -v p="$packets" -v sb="${s[0]}" -v sc="${s[1]}" -v sr="${s[2]}" \
      -v lb="${l[0]}" -v lc="${l[1]}" -v lr="${l[2]}" 'BEGIN {
    sc = (sc > 0 ? sc : 0.01); lc = (lc > 0 ? lc : 0.01)
    printf "| %s | %s | %s | %.0f | %.0f | %.2f | %.1f / %.1f |\n", n, f, p, sb / sc / 1e6, lb / lc / 1e6,
      (lc / lb) / (sc / sb), sr / 1024, lr / 1024 }'
done
