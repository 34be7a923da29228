# Aggregations in the kernel (hist triggers) and the same in user space:
# busybox dd reads 1, 100 and 5000 bytes a known number of times each; a
# count by kernel stack; a filter; a table too small for its keys. A
# kernel without hist triggers (5.10) takes the user-space path by itself
# and refuses --agg kernel.
agg_start() { # NAME ARGS...: start coolkprobe, wait for its triggers or events
    _name=$1
    shift
    coolkprobe "$@" >/tmp/$_name.out 2>/tmp/$_name.err &
    CKP_PID=$!
    _i=0
    while ! cat $T/instances/coolkprobe_${CKP_PID}_*/events/coolkprobe_${CKP_PID}_*/f*/trigger \
        $T/instances/coolkprobe_${CKP_PID}_*/events/coolkprobe_${CKP_PID}_*/f*/enable 2>/dev/null |
        grep -q -e '^hist:' -e '^1'; do
        kill -0 $CKP_PID 2>/dev/null || { dump $_name.err /tmp/$_name.err; fail "coolkprobe $* exited early"; }
        _i=$((_i + 1))
        [ $_i -gt 600 ] && fail "coolkprobe $* not ready after 30s"
        sleep 0.05
    done
    # Every probe's triggers are written before the last one's; be sure.
    sleep 0.2
}
workload() {
    dd if=/dev/zero of=/dev/null bs=1 count=10 2>/dev/null
    dd if=/dev/zero of=/dev/null bs=100 count=20 2>/dev/null
    dd if=/dev/zero of=/dev/null bs=5000 count=30 2>/dev/null
    dd if=/dev/zero of=/dev/null bs=4242 count=7 2>/dev/null
}
if has HIST_TRIGGERS; then
    paths="kernel user"
else
    paths=user
    coolkprobe --agg kernel 'p vfs_read n=count hist(n)' >/tmp/forced.out 2>/tmp/forced.err
    kv forced.rc $?
    dump forced.err /tmp/forced.err
fi
for path in $paths; do
    # On a kernel without hist triggers `auto` must choose user space.
    how=$path
    has HIST_TRIGGERS || how=auto
    agg_start agg_$path --json --agg $how \
        'p vfs_read n=count hist(n)[comm]' \
        'p vfs_read n=count count()[stack] f:n==4242' \
        'p vfs_read n=count sum(n)[comm] f:n>=100' \
        'p vfs_read n=count lhist(n,1000)[comm]'
    cat $T/instances/coolkprobe_${CKP_PID}_*/events/coolkprobe_${CKP_PID}_*/f0/enable >/tmp/enable_$path.txt
    workload
    ckp_stop agg_$path
done
for path in $paths; do dump f0_enable_$path /tmp/enable_$path.txt; done
# -S shows the triggers and how to read them.
coolkprobe -S 'p vfs_read n=count hist(n)[comm] f:n>0' >/tmp/show.txt 2>&1
kv show.rc $?
dump show /tmp/show.txt
# A table of 128 entries, 200 keys: the kernel's Dropped is reported.
agg_start agg_drop --json --agg-size 128 'p vfs_read n=count count()[n] f:common_pid!=1'
i=1
while [ $i -le 200 ]; do
    dd if=/dev/zero of=/dev/null bs=$i count=1 2>/dev/null
    i=$((i + 1))
done
ckp_stop agg_drop
# Checked before anything is installed.
for bad in 'p vfs_read n=count hist(m)' 'p vfs_read s=+0(%si):string hist(s)' 'p vfs_read n=count hist(n)[comm,pid,cpu]'; do
    coolkprobe "$bad" >/tmp/bad.out 2>/tmp/bad.err
    echo "rc=$? left=$(grep -c coolkprobe_ $T/kprobe_events) $(cat /tmp/bad.err)" >>/tmp/bad.txt
done
dump bad /tmp/bad.txt
