# Helpers sourced by every scenario (busybox ash). Scenario files run in
# /tmp, one after another, in the same VM.
set -u
T=/sys/kernel/tracing
[ -f /etc/vm.conf ] && . /etc/vm.conf

# has OPTION: the kernel was built with CONFIG_OPTION (y or m), as vm.conf
# says (vmconf.sh; scenario 14 checks those facts on the running kernel).
has() {
    eval "_v=\${CONFIG_$1:-n}"
    [ "$_v" != n ]
}

# kv KEY VALUE: one value for the host to assert on.
kv() { echo "@@@ KV $1=$2"; }

# dump NAME FILE: a whole file for the host.
dump() {
    echo "@@@ FILE $1"
    cat "$2"
    echo
    echo "@@@ EOF $1"
}

# fail MESSAGE: the scenario fails here (the host shows its output).
fail() {
    echo "FAIL: $*"
    exit 1
}

# trigger_prepare NAME COMMANDS: start a shell that runs COMMANDS once
# trigger_go NAME is called. Its pid is TRIG_PID (and $$ inside COMMANDS);
# files opened by its builtins' redirections (`true </tmp/x`) are opened by
# that pid, so probes can filter on it. The shell is parked before any probe
# exists: it opens its fifo read-write (never blocks), says so, and waits.
trigger_prepare() {
    rm -f /tmp/go.$1 /tmp/ready.$1
    mkfifo /tmp/go.$1
    sh -c "exec 3<>/tmp/go.$1 && touch /tmp/ready.$1 && read _ <&3 && exec 3<&- && $2" >/tmp/trig.$1.out 2>&1 &
    TRIG_PID=$!
    _i=0
    while [ ! -e /tmp/ready.$1 ]; do
        _i=$((_i + 1))
        [ $_i -gt 200 ] && fail "trigger $1 never got ready"
        sleep 0.05
    done
}

# trigger_go NAME: let the trigger run, and wait for it.
trigger_go() {
    echo go >/tmp/go.$1
    wait $TRIG_PID || fail "trigger $1 failed: $(cat /tmp/trig.$1.out)"
}

# ckp_start NAME NPROBES ARGS...: run `coolkprobe ARGS` in the background
# (stdout in /tmp/NAME.out, stderr in /tmp/NAME.err; pid in CKP_PID) and wait
# until its NPROBES events (group coolkprobe_PID_PIDNS, events f0..) are enabled,
# so that whatever is triggered from then on is traced.
ckp_start() {
    _name=$1
    _n=$2
    shift 2
    coolkprobe "$@" >/tmp/$_name.out 2>/tmp/$_name.err &
    CKP_PID=$!
    _i=0
    while :; do
        _ok=1
        _e=0
        while [ $_e -lt $_n ]; do
            # Enabled at the top level or in a tracefs instance of its own.
            cat $T/events/coolkprobe_${CKP_PID}_*/f$_e/enable \
                $T/instances/*/events/coolkprobe_${CKP_PID}_*/f$_e/enable 2>/dev/null | grep -q 1 || _ok=0
            _e=$((_e + 1))
        done
        [ $_ok = 1 ] && return 0
        if ! kill -0 $CKP_PID 2>/dev/null; then
            wait $CKP_PID
            echo "coolkprobe $* exited with $? before its events were enabled"
            dump $_name.err /tmp/$_name.err
            fail "coolkprobe did not start"
        fi
        _i=$((_i + 1))
        [ $_i -gt 600 ] && fail "events of coolkprobe_$CKP_PID not enabled after 30s"
        sleep 0.05
    done
}

# ckp_stop NAME [PATTERN COUNT]: wait (up to 10s) until the output holds
# COUNT lines matching PATTERN, stop coolkprobe with SIGTERM, and report its
# output, stderr, exit code and what it left in kprobe_events.
ckp_stop() {
    if [ $# -ge 3 ]; then
        _i=0
        while [ "$(grep -c -e "$2" /tmp/$1.out)" -lt "$3" ] && [ $_i -lt 200 ]; do
            sleep 0.05
            _i=$((_i + 1))
        done
    fi
    kill -TERM $CKP_PID 2>/dev/null
    ckp_wait $1
}

# ckp_wait NAME: wait for a coolkprobe that ends by itself (-c, -d, a
# signal sent elsewhere); killed after 30s. Reports as ckp_stop does.
ckp_wait() {
    (sleep 30 && kill -KILL $CKP_PID 2>/dev/null && echo "coolkprobe $CKP_PID hung: killed") &
    _dog=$!
    wait $CKP_PID
    _rc=$?
    kill $_dog 2>/dev/null
    wait $_dog 2>/dev/null
    kv $1.rc $_rc
    kv $1.pid $CKP_PID
    kv $1.left "$(grep -c "coolkprobe_${CKP_PID}_" $T/kprobe_events)"
    kv $1.left_instances "$(ls -d $T/instances/coolkprobe_${CKP_PID}_* 2>/dev/null | wc -l)"
    dump $1.out /tmp/$1.out
    dump $1.err /tmp/$1.err
}

# wait_listening PORT...: wait (up to 20s for each) until a TCP socket
# listens on each PORT (state 0A in /proc/net/tcp or tcp6), so that a client run
# next is not refused: a fixed sleep after `nc -l &` was too short under
# emulation on a loaded host (5.10's 16-values saw a client and no data).
wait_listening() {
    for _p in "$@"; do
        _hex=$(printf '%04X' "$_p")
        _i=0
        while ! grep -qs ":$_hex [0-9A-F]*:0000 0A" /proc/net/tcp /proc/net/tcp6 && [ $_i -lt 400 ]; do
            sleep 0.05
            _i=$((_i + 1))
        done
    done
}

# nc_listen PORT FILE: a listening nc in the background (its pid in
# NC_PID) writing what it receives to FILE, with a stdin that never ends (a
# FIFO it holds open itself), once it listens. busybox nc sends FIN as soon
# as its stdin ends; a client whose own stdin comes later then reads EOF
# and exits without sending (5.10's 10-packet-filters and 16-values saw a
# whole connection and no data).
nc_listen() {
    [ -p /tmp/ckp-nc.in ] || mkfifo /tmp/ckp-nc.in
    nc -l -p "$1" >"$2" 2>&1 <>/tmp/ckp-nc.in &
    NC_PID=$!
    wait_listening "$1"
}

# wait_nonempty FILE...: wait (up to 30s for each) until every FILE has
# content, e.g. what a listening `nc` received: under emulation, with the
# other kernels of the matrix booted beside it on a loaded host, the
# listener may be scheduled seconds after the client has returned (6.1's
# 10-packet-filters saw all four segments arrive and an empty file after a
# shared 5s budget). It returns as soon as the files are written.
wait_nonempty() {
    for _f in "$@"; do
        _i=0
        while [ ! -s "$_f" ] && [ $_i -lt 600 ]; do
            sleep 0.05
            _i=$((_i + 1))
        done
    done
}
