# --json output parses and carries the same values as text. Two
# runs at once (text and JSON, each in its own group) see the same events.
echo j >/tmp/ckp-json-file
trigger_prepare t 'printf ckpjson >/proc/self/comm; true & wait; true </tmp/ckp-json-file'
kv trigger_pid $TRIG_PID
P1="p wake_up_new_task comm=%0~(struct task_struct)->comm users=%0S~(struct task_struct)->mm->mm_users pid=%0U~(struct task_struct)->pid f:common_pid==$TRIG_PID"
P2="p do_filp_open name=%1~(struct filename)->name dfd=%di:s32 f:common_pid==$TRIG_PID"
P3="r do_sys_openat2 ret=\$retval:s32 f:common_pid==$TRIG_PID"
ckp_start text 3 "$P1" "$P2" "$P3"
TEXT_PID=$CKP_PID
ckp_start json 3 --json "$P1" "$P2" "$P3"
JSON_PID=$CKP_PID
trigger_go t
CKP_PID=$TEXT_PID
ckp_stop text ' f2: ' 2
CKP_PID=$JSON_PID
ckp_stop json '"f2"' 2
