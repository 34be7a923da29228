# Arguments in a return probe (`r`): %N and parameter names mean the
# entry's arguments. Where the kernel keeps them for return probes
# (KRETPROBE_ARGN: Linux 6.10, Debian 6.12) they are read through $argN
# and equal what an entry probe reads; where it does not (5.10, 6.1) the
# probe is refused before anything is installed, saying why. A raw
# register written by hand stays as written.
kv readme_ret "$(grep -c 'kernel return probes support:.*\$arg<N>' $T/README)"
P0='p kernel_clone f=args->flags'
P1='r kernel_clone rf=args->flags r=$retval'
P2='p do_filp_open n=pathname->name d=dfd'
P3='r do_filp_open rn=pathname->name rd=dfd'
coolkprobe -S "$P1" "$P3" >/tmp/ret.show 2>/tmp/ret.showerr
kv show_rc $?
dump ret.show /tmp/ret.show
dump ret.showerr /tmp/ret.showerr
coolkprobe -S 'r kernel_clone raw=%di' >/tmp/raw.show 2>/tmp/raw.showerr
kv raw_rc $?
dump raw.show /tmp/raw.show
echo x >/tmp/ckp-retarg
if [ "$KRETPROBE_ARGN" = y ]; then
    # (the first command ends the trigger's own && chain)
    trigger_prepare r ': ; true & wait; true </tmp/ckp-retarg'
    kv trigger_pid $TRIG_PID
    ckp_start live 4 "$P0 f:common_pid==$TRIG_PID" "$P1 f:common_pid==$TRIG_PID" \
        "$P2 f:common_pid==$TRIG_PID" "$P3 f:common_pid==$TRIG_PID"
    trigger_go r
    ckp_stop live ' f3: ' 1
else
    coolkprobe -d 1 "$P1" >/tmp/live.out 2>/tmp/live.err
    kv live.rc $?
    kv live.left "$(grep -c coolkprobe_ $T/kprobe_events)"
    dump live.err /tmp/live.err
fi
