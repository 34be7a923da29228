# Kprobes work on this kernel at all, without coolkprobe: define an entry, a
# return and an in-function probe (fd_install at the instruction vmconf.sh
# found) by hand, trigger them, read the trace, remove them.
kv kprobe_events_before "$(wc -l <$T/kprobe_events)"
add() { echo "$1" >>$T/kprobe_events || fail "kprobe_events rejected '$1': $(cat $T/error_log)"; }
add 'p:ckpraw/open do_sys_openat2 dfd=%di:s32 path=+0(%si):ustring'
add 'r:ckpraw/ret do_sys_openat2 ret=$retval:s32'
add "p:ckpraw/fdi fd_install+$FDINST_OFF fd=%$FDINST_REG:s32"
echo "common_pid != $$" >$T/events/ckpraw/filter
echo ckp >/tmp/ckp-raw-marker
echo 1 >$T/events/ckpraw/enable
cat /tmp/ckp-raw-marker >/dev/null
echo 0 >$T/events/ckpraw/enable
grep ' cat-' $T/trace >/tmp/raw.trace
dump trace /tmp/raw.trace
for e in open ret fdi; do echo "-:ckpraw/$e" >>$T/kprobe_events; done
kv kprobe_events_after "$(wc -l <$T/kprobe_events)"
