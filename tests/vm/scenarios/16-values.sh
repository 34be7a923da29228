# Values by name, live (README, "Values by name"): an enum parameter
# (hrtimer_nanosleep's mode under busybox sleep), an enum member (struct
# socket's state at a send on a connected TCP socket), a kernel
# function's errno return (do_sys_openat2 of a missing file), a code
# pointer (a TCP socket's sk_data_ready), bools (lo's needs_free_netdev,
# a msghdr bitfield); in text, in JSON (the number beside each name), and
# with --raw (numbers only); a letter gives the number alone. Bytes
# (README, "Bytes and strings"): skb->data with a letter is the pointer
# (head + network_header at ip_rcv), lo's perm_addr 32 zero bytes. Whole
# structs (README, "Whole structs"): the client's struct sock_common at
# its send, by member (`sk->__sk_common`, filtered by its leaves' paths
# and an enumerator name) and through a cast (`*%0X~`); a whole struct
# sock, more than a probe takes, cut to the kernel's limits (`*sk`).
TRIG='true </tmp/ckp-values-missing 2>&-; sleep 0.05; echo hello | nc -w 1 127.0.0.1 5557'
for how in text json raw; do
    case $how in
    json) opt=--json ;;
    raw) opt=--raw ;;
    *) opt= ;;
    esac
    rm -f /tmp/nc-values.out
    nc_listen 5557 /tmp/nc-values.out
    NC=$NC_PID
    trigger_prepare t "$TRIG"
    kv $how.trigger_pid $TRIG_PID
    ckp_start $how 8 $opt \
        "p hrtimer_nanosleep mode=mode modex=%1X f:common_pid==$TRIG_PID || comm==\"sleep\"" \
        "r do_sys_openat2 ret=\$retval f:common_pid==$TRIG_PID" \
        "p inet_sendmsg st=sock->state stx=%0X->state ctl=msg->msg_control_is_user f:comm==\"nc\"" \
        "p tcp_sendmsg ready=sk->sk_data_ready readyx=%0X->sk_data_ready f:comm==\"nc\"" \
        "p ip_rcv d=%0X~(struct sk_buff)->data h=%0X~(struct sk_buff)->head nh=%0U~(struct sk_buff)->network_header pa=%0X~(struct sk_buff)->dev->perm_addr free=%0~(struct sk_buff)->dev->needs_free_netdev" \
        "p tcp_sendmsg c=sk->__sk_common f:comm==\"nc\" && c.skc_family==AF_INET && c.skc_dport==46357" \
        "p tcp_sendmsg w=*%0X~(struct sock_common) f:comm==\"nc\"" \
        "p tcp_sendmsg s=*sk f:comm==\"nc\""
    trigger_go t
    wait_nonempty /tmp/nc-values.out
    kill $NC 2>/dev/null
    wait $NC 2>/dev/null
    kv $how.nc_received "$(cat /tmp/nc-values.out)"
    if [ $how = json ]; then
        ckp_stop $how '"event":"f3"' 1
    else
        ckp_stop $how ' f3: ' 1
    fi
done
