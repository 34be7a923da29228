# Structured expressions. The trigger names itself "ckptrig"
# (/proc/self/comm), forks one child, and opens a file: the child's
# task_struct (wake_up_new_task's argument) carries the parent's comm, its
# own pid and a fresh mm (mm_users 1); the struct filename reaching
# do_filp_open carries the path through a char *.
echo x >/tmp/ckp-struct-file
trigger_prepare t 'printf ckptrig >/proc/self/comm; true & echo $! >/tmp/ckp-child; wait; true </tmp/ckp-struct-file'
kv trigger_pid $TRIG_PID
ckp_start run 2 \
    "p wake_up_new_task comm=%0~(struct task_struct)->comm users=%0S~(struct task_struct)->mm->mm_users pid=%0S~(struct task_struct)->pid f:common_pid==$TRIG_PID" \
    "p do_filp_open name=%1~(struct filename)->name f:common_pid==$TRIG_PID"
trigger_go t
kv child_pid "$(cat /tmp/ckp-child)"
ckp_stop run 'ckp-struct-file' 1
