# -s prints a kernel stack with every event, resolved to symbols. The probe
# is filtered to one pid while other tasks open files too: a trigger runs
# on every hit and the filter only drops the record, so the stacktrace
# trigger must carry the filter (checked in the instance's trigger file),
# or the kernel records stacks of the hits the filter drops.
echo s >/tmp/ckp-stack-file
trigger_prepare t 'true </tmp/ckp-stack-file'
kv trigger_pid $TRIG_PID
ckp_start run 1 -s "p do_filp_open name=%1~(struct filename)->name f:common_pid==$TRIG_PID"
kv trigger "$(cat $T/instances/coolkprobe_${CKP_PID}_*/events/coolkprobe_${CKP_PID}_*/f0/trigger)"
# Filtered-out hits: other tasks open files.
for i in 1 2 3 4 5; do cat /tmp/ckp-stack-file >/dev/null; done
trigger_go t
ckp_stop run 'ckp-stack-file' 1
