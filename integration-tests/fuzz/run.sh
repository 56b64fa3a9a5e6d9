#!/usr/bin/env bash
# Fuzzes one target with AFL++ (cargo-afl, stable toolchain) for a number of seconds:
#   integration-tests/fuzz/run.sh TARGET [SECONDS]     TARGET: ids fetch mapping policy audit-export
# Installs cargo-afl and builds AFL++ on first use. Prints the run's counts (executions, paths,
# crashes, hangs) and exits non-zero if AFL++ saved a crash or a hang; those inputs are under
# out/TARGET/default/{crashes,hangs} — copy each into corpus/TARGET/ as a regression input.
set -euo pipefail
cd "$(dirname "$0")"
target=${1:?usage: run.sh TARGET [SECONDS]}
seconds=${2:-600}
[ -d "corpus/$target" ] || { echo "no corpus/$target: targets are $(ls corpus)" >&2; exit 2; }

command -v cargo-afl >/dev/null || cargo install cargo-afl --locked
# AFL++ itself (afl-fuzz), built once into cargo-afl's data directory.
cargo afl config --build 2>/dev/null || true

# Instrumented builds must not share the normal target directory (different RUSTFLAGS).
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/../../target/afl}
cargo afl build --release -p xgate-fuzz --features afl --bin "fuzz-$target"

# The machine's core_pattern and CPU governor are not ours to change.
export AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_UI=1
export AFL_NO_AFFINITY=1
# Targets linking the gateway have more edges than AFL++'s default map holds. (AFL++ reads
# its variables as set/unset: never export one as 0 to mean off, e.g. AFL_SKIP_BIN_CHECK=0
# skips the check that finds the persistent-mode signature, and every input then "hangs".)
map_size=$(AFL_DUMP_MAP_SIZE=1 "$CARGO_TARGET_DIR/release/fuzz-$target" </dev/null || true)
if [ -n "$map_size" ] && [ "$map_size" -gt 65536 ]; then export AFL_MAP_SIZE=$map_size; fi
out="out/$target"
rm -rf "$out"
mkdir -p out
# -V: stop after SECONDS; -t: a single input taking over 1 s is a hang.
cargo afl fuzz -V "$seconds" -t 1000 -i "corpus/$target" -o "$out" \
    "$CARGO_TARGET_DIR/release/fuzz-$target" >"out/$target.log" 2>&1 || {
    tail -30 "out/$target.log" >&2
    exit 1
}
stats="$out/default/fuzzer_stats"
for key in run_time execs_done execs_per_sec corpus_count edges_found saved_crashes saved_hangs; do
    printf '%-14s %s\n' "$key" "$(awk -F' *: *' -v k="$key" '$1 == k {print $2}' "$stats")"
done
crashes=$(awk -F' *: *' '$1 == "saved_crashes" {print $2}' "$stats")
hangs=$(awk -F' *: *' '$1 == "saved_hangs" {print $2}' "$stats")
[ "$crashes" = 0 ] && [ "$hangs" = 0 ]
