# Filters let through exactly the matching events. Two shells
# open the same files; f0 keeps one path (string compare) from both, f1
# keeps everything of one pid, f2 both at once.
echo y >/tmp/ckp-filter-yes
echo n >/tmp/ckp-filter-no
trigger_prepare a 'true </tmp/ckp-filter-yes; true </tmp/ckp-filter-no; true </tmp/ckp-filter-yes; true </tmp/ckp-filter-no; true </tmp/ckp-filter-yes'
A=$TRIG_PID
trigger_prepare b 'true </tmp/ckp-filter-no; true </tmp/ckp-filter-yes; true </tmp/ckp-filter-yes'
B=$TRIG_PID
kv pid_a $A
kv pid_b $B
ckp_start run 3 \
    'p do_filp_open name=%1~(struct filename)->name f:name=="/tmp/ckp-filter-yes"' \
    "p do_filp_open name=%1~(struct filename)->name f:common_pid==$A" \
    "p do_filp_open name=%1~(struct filename)->name f:common_pid==$B && name==\"/tmp/ckp-filter-yes\""
TRIG_PID=$A
trigger_go a
TRIG_PID=$B
trigger_go b
ckp_stop run ' f2: ' 2
