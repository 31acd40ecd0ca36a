#!/usr/bin/env bash
# Times the whole smtpaudit binary on a generated capture side by side with tshark and
# ndpiReader (when installed: Debian packages tshark, libndpi-bin), several runs each, and
# prints medians, MB/s, peak RSS and the ratios. Then checks the analysis against the
# generated ground truth.
#
#   benches/compare.sh [SIZE] [RUNS]      e.g. benches/compare.sh 1G 3
#
# The capture is generated (deterministically) into bench-data/ and never committed.
set -euo pipefail
cd "$(dirname "$0")/.."

SIZE=${1:-1G}
RUNS=${2:-3}
CAP=bench-data/mixed-$SIZE.pcap

command -v /usr/bin/time >/dev/null || { echo "compare.sh: needs /usr/bin/time (apt-get install time)"; exit 2; }

cargo build --release --quiet --bin smtpaudit --example gencorpus
if [ ! -f "$CAP" ]; then
  target/release/examples/gencorpus --size "$SIZE" --out "$CAP"
fi
BYTES=$(stat -c %s "$CAP")
# Warm the page cache so every tool reads from memory.
cat "$CAP" > /dev/null

# median_run NAME CMD...: runs CMD $RUNS times, prints "NAME median_s MB/s peak_rss_MiB".
median_run() {
  local name=$1; shift
  local times=() rss=0
  for _ in $(seq "$RUNS"); do
    /usr/bin/time -f "%e %M" -o /tmp/compare.time "$@" > /dev/null 2>/tmp/compare.err || {
      echo "$name failed: $(tail -3 /tmp/compare.err)"; return 0; }
    read -r t m < /tmp/compare.time
    times+=("$t")
    [ "$m" -gt "$rss" ] && rss=$m
  done
  local med
  med=$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  awk -v n="$name" -v t="$med" -v b="$BYTES" -v r="$rss" \
    'BEGIN { printf "%-28s %8.2f s %9.0f MB/s %8.1f MiB\n", n, t, (t > 0 ? b / t / 1e6 : 0), r / 1024 }'
  echo "$name $med $rss" >> /tmp/compare.results
}

: > /tmp/compare.results
echo "capture: $CAP ($((BYTES / 1000000)) MB), $RUNS runs each, median"
printf '%-28s %10s %14s %12s\n' tool time throughput "peak RSS"
median_run "smtpaudit --threads 1" target/release/smtpaudit --format json --threads 1 -q "$CAP"
median_run "smtpaudit (all cores)" target/release/smtpaudit --format json -q "$CAP"
if command -v ndpiReader >/dev/null; then
  median_run "ndpiReader" ndpiReader -i "$CAP" -q
fi
if command -v tshark >/dev/null; then
  median_run "tshark (smtp+tls fields)" tshark -n -r "$CAP" -Y "smtp.req || smtp.response || tls.handshake" \
    -T fields -e frame.number -e smtp.req.command -e tls.handshake.type
fi

python3 - /tmp/compare.results <<'PY'
import sys
rows = [l.split() for l in open(sys.argv[1])]
# name may contain spaces: last two fields are time and rss
rows = [(" ".join(r[:-2]), float(r[-2]), int(r[-1])) for r in rows]
if rows:
    base = rows[0]
    for name, t, rss in rows[1:]:
        print(f"{name}: {t / base[1]:.1f}x the time of {base[0]}" if base[1] > 0 else name)
PY

echo "== ground truth check"
python3 ../shared/tools/score.py --bin target/release/smtpaudit --labels "${CAP%.pcap}.labels.json" 2>/dev/null | tail -1 \
  || echo "score.py not found (../shared/tools); skipped"
