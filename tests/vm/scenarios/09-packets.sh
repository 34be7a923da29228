# Packet expressions on live loopback traffic. Two pings to
# 127.0.0.1 (busybox ping: raw socket, echo id = its pid, seq = 0, 1 in
# network order), seen at ip_rcv (l3) and icmp_rcv (l4); then a TCP exchange
# on port 5555 (busybox nc) and a UDP datagram to port 5556 (a tftp request;
# nobody answers) seen at tcp_v4_rcv and udp_rcv through B16_/b16_ names.
# Filters on these names are 10-packet-filters.
IP='$(struct iphdr)l3'
ICMP='$(struct icmphdr)l4'
ckp_start run 2 \
    "p ip_rcv proto=%0U~$IP->protocol ip_src=%0~$IP->saddr ip_dst=%0~$IP->daddr itype=%0U~\$(struct icmphdr)l3->type" \
    "p icmp_rcv type=%0U~$ICMP->type code=%0U~$ICMP->code b16_id=%0~$ICMP->un.echo.id b16_seq=%0~$ICMP->un.echo.sequence"
ping -c 2 -i 0.2 127.0.0.1 >/tmp/ping.out 2>&1 &
PING_PID=$!
wait $PING_PID || { cat /tmp/ping.out; fail "ping failed"; }
kv ping_pid $PING_PID
dump ping /tmp/ping.out
ckp_stop run ' f1: ' 4

nc_listen 5555 /tmp/nc-tcp.out
NC_TCP=$NC_PID
ckp_start l4 2 \
    "p tcp_v4_rcv B16_sport=%0~\$(struct tcphdr)l4->source B16_dport=%0~\$(struct tcphdr)l4->dest b16_dport=%0~\$(struct tcphdr)l4->dest" \
    "p udp_rcv B16_sport=%0~\$(struct udphdr)l4->source b16_dport=%0~\$(struct udphdr)l4->dest b16_len=%0~\$(struct udphdr)l4->len"
echo hello-tcp | nc -w 1 127.0.0.1 5555
timeout 1 tftp -g -r ckp-udp 127.0.0.1 5556 >/dev/null 2>&1
wait_nonempty /tmp/nc-tcp.out
kill $NC_TCP 2>/dev/null
wait $NC_TCP 2>/dev/null
kv tcp_received "$(cat /tmp/nc-tcp.out)"
ckp_stop l4 ' f1: ' 1
