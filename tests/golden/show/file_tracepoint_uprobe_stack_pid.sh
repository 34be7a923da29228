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
echo '1' > $I/options/event-fork
echo $(ls /proc/42/task) > $I/set_event_pid
echo 'p:coolkprobe_<PID>/f1 /bin/true:0x1130 a=%di' >> $T/uprobe_events
echo 'pid > 1' > $I/events/sched/sched_process_exec/filter
echo 'stacktrace if pid > 1' >> $I/events/sched/sched_process_exec/trigger
echo '1' > $I/events/sched/sched_process_exec/enable
echo 'stacktrace' >> $I/events/coolkprobe_<PID>/f1/trigger
echo '1' > $I/events/coolkprobe_<PID>/f1/enable
# read the events:
#   cat $I/trace_pipe
# remove the probes:
#   echo '0' > $I/events/sched/sched_process_exec/enable
#   echo '!stacktrace if pid > 1' >> $I/events/sched/sched_process_exec/trigger
#   echo '0' > $I/events/coolkprobe_<PID>/f1/enable
#   echo '!stacktrace' >> $I/events/coolkprobe_<PID>/f1/trigger
#   echo '-:coolkprobe_<PID>/f1' >> $T/uprobe_events
#   rmdir $I
