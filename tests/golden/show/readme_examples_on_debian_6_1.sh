#!/bin/sh
# coolkprobe: 5 probe(s) in group coolkprobe_<PID>; run as root on the target
#   f0: p wake_up_new_task comm=%0~(struct task_struct)->comm
#   f1: p wake_up_new_task users=%0S~(struct task_struct)->mm->mm_users
#   f2: p do_exit r=$retval
#   f3: r kernel_clone r=$retval
#   f4: p kernel_clone+21 r=%r12
# %N is read from x86_64 registers: the target is another kernel (--arg-fetch argn for $argN)
set -e
T=/sys/kernel/tracing
if [ ! -e "$T/events" ]; then
	if ! mount -t tracefs nodev "$T" 2>/dev/null; then
		T=/sys/kernel/debug/tracing
		[ -e "$T/events" ] || mount -t debugfs nodev /sys/kernel/debug
	fi
fi
echo 'p:coolkprobe_<PID>/f0 wake_up_new_task comm=+0xba0(%di):string' >> $T/kprobe_events
echo 'p:coolkprobe_<PID>/f1 wake_up_new_task users=+0x54(+0x8e0(%di)):s32' >> $T/kprobe_events
echo 'p:coolkprobe_<PID>/f2 do_exit r=$retval' >> $T/kprobe_events
echo 'r:coolkprobe_<PID>/f3 kernel_clone r=$retval' >> $T/kprobe_events
echo 'p:coolkprobe_<PID>/f4 kernel_clone+21 r=%r12' >> $T/kprobe_events
echo '1' > $T/events/coolkprobe_<PID>/f0/enable
echo '1' > $T/events/coolkprobe_<PID>/f1/enable
echo '1' > $T/events/coolkprobe_<PID>/f2/enable
echo '1' > $T/events/coolkprobe_<PID>/f3/enable
echo '1' > $T/events/coolkprobe_<PID>/f4/enable
# read the events:
#   cat $T/trace_pipe
# remove the probes:
#   echo '0' > $T/events/coolkprobe_<PID>/f0/enable
#   echo '0' > $T/events/coolkprobe_<PID>/f1/enable
#   echo '0' > $T/events/coolkprobe_<PID>/f2/enable
#   echo '0' > $T/events/coolkprobe_<PID>/f3/enable
#   echo '0' > $T/events/coolkprobe_<PID>/f4/enable
#   echo '-:coolkprobe_<PID>/f0' >> $T/kprobe_events
#   echo '-:coolkprobe_<PID>/f1' >> $T/kprobe_events
#   echo '-:coolkprobe_<PID>/f2' >> $T/kprobe_events
#   echo '-:coolkprobe_<PID>/f3' >> $T/kprobe_events
#   echo '-:coolkprobe_<PID>/f4' >> $T/kprobe_events
