#!/bin/bash
# Resolve, download (once) and unpack the newest Debian cloud kernel of a
# series, and print the directory holding it.
#
#   tests/vm/kernel.sh [-x] [-g] 5.10|6.1|6.12
#
# The directory, $cache/<package>_<version>/, holds boot/ (vmlinuz, config),
# the virtio modules of lib/modules/<release>/ (for a disk in the VM), and:
#   -x  vmlinux: the ELF extracted from the bzImage (for disassembly);
#   -g  dbg/vmlinux-<release> (DWARF, ~600 MB) and dbg/nf_conntrack.ko from
#       the -dbg package of the same build (~280 MB download; only those
#       two files are kept).
#
# 6.1 and 6.12 (Debian 12) come through the system's package lists; 5.10
# (Debian 11, bullseye) through package lists of its own under
# $cache/apt/bullseye/, from the Debian archive the system's apt sources
# name, so the system's apt state is never changed for it.
#
# Cache: $COOLKPROBE_VM_CACHE, else ${XDG_CACHE_HOME:-$HOME/.cache}/coolkprobe-vm.
# Debs of the images are kept in debs/.
set -euo pipefail

extract=0 dbg=0
while getopts xg opt; do
    case $opt in
    x) extract=1 ;;
    g) dbg=1 ;;
    *) exit 2 ;;
    esac
done
shift $((OPTIND - 1))
series=${1:?usage: kernel.sh [-x] [-g] 5.10|6.1|6.12}
cache=${COOLKPROBE_VM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/coolkprobe-vm}
mkdir -p "$cache/debs"
# One download/unpack per series at a time (parallel test runs share the cache).
exec 9>"$cache/.lock-$series"
flock 9

case $series in
5.10) pattern='^linux-image-5\.10\.0-[0-9]+-cloud-amd64-unsigned$' suite=bullseye ;;
6.1) pattern='^linux-image-6\.1\.0-[0-9]+-cloud-amd64-unsigned$' suite= ;;
6.12) pattern='^linux-image-6\.12\.[0-9]+\+deb[0-9]+-cloud-amd64-unsigned$' suite= ;;
*) echo "kernel.sh: unknown series '$series' (5.10, 6.1 or 6.12)" >&2; exit 2 ;;
esac

# apt options: none for the system's lists; for another suite, its own
# sources, lists and caches (Dir::*), with the system's apt.conf.d kept
# (proxies, validity checks) but not its update hooks (they would refresh
# system caches) nor the DEP-11 (AppStream) metadata.
apt=()
private_lists() {
    local d=$cache/apt/$suite main sec keyring=/usr/share/keyrings/debian-archive-keyring.gpg opt=
    mkdir -p "$d"/{lists/partial,cache/archives/partial,etc/sources.list.d,etc/preferences.d}
    cat >"$d/etc/apt.conf" <<'EOF'
#clear APT::Update::Post-Invoke-Success;
#clear APT::Update::Post-Invoke;
Acquire::IndexTargets::deb::DEP-11::DefaultEnabled "false";
Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled "false";
Acquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled "false";
Acquire::Languages "none";
EOF
    apt=(-c "$d/etc/apt.conf"
        -o "Dir::Etc::sourcelist=$d/etc/sources.list" -o "Dir::Etc::sourceparts=$d/etc/sources.list.d"
        -o "Dir::Etc::preferencesparts=$d/etc/preferences.d"
        -o "Dir::State::Lists=$d/lists" -o "Dir::Cache=$d/cache")
    # The Debian archive (and its security archive) the system's sources use.
    main=$(apt-get indextargets --format '$(REPO_URI)' 'Label: Debian' 2>/dev/null | head -n1 || true)
    sec=$(apt-get indextargets --format '$(REPO_URI)' 'Label: Debian-Security' 2>/dev/null | head -n1 || true)
    if [[ -z $main ]]; then
        echo "kernel.sh: the system's apt sources name no Debian archive (Label: Debian) to fetch $suite's kernels from" >&2
        exit 1
    fi
    [[ -r $keyring ]] && opt="[signed-by=$keyring] "
    {
        echo "deb ${opt}$main $suite main"
        [[ -n $sec ]] && echo "deb ${opt}$sec $suite-security main"
    } >"$d/etc/sources.list.new"
    if ! cmp -s "$d/etc/sources.list.new" "$d/etc/sources.list"; then
        mv "$d/etc/sources.list.new" "$d/etc/sources.list"
        rm -f "$d/updated"
    else
        rm "$d/etc/sources.list.new"
    fi
    # Refreshed once a day: new kernel uploads replace old ones in the archive.
    if [[ -z $(find "$d/updated" -mmin -1440 2>/dev/null) ]]; then
        echo "kernel.sh: refreshing the package lists of $suite" >&2
        if apt-get "${apt[@]}" -o APT::Sandbox::User="$(id -un)" update -qq >&2; then
            touch "$d/updated"
        else
            echo "kernel.sh: apt-get update of $suite failed; using the lists there are" >&2
        fi
    fi
}
[[ -n $suite ]] && private_lists

# The package name carries the ABI number, so the newest package is the
# newest name in version order (6.1.0-9 < 6.1.0-56, 6.12.9 < 6.12.117).
# (apt-cache pkgnames lists by prefix: much faster than apt-cache search.)
names() { apt-cache "${apt[@]}" pkgnames "linux-image-$series" 2>/dev/null | grep -E "$pattern" | sort -rV; }
# version PKG...: `PKG VERSION` lines, in the order given.
version() { apt-cache "${apt[@]}" show --no-all-versions "$@" 2>/dev/null | awk '/^Package:/ { p = $2 } /^Version:/ { print p, $2 }'; }
# download PKG VERSION DIR: the .deb into DIR (its path on stdout).
download() {
    local tmp f
    tmp=$(mktemp -d "$3/dl.XXXXXX")
    if ! (cd "$tmp" && apt-get "${apt[@]}" download -q -o APT::Sandbox::User="$(id -un)" "$1=$2" >&2); then
        rm -rf "$tmp"
        return 1
    fi
    f=$(ls "$tmp"/*.deb)
    mv "$f" "$3/"
    rmdir "$tmp"
    echo "$3/${f##*/}"
}

cands=$(names || true)
if [[ -z $cands && -z $suite && $(id -u) == 0 ]]; then
    # A fresh machine may not have the package lists yet.
    apt-get update -qq >&2 || true
    cands=$(names || true)
fi

deb= pkg= ver=
# The newest package whose file the mirror serves: an index can name an
# upload whose files a mirror does not have (yet); the one before is the
# newest usable kernel then (a miss is remembered for a day, not retried every run).
# (Each apt-cache call reads every package list: two calls, not one per name.)
while read -r p v; do
    d=$(ls "$cache/debs/${p}_${v}_"*.deb 2>/dev/null | head -n1 || true)
    if [[ -z $d ]]; then
        missing=$cache/debs/.missing-${p}_$v
        [[ -n $(find "$missing" -mmin -1440 2>/dev/null) ]] && continue
        echo "kernel.sh: downloading $p $v" >&2
        d=$(download "$p" "$v" "$cache/debs") || {
            echo "kernel.sh: $p $v could not be downloaded; trying the one before" >&2
            touch "$missing"
            continue
        }
    fi
    deb=$d pkg=$p ver=$v
    break
done < <([[ -n $cands ]] && version $(head -n8 <<<"$cands") | sort -rV -k1,1)
if [[ -z $deb ]]; then
    # No package index, or nothing downloadable (offline?): the newest deb already cached.
    deb=$(ls "$cache"/debs/*.deb 2>/dev/null | grep -E "/${pattern:1:-1}_" | sort -V | tail -n1 || true)
    if [[ -z $deb ]]; then
        echo "kernel.sh: no package matching $pattern could be resolved and downloaded, and none is cached in $cache/debs" >&2
        exit 1
    fi
    echo "kernel.sh: using cached $deb" >&2
    pkg=$(basename "$deb")
    ver=${pkg#*_}
    ver=${ver%_*}
    pkg=${pkg%%_*}
fi

# linux-image-6.1.0-56-cloud-amd64-unsigned -> 6.1.0-56-cloud-amd64
release=${pkg#linux-image-}
release=${release%-unsigned}
dir=$cache/${pkg}_$ver
if [[ ! -e $dir/.unpacked ]]; then
    rm -rf "$dir"
    mkdir -p "$dir"
    # boot/, and the modules a virtio disk needs (the cloud kernels have
    # everything else the VM uses built in).
    dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$dir" --wildcards ./boot \
        "./lib/modules/$release/kernel/drivers/virtio/virtio*.ko*" \
        "./lib/modules/$release/kernel/drivers/block/virtio_blk.ko*"
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

if [[ $dbg == 1 && ! -e $dir/dbg/.unpacked ]]; then
    # The debuginfo of exactly this build: same source version.
    dpkg_name=${pkg%-unsigned}-dbg
    dv=$(version "$dpkg_name" | awk '{ print $2 }')
    if [[ $dv != "$ver" ]]; then
        echo "kernel.sh: $dpkg_name is at version '${dv:-none}' in the package lists, not $ver (the image's): no debuginfo of this build" >&2
        exit 1
    fi
    rm -rf "$dir/dbg"
    mkdir -p "$dir/dbg"
    echo "kernel.sh: downloading $dpkg_name $ver (~280 MB; only vmlinux and nf_conntrack.ko are kept)" >&2
    ddeb=$(download "$dpkg_name" "$ver" "$dir/dbg") || { echo "kernel.sh: apt-get download $dpkg_name=$ver failed" >&2; exit 1; }
    dpkg-deb --fsys-tarfile "$ddeb" | tar -x -C "$dir/dbg" --wildcards \
        "./usr/lib/debug/boot/vmlinux-$release" '*/nf_conntrack.ko'
    rm -f "$ddeb"
    mv "$dir/dbg/usr/lib/debug/boot/vmlinux-$release" "$dir/dbg/"
    find "$dir/dbg/usr" -name nf_conntrack.ko -exec mv {} "$dir/dbg/" \;
    rm -rf "$dir/dbg/usr"
    [[ -s $dir/dbg/vmlinux-$release && -s $dir/dbg/nf_conntrack.ko ]] ||
        { echo "kernel.sh: vmlinux-$release or nf_conntrack.ko missing from $dpkg_name" >&2; exit 1; }
    touch "$dir/dbg/.unpacked"
fi
echo "$dir"
