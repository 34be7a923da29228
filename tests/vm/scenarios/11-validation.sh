# Issue: validation before anything is installed. Each probe below is
# wrong for this kernel; coolkprobe must say why, exit 2, and leave nothing
# in kprobe_events. The examples are found in this kernel's own kallsyms
# and kprobe blacklist at run time. `-d 5`: should a probe get through
# anyway, the run still ends (and the host sees its exit code 0).

# refused NAME PROBE: run coolkprobe live on one probe; report its exit
# code, what it left in tracefs, its stdout and stderr.
refused() {
    coolkprobe -d 5 "$2" >/tmp/$1.out 2>/tmp/$1.err
    kv $1.rc $?
    kv $1.left "$(grep -c 'coolkprobe_' $T/kprobe_events)"
    kv $1.left_instances "$(ls -d $T/instances/coolkprobe_* 2>/dev/null | wc -l)"
    dump $1.out /tmp/$1.out
    dump $1.err /tmp/$1.err
}

# Text symbols only, as coolkprobe reads them.
awk '$2 ~ /^[tTwW]$/' /proc/kallsyms >/tmp/text-syms

# 1. No such function.
refused missing 'p no_such_function_ckp'

# 2. A function that exists only as a compiler copy (`NAME.isra.0`, no
# plain NAME): the copies are the choices.
BASE=$(awk '{ n[$3] = 1 } END {
        for (s in n) if (s ~ /\.isra\.0$/ && s !~ /^__pfx_/) {
            b = s; sub(/\.isra\.0$/, "", b)
            if (!(b in n) && b ~ /^[A-Za-z_][A-Za-z0-9_]*$/) { print b; exit }
        }
    }' /tmp/text-syms)
kv isra_base "$BASE"
[ -n "$BASE" ] || fail "no .isra.0-only function in /proc/kallsyms"
kv isra_copies "$(awk -v b="$BASE" 'index($3, b ".") == 1 && $3 !~ /\.cold$/ { print $3 }' /tmp/text-syms | sort -u | tr '\n' ' ')"
refused copies "p $BASE"

# 3. An offset past the end of vfs_read: its size is the distance to the
# next text symbol at a higher address (kallsyms is sorted by address;
# vmlinux text shares its upper 32 bits, so the low 8 hex digits suffice).
set -- $(awk 'f && $1 != a { print a, $1; exit } $3 == "vfs_read" { f = 1; a = $1 }' /tmp/text-syms)
[ $# = 2 ] || fail "vfs_read not found in /proc/kallsyms"
SIZE=$(( 0x$(echo $2 | cut -c9-16) - 0x$(echo $1 | cut -c9-16) ))
kv vfs_read_size $SIZE
refused offset "p vfs_read+$(printf '0x%x' $SIZE)"

# 4. A function on the kprobe blacklist (debugfs; /init mounts it): the
# first entry that names exactly one function of vmlinux.
BL=/sys/kernel/debug/kprobes/blacklist
[ -e $BL ] || mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
[ -r $BL ] || fail "no $BL"
BLACK=$(awk 'NR == FNR { n[$3]++; next }
    NF == 2 && n[$2] == 1 && $2 ~ /^[A-Za-z_][A-Za-z0-9_.]*$/ && $2 !~ /^__pfx_/ { print $2; exit }' \
    /tmp/text-syms $BL)
kv blacklisted "$BLACK"
[ -n "$BLACK" ] || fail "no usable name in $BL"
refused blacklist "p $BLACK"

# 5. A name several static functions share.
set -- $(awk '$3 ~ /^[A-Za-z_][A-Za-z0-9_]*$/ && $3 !~ /^__pfx_/ { n[$3]++ } END { for (s in n) if (n[s] > 1) { print s, n[s]; exit } }' /tmp/text-syms)
[ $# = 2 ] || fail "no duplicated function name in /proc/kallsyms"
kv dup_name "$1"
kv dup_count "$2"
refused ambiguous "p $1"

dump kprobe_events $T/kprobe_events

# 6. A boot-time function (`__init`, between _sinittext and _einittext):
# kallsyms still lists it, but its memory is freed and kprobes refuse it.
# Addresses are fixed-width hex: compared as strings.
SINIT=$(awk '$3 == "_sinittext" { print $1; exit }' /tmp/text-syms)
EINIT=$(awk '$3 == "_einittext" { print $1; exit }' /tmp/text-syms)
[ -n "$SINIT" ] && [ -n "$EINIT" ] || fail "no _sinittext/_einittext in /proc/kallsyms"
INIT=$(awk -v s="$SINIT" -v e="$EINIT" 'NF == 3 { n[$3]++; a[$3] = $1 }
    END { for (x in n) if (n[x] == 1 && x ~ /^[a-z][A-Za-z0-9_]*$/ && (a[x] "") > (s "") && (a[x] "") < (e "")) { print x; exit } }' \
    /tmp/text-syms)
kv init "$INIT"
[ -n "$INIT" ] || fail "no boot-time function found"
refused init "p $INIT"

# 7. A function ftrace cannot trace (in kallsyms outside .init.text, not in
# available_filter_functions, not blacklisted, one of its name): a warning
# before installing; then the kernel decides (Debian's refuse: they are
# built without CONFIG_KPROBE_EVENTS_ON_NOTRACE).
NOTRACE=$(awk -v s="$SINIT" -v e="$EINIT" 'FILENAME == ARGV[1] {
        if ($3 ~ /^[a-z][A-Za-z0-9_]*$/ && $3 !~ /_(start|end)$/ && NF == 3) { n[$3]++; a[$3] = $1 }
        next
    }
    FILENAME == ARGV[2] { bl[$2] = 1; next }
    { ft[$1] = 1 }
    END {
        for (x in n) if (n[x] == 1 && !(x in bl) && !(x in ft) && ((a[x] "") < (s "") || (a[x] "") >= (e ""))) { print x; exit }
    }' /tmp/text-syms $BL $T/available_filter_functions)
kv notrace "$NOTRACE"
[ -n "$NOTRACE" ] || fail "no notrace function found"
refused notrace "p $NOTRACE"
