# Helpers sourced by every scenario (busybox ash).
set -u
T=/sys/kernel/tracing
[ -f /etc/vm.conf ] && . /etc/vm.conf

# kv KEY VALUE: one value for the host to assert on.
kv() { echo "@@@ KV $1=$2"; }

# dump NAME FILE: a whole file for the host (the host strips the framing).
dump() {
    echo "@@@ FILE $1"
    cat "$2"
    echo
    echo "@@@ EOF $1"
}

# fail MESSAGE: the scenario fails here (the host shows its output).
fail() { echo "FAIL: $*"; exit 1; }

# wait_enabled GROUP N: wait until the run's N events are enabled, i.e. the
# probes are live and anything triggered from now on is traced.
wait_enabled() {
    _i=0
    while [ $_i -lt 400 ]; do
        _ok=1
        _e=0
        while [ $_e -lt "$2" ]; do
            [ "$(cat $T/events/$1/f$_e/enable 2>/dev/null)" = 1 ] || _ok=0
            _e=$((_e + 1))
        done
        [ $_ok = 1 ] && return 0
        sleep 0.05
        _i=$((_i + 1))
    done
    fail "events of $1 not enabled after 20s"
}

# ckp_start OUT ARGS...: start coolkprobe in the background, stdout to OUT,
# stderr to OUT.err; sets CKP_PID.
ckp_start() {
    _out=$1
    shift
    coolkprobe "$@" >"$_out" 2>"$_out.err" &
    CKP_PID=$!
}

# ckp_wait: wait for the background coolkprobe, kv its exit code.
ckp_wait() {
    wait $CKP_PID
    echo $?
}

# Our kprobe groups still defined in kprobe_events.
ours() { grep -c 'coolkprobe_' $T/kprobe_events 2>/dev/null || true; }
