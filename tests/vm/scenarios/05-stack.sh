# -s prints a kernel stack with every event, resolved to symbols.
echo s >/tmp/ckp-stack-file
trigger_prepare t 'true </tmp/ckp-stack-file'
kv trigger_pid $TRIG_PID
ckp_start run 1 -s "p do_filp_open name=%1~(struct filename)->name f:common_pid==$TRIG_PID"
trigger_go t
ckp_stop run 'ckp-stack-file' 1
