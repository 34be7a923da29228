#!/bin/sh
# coolkprobe: 2 probe(s) in group coolkprobe_<PID>; run as root on the target
#   f0: t sched:sched_process_exec f:pid > 1
#   f1: p /bin/true:0x1130 a=%di
set -e
T=/sys/kernel/tracing
if [ ! -e "$T/events" ]; then
	if ! mount -t tracefs nodev "$T" 2>/dev/null; then
		T=/sys/kernel/debug/tracing
		[ -e "$T/events" ] || mount -t debugfs nodev /sys/kernel/debug
	fi
fi
echo 'p:coolkprobe_<PID>/f1 /bin/true:0x1130 a=%di' >> $T/uprobe_events
echo '(pid > 1) && common_pid==42' > $T/events/sched/sched_process_exec/filter
echo 'stacktrace' > $T/events/sched/sched_process_exec/trigger
echo '1' > $T/events/sched/sched_process_exec/enable
echo 'common_pid==42' > $T/events/coolkprobe_<PID>/f1/filter
echo 'stacktrace' > $T/events/coolkprobe_<PID>/f1/trigger
echo '1' > $T/events/coolkprobe_<PID>/f1/enable
# read the events:
#   cat $T/trace_pipe
# remove the probes:
#   echo '0' > $T/events/sched/sched_process_exec/enable
#   echo '!stacktrace' > $T/events/sched/sched_process_exec/trigger
#   echo '0' > $T/events/sched/sched_process_exec/filter
#   echo '0' > $T/events/coolkprobe_<PID>/f1/enable
#   echo '!stacktrace' > $T/events/coolkprobe_<PID>/f1/trigger
#   echo '-:coolkprobe_<PID>/f1' >> $T/uprobe_events
