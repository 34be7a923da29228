#!/bin/bash
# Print the kernel-specific facts the scenarios need, as a shell fragment
# that becomes the VM's /etc/vm.conf (the host checks read it too).
#   tests/vm/vmconf.sh KERNEL_DIR SERIES
#
# KSERIES, KREL, KVERSION: which kernel this is (5.10, 6.1, 6.12; `uname -r`;
# the upstream version of its package, 6.1.192).
# CONFIG_*: the kernel's build options that scenarios branch on, from its
# boot/config-*: y, m, or n when unset. A scenario needing a feature asserts
# the kernel's refusal (or coolkprobe's user-space path) where it is n.
# KRETPROBE_ARGN: y when return probes can fetch $argN (Linux 6.10 on).
# Scenario 14 checks each of these facts against the running kernel.
# FDINST_OFF, FDINST_REG: an instruction inside fd_install(fd, file) right
# after it copied fd from %di into a callee-saved register; there that
# register holds the fd that the open call is about to return. Found by
# disassembling the function (exported, called from another file, so never
# inlined into open): its address comes from the export table (__ksymtab
# entries are PREL32: value and name are offsets from the entry's own
# fields), as the vmlinux inside a bzImage has no symbol table.
set -euo pipefail
kdir=$1
series=${2:?usage: vmconf.sh KERNEL_DIR SERIES}
v=$kdir/vmlinux
release=$(ls "$kdir"/boot/vmlinuz-* | sed 's|.*/vmlinuz-||')
echo "KSERIES='$series'"
echo "KREL='$release'"
# The directory is <package>_<version> (kernel.sh): 6.1.192-3 -> 6.1.192.
version=${kdir##*_}
version=${version%%-*}
echo "KVERSION='$version'"
for o in KPROBE_EVENTS UPROBE_EVENTS DYNAMIC_EVENTS HIST_TRIGGERS SYNTH_EVENTS FPROBE_EVENTS \
    PROBE_EVENTS_BTF_ARGS EPROBE_EVENTS USER_EVENTS KPROBE_EVENTS_ON_NOTRACE DEBUG_INFO_BTF \
    DEBUG_INFO_BTF_MODULES; do
    val=$(sed -n "s/^CONFIG_$o=//p" "$kdir/boot/config-$release")
    echo "CONFIG_$o=${val:-n}"
done
IFS=. read -r major minor _ <<<"$version"
echo "KRETPROBE_ARGN=$( ((major > 6 || (major == 6 && minor >= 10))) && echo y || echo n)"

section() { readelf -SW "$v" | awk -v s="$1" '{ sub(/^ *\[ *[0-9]+\] */, "") } $1 == s { print $3, $4, $5 }'; }
slice() { dd if="$v" bs=1M iflag=skip_bytes,count_bytes skip=$((0x$1)) count=$((0x$2)) status=none; }

# exported_addr NAME: hex address of an exported function.
exported_addr() {
    local saddr soff ssize kaddr koff ksize poss hit s
    read -r saddr soff ssize < <(section __ksymtab_strings)
    # The linker merges strings by suffix, so the name may sit at the tail
    # of a longer one: any occurrence of "NAME\0" is a candidate.
    poss=$(slice "$soff" "$ssize" | grep -obaP "$1\x00" | cut -d: -f1 | tr '\n' ' ' || true)
    for s in __ksymtab __ksymtab_gpl; do
        read -r kaddr koff ksize < <(section $s)
        hit=$(slice "$koff" "$ksize" | od -An -v -td4 -w12 |
            awk -v d=$((0x$saddr - 0x$kaddr)) -v poss="$poss" '
                BEGIN { n = split(poss, p, " "); for (i = 1; i <= n; i++) want[p[i] + d] = 1 }
                { o = (NR - 1) * 12; if (!found && (o + 4 + $2) in want) { print o + $1; found = 1 } }')
        [[ -n $hit ]] && { printf '%x\n' $((0x$kaddr + hit)); return 0; }
    done
    echo "vmconf.sh: $1 not found in the export table of $v" >&2
    return 1
}

a=$(exported_addr fd_install)
dis=$(objdump -d --no-show-raw-insn --start-address=0x$a --stop-address=$(printf '0x%x' $((0x$a + 96))) "$v")
read -r off reg < <(awk '
    /^ *ffffffff[0-9a-f]+:\t/ {
        addr = $1; sub(":", "", addr)
        if (want != "") { print addr, want; exit }
        if ($2 == "mov" && $3 ~ /^%[er]di,%([er]b[xp]|r1[2-5]d?)$/) {
            want = $3; sub(/.*,%/, "", want); sub(/^[er]/, "", want); sub(/d$/, "", want)
            if (want ~ /^1/) want = "r" want
        }
    }' <<<"$dis")
if [[ -z ${off:-} ]]; then
    echo "vmconf.sh: no 'mov %edi,<callee-saved register>' in fd_install of $v:" >&2
    echo "$dis" >&2
    exit 1
fi
echo "FDINST_OFF=$((0x$off - 0x$a))"
echo "FDINST_REG=$reg"
