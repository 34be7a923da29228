#!/usr/bin/env bash
# DWARF resolve speed on a debuginfo vmlinux (Debian's newest 6.1 cloud
# kernel's -dbg package, as the tests fetch it). Whole `coolkprobe -S` runs
# with the README's task_struct/mm examples:
#   - from DWARF, cold: no index cache (the one-pass name index is built),
#   - from DWARF, cached: the index read back from the build-id cache,
#   - from the same build's BTF (the vmlinux's own .BTF section, reference),
# and `perf probe -k VMLINUX -D` for the same two members (elfutils over
# the same DWARF), side by side in one hyperfine run. Not a test.
#
#   bench/dwarf.sh [VMLINUX]   (default: tests/vm/kernel.sh -g 6.1's, downloaded once)
#
# The -dbg vmlinux also carries a .BTF section, which coolkprobe would
# prefer; a copy with it renamed (objcopy) makes -v read the DWARF.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -ge 1 ]; then
  vmlinux=$1
else
  vmlinux=$(ls "$(tests/vm/kernel.sh -g 6.1)"/dbg/vmlinux-*)
fi
[ -f "$vmlinux" ] || { echo "no $vmlinux" >&2; exit 1; }
for t in hyperfine perf objcopy; do
  command -v $t >/dev/null || { echo "needs $t (apt-get install hyperfine linux-perf binutils)" >&2; exit 1; }
done
nobtf=$(dirname "$vmlinux")/$(basename "$vmlinux")-nobtf
if [ ! -f "$nobtf" ] || [ "$vmlinux" -nt "$nobtf" ]; then
  objcopy --rename-section .BTF=.BTF.hidden "$vmlinux" "$nobtf.part"
  mv "$nobtf.part" "$nobtf"
fi
btf=$vmlinux
cargo build --release -q
bin=target/release/coolkprobe
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
probes="'p wake_up_new_task comm=%0~(struct task_struct)->comm' 'p wake_up_new_task users=%0S~(struct task_struct)->mm->mm_users'"
cold="env XDG_CACHE_HOME=$tmp/cold $bin -S -v $nobtf $probes"
cached="env XDG_CACHE_HOME=$tmp/warm $bin -S -v $nobtf $probes"
frombtf="$bin -S -v $btf $probes"
perfp="perf probe -k $vmlinux -D 'wake_up_new_task p->comm p->mm->mm_users'"
# Every command must work (and agree) before it is timed.
for c in "$cold" "$cached" "$frombtf" "$perfp"; do
  echo "\$ $c"
  bash -c "$c" | grep -E "^(echo 'p|p:)"
done
hyperfine -N --warmup 2 --min-runs 10 --export-markdown "$tmp/dwarf.md" \
  --command-name "coolkprobe -S, DWARF, cold (no cache)" --prepare "rm -rf $tmp/cold" "$cold" \
  --command-name "coolkprobe -S, DWARF, cached index" --prepare "true" "$cached" \
  --command-name "coolkprobe -S, BTF of the same kernel" --prepare "true" "$frombtf" \
  --command-name "perf probe -k VMLINUX -D" --prepare "true" "$perfp"
cat "$tmp/dwarf.md"
