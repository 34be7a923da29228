#!/bin/sh
# coolkprobe: 2 probe(s) in group coolkprobe_<PID>; run as root on the target
#   f0: t sched:sched_process_exec f:pid > 1
#   f1: p /bin/true:0x1130 a=%di
# -p 42: process 42, its threads and the tasks it starts, in instance coolkprobe_<PID>
set -e
T=/sys/kernel/tracing
if [ ! -e "$T/events" ]; then
	if ! mount -t tracefs nodev "$T" 2>/dev/null; then
		T=/sys/kernel/debug/tracing
		[ -e "$T/events" ] || mount -t debugfs nodev /sys/kernel/debug
	fi
fi
[ -d /proc/42/task ] || { echo 'no process 42' >&2; exit 1; }
I=$T/instances/coolkprobe_<PID>
mkdir $I
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
	[ "$ckp_n" -lt 8 ] || { echo '0' > $I/events/coolkprobe_<PID>/f1/enable; } 2>/dev/null
	[ "$ckp_n" -lt 7 ] || { echo '!stacktrace' >> $I/events/coolkprobe_<PID>/f1/trigger; } 2>/dev/null
	[ "$ckp_n" -lt 6 ] || { echo '0' > $I/events/sched/sched_process_exec/enable; } 2>/dev/null
	[ "$ckp_n" -lt 5 ] || { echo '!stacktrace if pid > 1' >> $I/events/sched/sched_process_exec/trigger; } 2>/dev/null
	[ "$ckp_n" -lt 4 ] || { echo '0' > $I/events/sched/sched_process_exec/filter; } 2>/dev/null
	[ "$ckp_n" -lt 3 ] || { echo '-:coolkprobe_<PID>/f1' >> $T/uprobe_events; } 2>/dev/null
	rmdir $I 2>/dev/null
	echo "coolkprobe: stopped at write $ckp_n of 8; every write of this script is taken back" >&2
	[ "$ckp_rc" -ne 0 ] || ckp_rc=1
	exit "$ckp_rc"
}
trap ckp_undo EXIT
trap 'exit 130' INT TERM HUP
ckp_n=1
echo '1' > $I/options/event-fork
ckp_n=2
echo $(ls /proc/42/task) > $I/set_event_pid
ckp_n=3
echo 'p:coolkprobe_<PID>/f1 /bin/true:0x1130 a=%di' >> $T/uprobe_events
ckp_n=4
echo 'pid > 1' > $I/events/sched/sched_process_exec/filter
ckp_n=5
echo 'stacktrace if pid > 1' >> $I/events/sched/sched_process_exec/trigger
ckp_n=6
echo '1' > $I/events/sched/sched_process_exec/enable
ckp_n=7
echo 'stacktrace' >> $I/events/coolkprobe_<PID>/f1/trigger
ckp_n=8
echo '1' > $I/events/coolkprobe_<PID>/f1/enable
trap - EXIT INT TERM HUP
# read the events:
#   cat $I/trace_pipe
# remove the probes:
#   echo '0' > $I/events/sched/sched_process_exec/enable
#   echo '!stacktrace if pid > 1' >> $I/events/sched/sched_process_exec/trigger
#   echo '0' > $I/events/coolkprobe_<PID>/f1/enable
#   echo '!stacktrace' >> $I/events/coolkprobe_<PID>/f1/trigger
#   echo '-:coolkprobe_<PID>/f1' >> $T/uprobe_events
#   rmdir $I
