# Hits the kernel counts as missed (kprobe_profile's nmissed) are reported.
# A return probe has at most maxactive instances at once (by default
# max(10, 2 * CPUs)); 20 tasks sleeping in the probed function at the same
# time leave some without one, and the kernel skips those hits.
ckp_start run 1 --json 'r hrtimer_nanosleep r=$retval'
pids=
i=0
while [ $i -lt 20 ]; do
    sleep 1 &
    pids="$pids $!"
    i=$((i + 1))
done
wait $pids
dump profile $T/kprobe_profile
ckp_stop run
