# Teardown. Someone else's probe is defined first. Then: a run
# stopped by SIGTERM; a run that ends by itself (-c 1); a run killed with
# SIGKILL (it cannot clean up: its group stays); a new run, which removes
# the dead run's group. Our probes must be gone after each, the other probe
# untouched and still working.
echo t >/tmp/ckp-teardown-file
echo 'p:other/keep do_sys_openat2 dfd=%di:s32' >>$T/kprobe_events || fail "cannot define the other probe"
PROBE='p do_filp_open name=%1~(struct filename)->name f:name=="/tmp/ckp-teardown-file"'

ckp_start term 2 "$PROBE" 'r do_sys_openat2 ret=$retval:s32'
cat /tmp/ckp-teardown-file >/dev/null
ckp_stop term 'ckp-teardown-file' 1

ckp_start count 1 -c 1 "$PROBE"
cat /tmp/ckp-teardown-file >/dev/null
ckp_wait count

ckp_start killed 2 "$PROBE" 'r do_sys_openat2 ret=$retval:s32'
KILLED=$CKP_PID
kill -KILL $KILLED
wait $KILLED
kv killed.pid $KILLED
kv killed.left "$(grep -c "coolkprobe_${KILLED}_" $T/kprobe_events)"
# The dead run's probes are still enabled and firing into the ring buffer.
cat /tmp/ckp-teardown-file >/dev/null

ckp_start next 1 "$PROBE"
kv killed.left_during_next "$(grep -c "coolkprobe_${KILLED}_" $T/kprobe_events)"
cat /tmp/ckp-teardown-file >/dev/null
ckp_stop next 'ckp-teardown-file' 1

kv ours_after "$(grep -c 'coolkprobe_' $T/kprobe_events)"
kv our_event_dirs_after "$(ls -d $T/events/coolkprobe_* $T/instances/coolkprobe_* 2>/dev/null | wc -l)"
ls $T/instances
dump kprobe_events $T/kprobe_events
kv other_after "$(grep -c '^p:other/keep do_sys_openat2' $T/kprobe_events)"
echo 1 >$T/events/other/keep/enable || fail "cannot enable the other probe"
cat /tmp/ckp-teardown-file >/dev/null
echo 0 >$T/events/other/keep/enable
kv other_fired "$(grep -c ' keep: ' $T/trace)"
echo '-:other/keep' >>$T/kprobe_events
