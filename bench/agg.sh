#!/bin/bash
# Aggregation benchmark (not a test): what counting a tracepoint by comm
# costs the traced workload, side by side in one run.
#
#   bench/agg.sh host [SECS]   (as root) one thread calls getppid as fast as
#       it can for SECS seconds (default 5): untraced, under coolkprobe's
#       user-space path (`t syscalls:sys_enter_getppid count()[comm]`), and
#       under `bpftrace -e 'tracepoint:syscalls:sys_enter_getppid
#       { @[comm] = count(); }'`; calls per second, slowdown, and the count
#       each tool reports for the generator's comm against the calls made.
#   bench/agg.sh vm [SERIES]   boots Debian SERIES (default 6.12) under QEMU
#       (tests/vm/run.sh) and times `dd bs=1` reads of /dev/zero untraced,
#       counted in the kernel (`p vfs_read count()[comm]`, a hist trigger),
#       counted in user space (--agg user) and streamed as text to a file.
# COOLKPROBE=path overrides the binary (default: target/release/coolkprobe).
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-host}
W=$(mktemp -d /tmp/ckp-aggbench.XXXXXX)
trap 'rm -rf "$W"' EXIT
if [ -z "${COOLKPROBE:-}" ]; then
  cargo build -q --release
  COOLKPROBE=target/release/coolkprobe
fi

if [ "$mode" = host ]; then
  SECS=${2:-5}
  command -v bpftrace >/dev/null || { echo "bench/agg.sh: bpftrace is needed (apt-get install bpftrace)" >&2; exit 1; }
  gcc -O2 -o "$W/ckpgen" bench/getppid_gen.c
  # run NAME CMD...: start CMD (unless NAME is untraced), wait for it to be
  # ready, run the generator, stop CMD; prints "NAME calls".
  run() {
    local name=$1; shift
    local pid=
    if [ $# -gt 0 ]; then
      "$@" >"$W/$name.out" 2>"$W/$name.err" & pid=$!
      sleep 2
    fi
    "$W/ckpgen" "$SECS" >"$W/gen.out"
    read -r calls _ <"$W/gen.out"
    if [ -n "$pid" ]; then
      sleep 1
      kill -INT "$pid"; wait "$pid" 2>/dev/null || true
    fi
    echo "$calls" >"$W/$name.calls"
  }
  run untraced
  run coolkprobe-user "$COOLKPROBE" 't syscalls:sys_enter_getppid count()[comm]'
  run bpftrace bpftrace -e 'tracepoint:syscalls:sys_enter_getppid { @[comm] = count(); }'
  base=$(cat "$W/untraced.calls")
  printf '%-18s %12s %10s %9s %12s %s\n' tool calls calls/s slowdown counted note
  for t in untraced coolkprobe-user bpftrace; do
    calls=$(cat "$W/$t.calls")
    counted=-
    note=
    case $t in
      coolkprobe-user)
        counted=$(awk '$1 == "ckpgen" { print $2 }' "$W/$t.out")
        note=$(grep -o 'LOST [0-9]*' "$W/$t.err" | head -1 || true) ;;
      bpftrace)
        counted=$(grep -o '@\[ckpgen\]: [0-9]*' "$W/$t.out" | awk '{print $2}') ;;
    esac
    awk -v n="$t" -v c="$calls" -v b="$base" -v s="$SECS" -v k="${counted:--}" -v note="$note" 'BEGIN {
      printf "%-18s %12d %10.0f %8.1f%% %12s %s\n", n, c, c / s, 100 * (1 - c / b), k, note }'
  done
  exit 0
fi

# --- vm ----------------------------------------------------------------------
series=${2:-6.12}
cat >"$W/90-aggbench.sh" <<'SCEN'
# dd reads of 1 byte: each one a vfs_read. Prints seconds per run.
N=200000
t() { # label, then the command to time
  _l=$1; shift
  _s=$(cut -d' ' -f1 /proc/uptime)
  "$@"
  _e=$(cut -d' ' -f1 /proc/uptime)
  echo "BENCH $_l $N $(awk -v a=$_s -v b=$_e 'BEGIN{print b-a}')"
}
ready() { # wait for the run's trigger or enabled event
  _i=0
  while ! cat $T/instances/coolkprobe_$1/events/coolkprobe_$1/f0/trigger \
      $T/instances/coolkprobe_$1/events/coolkprobe_$1/f0/enable 2>/dev/null | grep -q -e '^hist:' -e '^1'; do
    _i=$((_i + 1)); [ $_i -gt 600 ] && fail "not ready"; sleep 0.05
  done
}
work() { dd if=/dev/zero of=/dev/null bs=1 count=$N 2>/dev/null; }
t untraced work
for how in kernel user stream; do
  case $how in
    kernel) coolkprobe --agg kernel 'p vfs_read count()[comm]' >/tmp/b.out 2>/tmp/b.err & ;;
    user) coolkprobe --agg user 'p vfs_read count()[comm]' >/tmp/b.out 2>/tmp/b.err & ;;
    stream) coolkprobe 'p vfs_read' -o /tmp/b.out 2>/tmp/b.err & ;;
  esac
  P=$!
  ready $P
  t $how work
  kill -TERM $P; wait $P
  if [ $how = stream ]; then c=$(grep -c ' dd-' /tmp/b.out); else c=$(awk '$1 == "dd" {print $2}' /tmp/b.out); fi
  echo "COUNTED $how ${c:-0} $(grep -o 'LOST [0-9]*' /tmp/b.err | head -1)"
done
SCEN
tests/vm/run.sh -k "$series" -b "$COOLKPROBE" -o "$W/vm" "$W/90-aggbench.sh" >&2
base=$(awk '$1 == "BENCH" && $2 == "untraced" { print $4 }' "$W/vm/results.txt")
printf '%-10s %8s %10s %9s %s\n' run reads reads/s slowdown counted
awk -v b="$base" '
  $1 == "BENCH" { printf "%-10s %8d %10.0f %8.1f%%", $2, $3, $3 / $4, 100 * (1 - b / $4); if ($2 == "untraced") print ""; else { pending = $2 } }
  $1 == "COUNTED" { printf " %s %s %s\n", $3, $4, $5 }' "$W/vm/results.txt"
