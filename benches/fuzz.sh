#!/usr/bin/env bash
# Fuzzes the parsers that read what others wrote: hiera `%{...}` interpolation (with a full
# lookup), known_hosts files, what probe, fetch and apply scripts print, and [[patch]] files
# (parsed, applied, reversed). Each target runs for SECONDS (default 180) with libFuzzer
# through cargo-fuzz, on the stable toolchain (RUSTC_BOOTSTRAP=1 unlocks the sanitizer flags
# cargo-fuzz passes).
#
#   bash benches/fuzz.sh [SECONDS] [TARGET...]
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`). Corpora grow under fuzz/corpus/ (not in git),
# seeded from fuzz/seeds/; a crash or a hang is kept in fuzz/artifacts/TARGET/ and ends the run
# with its path. Prints per target the executions, and the corpus size.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds=${1:-180}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(interpolation known_hosts host_output patch)
export RUSTC_BOOTSTRAP=1
cargo fuzz build -O
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  log=$(mktemp)
  if ! cargo fuzz run -O "$t" "corpus/$t" "seeds/$t" -- \
      -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "$t: FAILED (see fuzz/artifacts/$t/)" >&2
    exit 1
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  echo "$t: ${runs:-?} executions in ${seconds} s, no crash, no hang; corpus $(find "corpus/$t" -type f | wc -l) inputs"
  rm -f "$log"
done
