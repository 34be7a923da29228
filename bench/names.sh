#!/bin/bash
# What keeping task names current costs (not a test): a workload that
# starts N short-lived processes (fork + exec, two getppid calls each)
# while `t syscalls:sys_enter_getppid` is recorded, with and without the
# task events (sched_process_fork, task_rename) that name processes in
# stream order. Per variant: the workload's wall time, the recorder's CPU
# seconds, and how many of the workload's events were named.
#   bench/names.sh [N]        (as root; default 3000)
set -euo pipefail
N=${1:-3000}
cd "$(dirname "$0")/.."
W=$(mktemp -d /tmp/ckp-names.XXXXXX)
trap 'rm -rf "$W"' EXIT
cat > "$W/spawner.c" <<'C'
#include <stdlib.h>
#include <unistd.h>
#include <sys/wait.h>
int main(int argc, char **argv) {
    int n = atoi(argv[1]);
    for (int i = 0; i < n; i++) {
        pid_t k = fork();
        if (k == 0) { execl(argv[2], argv[2], "2", (char *)0); _exit(127); }
        waitpid(k, NULL, 0);
    }
    return 0;
}
C
gcc -O2 -o "$W/spawner" "$W/spawner.c"
gcc -O2 -o "$W/shortlived" -x c - <<'C'
#include <stdlib.h>
#include <unistd.h>
#include <sys/syscall.h>
int main(int argc, char **argv) { long n = atol(argv[1]); for (long i = 0; i < n; i++) syscall(SYS_getppid); return 0; }
C
cargo build -q --release --example tracepoint
TP=target/release/examples/tracepoint
TCK=$(getconf CLK_TCK)
cpu_of() { awk -v t="$TCK" '{ printf "%.3f", ($14 + $15) / t }' "/proc/$1/stat"; }
wall() { local t0; t0=$(date +%s%N); "$@"; echo $(( ($(date +%s%N) - t0) / 1000000 )); }

printf '%-16s %10s %10s %12s\n' variant wall_ms cpu_s named
w=$(wall "$W/spawner" "$N" "$W/shortlived")
printf '%-16s %10s %10s %12s\n' no-recorder "$w" - -
for v in names no-names; do
  flag=; [ $v = no-names ] && flag=--no-names
  "$TP" $flag -o "$W/out" 't syscalls:sys_enter_getppid' 2>/dev/null & pid=$!
  sleep 1
  w=$(wall "$W/spawner" "$N" "$W/shortlived")
  sleep 0.5
  cpu=$(cpu_of $pid)
  kill -INT $pid; wait $pid || true
  named=$(grep -c '^ *shortlived-' "$W/out" || true)
  printf '%-16s %10s %10s %7s/%d\n' "$v" "$w" "$cpu" "$named" $((2 * N))
done
