# Latency of hrtimer_nanosleep with its entry argument (rqtp, the
# requested nanoseconds), for busybox usleep 1000, 10000 and 50000: every
# completed call, a histogram and the worst call with its values (of the
# workload's calls, picked by their argument: the VM has other sleepers),
# a filter on the latency. In the kernel (a synthetic event fed by hist
# triggers) where it has them (6.1, 6.12), and in user space everywhere;
# on 5.10 `auto` takes user space and `--latency kernel` is refused. Then
# teardown after SIGINT, and after SIGKILL followed by a new run.
LAT_PROBES='l hrtimer_nanosleep ns=rqtp r=$retval'
MINE='ns==1000000 || ns==10000000 || ns==50000000'
lat_start() { # NAME PATH ARGS...: start coolkprobe, wait for its last latency
    _name=$1
    _path=$2
    shift 2
    coolkprobe "$@" >/tmp/$_name.out 2>/tmp/$_name.err &
    CKP_PID=$!
    _i=0
    while :; do
        _g=$(cd $T/instances && ls -d coolkprobe_${CKP_PID}_* 2>/dev/null | head -1)
        _g=${_g:-coolkprobe_${CKP_PID}_}
        if [ "$_path" = kernel ]; then
            _f=$T/instances/$_g/events/synthetic/${_g}_f3/enable
        else
            _f=$T/instances/$_g/events/$_g/f3_entry/enable
        fi
        grep -q 1 $_f 2>/dev/null && break
        kill -0 $CKP_PID 2>/dev/null || { dump $_name.err /tmp/$_name.err; fail "coolkprobe $* exited early"; }
        _i=$((_i + 1))
        [ $_i -gt 1000 ] && fail "coolkprobe $* not ready after 30s"
        # Not 1, 10 or 50 ms: the workload's sleeps are those.
        usleep 30000
    done
    usleep 200000
}
workload() {
    usleep 1000
    usleep 10000
    usleep 50000
}
# CROWD sleepers of 1.5 s in hrtimer_nanosleep at once, started after the
# probes are armed: more calls in flight than a kretprobe follows by
# default (the number of CPUs on 5.10, 10 later), so every return of
# theirs and of the workload comes through only with the maxactive the
# return half of `l` asks for.
CROWD=12
crowd_start() {
    CROWD_PIDS=
    _i=0
    while [ $_i -lt $CROWD ]; do
        usleep 1500000 &
        CROWD_PIDS="$CROWD_PIDS $!"
        _i=$((_i + 1))
    done
}
crowd_wait() { wait $CROWD_PIDS; }
if has SYNTH_EVENTS && has HIST_TRIGGERS; then
    paths="kernel user"
else
    paths=user
    coolkprobe --latency kernel "$LAT_PROBES" -d 1 >/tmp/forced.out 2>/tmp/forced.err
    kv forced.rc $?
    dump forced.err /tmp/forced.err
fi
for path in $paths; do
    lat_start lat_$path $path --json --latency $path \
        "$LAT_PROBES" \
        "l hrtimer_nanosleep ns=rqtp hist(lat) f:$MINE" \
        "l hrtimer_nanosleep ns=rqtp max(lat) f:$MINE" \
        'l hrtimer_nanosleep ns=rqtp f:lat>=30ms'
    crowd_start
    workload
    crowd_wait
    usleep 200000
    # Hits and misses of the run's probes (named without their group).
    dump lat_$path.profile $T/kprobe_profile
    # The clock both ends' timestamps are taken by.
    kv lat_$path.clock "$(cat $T/instances/coolkprobe_${CKP_PID}_*/trace_clock)"
    ckp_stop lat_$path
    kv lat_$path.left_synth "$(grep -c "coolkprobe_${CKP_PID}_" $T/synthetic_events 2>/dev/null || echo 0)"
done
# Text output, and -S: the whole ordered set of commands.
if [ "$(echo $paths)" = "kernel user" ]; then how=kernel; else how=user; fi
lat_start lat_text $how --latency $how "$LAT_PROBES" "l hrtimer_nanosleep ns=rqtp hist(lat) f:$MINE" \
    "l hrtimer_nanosleep ns=rqtp max(lat) f:$MINE" 'l hrtimer_nanosleep ns=rqtp f:lat>=30ms'
workload
ckp_stop lat_text
coolkprobe -S "$LAT_PROBES hist(lat)[comm] f:lat>5ms" >/tmp/show.txt 2>&1
kv show.rc $?
dump show /tmp/show.txt
# A plain return probe reading the entry argument: where the kernel's
# return probes cannot ($argN, Linux 6.10) it is refused, pointing at `l`,
# which carried it above.
coolkprobe -S 'r hrtimer_nanosleep ns=rqtp' >/tmp/ret.out 2>/tmp/ret.err
kv ret.rc $?
dump ret.out /tmp/ret.out
dump ret.err /tmp/ret.err
# SIGINT: nothing left.
lat_start lat_int $how --latency $how "$LAT_PROBES" 'l hrtimer_nanosleep ns=rqtp hist(lat)' \
    'l hrtimer_nanosleep ns=rqtp max(lat)' 'l hrtimer_nanosleep ns=rqtp f:lat>=30ms'
kill -INT $CKP_PID
ckp_wait lat_int
kv lat_int.left_synth "$(grep -c "coolkprobe_${CKP_PID}_" $T/synthetic_events 2>/dev/null || echo 0)"
# SIGKILL leaves everything; the next run removes it.
lat_start lat_kill $how --latency $how "$LAT_PROBES" 'l hrtimer_nanosleep ns=rqtp hist(lat)' \
    'l hrtimer_nanosleep ns=rqtp max(lat)' 'l hrtimer_nanosleep ns=rqtp f:lat>=30ms'
KILLED=$CKP_PID
kill -KILL $KILLED
wait $KILLED 2>/dev/null
kv killed.pid $KILLED
kv killed.synth "$(grep -c "coolkprobe_${KILLED}_" $T/synthetic_events 2>/dev/null || echo 0)"
kv killed.probes "$(grep -c "coolkprobe_${KILLED}_" $T/kprobe_events)"
kv killed.instance "$(ls -d $T/instances/coolkprobe_${KILLED}_* 2>/dev/null | wc -l)"
coolkprobe -d 0.5 "$LAT_PROBES" >/tmp/after.out 2>/tmp/after.err
kv after.rc $?
dump after.err /tmp/after.err
kv after.synth "$(grep -c "coolkprobe_${KILLED}_" $T/synthetic_events 2>/dev/null || echo 0)"
kv after.probes "$(grep -c "coolkprobe_${KILLED}_" $T/kprobe_events)"
kv after.instance "$(ls -d $T/instances/coolkprobe_${KILLED}_* 2>/dev/null | wc -l)"
kv after.all_synth "$(grep -c coolkprobe_ $T/synthetic_events 2>/dev/null || echo 0)"
