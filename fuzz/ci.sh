#!/usr/bin/env bash
# Fuzz smoke run for CI: builds every fuzz target and runs each for a short time
# (FUZZ_SECONDS, default 20) from seeds made from fixtures/ (and the shared corpus when
# present), then replays tests/regressions/<target>/ through the built target.
#
# cargo-fuzz needs nightly compiler flags (-Zsanitizer=address, sancov); on a stable
# toolchain they are unlocked with RUSTC_BOOTSTRAP=1. When that cannot work on the runner
# (no cargo-fuzz and no way to install it, no C++ compiler for libFuzzer, an unsupported
# target), the run is skipped with a message saying why; it is never skipped silently.
# A crash, a hang (-timeout) or running out of memory (-rss_limit_mb) fails the script.
#
# Usage: fuzz/ci.sh [TARGET...]        (default: every target in fuzz/Cargo.toml)
# Env:   FUZZ_SECONDS (per target), FUZZ_JOBS unset (one target at a time, on purpose).
set -euo pipefail
cd "$(dirname "$0")"

secs="${FUZZ_SECONDS:-20}"

skip() {
  echo "fuzz: SKIPPED: $*"
  echo "fuzz: (the unit and hostile tests still replay tests/regressions/ in cargo test)"
  exit 0
}

command -v cargo >/dev/null 2>&1 || skip "cargo is not installed"

case "$(uname -s)-$(uname -m)" in
  Linux-x86_64 | Linux-aarch64 | Darwin-x86_64 | Darwin-arm64) ;;
  *) skip "libFuzzer with AddressSanitizer is not supported on $(uname -s)-$(uname -m)" ;;
esac

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: cargo-fuzz is missing; installing it (cargo install cargo-fuzz --locked)"
  cargo install cargo-fuzz --locked >/dev/null 2>&1 \
    || skip "cargo-fuzz is not installed and 'cargo install cargo-fuzz --locked' failed (offline runner?)"
fi

if ! command -v c++ >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "fuzz: no C++ compiler; installing g++ (libFuzzer is C++)"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends g++ >/dev/null) \
    || echo "fuzz: could not install g++"
fi
if ! command -v c++ >/dev/null 2>&1 && ! command -v clang++ >/dev/null 2>&1; then
  skip "no C++ compiler: libfuzzer-sys builds libFuzzer from its C++ sources"
fi

# Stable rustc accepts the nightly-only flags cargo-fuzz passes when this is set. A nightly
# toolchain works the same way without it.
export RUSTC_BOOTSTRAP=1
export CARGO_TERM_COLOR=never

if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo fuzz list)
fi

echo "== fuzz: building ${targets[*]}"
build_log="$(mktemp)"
trap 'rm -f "$build_log"' EXIT
# Build each target separately so that a compile error names its target.
for t in "${targets[@]}"; do
  if ! cargo fuzz build "$t" >"$build_log" 2>&1; then
    tail -n 30 "$build_log"
    # Our own code failing to compile is a CI failure; the toolchain refusing the
    # sanitizer or nightly flags is an environment limitation.
    if grep -qE '^error(\[E[0-9]+\])?: ' "$build_log" \
      && ! grep -qiE 'sanitizer|-Z|unstable|nightly|is not supported' "$build_log"; then
      echo "fuzz: FAILED: target $t does not compile"
      exit 1
    fi
    skip "cargo fuzz build does not work with this toolchain (see the log above)"
  fi
done

if command -v python3 >/dev/null 2>&1; then
  python3 make_seeds.py >/dev/null || echo "fuzz: make_seeds.py failed; fuzzing from empty corpora"
else
  echo "fuzz: python3 missing; fuzzing from empty corpora"
fi

bin="target/$(rustc -vV | sed -n 's/^host: //p')/release"

status=0
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  regressions="../tests/regressions/$t"
  if [ -d "$regressions" ] && ls "$regressions"/* >/dev/null 2>&1; then
    echo "== fuzz: $t: replaying $regressions"
    files=()
    for f in "$regressions"/*; do
      case "$f" in *.md) ;; *) files+=("$f") ;; esac
    done
    # Given files (not a directory), a libFuzzer binary runs each once and stops.
    if [ "${#files[@]}" -gt 0 ] && ! "$bin/$t" "${files[@]}" >"$build_log" 2>&1; then
      tail -n 40 "$build_log"
      echo "fuzz: FAILED: $t fails on a regression input"
      status=1
      continue
    fi
  fi
  echo "== fuzz: $t for ${secs}s"
  if ! cargo fuzz run "$t" "corpus/$t" -- \
    -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
    -print_final_stats=1 >"$build_log" 2>&1; then
    tail -n 60 "$build_log"
    echo "fuzz: FAILED: $t found a failing input (artifacts in fuzz/artifacts/$t/)"
    status=1
    continue
  fi
  grep -E '^#[0-9]+.*DONE|stat::(number_of_executed_units|average_exec_per_sec)' "$build_log" || true
done

exit "$status"
