#!/usr/bin/env bash
# Coverage-guided fuzzing (cargo-fuzz / libFuzzer) of the core: the upgrade parser, the connection
# state machine under arbitrary client bytes and game commands, multiplayer ids and routing, and
# the whole endpoint in the simulator (many clients, commands and time steps interleaved).
# Each target asserts its own invariants (limits never exceeded, events well-formed); a crash,
# a failed assertion, a timeout or running out of memory fails the run.
#
# Usage: scripts/fuzz.sh [--seconds N | --runs N] [target...]
#   --seconds N  run each target for N seconds (default 30; the test command's setting). Starts
#                from the committed corpus (fuzz/corpus/<target>); what it finds goes to
#                target/fuzz-corpus/<target>, so a test run leaves the tree as it was.
#   --runs N     run each target for N executions (RELIABILITY.md: 10,000,000), adding what it
#                finds to the committed corpus.
#   --jobs J     run J fuzzing processes per target side by side (one per core), each with its own
#                seed and log (target/fuzz-<target>-<j>.log) and N/J executions, so --runs N still
#                counts all executions; they share the corpus directory (libFuzzer reloads it
#                every second, so what one finds the others use). Default 1.
# A crash is saved in fuzz/artifacts/<target>/ and reproduced with
# `RUSTC_BOOTSTRAP=1 cargo fuzz run -O -s none <target> <file>` in fuzz/.
#
# libFuzzer needs nightly-only compiler flags; RUSTC_BOOTSTRAP=1 lets the stable toolchain use
# them. No sanitizer: the core is safe Rust, and the targets' assertions are the point (ASan
# would cut the execution rate by 5x).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$root/target"
cd "$root/fuzz"
export RUSTC_BOOTSTRAP=1
limit=(-max_total_time=30)
grow=false
jobs=1
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) limit=(-max_total_time="$2"); shift 2 ;;
    --runs) limit=(-runs="$2"); runs=$2; grow=true; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
[ ${#targets[@]} -gt 0 ] || targets=(handshake connection multiplayer endpoint inflate)
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz.sh: installing cargo-fuzz (once)" >&2
  cargo install cargo-fuzz --locked --version 0.13.2 >&2
fi
declare -A max_len=([handshake]=20000 [connection]=4096 [multiplayer]=256 [endpoint]=4096 [inflate]=4096)
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  # libFuzzer writes new inputs to the first directory and only reads the others.
  dirs=("corpus/$t")
  if [ "$grow" = false ]; then
    mkdir -p "$root/target/fuzz-corpus/$t"
    dirs=("$root/target/fuzz-corpus/$t" "corpus/$t")
  fi
  echo "== fuzz $t (${limit[*]}, $jobs job(s))"
  # -timeout: one input taking over 10 s is a hang; -rss_limit_mb: a leak or an unbounded buffer.
  if [ "$jobs" -eq 1 ]; then
    logs=("$root/target/fuzz-$t.log")
    status=0
    cargo fuzz run -O -s none "$t" "${dirs[@]}" -- "${limit[@]}" -max_len="${max_len[$t]}" \
      -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 > "${logs[0]}" 2>&1 || status=$?
  else
    cargo fuzz build -O -s none "$t" >&2
    each=("${limit[@]}")
    [ -n "${runs:-}" ] && each=(-runs=$(( (runs + jobs - 1) / jobs )))
    logs=(); pids=()
    for j in $(seq "$jobs"); do
      logs+=("$root/target/fuzz-$t-$j.log")
      cargo fuzz run -O -s none "$t" "${dirs[@]}" -- "${each[@]}" -seed="$j" -max_len="${max_len[$t]}" \
        -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 > "${logs[-1]}" 2>&1 &
      pids+=($!)
    done
    status=0
    for pid in "${pids[@]}"; do wait "$pid" || status=$?; done
  fi
  for log in "${logs[@]}"; do
    grep -E "^(#[0-9]+ +DONE|Done |stat::number_of_executed_units|stat::peak_rss_mb)|panicked|SUMMARY" "$log" || true
  done
  if [ "$status" -ne 0 ]; then
    for log in "${logs[@]}"; do tail -n 40 "$log"; done
    echo "fuzz.sh: $t failed (see ${logs[*]})" >&2; exit 1
  fi
done
