# Entry and return probes on the same function, with several
# probes in one run. The trigger opens an existing file, a missing one, and
# the existing one again; every probe is filtered to the trigger's pid.
echo present >/tmp/ckp-present
trigger_prepare t 'true </tmp/ckp-present; true </tmp/ckp-missing 2>&-; true </tmp/ckp-present'
kv trigger_pid $TRIG_PID
ckp_start run 3 \
    "p do_sys_openat2 flags=%2~(struct open_how)->flags f:common_pid==$TRIG_PID" \
    "r do_sys_openat2 ret=\$retval:s32 f:common_pid==$TRIG_PID" \
    "p do_filp_open name=%1~(struct filename)->name f:common_pid==$TRIG_PID"
trigger_go t
ckp_stop run ' f1: ' 3
