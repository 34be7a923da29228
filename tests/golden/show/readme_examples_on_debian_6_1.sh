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
# all or nothing: on a failure, what this script wrote is taken back
ckp_n=0
ckp_log=$(cat "$T/error_log" 2>/dev/null || :)
ckp_undo() {
	ckp_rc=$?
	set +e
	trap - EXIT INT TERM HUP
	ckp_now=$(cat "$T/error_log" 2>/dev/null)
	# the kernel's reason: the entry the failed write added (3 lines)
	[ "$ckp_now" = "$ckp_log" ] || printf '%s\n' "$ckp_now" | tail -n 3 >&2
	[ "$ckp_n" -lt 10 ] || { echo '0' > $T/events/coolkprobe_<PID>/f4/enable; } 2>/dev/null
	[ "$ckp_n" -lt 9 ] || { echo '0' > $T/events/coolkprobe_<PID>/f3/enable; } 2>/dev/null
	[ "$ckp_n" -lt 8 ] || { echo '0' > $T/events/coolkprobe_<PID>/f2/enable; } 2>/dev/null
	[ "$ckp_n" -lt 7 ] || { echo '0' > $T/events/coolkprobe_<PID>/f1/enable; } 2>/dev/null
	[ "$ckp_n" -lt 6 ] || { echo '0' > $T/events/coolkprobe_<PID>/f0/enable; } 2>/dev/null
	[ "$ckp_n" -lt 5 ] || { echo '-:coolkprobe_<PID>/f4' >> $T/kprobe_events; } 2>/dev/null
	[ "$ckp_n" -lt 4 ] || { echo '-:coolkprobe_<PID>/f3' >> $T/kprobe_events; } 2>/dev/null
	[ "$ckp_n" -lt 3 ] || { echo '-:coolkprobe_<PID>/f2' >> $T/kprobe_events; } 2>/dev/null
	[ "$ckp_n" -lt 2 ] || { echo '-:coolkprobe_<PID>/f1' >> $T/kprobe_events; } 2>/dev/null
	[ "$ckp_n" -lt 1 ] || { echo '-:coolkprobe_<PID>/f0' >> $T/kprobe_events; } 2>/dev/null
	echo "coolkprobe: stopped at write $ckp_n of 10; every write of this script is taken back" >&2
	[ "$ckp_rc" -ne 0 ] || ckp_rc=1
	exit "$ckp_rc"
}
trap ckp_undo EXIT
trap 'exit 130' INT TERM HUP
ckp_n=1
echo 'p:coolkprobe_<PID>/f0 wake_up_new_task comm=+0xba0(%di):string' >> $T/kprobe_events
ckp_n=2
echo 'p:coolkprobe_<PID>/f1 wake_up_new_task users=+0x54(+0x8e0(%di)):s32' >> $T/kprobe_events
ckp_n=3
echo 'p:coolkprobe_<PID>/f2 do_exit r=$retval' >> $T/kprobe_events
ckp_n=4
echo 'r:coolkprobe_<PID>/f3 kernel_clone r=$retval' >> $T/kprobe_events
ckp_n=5
echo 'p:coolkprobe_<PID>/f4 kernel_clone+21 r=%r12' >> $T/kprobe_events
ckp_n=6
echo '1' > $T/events/coolkprobe_<PID>/f0/enable
ckp_n=7
echo '1' > $T/events/coolkprobe_<PID>/f1/enable
ckp_n=8
echo '1' > $T/events/coolkprobe_<PID>/f2/enable
ckp_n=9
echo '1' > $T/events/coolkprobe_<PID>/f3/enable
ckp_n=10
echo '1' > $T/events/coolkprobe_<PID>/f4/enable
trap - EXIT INT TERM HUP
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
