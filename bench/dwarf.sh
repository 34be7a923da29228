#!/usr/bin/env bash
# DWARF resolve speed on a debuginfo vmlinux (Debian 6.1.0-56 cloud, the
# kernel of btf-fixtures/): the same two fetchargs resolved
#   - from DWARF, cold: no index cache (the one-pass name index is built),
#   - from DWARF, cached: the index read back from the build-id cache,
#   - from the same file's BTF (reference),
#   - by `perf probe -k VMLINUX -D` (elfutils over the same DWARF),
# side by side in one hyperfine run. Not a test: timings are noisy.
#
#   bench/dwarf.sh [VMLINUX]   (default: the test suite's cached download)
set -euo pipefail
cd "$(dirname "$0")/.."
cache=${XDG_CACHE_HOME:-$HOME/.cache}/coolkprobe
vmlinux=${1:-$cache/kernels/vmlinux-6.1.0-56-cloud-amd64}
if [ ! -f "$vmlinux" ]; then
  echo "no $vmlinux: run 'cargo test --test dwarf_kernel' once (it downloads it), or pass a path" >&2
  exit 1
fi
for t in hyperfine perf; do
  command -v $t >/dev/null || { echo "needs $t (apt-get install hyperfine linux-perf)" >&2; exit 1; }
done
cargo build --release -q --example dwarf_resolve
bin=target/release/examples/dwarf_resolve
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
func=wake_up_new_task
args=('p->comm' 'p->mm->mm_users')
q() { printf "'%s' " "$@"; }
cold="env XDG_CACHE_HOME=$tmp/cold $bin $vmlinux $func $(q "${args[@]}")"
cached="env XDG_CACHE_HOME=$tmp/warm $bin $vmlinux $func $(q "${args[@]}")"
btf="$bin --btf $vmlinux $func $(q "${args[@]}")"
perfp="perf probe -k $vmlinux -D '$func ${args[*]}'"
# Every command must work (and agree) before it is timed.
for c in "$cold" "$cached" "$btf" "$perfp"; do echo "\$ $c"; bash -c "$c"; done
hyperfine -N --warmup 2 --min-runs 10 --export-markdown "$tmp/dwarf.md" \
  --command-name "coolkprobe DWARF, cold (no cache)" --prepare "rm -rf $tmp/cold" "$cold" \
  --command-name "coolkprobe DWARF, cached index" --prepare "true" "$cached" \
  --command-name "coolkprobe BTF of the same file" --prepare "true" "$btf" \
  --command-name "perf probe -D" --prepare "true" "$perfp"
cat "$tmp/dwarf.md"
