#!/usr/bin/env bash
# Times the whole smtpaudit binary on a generated capture side by side with ndpiReader and
# tshark (when installed: Debian packages libndpi-bin, tshark; /usr/bin/time from `time`),
# several runs each, and prints medians, MB/s, CPU time, peak RSS and ratios as a Markdown
# table. Then checks that --threads 1 and the default give the same report, and scores the
# analysis against the generated ground truth. benches/README.md explains the invocations.
#
#   benches/compare.sh [SIZE] [RUNS]      e.g. benches/compare.sh 1G 5
#
# Environment: SCORE=/path/to/score.py (default: ../shared/tools/score.py beside the
# repository when it exists), PEERS=0 to time smtpaudit only, FORMAT=ndjson to time
# another output format (default json).
#
# The capture is generated (deterministically) into bench-data/ and never committed; it is
# regenerated when examples/gencorpus.rs is newer than it.
set -euo pipefail
cd "$(dirname "$0")/.."

SIZE=${1:-1G}
RUNS=${2:-3}
FORMAT=${FORMAT:-json}
PEERS=${PEERS:-1}
CAP=bench-data/mixed-$SIZE.pcap
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

[ -x /usr/bin/time ] || { echo "compare.sh: needs /usr/bin/time (apt-get install time)" >&2; exit 2; }
case $RUNS in ''|*[!0-9]*|0) echo "compare.sh: RUNS must be a positive number" >&2; exit 2;; esac

cargo build --release --quiet --bin smtpaudit --example gencorpus
BIN=target/release/smtpaudit
if [ ! -s "$CAP" ] || [ examples/gencorpus.rs -nt "$CAP" ]; then
  target/release/examples/gencorpus --size "$SIZE" --out "$CAP"
fi
BYTES=$(stat -c %s "$CAP")
# Warm the page cache so every tool reads from memory.
cat "$CAP" > /dev/null

echo "## $(date -u +%Y-%m-%d) $CAP ($((BYTES / 1000000)) MB), $RUNS runs each, medians"
echo
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')," \
  "$(awk '/MemTotal/ {printf "%.0f GiB RAM", $2 / 1048576}' /proc/meminfo), load average at start:" \
  "$(cut -d' ' -f1-3 /proc/loadavg)"
echo

RESULTS=$TMP/results
: > "$RESULTS"

# timed NAME CMD...: runs CMD $RUNS times (stdout discarded), appends
# "NAME|median wall s|median cpu s|max peak RSS KiB" to $RESULTS.
timed() {
  local name=$1; shift
  local walls=() cpus=() rss=0 i
  for i in $(seq "$RUNS"); do
    local rc=0
    /usr/bin/time -f "%e %U %S %M" -o "$TMP/time" "$@" > /dev/null 2> "$TMP/err" || rc=$?
    # Exit status 1 is smtpaudit's "a finding at --fail-on" (not used here); more is a failure.
    if [ "$rc" -gt 1 ]; then
      echo "$name failed (exit $rc): $(tail -3 "$TMP/err")" >&2
      return 0
    fi
    read -r wall user sys kib < <(tail -1 "$TMP/time")
    walls+=("$wall")
    cpus+=("$(awk -v u="$user" -v s="$sys" 'BEGIN { print u + s }')")
    [ "$kib" -gt "$rss" ] && rss=$kib
  done
  local mw mc
  mw=$(printf '%s\n' "${walls[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  mc=$(printf '%s\n' "${cpus[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  echo "$name|$mw|$mc|$rss" >> "$RESULTS"
}

timed "smtpaudit --threads 1" "$BIN" --format "$FORMAT" --threads 1 -q "$CAP"
timed "smtpaudit --threads 2" "$BIN" --format "$FORMAT" --threads 2 -q "$CAP"
if [ "$(nproc)" -gt 2 ]; then
  timed "smtpaudit (all $(nproc) cores)" "$BIN" --format "$FORMAT" -q "$CAP"
fi
if [ "$PEERS" != 0 ] && command -v ndpiReader > /dev/null; then
  # nDPI's reference tool: classifies every flow (SMTP, STARTTLS, TLS with JA3/JA4 and
  # certificate names), one thread per pcap file; -q prints only the summary.
  timed "ndpiReader -q" ndpiReader -i "$CAP" -q
fi
if [ "$PEERS" != 0 ] && command -v tshark > /dev/null; then
  # Wireshark's dissectors with TCP reassembly: SMTP commands and replies and TLS handshake
  # messages, the closest tshark gets to what smtpaudit reports; -n: no name resolution.
  timed "tshark (SMTP + TLS fields)" tshark -n -r "$CAP" \
    -Y "smtp.req || smtp.response || tls.handshake" \
    -T fields -e frame.number -e smtp.req.command -e smtp.response.code -e tls.handshake.type
fi

echo "| tool | wall (s) | MB/s | CPU (s) | peak RSS (MiB) | wall vs smtpaudit --threads 1 |"
echo "| --- | ---: | ---: | ---: | ---: | ---: |"
awk -F'|' -v b="$BYTES" '
  NR == 1 { base = $2 }
  { printf "| %s | %.2f | %.0f | %.2f | %.1f | %s |\n", $1, $2, ($2 > 0 ? b / $2 / 1e6 : 0), $3, $4 / 1024,
      (base > 0 ? sprintf("%.2fx", $2 / base) : "-") }' "$RESULTS"
echo

echo "== peak RSS (MiB, highest of $RUNS runs): a 50M capture against this one, every format"
SMALL=bench-data/mixed-50M.pcap
if [ ! -s "$SMALL" ] || [ examples/gencorpus.rs -nt "$SMALL" ]; then
  target/release/examples/gencorpus --size 50M --out "$SMALL" > /dev/null
fi
peak() {
  local max=0 i kib
  for i in $(seq "$RUNS"); do
    /usr/bin/time -f "%M" -o "$TMP/rss" "$@" > /dev/null 2>&1 || true
    kib=$(tail -1 "$TMP/rss")
    [ "$kib" -gt "$max" ] && max=$kib
  done
  echo "$max"
}
echo "| format | threads | 50M | $SIZE | growth |"
echo "| --- | ---: | ---: | ---: | ---: |"
for fmt in json ndjson ecs text; do
  for t in 1 2; do
    a=$(peak "$BIN" --format "$fmt" --threads "$t" -q "$SMALL")
    b=$(peak "$BIN" --format "$fmt" --threads "$t" -q "$CAP")
    awk -v f="$fmt" -v t="$t" -v a="$a" -v b="$b" \
      'BEGIN { printf "| %s | %s | %.1f | %.1f | %+.0f%% |\n", f, t, a / 1024, b / 1024, (b / a - 1) * 100 }'
  done
done
echo

echo "== same report with --threads 1 and --threads 2"
"$BIN" --format ndjson --threads 1 -q "$CAP" > "$TMP/t1" || true
"$BIN" --format ndjson --threads 2 -q "$CAP" > "$TMP/t2" || true
if cmp -s "$TMP/t1" "$TMP/t2"; then echo "identical ($(wc -l < "$TMP/t1") NDJSON lines)"; else echo "DIFFERENT"; fi

echo "== ground truth check"
SCORE=${SCORE:-}
if [ -z "$SCORE" ]; then
  for c in "$(dirname "$0")/../../shared/tools/score.py"; do
    [ -f "$c" ] && { SCORE=$c; break; }
  done
fi
if [ -n "$SCORE" ] && [ -f "$SCORE" ]; then
  python3 "$SCORE" --bin "$BIN" --labels "${CAP%.pcap}.labels.json" | tail -1 || true
else
  echo "score.py not found (set SCORE=); skipped"
fi
