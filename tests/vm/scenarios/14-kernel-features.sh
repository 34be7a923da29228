# The facts of /etc/vm.conf that scenarios and checks branch on hold on the
# running kernel: each feature is used once, by hand (no coolkprobe), and
# must be accepted exactly where vm.conf says the kernel has it. On 5.10
# this shows what it lacks: return-probe $argN, hist triggers, synthetic
# and fprobe events, BTF arguments.

# try NAME FILE LINE [UNDO]: does the kernel accept LINE appended to FILE?
try() {
    if [ -e $T/$2 ] && echo "$3" >>$T/$2 2>/dev/null; then
        kv $1 1
        [ $# -ge 4 ] && echo "$4" >>$T/$2
    else
        kv $1 0
    fi
}
kv readme_argn "$(grep -c '\$arg<N>' $T/README)"
try kprobe_argn kprobe_events 'p:ckpfeat/p vfs_read a=$arg1' '-:ckpfeat/p'
try kretprobe_argn kprobe_events 'r:ckpfeat/r vfs_read a=$arg1' '-:ckpfeat/r'
try hist events/sched/sched_process_fork/trigger 'hist:keys=common_pid' '!hist:keys=common_pid'
try synth synthetic_events 'ckpfeat_lat u64 lat' '!ckpfeat_lat'
try fprobe dynamic_events 'f:ckpfeat/f vfs_read' '-:ckpfeat/f'
try btf_args dynamic_events 'f:ckpfeat/b vfs_read count' '-:ckpfeat/b'
dump error_log $T/error_log
kv left "$(cat $T/kprobe_events $T/dynamic_events | grep -c ckpfeat)"
