#!/bin/bash
# Boot a Debian cloud kernel under QEMU with an initramfs holding busybox,
# coolkprobe and the given scenarios; run them and bring their output back.
#
#   tests/vm/run.sh -k 5.10|6.1|6.12 [-g] [-d DATADIR] -b PATH/TO/coolkprobe -o OUTDIR [SCENARIO.sh...]
#
# Default scenarios: every tests/vm/scenarios/*.sh (all of them are in the
# VM, for scenarios that run others; the named ones are run). Results land in
# OUTDIR/results.txt (the framed scenario output, see guest/init), the
# serial console in OUTDIR/console.log, the VM's /etc/vm.conf in
# OUTDIR/vm.conf. Exit status: 0 when the VM ran every scenario to the end
# (scenario verdicts are in results.txt), 1 otherwise.
#
# -g: a second disk holding the kernel's debuginfo vmlinux (the same
# build's -dbg package, see kernel.sh -g) with no .BTF section (renamed),
# as a kernel built without BTF has it; the VM mounts it at /debuginfo (see
# guest/init) and vm.conf says so (DEBUGINFO_*).
# -d: the files of DATADIR are in the VM's /data (made on the host for a
# scenario, such as scenario 18's fleet scripts).
# Environment: COOLKPROBE_VM_TIMEOUT (seconds, default 600), COOLKPROBE_VM_SMP
# (vCPUs, default 2), COOLKPROBE_VM_CACHE (kernel cache, see kernel.sh).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
series= bin= out= debuginfo=0 data=
while getopts k:gd:b:o: opt; do
    case $opt in
    k) series=$OPTARG ;;
    g) debuginfo=1 ;;
    d) data=$OPTARG ;;
    b) bin=$OPTARG ;;
    o) out=$OPTARG ;;
    *) exit 2 ;;
    esac
done
shift $((OPTIND - 1))
[[ -n $series && -n $bin && -n $out ]] || { echo "usage: run.sh -k 5.10|6.1|6.12 [-g] [-d DATADIR] -b COOLKPROBE -o OUTDIR [SCENARIO...]" >&2; exit 2; }
scenarios=("$@")
((${#scenarios[@]})) || scenarios=("$here"/scenarios/*.sh)

need() { command -v "$1" >/dev/null || { echo "run.sh: '$1' not found; install $2" >&2; exit 1; }; }
need qemu-system-x86_64 qemu-system-x86
need cpio cpio
need objdump binutils
need gzip gzip
if ((debuginfo)); then
    need mke2fs e2fsprogs
    need xz xz-utils
fi
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
kflags=(-x)
((debuginfo)) && kflags+=(-g)
kdir=$("$here/kernel.sh" "${kflags[@]}" "$series")
vmlinuz=$(ls "$kdir"/boot/vmlinuz-*)
release=${vmlinuz##*/vmlinuz-}

# --- initramfs ---------------------------------------------------------------
root=$(mktemp -d "$out/root.XXXXXX")
stage=
trap 'rm -rf "$root" $stage' EXIT
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
cp "$here"/scenarios/*.sh "$root/scenarios/"
if [[ -n $data ]]; then
    mkdir -p "$root/data"
    cp -r "$data"/. "$root/data/"
fi
for s in "${scenarios[@]}"; do
    cp "$s" "$root/scenarios/"
    basename "$s" .sh
done >"$root/etc/scenarios"
# Kernel-specific facts the scenarios need, computed here from the vmlinux.
"$here/vmconf.sh" "$kdir" "$series" >"$root/etc/vm.conf"

disk=()
if ((debuginfo)); then
    # The debuginfo vmlinux must be of exactly the booted build.
    build_id() { readelf -n "$1" | awk '/Build ID:/ { print $3; exit }'; }
    dbg=$kdir/dbg/vmlinux-$release
    id=$(build_id "$dbg")
    if [[ -z $id || $id != "$(build_id "$kdir/vmlinux")" ]]; then
        echo "run.sh: $dbg (build-id ${id:-none}) is not of the booted kernel (build-id $(build_id "$kdir/vmlinux"))" >&2
        exit 1
    fi
    # An ext4 image (ext4 is built into the kernel; virtio's modules are
    # loaded by /init), made once per build: hundreds of MB stay out of
    # the initramfs and are read only as far as the guest reads them.
    img=$kdir/dbg/nobtf.ext4
    if [[ ! -s $img ]]; then
        # (In a directory of its own: parallel runs may build it at once.)
        stage=$(mktemp -d "$kdir/dbg/stage.XXXXXX")
        mkdir "$stage/root"
        # Renamed, not removed: relocations name the __start_BTF symbol.
        objcopy --rename-section .BTF=.BTF.hidden "$dbg" "$stage/root/vmlinux-$release"
        kb=$(( $(stat -c %s "$stage/root/vmlinux-$release") / 1024 * 21 / 20 + 16384 ))
        mke2fs -q -F -t ext4 -O ^has_journal -L ckpdebug -d "$stage/root" "$stage/img" "${kb}k"
        mv "$stage/img" "$img"
        rm -rf "$stage"
        stage=
    fi
    disk=(-drive "file=$img,if=virtio,format=raw,readonly=on")
    {
        echo "DEBUGINFO_DEV=/dev/vda"
        echo "DEBUGINFO_FILE=vmlinux-$release"
        echo "DEBUGINFO_BUILD_ID=$id"
    } >>"$root/etc/vm.conf"
    # The virtio modules that disk needs and their dependencies (the
    # depends= of each module's .modinfo), in load order for /init.
    mkdir -p "$root/lib/modules"
    declare -A seen=()
    add_module() {
        local f d
        [[ -n ${seen[$1]:-} ]] && return 0
        seen[$1]=1
        f=$(find "$kdir/lib/modules" \( -name "$1.ko" -o -name "$1.ko.xz" \) | head -n1)
        [[ -n $f ]] || return 0 # built into this kernel
        case $f in
        *.xz) xz -dc "$f" >"$root/lib/modules/$1.ko" ;;
        *) cp "$f" "$root/lib/modules/$1.ko" ;;
        esac
        for d in $(tr '\0' '\n' <"$root/lib/modules/$1.ko" | sed -n 's/^depends=//p' | tr ',' ' '); do
            add_module "$d"
        done
        echo "$1" >>"$root/lib/modules/order"
    }
    add_module virtio_pci
    add_module virtio_blk
fi
cp "$root/etc/vm.conf" "$out/vm.conf"
initrd=$out/initrd.gz
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$initrd"

# --- boot --------------------------------------------------------------------
# Single-threaded TCG: with one host thread per vCPU, the kernel's live
# code patching (jump labels flipped when probes come and go) races the
# other vCPU's translated code and dies on a stray int3 (seen on 6.12 in
# ttwu_do_activate). One thread running both vCPUs in turn keeps 2 CPUs
# (per-CPU buffers, cross-CPU merging) without that race.
# no_timer_check: under a loaded host the emulated timer can tick late
# enough during boot that the kernel's IO-APIC timer check panics
# ("IO-APIC + timer doesn't work", seen on 5.10); the check only guards
# against broken real hardware.
: >"$out/results.txt"
echo "run.sh: booting $release with ${#scenarios[@]} scenario(s)" >&2
start=$(date +%s.%N)
set +e
timeout -k 5 "${COOLKPROBE_VM_TIMEOUT:-600}" qemu-system-x86_64 \
    -accel tcg,thread=single -cpu max -smp "${COOLKPROBE_VM_SMP:-2}" -m 512 \
    -display none -monitor none -no-reboot \
    -serial "file:$out/console.log" -serial "file:$out/results.txt" \
    -kernel "$vmlinuz" -initrd "$initrd" "${disk[@]}" \
    -append 'console=ttyS0 quiet panic=-1 no_timer_check' </dev/null
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
