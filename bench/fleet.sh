#!/usr/bin/env bash
# A fleet's cost (not a test; timings are noisy): the ten probes of
# bench/fleet-probes.txt against 50 kernels, side by side in one hyperfine
# run:
#   - `--check` over the 50 (every probe compiled for every kernel),
#   - one `-S` script for the 50,
#   - `-S` run once per kernel, 50 processes (what a fleet cost before),
#   - one `-S` script from 50 `.btf.xz` archives, decompressed (the cache
#     emptied before each run) and cached (the cache kept).
# The 50 kernels are copies of the four fixture kernels (Debian 6.1, 6.12
# x86_64 and arm64, 6.18), each file named after a release of its own.
#
# Then each once under /usr/bin/time: wall, CPU and peak RSS (bench/fleet-rss.md).
#
#   bench/fleet.sh [N]          (default 50 kernels; writes bench/fleet*.md)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-50}
command -v hyperfine >/dev/null || { echo "needs hyperfine (apt-get install hyperfine)" >&2; exit 1; }
command -v xz >/dev/null || { echo "needs xz (apt-get install xz-utils)" >&2; exit 1; }
cargo build --release -q
bin=$PWD/target/release/coolkprobe
probes=$PWD/bench/fleet-probes.txt
w=$(mktemp -d /tmp/ckp-fleet-bench.XXXXXX)
trap 'rm -rf "$w"' EXIT
mkdir -p "$w/btf" "$w/xz" "$w/cache"
fixtures=(btf-fixtures/vmlinux-*.btf)
for ((i = 0; i < n; i++)); do
  f=${fixtures[i % ${#fixtures[@]}]}
  rel=$(basename "$f" .btf)
  rel=${rel#vmlinux-}
  # 6.1.0-56-cloud-amd64 -> 6.1.0-56-cloud-amd64.f07: the arch stays in the name.
  name=vmlinux-$rel.f$(printf %02d "$i").btf
  cp "$f" "$w/btf/$name"
  xz -T1 -c "$f" >"$w/xz/$name.xz"
done
# Every command must work before it is timed.
"$bin" --check -v "$w/btf" -f "$probes" >/dev/null
"$bin" -S -v "$w/btf" -f "$probes" >/dev/null
echo "$n kernels, $(grep -c . "$probes") probes; $(du -sh "$w/btf" | cut -f1) of BTF, $(du -sh "$w/xz" | cut -f1) as .xz" >&2
export XDG_CACHE_HOME=$w/cache
hyperfine -N --warmup 2 --min-runs 10 --export-markdown bench/fleet.md \
  -n "check, $n kernels" "$bin --check -v $w/btf -f $probes" \
  -n "show, one script for $n kernels" "$bin -S -v $w/btf -f $probes" \
  -n "show once per kernel, $n runs" "bash -c 'for f in $w/btf/*.btf; do $bin -S -v \$f -f $probes >/dev/null; done'" \
  -n "show, $n .xz archives, cached" "$bin -S -v $w/xz -f $probes"
hyperfine -N --min-runs 3 --prepare "rm -rf $w/cache/coolkprobe" --export-markdown bench/fleet-xz-cold.md \
  -n "show, $n .xz archives, decompressed" "$bin -S -v $w/xz -f $probes"
{
  echo "| Command | Wall [s] | User [s] | Sys [s] | Peak RSS [KB] |"
  echo "|:---|---:|---:|---:|---:|"
  measure() {
    /usr/bin/time -f "| \`$1\` | %e | %U | %S | %M |" -o "$w/time" "${@:2}" >/dev/null
    cat "$w/time"
  }
  measure "check, $n kernels" "$bin" --check -v "$w/btf" -f "$probes"
  measure "show, one script for $n kernels" "$bin" -S -v "$w/btf" -f "$probes"
  # The peak of the 50 processes is the largest one's.
  measure "show once per kernel, $n runs" bash -c "for f in $w/btf/*.btf; do $bin -S -v \$f -f $probes >/dev/null; done"
  measure "show, $n .xz archives, cached" "$bin" -S -v "$w/xz" -f "$probes"
} >bench/fleet-rss.md
cat bench/fleet.md bench/fleet-xz-cold.md bench/fleet-rss.md
