# One script for a fleet (README, "Fleets"), made on the host by tests/vm.rs
# from the types of other kernels and pasted here as /data/*.sh:
# fleet-all.sh has the three kernels of the VM matrix (their ELF vmlinux:
# build-ids): on each it must install that kernel's own definitions, which
# must read the right values; fleet-some.sh has 6.1's vmlinux and raw BTF
# fixtures (6.12 x86_64 and arm64, 6.18: no build-ids): 5.10 is not in its
# set (refused, nothing installed), 6.1 is found by build-id, 6.12 by its
# release (when the fixture is of the release booted) or refused.
kv release "$(uname -r)"
# This kernel's notes as they are, for the host to read the build-id.
od -An -v -tx1 /sys/kernel/notes | tr -d ' \n' >/tmp/notes.hex
dump notes.hex /tmp/notes.hex
echo x >/tmp/ckp-fleet-file

# run_script NAME: run /data/NAME.sh as pasted, keep what it said and what
# it installed, trigger the probes, then remove them with the script's own
# removal commands.
run_script() {
    dump $1.sh /data/$1.sh
    sh /data/$1.sh >/tmp/$1.out 2>/tmp/$1.err
    kv $1.rc $?
    dump $1.err /tmp/$1.err
    grep coolkprobe_ $T/kprobe_events >/tmp/$1.defs
    dump $1.defs /tmp/$1.defs
    echo >$T/trace
    trigger_prepare t 'printf ckpfleet >/proc/self/comm; true & echo $! >/tmp/ckp-child; wait; true </tmp/ckp-fleet-file'
    trigger_go t
    kv $1.trigger_pid $TRIG_PID
    kv $1.child_pid "$(cat /tmp/ckp-child)"
    grep ' ckpfleet-' $T/trace | grep -v '^#' >/tmp/$1.trace
    dump $1.trace /tmp/$1.trace
    # The removal commands are the script's comments under "remove the probes".
    sed -n '/^# remove the probes/,$ s/^#   //p' /data/$1.sh >/tmp/$1.remove
    dump $1.remove /tmp/$1.remove
    T=$T sh -c ". /tmp/$1.remove" 2>/tmp/$1.remove.err
    kv $1.left "$(grep -c coolkprobe_ $T/kprobe_events)"
}

run_script fleet-all
run_script fleet-some
