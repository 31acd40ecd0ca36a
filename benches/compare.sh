#!/usr/bin/env bash
# Times the whole smtpaudit binary on generated captures side by side with ndpiReader and
# tshark (when installed: Debian packages libndpi-bin, tshark; /usr/bin/time from `time`),
# several runs each, and prints medians, MB/s, packets/s, CPU time, peak RSS, ratios and the
# load average as Markdown tables, for two corpora: `large` (few large flows, the default mix
# of examples/gencorpus.rs) and `mailday` (a mail relay's many short sessions, --mix mailday).
# Then, per corpus, checks that --threads 1, 2 and 3 give the same report and scores the
# analysis against the generated ground truth. benches/README.md explains the invocations.
#
#   benches/compare.sh [SIZE] [RUNS]      e.g. benches/compare.sh 1G 5
#
# Environment: SCORE=/path/to/score.py (default: ../shared/tools/score.py beside the
# repository when it exists), PEERS=0 to time smtpaudit only, TSHARK_RUNS (default 1), FORMATS="json ndjson" to choose
# the output formats timed (default: json ndjson ecs text), MIXES="mailday" to choose the
# corpora (default: large mailday), RSS=0 to skip the peak-RSS table (50M against SIZE).
#
# The machine may be shared: the 1-minute load average is printed beside every figure (taken
# before that row's runs), so a figure measured under load can be told from a quiet one.
#
# Captures are generated (deterministically) into bench-data/ and never committed; each is
# regenerated when examples/gencorpus.rs is newer than it.
set -euo pipefail
cd "$(dirname "$0")/.."

SIZE=${1:-1G}
RUNS=${2:-5}
FORMATS=${FORMATS:-json ndjson ecs text}
MIXES=${MIXES:-large mailday}
PEERS=${PEERS:-1}
RSS=${RSS:-1}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

[ -x /usr/bin/time ] || { echo "compare.sh: needs /usr/bin/time (apt-get install time)" >&2; exit 2; }
case $RUNS in ''|*[!0-9]*|0) echo "compare.sh: RUNS must be a positive number" >&2; exit 2;; esac

cargo build --release --quiet --bin smtpaudit --example gencorpus
BIN=target/release/smtpaudit
GEN=target/release/examples/gencorpus

load() { cut -d' ' -f1 /proc/loadavg; }

# capture MIX SIZE: the path of that corpus, generated when missing or older than the generator.
capture() {
  local cap
  case $1 in
    large) cap=bench-data/mixed-$2.pcap ;;
    mailday) cap=bench-data/mailday-$2.pcap ;;
    *) echo "compare.sh: unknown mix $1 (large, mailday)" >&2; exit 2 ;;
  esac
  if [ ! -s "$cap" ] || [ examples/gencorpus.rs -nt "$cap" ]; then
    "$GEN" --mix "$1" --size "$2" --out "$cap" >&2
  fi
  echo "$cap"
}

# timed NAME CMD...: runs CMD $RUNS times (stdout discarded), appends
# "NAME|median wall s|median cpu s|max peak RSS KiB|load average before" to $RESULTS.
timed() {
  local name=$1; shift
  local walls=() cpus=() rss=0 i la
  la=$(load)
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
  echo "$name|$mw|$mc|$rss|$la" >> "$RESULTS"
}

echo "# smtpaudit against its peers, $(date -u +%Y-%m-%dT%H:%MZ), $RUNS runs each, medians"
echo
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')," \
  "$(awk '/MemTotal/ {printf "%.0f GiB RAM", $2 / 1048576}' /proc/meminfo), load average at start:" \
  "$(cut -d' ' -f1-3 /proc/loadavg)"

for MIX in $MIXES; do
  CAP=$(capture "$MIX" "$SIZE")
  BYTES=$(stat -c %s "$CAP")
  # Warm the page cache so every tool reads from memory.
  cat "$CAP" > /dev/null
  # The capture entry counts packets and flows; the same run is the one-thread reference of
  # the same-report check below.
  "$BIN" --format ndjson --threads 1 -q "$CAP" > "$TMP/t1" || true
  PACKETS=$(grep -m1 '"event_type":"capture"' "$TMP/t1" | sed 's/.*"packets":\([0-9]*\).*/\1/')
  FLOWS=$(grep -c '"event_type":"flow"' "$TMP/t1" || true)

  echo
  echo "## $MIX: $CAP ($((BYTES / 1000000)) MB, $PACKETS packets, $FLOWS flows," \
    "$((BYTES / (PACKETS > 0 ? PACKETS : 1))) bytes per packet)"
  echo
  RESULTS=$TMP/results-$MIX
  : > "$RESULTS"
  for fmt in $FORMATS; do
    timed "smtpaudit --format $fmt --threads 1" "$BIN" --format "$fmt" --threads 1 -q "$CAP"
    timed "smtpaudit --format $fmt --threads 2" "$BIN" --format "$fmt" --threads 2 -q "$CAP"
  done
  if [ "$PEERS" != 0 ] && command -v ndpiReader > /dev/null; then
    # nDPI's reference tool: classifies every flow (SMTP, STARTTLS, TLS with JA3/JA4 and
    # certificate names), one thread per pcap file; -q prints only the summary.
    timed "ndpiReader -q" ndpiReader -i "$CAP" -q
  fi
  if [ "$PEERS" != 0 ] && command -v tshark > /dev/null; then
    # Wireshark's dissectors with TCP reassembly: SMTP commands and replies and TLS handshake
    # messages, the closest tshark gets to what smtpaudit reports; -n: no name resolution.
    # tshark takes about a minute per GB: TSHARK_RUNS runs (default 1), not RUNS.
    RUNS=${TSHARK_RUNS:-1} timed "tshark (SMTP + TLS fields)" tshark -n -r "$CAP" \
      -Y "smtp.req || smtp.response || tls.handshake" \
      -T fields -e frame.number -e smtp.req.command -e smtp.response.code -e tls.handshake.type
  fi

  echo "| tool | wall (s) | MB/s | Mpackets/s | CPU (s) | peak RSS (MiB) | wall vs first row | load avg |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
  awk -F'|' -v b="$BYTES" -v p="$PACKETS" '
    NR == 1 { base = $2 }
    { printf "| %s | %.2f | %.0f | %.2f | %.2f | %.1f | %s | %s |\n", $1, $2,
        ($2 > 0 ? b / $2 / 1e6 : 0), ($2 > 0 ? p / $2 / 1e6 : 0), $3, $4 / 1024,
        (base > 0 ? sprintf("%.2fx", $2 / base) : "-"), $5 }' "$RESULTS"
  echo
  echo "two threads against one (median wall times):"
  awk -F'|' '
    { split($1, w, " --threads "); t[w[1], w[2]] = $2; names[w[1]] = 1 }
    END { for (n in names) if (t[n, 2] > 0) printf "- %s: %.2fx\n", n, t[n, 1] / t[n, 2] }' "$RESULTS" | sort
  echo

  echo "same report with --threads 1, 2 and 3:"
  "$BIN" --format ndjson --threads 2 -q "$CAP" > "$TMP/t2" || true
  "$BIN" --format ndjson --threads 3 -q "$CAP" > "$TMP/t3" || true
  if cmp -s "$TMP/t1" "$TMP/t2" && cmp -s "$TMP/t1" "$TMP/t3"; then
    echo "identical ($(wc -l < "$TMP/t1") NDJSON lines)"
  else
    echo "DIFFERENT"
  fi

  echo "ground truth:"
  SCORE=${SCORE:-}
  if [ -z "$SCORE" ]; then
    for c in "$(dirname "$0")/../../shared/tools/score.py"; do
      [ -f "$c" ] && { SCORE=$c; break; }
    done
  fi
  if [ -n "$SCORE" ] && [ -f "$SCORE" ]; then
    python3 "$SCORE" --bin "$BIN" --labels "${CAP%.pcap}.labels.json" | tail -1 || true
    echo
  else
    echo "score.py not found (set SCORE=); skipped"
  fi

  if [ "$RSS" != 0 ]; then
    echo
    echo "peak RSS (MiB, highest of $RUNS runs): a 50M capture of the same mix against this one"
    echo
    SMALL=$(capture "$MIX" 50M)
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
  fi
done
