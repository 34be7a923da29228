# Arguments typed by the kernel's prototypes, live. No casts:
# parameter names and `%N->member` take their types from BTF; `$retval`
# follows the return type (an `int` -2 shows as -2; compared in a filter it
# is fetched as s32); a syscall wrapper's arguments come out of its
# `struct pt_regs`, the path through user memory. The same probe read
# through the kernel's $argN (chosen by default here: the kernel lists it)
# and through registers gives the same values. Then the prototype checks
# refuse what cannot be right, before anything is installed.
printf 0123456789 >/tmp/ckp-typed
kv inode "$(stat -c %i /tmp/ckp-typed)"
coolkprobe -S 'p vfs_read n=count' >/tmp/show.out 2>/tmp/show.err || fail "coolkprobe -S failed: $(cat /tmp/show.err)"
dump show /tmp/show.out

# The trigger: names itself, forks, fails a mkdir (ENOENT; in a child, so
# those probes filter on the name), opens the file, then becomes dd (same
# pid) reading 7 bytes of it.
TRIG='printf ckptyped >/proc/self/comm; true & wait; mkdir /nonexistent/x 2>&-; true </tmp/ckp-typed; exec dd if=/tmp/ckp-typed of=/dev/null bs=7 count=1 2>&-'
for how in auto regs; do
    trigger_prepare t "$TRIG"
    kv $how.trigger_pid $TRIG_PID
    ckp_start $how 6 --arg-fetch $how \
        "p vfs_read ino=file->f_inode->i_ino n=count name=file->f_path.dentry->d_name.name f:common_pid==$TRIG_PID && n==7" \
        "r vfs_read r=\$retval f:common_pid==$TRIG_PID" \
        "r do_mkdirat r=\$retval f:comm==\"ckptyped\" || comm==\"mkdir\"" \
        "r do_mkdirat rf=\$retval f:(comm==\"ckptyped\" || comm==\"mkdir\") && rf==-2" \
        "p wake_up_new_task comm=p->comm users=%0->mm->mm_users pid=p->pid f:common_pid==$TRIG_PID" \
        "p __x64_sys_openat name=filename fl=flags d=dfd f:common_pid==$TRIG_PID"
    trigger_go t
    ckp_stop $how ' f0: ' 1
done

# Refused before anything is installed (exit 2), with the prototype's words.
err_case() {
    _name=$1
    shift
    coolkprobe "$@" >/tmp/$_name.out 2>/tmp/$_name.err
    kv $_name.rc $?
    kv $_name.left "$(grep -c coolkprobe_ $T/kprobe_events)"
    dump $_name.err /tmp/$_name.err
}
err_case arity 'p vfs_read x=%4'
err_case param 'p vfs_read n=cnt'
err_case entry_retval 'p alloc_pid l=$retval->level'
err_case void 'r wake_up_new_task r=$retval'
err_case sysarg 'p __x64_sys_openat x=%6'
# A cast the prototype disagrees with: a warning, and the run goes on.
coolkprobe -d 300ms 'p skb_cow_data l=%2~(struct sk_buff)->len' >/tmp/warn.out 2>/tmp/warn.err
kv warn.rc $?
dump warn.err /tmp/warn.err
