#!/bin/bash
# Live capture benchmark (not a test): one thread fires
# syscalls:sys_enter_getppid as fast as it can for SECS seconds while one
# tool records it; per tool: events generated, captured, lost, capture
# ratio, the recording process's CPU seconds (user+sys, from /proc/PID/stat
# just before it exits) and its peak RSS.
#   bench/live.sh [SECS]        (as root; default 5)
# COOLKPROBE=path overrides the binary (default: target/release/coolkprobe).
#
# Where the output goes. These VMs' host hands guest memory over lazily
# and takes free memory back at once (free page reporting, DAMON pageout),
# so each fresh page-cache page costs a host fault: writing 2.6 GB into a
# new file took 2.5-6.5 s of CPU here, into pages touched just before
# 0.5-0.8 s. JSON writes ~3 GB in 5 s, so a new file times the host. By
# default every tool writes in place into one tmpfs file filled beforehand
# (no new pages, and tmpfs pages stay: there is no swap): the tools are
# compared, not the host. COLD=1 writes new files in /tmp instead.
set -euo pipefail
SECS=${1:-5}
cd "$(dirname "$0")/.."
T=/sys/kernel/tracing
W=$(mktemp -d /tmp/ckp-bench.XXXXXX)
OUT=/dev/shm/ckp-bench-out.$$
trap 'rm -rf "$W" "$OUT"' EXIT
gcc -O2 -o "$W/gen" bench/getppid_gen.c
if [ -z "${COOLKPROBE:-}" ]; then
  cargo build -q --release
  COOLKPROBE=target/release/coolkprobe
fi
TCK=$(getconf CLK_TCK)
# 1 GiB per second of generation: JSON writes about 0.65 GB/s.
OUT_MB=$((SECS * 1024))

# cpu_of PID: user+sys seconds so far
cpu_of() { awk -v t="$TCK" '{ printf "%.2f", ($14 + $15) / t }' "/proc/$1/stat"; }
# rss_of PID: peak resident set so far, MB
rss_of() { awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }

# output NAME BYTE: the path a tool writes to, made ready. In place: the
# tmpfs file, all BYTE (newlines for text tools: no stale match, no long
# line; zeros for perf, whose reader stops at a zero header), then a pause
# for the filling's aftermath to pass.
output() {
  if [ -n "${COLD:-}" ]; then
    rm -f "$W/$1"
    echo "$W/$1"
    return
  fi
  if [ "$2" = nl ]; then
    head -c $((OUT_MB << 20)) /dev/zero | tr '\0' '\n' | dd of="$OUT" bs=1M conv=notrunc iflag=fullblock status=none
  else
    dd if=/dev/zero of="$OUT" bs=1M count="$OUT_MB" conv=notrunc status=none
  fi
  sleep 3
  echo "$OUT"
}
# Made once here, its pages new (slow on these VMs): every tool then
# gets the same refill.
[ -n "${COLD:-}" ] || output made nl > /dev/null

# measure NAME FILE CMD...: starts CMD in background, its stdout written
# over FILE in place (no truncation), fires the generator, stops it.
measure() {
  local name=$1 file=$2; shift 2
  "$@" 1<>"$file" & local pid=$!
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
f=$(output ckp.txt nl)
r=$(measure coolkprobe-text "$f" "$COOLKPROBE" 't syscalls:sys_enter_getppid' 2> "$W/ckp.err")
read -r GENERATED GPID < "$W/gen.out"
cap=$(grep -c -- "-$GPID " "$f" || true)
lost=$(grep -o 'LOST [0-9]*' "$W/ckp.err" | awk '{print $2}' || true)
row coolkprobe-text "$GENERATED" "$cap" "${lost:-0}" "${r#* }"

# coolkprobe JSON
f=$(output ckp.json nl)
r=$(measure coolkprobe-json "$f" "$COOLKPROBE" 't syscalls:sys_enter_getppid' --json 2> "$W/ckp.err")
read -r GENERATED GPID < "$W/gen.out"
cap=$(grep -c "\"pid\":$GPID," "$f" || true)
lost=$(grep -o 'LOST [0-9]*' "$W/ckp.err" | awk '{print $2}' || true)
row coolkprobe-json "$GENERATED" "$cap" "${lost:-0}" "${r#* }"
rm -f "$W/ckp.txt" "$W/ckp.json"

# perf record (to stdout: pipe-mode data, which perf script reads back)
f=$(output perf.data zero)
r=$(measure perf-record "$f" perf record -q -e syscalls:sys_enter_getppid -a -o - 2> "$W/perf.err")
read -r GENERATED GPID < "$W/gen.out"
perf script --show-lost-events -i "$f" -F pid 2>/dev/null > "$W/perf.txt" || true
cap=$(awk -v p="$GPID" 'NF==1 && $1==p' "$W/perf.txt" | wc -l)
lost=$(awk '/PERF_RECORD_LOST/ {s+=$NF} END {print s+0}' "$W/perf.txt")
row perf-record "$GENERATED" "$cap" "$lost" "${r#* }"
rm -f "$W/perf.data" "$W/perf.txt"

# cat trace_pipe (the old tool's way), in its own instance
I=$T/instances/ckp_bench_$$
mkdir "$I"
echo 1 > "$I/events/syscalls/sys_enter_getppid/enable"
f=$(output pipe.txt nl)
r=$(STOPSIG=TERM measure cat-trace_pipe "$f" cat "$I/trace_pipe")
read -r GENERATED GPID < "$W/gen.out"
echo 0 > "$I/events/syscalls/sys_enter_getppid/enable"
cap=$(grep -c -- "-$GPID " "$f" || true)
lost=$(awk '/^overrun/ {s+=$2} END {print s+0}' "$I"/per_cpu/cpu*/stats)
rmdir "$I"
row cat-trace_pipe "$GENERATED" "$cap" "$lost" "${r#* }"
