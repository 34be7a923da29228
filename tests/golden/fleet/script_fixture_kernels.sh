#!/bin/sh
# coolkprobe: 2 probe(s) in group coolkprobe_<PID> for 4 kernels; run as root on one of them
#   f0: p wake_up_new_task comm=p->comm pid=p->pid
#   f1: p vfs_read n=count
# %N is read from each kernel's argument registers: the targets are other kernels (--arg-fetch argn for $argN)
# kernels, each with the definitions compiled for its own types:
#   k1: 6.1.0-56-cloud-amd64 x86_64 (no build-id: known by its release and arch)
#   k2: 6.12.117+deb12-cloud-amd64 x86_64 (no build-id: known by its release and arch)
#   k3: 6.12.117+deb12-cloud-arm64 aarch64 (no build-id: known by its release and arch)
#   k4: 6.18.44-fc-v782 x86_64 (no build-id: known by its release and arch)
set -e
ckp_build_id() {
	set -- $(od -An -v -tx1 "$1" 2>/dev/null)
	while [ $# -ge 12 ]; do
		n=$((0x$4$3$2$1)) d=$((0x$8$7$6$5)) t=$((0x${12}${11}${10}$9))
		shift 12
		np=$(((n + 3) / 4 * 4)) dp=$(((d + 3) / 4 * 4))
		[ $# -ge $((np + dp)) ] || return 1
		if [ $n -eq 4 ] && [ $t -eq 3 ] && [ "$1$2$3$4" = 474e5500 ]; then
			shift 4
			id=
			while [ $d -gt 0 ]; do id=$id$1; shift; d=$((d - 1)); done
			echo "$id"
			return 0
		fi
		shift $((np + dp))
	done
	return 1
}
# Which kernel is this? Its build-id, else its release and arch.
R=$(uname -r)
M=$(uname -m)
B=$(ckp_build_id /sys/kernel/notes) || B=
case $M in
x86_64) A=x86_64 ;;
aarch64|arm64) A=aarch64 ;;
arm*) A=arm ;;
riscv64) A=riscv64 ;;
*) A=$M ;;
esac
K=
if [ -z "$K" ] && [ -z "$B" ]; then
	case "$R $A" in
	'6.1.0-56-cloud-amd64 x86_64') K=1 ;;
	'6.12.117+deb12-cloud-amd64 x86_64') K=2 ;;
	'6.12.117+deb12-cloud-arm64 aarch64') K=3 ;;
	'6.18.44-fc-v782 x86_64') K=4 ;;
	esac
	[ -z "$K" ] || echo "coolkprobe: cannot read this kernel's build-id (/sys/kernel/notes): the definitions are chosen by its release and arch, $R $A" >&2
elif [ -z "$K" ]; then
	case "$R $A" in
	'6.1.0-56-cloud-amd64 x86_64') K=1 ;;
	'6.12.117+deb12-cloud-amd64 x86_64') K=2 ;;
	'6.12.117+deb12-cloud-arm64 aarch64') K=3 ;;
	'6.18.44-fc-v782 x86_64') K=4 ;;
	esac
	[ -z "$K" ] || echo "coolkprobe: no types of this build ($B) here: the definitions are chosen by its release and arch, $R $A" >&2
fi
if [ -z "$K" ]; then
	echo "coolkprobe: no definitions for this kernel ($R $A, build-id ${B:-unknown}): this script has them for 6.1.0-56-cloud-amd64 x86_64, 6.12.117+deb12-cloud-amd64 x86_64, 6.12.117+deb12-cloud-arm64 aarch64, 6.18.44-fc-v782 x86_64; nothing installed" >&2
	exit 1
fi
echo "coolkprobe: installing the definitions for k$K ($R $A)" >&2
T=/sys/kernel/tracing
if [ ! -e "$T/events" ]; then
	if ! mount -t tracefs nodev "$T" 2>/dev/null; then
		T=/sys/kernel/debug/tracing
		[ -e "$T/events" ] || mount -t debugfs nodev /sys/kernel/debug
	fi
fi
case $K in
1)
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
	[ "$ckp_n" -lt 4 ] || { echo '0' > $T/events/coolkprobe_<PID>/f1/enable; } 2>/dev/null
	[ "$ckp_n" -lt 3 ] || { echo '0' > $T/events/coolkprobe_<PID>/f0/enable; } 2>/dev/null
	[ "$ckp_n" -lt 2 ] || { echo '-:coolkprobe_<PID>/f1' >> $T/kprobe_events; } 2>/dev/null
	[ "$ckp_n" -lt 1 ] || { echo '-:coolkprobe_<PID>/f0' >> $T/kprobe_events; } 2>/dev/null
	echo "coolkprobe: stopped at write $ckp_n of 4; every write of this script is taken back" >&2
	[ "$ckp_rc" -ne 0 ] || ckp_rc=1
	exit "$ckp_rc"
}
trap ckp_undo EXIT
trap 'exit 130' INT TERM HUP
ckp_n=1
echo 'p:coolkprobe_<PID>/f0 wake_up_new_task comm=+0xba0(%di):string pid=+0x970(%di):s32' >> $T/kprobe_events
ckp_n=2
echo 'p:coolkprobe_<PID>/f1 vfs_read n=%dx:u64' >> $T/kprobe_events
ckp_n=3
echo '1' > $T/events/coolkprobe_<PID>/f0/enable
ckp_n=4
echo '1' > $T/events/coolkprobe_<PID>/f1/enable
trap - EXIT INT TERM HUP
;;
2)
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
	[ "$ckp_n" -lt 4 ] || { echo '0' > $T/events/coolkprobe_<PID>/f1/enable; } 2>/dev/null
	[ "$ckp_n" -lt 3 ] || { echo '0' > $T/events/coolkprobe_<PID>/f0/enable; } 2>/dev/null
	[ "$ckp_n" -lt 2 ] || { echo '-:coolkprobe_<PID>/f1' >> $T/kprobe_events; } 2>/dev/null
	[ "$ckp_n" -lt 1 ] || { echo '-:coolkprobe_<PID>/f0' >> $T/kprobe_events; } 2>/dev/null
	echo "coolkprobe: stopped at write $ckp_n of 4; every write of this script is taken back" >&2
	[ "$ckp_rc" -ne 0 ] || ckp_rc=1
	exit "$ckp_rc"
}
trap ckp_undo EXIT
trap 'exit 130' INT TERM HUP
ckp_n=1
echo 'p:coolkprobe_<PID>/f0 wake_up_new_task comm=+0xba0(%di):string pid=+0x980(%di):s32' >> $T/kprobe_events
ckp_n=2
echo 'p:coolkprobe_<PID>/f1 vfs_read n=%dx:u64' >> $T/kprobe_events
ckp_n=3
echo '1' > $T/events/coolkprobe_<PID>/f0/enable
ckp_n=4
echo '1' > $T/events/coolkprobe_<PID>/f1/enable
trap - EXIT INT TERM HUP
;;
3)
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
	[ "$ckp_n" -lt 4 ] || { echo '0' > $T/events/coolkprobe_<PID>/f1/enable; } 2>/dev/null
	[ "$ckp_n" -lt 3 ] || { echo '0' > $T/events/coolkprobe_<PID>/f0/enable; } 2>/dev/null
	[ "$ckp_n" -lt 2 ] || { echo '-:coolkprobe_<PID>/f1' >> $T/kprobe_events; } 2>/dev/null
	[ "$ckp_n" -lt 1 ] || { echo '-:coolkprobe_<PID>/f0' >> $T/kprobe_events; } 2>/dev/null
	echo "coolkprobe: stopped at write $ckp_n of 4; every write of this script is taken back" >&2
	[ "$ckp_rc" -ne 0 ] || ckp_rc=1
	exit "$ckp_rc"
}
trap ckp_undo EXIT
trap 'exit 130' INT TERM HUP
ckp_n=1
echo 'p:coolkprobe_<PID>/f0 wake_up_new_task comm=+0x780(%x0):string pid=+0x560(%x0):s32' >> $T/kprobe_events
ckp_n=2
echo 'p:coolkprobe_<PID>/f1 vfs_read n=%x2:u64' >> $T/kprobe_events
ckp_n=3
echo '1' > $T/events/coolkprobe_<PID>/f0/enable
ckp_n=4
echo '1' > $T/events/coolkprobe_<PID>/f1/enable
trap - EXIT INT TERM HUP
;;
4)
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
	[ "$ckp_n" -lt 4 ] || { echo '0' > $T/events/coolkprobe_<PID>/f1/enable; } 2>/dev/null
	[ "$ckp_n" -lt 3 ] || { echo '0' > $T/events/coolkprobe_<PID>/f0/enable; } 2>/dev/null
	[ "$ckp_n" -lt 2 ] || { echo '-:coolkprobe_<PID>/f1' >> $T/kprobe_events; } 2>/dev/null
	[ "$ckp_n" -lt 1 ] || { echo '-:coolkprobe_<PID>/f0' >> $T/kprobe_events; } 2>/dev/null
	echo "coolkprobe: stopped at write $ckp_n of 4; every write of this script is taken back" >&2
	[ "$ckp_rc" -ne 0 ] || ckp_rc=1
	exit "$ckp_rc"
}
trap ckp_undo EXIT
trap 'exit 130' INT TERM HUP
ckp_n=1
echo 'p:coolkprobe_<PID>/f0 wake_up_new_task comm=+0x6d8(%di):string pid=+0x4f0(%di):s32' >> $T/kprobe_events
ckp_n=2
echo 'p:coolkprobe_<PID>/f1 vfs_read n=%dx:u64' >> $T/kprobe_events
ckp_n=3
echo '1' > $T/events/coolkprobe_<PID>/f0/enable
ckp_n=4
echo '1' > $T/events/coolkprobe_<PID>/f1/enable
trap - EXIT INT TERM HUP
;;
esac
# read the events:
#   cat $T/trace_pipe
# remove the probes:
#   echo '0' > $T/events/coolkprobe_<PID>/f0/enable
#   echo '0' > $T/events/coolkprobe_<PID>/f1/enable
#   echo '-:coolkprobe_<PID>/f0' >> $T/kprobe_events
#   echo '-:coolkprobe_<PID>/f1' >> $T/kprobe_events
