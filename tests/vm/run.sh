#!/bin/bash
# Boot a Debian cloud kernel under QEMU with an initramfs holding busybox,
# coolkprobe and the given scenarios; run them and bring their output back.
#
#   tests/vm/run.sh -k 6.1|6.12 -b PATH/TO/coolkprobe -o OUTDIR [SCENARIO.sh...]
#
# Default scenarios: every tests/vm/scenarios/*.sh. Results land in
# OUTDIR/results.txt (the framed scenario output, see guest/init) and the
# serial console in OUTDIR/console.log. Exit status: 0 when the VM ran every
# scenario to the end (scenario verdicts are in results.txt), 1 otherwise.
# Environment: COOLKPROBE_VM_TIMEOUT (seconds, default 600), COOLKPROBE_VM_SMP
# (vCPUs, default 2), COOLKPROBE_VM_CACHE (kernel cache, see kernel.sh).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
series= bin= out=
while getopts k:b:o: opt; do
    case $opt in
    k) series=$OPTARG ;;
    b) bin=$OPTARG ;;
    o) out=$OPTARG ;;
    *) exit 2 ;;
    esac
done
shift $((OPTIND - 1))
[[ -n $series && -n $bin && -n $out ]] || { echo "usage: run.sh -k 6.1|6.12 -b COOLKPROBE -o OUTDIR [SCENARIO...]" >&2; exit 2; }
scenarios=("$@")
((${#scenarios[@]})) || scenarios=("$here"/scenarios/*.sh)

need() { command -v "$1" >/dev/null || { echo "run.sh: '$1' not found; install $2" >&2; exit 1; }; }
need qemu-system-x86_64 qemu-system-x86
need cpio cpio
need objdump binutils
need gzip gzip
command -v apt-cache >/dev/null && command -v dpkg-deb >/dev/null || { echo "run.sh: apt-cache and dpkg-deb are needed to fetch the kernels (a Debian host)" >&2; exit 1; }
busybox=$(command -v busybox || true)
if [[ -z $busybox ]] || ldd "$busybox" >/dev/null 2>&1; then
    # A dynamically linked busybox would need its own libraries in the VM.
    [[ -x /bin/busybox ]] && ! ldd /bin/busybox >/dev/null 2>&1 && busybox=/bin/busybox ||
        { echo "run.sh: a static busybox is needed; install busybox-static" >&2; exit 1; }
fi
[[ -x $bin ]] || { echo "run.sh: no coolkprobe binary at $bin" >&2; exit 1; }

mkdir -p "$out"
out=$(cd "$out" && pwd)
kdir=$("$here/kernel.sh" -x "$series")
vmlinuz=$(ls "$kdir"/boot/vmlinuz-*)
release=${vmlinuz##*/vmlinuz-}

# --- initramfs ---------------------------------------------------------------
root=$(mktemp -d "$out/root.XXXXXX")
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,sbin,etc,lib,proc,sys,dev,tmp,scenarios}
cp "$busybox" "$root/bin/busybox"
cp "$here/guest/init" "$root/init"
cp "$here/guest/ckp.sh" "$root/lib/ckp.sh"
chmod +x "$root/init"
# The binary without its debug info (the VM unpacks every byte of it).
objcopy --strip-debug "$bin" "$root/bin/coolkprobe"
# Its shared libraries, and the loader, at the paths ldd names.
ldd "$bin" | grep -oE '/[^ ]+' | sort -u | while read -r lib; do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
done
for s in "${scenarios[@]}"; do cp "$s" "$root/scenarios/"; done
# Kernel-specific facts the scenarios need, computed here from the vmlinux.
"$here/vmconf.sh" "$kdir" >"$root/etc/vm.conf"
initrd=$out/initrd.gz
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$initrd"

# --- boot --------------------------------------------------------------------
: >"$out/results.txt"
echo "run.sh: booting $release with ${#scenarios[@]} scenario(s)" >&2
start=$(date +%s.%N)
set +e
timeout -k 5 "${COOLKPROBE_VM_TIMEOUT:-600}" qemu-system-x86_64 \
    -accel tcg -cpu max -smp "${COOLKPROBE_VM_SMP:-2}" -m 512 \
    -display none -monitor none -no-reboot \
    -serial "file:$out/console.log" -serial "file:$out/results.txt" \
    -kernel "$vmlinuz" -initrd "$initrd" \
    -append 'console=ttyS0 quiet panic=-1' </dev/null
qrc=$?
set -e
end=$(date +%s.%N)
tr -d '\r' <"$out/results.txt" >"$out/results.tmp" && mv "$out/results.tmp" "$out/results.txt"
echo "$release" >"$out/release"
awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f\n", b - a }' >"$out/seconds"
echo "run.sh: $release: qemu exit $qrc after $(cat "$out/seconds")s" >&2
if ! grep -q '^@@@ DONE' "$out/results.txt"; then
    ((qrc == 124)) && echo "run.sh: $release: timed out" >&2
    echo "run.sh: $release: the VM did not finish its scenarios; console log:" >&2
    cat "$out/console.log" >&2
    exit 1
fi
