#!/bin/bash
# Live capture benchmark (not a test): one thread fires
# syscalls:sys_enter_getppid as fast as it can for SECS seconds while one
# tool records it; per tool: events generated, captured, lost, capture
# ratio, and the recording process's CPU seconds (user+sys, from
# /proc/PID/stat just before it exits).
#   bench/live.sh [SECS]        (as root; default 5)
# COOLKPROBE=path overrides the binary (default: target/release/coolkprobe).
set -euo pipefail
SECS=${1:-5}
cd "$(dirname "$0")/.."
T=/sys/kernel/tracing
W=$(mktemp -d /tmp/ckp-bench.XXXXXX)
trap 'rm -rf "$W"' EXIT
gcc -O2 -o "$W/gen" bench/getppid_gen.c
if [ -z "${COOLKPROBE:-}" ]; then
  cargo build -q --release
  COOLKPROBE=target/release/coolkprobe
fi
TCK=$(getconf CLK_TCK)

# cpu_of PID: user+sys seconds so far
cpu_of() { awk -v t="$TCK" '{ printf "%.2f", ($14 + $15) / t }' "/proc/$1/stat"; }
# rss_of PID: peak resident set so far, MB
rss_of() { awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }

# run_tool NAME: starts "$@" in background, fires the generator, stops it.
measure() {
  local name=$1; shift
  "$@" & local pid=$!
  sleep 1
  "$W/gen" "$SECS" > "$W/gen.out"
  sleep 1
  local cpu; cpu=$(cpu_of "$pid")
  local rss; rss=$(rss_of "$pid")
  # SIGINT is ignored by background jobs of a script: cat needs TERM.
  kill -"${STOPSIG:-INT}" "$pid"; wait "$pid" 2>/dev/null || true
  echo "$name $cpu $rss"
}

printf '%-22s %10s %10s %10s %8s %8s %10s %8s\n' tool generated captured lost ratio cpu_s ns/event rss_MB
row() { # name generated captured lost "cpu rss"
  local cpu=${5% *} rss=${5#* }
  awk -v n="$1" -v g="$2" -v c="$3" -v l="$4" -v cpu="$cpu" -v rss="$rss" 'BEGIN {
    printf "%-22s %10d %10d %10d %7.2f%% %8.2f %10.1f %8s\n", n, g, c, l, 100*c/g, cpu, (c ? 1e9*cpu/c : 0), rss }'
}

# coolkprobe text
r=$(measure coolkprobe-text "$COOLKPROBE" 't syscalls:sys_enter_getppid' -o "$W/ckp.txt" 2> "$W/ckp.err")
read -r GENERATED GPID < "$W/gen.out"
cap=$(grep -c -- "-$GPID " "$W/ckp.txt" || true)
lost=$(grep -o 'LOST [0-9]*' "$W/ckp.err" | awk '{print $2}' || true)
row coolkprobe-text "$GENERATED" "$cap" "${lost:-0}" "${r#* }"

# coolkprobe JSON
r=$(measure coolkprobe-json "$COOLKPROBE" 't syscalls:sys_enter_getppid' --json -o "$W/ckp.json" 2> "$W/ckp.err")
read -r GENERATED GPID < "$W/gen.out"
cap=$(grep -c "\"pid\":$GPID," "$W/ckp.json" || true)
lost=$(grep -o 'LOST [0-9]*' "$W/ckp.err" | awk '{print $2}' || true)
row coolkprobe-json "$GENERATED" "$cap" "${lost:-0}" "${r#* }"
rm -f "$W/ckp.txt" "$W/ckp.json"

# perf record
r=$(measure perf-record perf record -q -e syscalls:sys_enter_getppid -a -o "$W/perf.data" 2> "$W/perf.err")
read -r GENERATED GPID < "$W/gen.out"
cap=$(perf script -i "$W/perf.data" -F pid 2>/dev/null | awk -v p="$GPID" '$1==p' | wc -l)
lost=$(perf report -i "$W/perf.data" --stats 2>/dev/null | awk '/LOST_SAMPLES|LOST events/ {s+=$NF} END {print s+0}')
row perf-record "$GENERATED" "$cap" "$lost" "${r#* }"
rm -f "$W/perf.data"

# cat trace_pipe (the old tool's way), in its own instance
I=$T/instances/ckp_bench_$$
mkdir "$I"
echo 1 > "$I/events/syscalls/sys_enter_getppid/enable"
r=$(STOPSIG=TERM measure cat-trace_pipe cat "$I/trace_pipe" > "$W/pipe.txt")
read -r GENERATED GPID < "$W/gen.out"
echo 0 > "$I/events/syscalls/sys_enter_getppid/enable"
cap=$(grep -c -- "-$GPID " "$W/pipe.txt" || true)
lost=$(awk '/^overrun/ {s+=$2} END {print s+0}' "$I"/per_cpu/cpu*/stats)
rmdir "$I"
row cat-trace_pipe "$GENERATED" "$cap" "$lost" "${r#* }"
