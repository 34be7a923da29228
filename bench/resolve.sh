#!/usr/bin/env bash
# Resolve speed: a whole `coolkprobe -S` run with the task_struct/mm
# expression examples of the README, side by side in one hyperfine run with the BTF
# tools people use for the same question. Not a test: timings are noisy.
#
#   bench/resolve.sh [BTF]      (default: the running kernel's BTF)
set -euo pipefail
cd "$(dirname "$0")/.."
btf=${1:-/sys/kernel/btf/vmlinux}
command -v hyperfine >/dev/null || { echo "needs hyperfine (apt-get install hyperfine)" >&2; exit 1; }
cargo build --release -q
bin=target/release/coolkprobe
probes=(
  'p wake_up_new_task comm=%0~(struct task_struct)->comm'
  'p wake_up_new_task users=%0S~(struct task_struct)->mm->mm_users'
  'p wake_up_new_task pgd=%0~(struct task_struct)->mm->pgd'
)
q() { printf "'%s' " "$@"; }
cmds=("$bin -S -v $btf $(q "${probes[@]}")"
      "pahole -F btf -C task_struct $btf")
command -v bpftool >/dev/null && cmds+=("bpftool btf dump file $btf format c")
# Every command must work before it is timed.
for c in "${cmds[@]}"; do bash -c "$c" >/dev/null; done
hyperfine -N --warmup 5 --min-runs 30 --export-markdown bench/resolve.md "${cmds[@]}"
