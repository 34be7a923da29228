# The kernel's own BTF-argument support (6.12: an fprobe event
# naming the parameter, `p->mm->mm_users.counter`, `p->se.load.weight`) and
# coolkprobe's computed offsets read the same members of the same task in
# the same run. 6.1 has neither fprobe events nor BTF arguments: there the
# definition must be refused.
KDEF='f:ckpbtf/w wake_up_new_task comm=p->comm:string pid=p->pid:s32 tgid=p->tgid:s32 ppid=p->real_parent->pid:s32 users=p->mm->mm_users.counter:s32 flags=p->flags:u32 weight=p->se.load.weight:u64'
if ! echo "$KDEF" >>$T/dynamic_events 2>/dev/null; then
    kv kernel_btf_args 0
    dump error_log $T/error_log
    return 0 2>/dev/null || exit 0
fi
kv kernel_btf_args 1
trigger_prepare t 'printf ckpbtf >/proc/self/comm; true & wait; true & wait'
kv trigger_pid $TRIG_PID
# Its own ring buffer (a tracefs instance), so coolkprobe's readers of the
# main buffer do not consume its events.
I=$T/instances/ckpbtf
mkdir $I || fail "cannot create a tracefs instance"
echo "common_pid==$TRIG_PID" >$I/events/ckpbtf/w/filter
echo 1 >$I/events/ckpbtf/w/enable
S='(struct task_struct)'
ckp_start run 1 "p wake_up_new_task comm=%0~$S->comm pid=%0S~$S->pid tgid=%0S~$S->tgid ppid=%0S~$S->real_parent->pid users=%0S~$S->mm->mm_users flags=%0U~$S->flags weight=%0U~$S->se.load.weight f:common_pid==$TRIG_PID"
trigger_go t
ckp_stop run ' f0: ' 2
echo 0 >$I/events/ckpbtf/w/enable
grep ' w: ' $I/trace >/tmp/kernel.trace
dump kernel /tmp/kernel.trace
rmdir $I
echo '-:ckpbtf/w' >>$T/dynamic_events
