# A probe inside a function. vmconf.sh disassembled fd_install
# and found the instruction right after `mov %edi,%e<REG>`: there REG holds
# the fd being installed, which is what open returns.
kv offset "$FDINST_OFF"
kv reg "$FDINST_REG"
echo o >/tmp/ckp-offset-file
trigger_prepare t 'true </tmp/ckp-offset-file; exec 7</tmp/ckp-offset-file; exec 8</tmp/ckp-offset-file'
kv trigger_pid $TRIG_PID
ckp_start run 2 \
    "p fd_install+$FDINST_OFF fd=%$FDINST_REG f:common_pid==$TRIG_PID" \
    "r do_sys_openat2 ret=\$retval f:common_pid==$TRIG_PID"
trigger_go t
ckp_stop run ' f1: ' 3
