# A -S script is all or nothing. Its third definition names a function the
# kernel does not have (-S does not look: the script may be for another
# machine), so the kernel refuses that write: the script must take back
# the two probes it had added, print the kernel's error_log entry, and
# exit non-zero. The same script without the bad probe installs, and its
# commented teardown removes everything again.
S1='p vfs_read n=count'
S2='p do_filp_open name=%1~(struct filename)->name f:name ~ "/tmp/*"'
coolkprobe -S "$S1" "$S2" 'p ckp_no_such_function' >/tmp/atomic.sh 2>/tmp/atomic.gen || {
    dump atomic.gen /tmp/atomic.gen
    fail "coolkprobe -S failed"
}
G=$(grep -o 'coolkprobe_[0-9]*' /tmp/atomic.sh | head -1)
sh /tmp/atomic.sh >/tmp/atomic.out 2>/tmp/atomic.err
kv atomic_rc $?
dump atomic.err /tmp/atomic.err
kv atomic_left "$(grep -c "$G/" $T/kprobe_events)"
kv atomic_dir "$([ -d $T/events/$G ] && echo 1 || echo 0)"

coolkprobe -S "$S1" "$S2" >/tmp/whole.sh 2>/tmp/whole.gen || fail "coolkprobe -S failed"
G=$(grep -o 'coolkprobe_[0-9]*' /tmp/whole.sh | head -1)
sh /tmp/whole.sh >/tmp/whole.out 2>/tmp/whole.err
kv whole_rc $?
dump whole.err /tmp/whole.err
kv whole_installed "$(grep -c "$G/" $T/kprobe_events)"
kv whole_enabled "$(cat $T/events/$G/f*/enable | grep -c 1)"
{ echo "T=$T"; sed -n '/^# remove the probes:/,$p' /tmp/whole.sh | sed -n 's/^#   //p'; } >/tmp/whole-rm.sh
sh /tmp/whole-rm.sh
kv whole_rm_rc $?
kv whole_left "$(grep -c "$G/" $T/kprobe_events)"
