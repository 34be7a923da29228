#!/bin/bash
# Resolve, download (once) and unpack the newest Debian cloud kernel of a
# series, and print the directory holding it: boot/vmlinuz-*, and vmlinux
# (the ELF extracted from the bzImage, for disassembly) when asked with -x.
#
#   tests/vm/kernel.sh [-x] 6.1|6.12
#
# Cache: $COOLKPROBE_VM_CACHE, else ${XDG_CACHE_HOME:-$HOME/.cache}/coolkprobe-vm.
# Debs are kept in debs/, unpacked trees in <kernel release>/.
set -euo pipefail

extract=0
if [[ ${1:-} == -x ]]; then extract=1; shift; fi
series=${1:?usage: kernel.sh [-x] 6.1|6.12}
cache=${COOLKPROBE_VM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/coolkprobe-vm}
mkdir -p "$cache/debs"
# One download/unpack per series at a time (parallel test runs share the cache).
exec 9>"$cache/.lock-$series"
flock 9

case $series in
6.1) pattern='^linux-image-6\.1\.0-[0-9]+-cloud-amd64-unsigned$' ;;
6.12) pattern='^linux-image-6\.12\.[0-9]+\+deb[0-9]+-cloud-amd64-unsigned$' ;;
*) echo "kernel.sh: unknown series '$series' (6.1 or 6.12)" >&2; exit 2 ;;
esac

# The package name carries the ABI number, so the newest package is the
# newest name in version order (6.1.0-9 < 6.1.0-56, 6.12.9 < 6.12.117).
# (apt-cache pkgnames lists by prefix: much faster than apt-cache search.)
newest_name() { apt-cache pkgnames "linux-image-$series" 2>/dev/null | grep -E "$pattern" | sort -V | tail -n1; }
pkg=$(newest_name || true)
if [[ -z $pkg ]] && [[ $(id -u) == 0 ]]; then
    # A fresh machine may not have the package lists yet.
    apt-get update -qq >&2 || true
    pkg=$(newest_name || true)
fi

if [[ -n $pkg ]]; then
    # A package of that name (same kernel ABI) already downloaded is reused.
    deb=$(ls "$cache/debs/${pkg}_"*.deb 2>/dev/null | sort -V | tail -n1 || true)
    if [[ -z $deb ]]; then
        echo "kernel.sh: downloading $pkg" >&2
        tmp=$(mktemp -d "$cache/debs/dl.XXXXXX")
        (cd "$tmp" && apt-get download -q -o APT::Sandbox::User="$(id -un)" "$pkg" >&2) || { rm -rf "$tmp"; echo "kernel.sh: apt-get download $pkg failed" >&2; exit 1; }
        deb=$cache/debs/$(basename "$tmp"/*.deb)
        mv "$tmp"/*.deb "$deb"
        rmdir "$tmp"
    fi
else
    # No package index (offline?): fall back to the newest deb already cached.
    deb=$(ls "$cache"/debs/*.deb 2>/dev/null | grep -E "/${pattern:1:-1}_" | sort -V | tail -n1 || true)
    if [[ -z $deb ]]; then
        echo "kernel.sh: apt-cache knows no package matching $pattern and none is cached in $cache/debs" >&2
        exit 1
    fi
    echo "kernel.sh: apt-cache found nothing; using cached $deb" >&2
fi

# linux-image-6.1.0-56-cloud-amd64-unsigned -> 6.1.0-56-cloud-amd64
base=$(basename "$deb")
release=${base#linux-image-}
release=${release%%-unsigned_*}
dir=$cache/$release
if [[ ! -e $dir/.unpacked ]]; then
    rm -rf "$dir"
    mkdir -p "$dir"
    # Only boot/ is needed: the cloud kernels have everything the VM uses built in.
    dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$dir" ./boot
    touch "$dir/.unpacked"
fi
vmlinuz=$dir/boot/vmlinuz-$release
[[ -s $vmlinuz ]] || { echo "kernel.sh: no $vmlinuz in $deb" >&2; exit 1; }

if [[ $extract == 1 && ! -s $dir/vmlinux ]]; then
    # bzImage: protected-mode code starts at (setup_sects+1)*512; the
    # compressed payload lies at payload_offset (setup header 0x248) from
    # there, payload_length (0x24c) bytes long.
    le32() { od -An -tu4 -j "$2" -N4 "$1" | tr -d ' '; }
    setup_sects=$(od -An -tu1 -j $((0x1f1)) -N1 "$vmlinuz" | tr -d ' ')
    ((setup_sects == 0)) && setup_sects=4
    off=$(( (setup_sects + 1) * 512 + $(le32 "$vmlinuz" $((0x248))) ))
    len=$(le32 "$vmlinuz" $((0x24c)))
    magic=$(od -An -tx1 -j "$off" -N4 "$vmlinuz" | tr -d ' ')
    case $magic in
    28b52ffd) dec=(zstd -dcq) ;;
    02214c18) dec=(lz4 -dcq) ;;
    1f8b*) dec=(gzip -dc) ;;
    fd377a58) dec=(xz -dcq) ;;
    *) echo "kernel.sh: unknown bzImage payload magic $magic" >&2; exit 1 ;;
    esac
    command -v "${dec[0]}" >/dev/null || { echo "kernel.sh: ${dec[0]} is needed to extract $vmlinuz; install it" >&2; exit 1; }
    tail -c +$((off + 1)) "$vmlinuz" | head -c "$len" | "${dec[@]}" >"$dir/vmlinux.tmp" 2>/dev/null || true
    if [[ $(head -c4 "$dir/vmlinux.tmp" | od -An -tx1 | tr -d ' ') != 7f454c46 ]]; then
        echo "kernel.sh: extracting vmlinux from $vmlinuz failed (${dec[*]})" >&2
        exit 1
    fi
    mv "$dir/vmlinux.tmp" "$dir/vmlinux"
fi
echo "$dir"
