#!/bin/bash
# Latency benchmark (not a test): what a latency histogram of a hot
# function costs the traced workload, side by side in one run.
#
#   bench/latency.sh host [SECS]   (as root) one thread calls getppid as
#       fast as it can for SECS seconds (default 5): untraced; under
#       coolkprobe's user-space pairing of the syscall's tracepoints
#       (`t syscalls:sys_enter_getppid` `t syscalls:sys_exit_getppid
#       lat=since(f0) hist(lat)`); and under bpftrace's
#       `@start[tid] = nsecs` / `hist(nsecs - @start[tid])` on the same
#       tracepoints. Calls per second, slowdown, the completed calls each
#       tool counted against the calls made, and the tool's CPU seconds.
#   bench/latency.sh vm [SERIES]   boots Debian SERIES (default 6.12) under
#       QEMU (tests/vm/run.sh) and times `dd bs=1` reads of /dev/zero
#       untraced; with the probes alone (`p vfs_read count()` and
#       `r vfs_read count()`, counted by hist triggers: the floor); under
#       `l vfs_read hist(lat)[comm]` paired in the kernel (a synthetic
#       event fed by hist triggers) and paired in user space (--latency
#       user); the completed calls counted against the reads.
# COOLKPROBE=path overrides the binary (default: target/release/coolkprobe).
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-host}
W=$(mktemp -d /tmp/ckp-latbench.XXXXXX)
trap '[ -n "${KEEP:-}" ] || rm -rf "$W"' EXIT
if [ -z "${COOLKPROBE:-}" ]; then
  cargo build -q --release
  COOLKPROBE=target/release/coolkprobe
fi

if [ "$mode" = host ]; then
  SECS=${2:-5}
  command -v bpftrace >/dev/null || { echo "bench/latency.sh: bpftrace is needed (apt-get install bpftrace)" >&2; exit 1; }
  gcc -O2 -o "$W/ckpgen" bench/getppid_gen.c
  TCK=$(getconf CLK_TCK)
  # run NAME CMD...: start CMD (unless NAME is untraced), wait for it to be
  # ready, run the generator, note CMD's CPU seconds, stop CMD.
  run() {
    local name=$1; shift
    local pid= cpu=-
    if [ $# -gt 0 ]; then
      "$@" >"$W/$name.out" 2>"$W/$name.err" & pid=$!
      sleep 2
    fi
    "$W/ckpgen" "$SECS" >"$W/gen.out"
    read -r calls _ <"$W/gen.out"
    if [ -n "$pid" ]; then
      sleep 1
      cpu=$(awk -v t="$TCK" '{ printf "%.2f", ($14 + $15) / t }' "/proc/$pid/stat")
      kill -INT "$pid"; wait "$pid" 2>/dev/null || true
    fi
    echo "$calls $cpu" >"$W/$name.calls"
  }
  run untraced
  run coolkprobe-user "$COOLKPROBE" --json 't syscalls:sys_enter_getppid' \
    't syscalls:sys_exit_getppid lat=since(f0) hist(lat)'
  run bpftrace bpftrace -e 'tracepoint:syscalls:sys_enter_getppid { @start[tid] = nsecs; }
    tracepoint:syscalls:sys_exit_getppid /@start[tid]/ {
      @ns = hist(nsecs - @start[tid]); delete(@start[tid]); }'
  read -r base _ <"$W/untraced.calls"
  printf '%-16s %10s %10s %9s %10s %6s %s\n' tool calls calls/s slowdown completed cpu_s note
  for t in untraced coolkprobe-user bpftrace; do
    read -r calls cpu <"$W/$t.calls"
    counted=-
    note=
    case $t in
      coolkprobe-user)
        counted=$(grep -o '"events":[0-9]*' "$W/$t.out" | head -1 | cut -d: -f2)
        note=$( (grep -o 'LOST [0-9]* events' "$W/$t.err" | head -1
          grep -o -e '[0-9]* ends without their start' -e '[0-9]* open starts were discarded' "$W/$t.err") |
          paste -sd ';' || true) ;;
      bpftrace)
        # `[lo, hi)   count |@@@|` lines of @ns
        counted=$(awk '/^@ns:/ { h = 1; next } /^$/ { h = 0 }
          h { for (i = 2; i <= NF; i++) if ($i ~ /^[0-9]+$/ && $(i - 1) ~ /[])]$/) { s += $i; break } }
          END { print s + 0 }' "$W/$t.out")
        note=$(grep -io 'lost [0-9]* events' "$W/$t.err" | head -1 || true) ;;
    esac
    awk -v n="$t" -v c="$calls" -v b="$base" -v s="$SECS" -v k="${counted:--}" -v cpu="$cpu" -v note="$note" 'BEGIN {
      printf "%-16s %10d %10.0f %8.1f%% %10s %6s %s\n", n, c, c / s, 100 * (1 - c / b), k, cpu, note }'
  done
  exit 0
fi

# --- vm ----------------------------------------------------------------------
series=${2:-6.12}
cat >"$W/90-latbench.sh" <<'SCEN'
# dd reads of 1 byte: each one a vfs_read. Prints seconds per run.
N=200000
t() { # label, then the command to time
  _l=$1; shift
  _s=$(cut -d' ' -f1 /proc/uptime)
  "$@"
  _e=$(cut -d' ' -f1 /proc/uptime)
  echo "BENCH $_l $N $(awk -v a=$_s -v b=$_e 'BEGIN{print b-a}')"
}
ready() { # PID PATH: wait until the run's last write is done
  _i=0
  while :; do
    for _d in $T/instances/coolkprobe_$1 $T/instances/coolkprobe_$1_*; do
      [ -d $_d ] || continue
      _g=${_d##*/}
      if [ $2 = kernel ]; then
        grep -q '^hist:' $_d/events/synthetic/${_g}_f0/trigger 2>/dev/null && return 0
      elif [ $2 = probes ]; then
        grep -q '^hist:' $_d/events/$_g/f1/trigger 2>/dev/null && return 0
      else
        grep -q 1 $_d/events/$_g/f0_entry/enable 2>/dev/null && return 0
      fi
    done
    _i=$((_i + 1)); [ $_i -gt 600 ] && fail "not ready"; sleep 0.05
  done
}
work() { dd if=/dev/zero of=/dev/null bs=1 count=$N 2>/dev/null; }
t untraced work
# The floor: the same kprobe and kretprobe, only counted by hist triggers.
if has HIST_TRIGGERS; then
  coolkprobe --agg kernel 'p vfs_read count()' 'r vfs_read count()' >/tmp/b.out 2>/tmp/b.err &
  P=$!
  ready $P probes
  t probes work
  kill -TERM $P; wait $P
fi
for how in kernel user; do
  has SYNTH_EVENTS || [ $how = user ] || continue
  coolkprobe --json --latency $how 'l vfs_read hist(lat)[comm]' >/tmp/b.out 2>/tmp/b.err &
  P=$!
  ready $P $how
  t $how work
  kill -TERM $P; wait $P
  # dd's row of the histogram: its completed calls.
  c=$(grep -o '"key":{"comm":"dd"},"count":[0-9]*' /tmp/b.out | grep -o '[0-9]*$')
  echo "COUNTED $how ${c:-0} $(grep -o -e 'LOST [0-9]*' -e '[0-9]* starts had not ended' /tmp/b.err | head -1)"
done
SCEN
tests/vm/run.sh -k "$series" -b "$COOLKPROBE" -o "$W/vm" "$W/90-latbench.sh" >&2
base=$(awk '$1 == "BENCH" && $2 == "untraced" { print $4 }' "$W/vm/results.txt")
printf '%-10s %8s %10s %8s %9s %s\n' run reads reads/s us/read slowdown completed
awk -v b="$base" '
  $1 == "BENCH" { printf "%-10s %8d %10.0f %8.2f %8.1f%%", $2, $3, $3 / $4, 1e6 * $4 / $3, 100 * (1 - b / $4)
    if ($2 == "untraced" || $2 == "probes") print "" }
  $1 == "COUNTED" { $1 = ""; $2 = ""; sub(/^ +/, ""); printf " %s\n", $0 }' "$W/vm/results.txt"
