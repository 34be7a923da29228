# Filters on packet fields, with literals translated to what the
# kernel compares (README, "Packet tracing"): `ip_src==127.0.0.1` on the raw address,
# `b16_dport==5555` on the unswapped port. Pings and a TCP exchange on
# loopback, plus traffic that must not pass (TCP on port 5557).
IP='$(struct iphdr)l3'
nc_listen 5555 /tmp/nc-5555.out
NC1=$NC_PID
nc_listen 5557 /tmp/nc-5557.out
NC2=$NC_PID
ckp_start run 3 \
    "p ip_rcv proto=%0U~$IP->protocol ip_src=%0~$IP->saddr f:ip_src==127.0.0.1 && proto==1" \
    "p ip_rcv proto=%0U~$IP->protocol ip_dst=%0~$IP->daddr f:ip_dst!=127.0.0.1" \
    "p tcp_v4_rcv b16_dport=%0~\$(struct tcphdr)l4->dest B16_sport=%0~\$(struct tcphdr)l4->source f:b16_dport==5555"
ping -c 2 -i 0.2 127.0.0.1 >/dev/null 2>&1 || fail "ping failed"
echo to-5557 | nc -w 1 127.0.0.1 5557
echo to-5555 | nc -w 1 127.0.0.1 5555
wait_nonempty /tmp/nc-5557.out /tmp/nc-5555.out
kill $NC1 $NC2 2>/dev/null
wait $NC1 $NC2 2>/dev/null
kv got_5555 "$(cat /tmp/nc-5555.out)"
kv got_5557 "$(cat /tmp/nc-5557.out)"
ckp_stop run ' f2: ' 3
