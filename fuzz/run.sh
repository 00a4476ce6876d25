#!/usr/bin/env bash
# Fuzzes the named targets with afl.rs, each until EXECS executions
# (default 10 million) or SECONDS_EACH seconds (default 3600), whichever
# comes first, JOBS targets at once (default: the core count),
# starting from fuzz/corpus/{target}; prints each run's executions, speed,
# paths found and crashes. Findings stay in fuzz/afl/out/{target}.
#
#   fuzz/run.sh [TARGET...]      default: every target in src/lib.rs
set -euo pipefail
cd "$(dirname "$0")/afl"
seconds=${SECONDS_EACH:-3600}
execs=${EXECS:-10000000}
jobs=${JOBS:-$(nproc)}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(sed -n 's/^    ("\([a-z_0-9]*\)", .*/\1/p' ../src/lib.rs)
command -v cargo-afl >/dev/null || { echo "needs cargo-afl: cargo install cargo-afl --locked" >&2; exit 2; }
cargo afl build --release --quiet
run() {
  local t=$1
  rm -rf "out/$t"
  RUST_BACKTRACE=0 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_UI=1 \
    cargo afl fuzz -i "../corpus/$t" -o "out/$t" -V "$seconds" -E "$execs" "target/release/$t" >"out/$t.log" 2>&1 || true
  local s=out/$t/default/fuzzer_stats
  if [ -f "$s" ]; then
    awk -v t="$t" -F' *: ' '{v[$1]=$2} END {printf "%-13s execs %12s  %8s/s  corpus %5s  crashes %s  hangs %s\n", t, v["execs_done"], v["execs_per_sec"], v["corpus_count"], v["saved_crashes"], v["saved_hangs"]}' "$s"
  else
    echo "$t: afl-fuzz did not start (see fuzz/afl/out/$t.log)"
  fi
}
mkdir -p out
running=0
for t in "${targets[@]}"; do
  run "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then wait -n; running=$((running - 1)); fi
done
wait
