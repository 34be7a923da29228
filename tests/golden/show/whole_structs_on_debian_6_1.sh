#!/bin/sh
# coolkprobe: 3 probe(s) in group coolkprobe_<PID>; run as root on the target
#   f0: p tcp_sendmsg c=sk->__sk_common
#     c: a whole struct, member by member: 44 fields c_skc_addrpair .. c_skc_tw_snd_nxt
#   f1: p tcp_v4_connect w=*%0X~(struct sock_common)
#     w: a whole struct, member by member: 44 fields w_skc_addrpair .. w_skc_tw_snd_nxt
#   f2: p tcp_sendmsg s=*sk
#     s: a whole struct, member by member: 126 fields s___sk_common_skc_addrpair .. s_125; 81 more left out (the kernel's limits)
# %N is read from x86_64 registers: the target is another kernel (--arg-fetch argn for $argN)
set -e
T=/sys/kernel/tracing
if [ ! -e "$T/events" ]; then
	if ! mount -t tracefs nodev "$T" 2>/dev/null; then
		T=/sys/kernel/debug/tracing
		[ -e "$T/events" ] || mount -t debugfs nodev /sys/kernel/debug
	fi
fi
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
	[ "$ckp_n" -lt 6 ] || { echo '0' > $T/events/coolkprobe_<PID>/f2/enable; } 2>/dev/null
	[ "$ckp_n" -lt 5 ] || { echo '0' > $T/events/coolkprobe_<PID>/f1/enable; } 2>/dev/null
	[ "$ckp_n" -lt 4 ] || { echo '0' > $T/events/coolkprobe_<PID>/f0/enable; } 2>/dev/null
	[ "$ckp_n" -lt 3 ] || { echo '-:coolkprobe_<PID>/f2' >> $T/kprobe_events; } 2>/dev/null
	[ "$ckp_n" -lt 2 ] || { echo '-:coolkprobe_<PID>/f1' >> $T/kprobe_events; } 2>/dev/null
	[ "$ckp_n" -lt 1 ] || { echo '-:coolkprobe_<PID>/f0' >> $T/kprobe_events; } 2>/dev/null
	echo "coolkprobe: stopped at write $ckp_n of 6; every write of this script is taken back" >&2
	[ "$ckp_rc" -ne 0 ] || ckp_rc=1
	exit "$ckp_rc"
}
trap ckp_undo EXIT
trap 'exit 130' INT TERM HUP
ckp_n=1
echo 'p:coolkprobe_<PID>/f0 tcp_sendmsg c_skc_addrpair=+0(%di):u64 c_skc_daddr=+0(%di):u32 c_skc_rcv_saddr=+0x4(%di):u32 c_skc_hash=+0x8(%di):u32 c_skc_u16hashes=+0x8(%di):u16[2] c_skc_portpair=+0xc(%di):u32 c_skc_dport=+0xc(%di):u16 c_skc_num=+0xe(%di):u16 c_skc_family=+0x10(%di):u16 c_skc_state=+0x12(%di):u8 c_skc_reuse=+0x13(%di):b4@0/8 c_skc_reuseport=+0x13(%di):b1@4/8 c_skc_ipv6only=+0x13(%di):b1@5/8 c_skc_net_refcnt=+0x13(%di):b1@6/8 c_skc_bound_dev_if=+0x14(%di):s32 c_skc_bind_node_next=+0x18(%di):x64 c_skc_bind_node_pprev=+0x20(%di):x64 c_skc_portaddr_node_next=+0x18(%di):x64 c_skc_portaddr_node_pprev=+0x20(%di):x64 c_skc_prot=+0x28(%di):x64 c_skc_net=+0x30(%di):x64 c_skc_v6_daddr_in6_u_u6_addr8=+0x38(%di):u8[16] c_skc_v6_daddr_in6_u_u6_addr16=+0x38(%di):u16[8] c_skc_v6_daddr_in6_u_u6_addr32=+0x38(%di):u32[4] c_24=+0x48(%di):u8[16] c_25=+0x48(%di):u16[8] c_26=+0x48(%di):u32[4] c_skc_cookie=+0x58(%di):s64 c_skc_flags=+0x60(%di):u64 c_skc_listener=+0x60(%di):x64 c_skc_tw_dr=+0x60(%di):x64 c_skc_node_next=+0x68(%di):x64 c_skc_node_pprev=+0x70(%di):x64 c_skc_nulls_node_next=+0x68(%di):x64 c_skc_nulls_node_pprev=+0x70(%di):x64 c_skc_tx_queue_mapping=+0x78(%di):u16 c_skc_rx_queue_mapping=+0x7a(%di):u16 c_skc_incoming_cpu=+0x7c(%di):s32 c_skc_rcv_wnd=+0x7c(%di):u32 c_skc_tw_rcv_nxt=+0x7c(%di):u32 c_skc_refcnt=+0x80(%di):s32 c_skc_rxhash=+0x84(%di):u32 c_skc_window_clamp=+0x84(%di):u32 c_skc_tw_snd_nxt=+0x84(%di):u32' >> $T/kprobe_events
ckp_n=2
echo 'p:coolkprobe_<PID>/f1 tcp_v4_connect w_skc_addrpair=+0(%di):x64 w_skc_daddr=+0(%di):x32 w_skc_rcv_saddr=+0x4(%di):x32 w_skc_hash=+0x8(%di):x32 w_skc_u16hashes=+0x8(%di):x16[2] w_skc_portpair=+0xc(%di):x32 w_skc_dport=+0xc(%di):x16 w_skc_num=+0xe(%di):x16 w_skc_family=+0x10(%di):x16 w_skc_state=+0x12(%di):x8 w_skc_reuse=+0x13(%di):b4@0/8 w_skc_reuseport=+0x13(%di):b1@4/8 w_skc_ipv6only=+0x13(%di):b1@5/8 w_skc_net_refcnt=+0x13(%di):b1@6/8 w_skc_bound_dev_if=+0x14(%di):x32 w_skc_bind_node_next=+0x18(%di):x64 w_skc_bind_node_pprev=+0x20(%di):x64 w_skc_portaddr_node_next=+0x18(%di):x64 w_skc_portaddr_node_pprev=+0x20(%di):x64 w_skc_prot=+0x28(%di):x64 w_skc_net=+0x30(%di):x64 w_skc_v6_daddr_in6_u_u6_addr8=+0x38(%di):x8[16] w_skc_v6_daddr_in6_u_u6_addr16=+0x38(%di):x16[8] w_skc_v6_daddr_in6_u_u6_addr32=+0x38(%di):x32[4] w_24=+0x48(%di):x8[16] w_25=+0x48(%di):x16[8] w_26=+0x48(%di):x32[4] w_skc_cookie=+0x58(%di):x64 w_skc_flags=+0x60(%di):x64 w_skc_listener=+0x60(%di):x64 w_skc_tw_dr=+0x60(%di):x64 w_skc_node_next=+0x68(%di):x64 w_skc_node_pprev=+0x70(%di):x64 w_skc_nulls_node_next=+0x68(%di):x64 w_skc_nulls_node_pprev=+0x70(%di):x64 w_skc_tx_queue_mapping=+0x78(%di):x16 w_skc_rx_queue_mapping=+0x7a(%di):x16 w_skc_incoming_cpu=+0x7c(%di):x32 w_skc_rcv_wnd=+0x7c(%di):x32 w_skc_tw_rcv_nxt=+0x7c(%di):x32 w_skc_refcnt=+0x80(%di):x32 w_skc_rxhash=+0x84(%di):x32 w_skc_window_clamp=+0x84(%di):x32 w_skc_tw_snd_nxt=+0x84(%di):x32' >> $T/kprobe_events
ckp_n=3
echo 'p:coolkprobe_<PID>/f2 tcp_sendmsg s___sk_common_skc_addrpair=+0(%di):u64 s___sk_common_skc_daddr=+0(%di):u32 s___sk_common_skc_rcv_saddr=+0x4(%di):u32 s___sk_common_skc_hash=+0x8(%di):u32 s___sk_common_skc_u16hashes=+0x8(%di):u16[2] s___sk_common_skc_portpair=+0xc(%di):u32 s___sk_common_skc_dport=+0xc(%di):u16 s___sk_common_skc_num=+0xe(%di):u16 s___sk_common_skc_family=+0x10(%di):u16 s___sk_common_skc_state=+0x12(%di):u8 s___sk_common_skc_reuse=+0x13(%di):b4@0/8 s___sk_common_skc_reuseport=+0x13(%di):b1@4/8 s___sk_common_skc_ipv6only=+0x13(%di):b1@5/8 s___sk_common_skc_net_refcnt=+0x13(%di):b1@6/8 s___sk_common_skc_bound_dev_if=+0x14(%di):s32 s___sk_common_skc_bind_node_next=+0x18(%di):x64 s_16=+0x20(%di):x64 s_17=+0x18(%di):x64 s_18=+0x20(%di):x64 s___sk_common_skc_prot=+0x28(%di):x64 s___sk_common_skc_net=+0x30(%di):x64 s_21=+0x38(%di):u8[16] s_22=+0x38(%di):u16[8] s_23=+0x38(%di):u32[4] s_24=+0x48(%di):u8[16] s_25=+0x48(%di):u16[8] s_26=+0x48(%di):u32[4] s___sk_common_skc_cookie=+0x58(%di):s64 s___sk_common_skc_flags=+0x60(%di):u64 s___sk_common_skc_listener=+0x60(%di):x64 s___sk_common_skc_tw_dr=+0x60(%di):x64 s___sk_common_skc_node_next=+0x68(%di):x64 s___sk_common_skc_node_pprev=+0x70(%di):x64 s_33=+0x68(%di):x64 s_34=+0x70(%di):x64 s_35=+0x78(%di):u16 s_36=+0x7a(%di):u16 s___sk_common_skc_incoming_cpu=+0x7c(%di):s32 s___sk_common_skc_rcv_wnd=+0x7c(%di):u32 s___sk_common_skc_tw_rcv_nxt=+0x7c(%di):u32 s___sk_common_skc_refcnt=+0x80(%di):s32 s___sk_common_skc_rxhash=+0x84(%di):u32 s___sk_common_skc_window_clamp=+0x84(%di):u32 s___sk_common_skc_tw_snd_nxt=+0x84(%di):u32 s_sk_rx_dst=+0x88(%di):x64 s_sk_rx_dst_ifindex=+0x90(%di):s32 s_sk_rx_dst_cookie=+0x94(%di):u32 s_47=+0x98(%di):s32 s_48=+0x98(%di):u8 s_49=+0x99(%di):u8 s_50=+0x98(%di):u16 s_51=+0x9a(%di):u16 s_sk_lock_owned=+0x9c(%di):s32 s_53=+0xa0(%di):s32 s_54=+0xa0(%di):u8 s_55=+0xa1(%di):u8 s_56=+0xa0(%di):u16 s_57=+0xa2(%di):u16 s_sk_lock_wq_head_next=+0xa8(%di):x64 s_sk_lock_wq_head_prev=+0xb0(%di):x64 s_sk_drops=+0xb8(%di):s32 s_sk_rcvlowat=+0xbc(%di):s32 s_sk_error_queue_next=+0xc0(%di):x64 s_sk_error_queue_prev=+0xc8(%di):x64 s_sk_error_queue_list_next=+0xc0(%di):x64 s_sk_error_queue_list_prev=+0xc8(%di):x64 s_sk_error_queue_qlen=+0xd0(%di):u32 s_67=+0xd4(%di):s32 s_68=+0xd4(%di):u8 s_69=+0xd5(%di):u8 s_70=+0xd4(%di):u16 s_71=+0xd6(%di):u16 s_sk_receive_queue_next=+0xd8(%di):x64 s_sk_receive_queue_prev=+0xe0(%di):x64 s_sk_receive_queue_list_next=+0xd8(%di):x64 s_sk_receive_queue_list_prev=+0xe0(%di):x64 s_sk_receive_queue_qlen=+0xe8(%di):u32 s_77=+0xec(%di):s32 s_78=+0xec(%di):u8 s_79=+0xed(%di):u8 s_80=+0xec(%di):u16 s_81=+0xee(%di):u16 s_sk_backlog_rmem_alloc=+0xf0(%di):s32 s_sk_backlog_len=+0xf4(%di):s32 s_sk_backlog_head=+0xf8(%di):x64 s_sk_backlog_tail=+0x100(%di):x64 s_sk_forward_alloc=+0x108(%di):s32 s_sk_reserved_mem=+0x10c(%di):u32 s_sk_ll_usec=+0x110(%di):u32 s_sk_napi_id=+0x114(%di):u32 s_sk_rcvbuf=+0x118(%di):s32 s_sk_disconnects=+0x11c(%di):s32 s_sk_filter=+0x120(%di):x64 s_sk_wq=+0x128(%di):x64 s_sk_wq_raw=+0x128(%di):x64 s_sk_policy=+0x130(%di):x64[2] s_sk_dst_cache=+0x140(%di):x64 s_sk_omem_alloc=+0x148(%di):s32 s_sk_sndbuf=+0x14c(%di):s32 s_sk_wmem_queued=+0x150(%di):s32 s_sk_wmem_alloc=+0x154(%di):s32 s_sk_tsq_flags=+0x158(%di):u64 s_sk_send_head=+0x160(%di):x64 s_tcp_rtx_queue=+0x160(%di):x64 s_sk_write_queue_next=+0x168(%di):x64 s_sk_write_queue_prev=+0x170(%di):x64 s_sk_write_queue_list_next=+0x168(%di):x64 s_sk_write_queue_list_prev=+0x170(%di):x64 s_sk_write_queue_qlen=+0x178(%di):u32 s_109=+0x17c(%di):s32 s_110=+0x17c(%di):u8 s_111=+0x17d(%di):u8 s_112=+0x17c(%di):u16 s_113=+0x17e(%di):u16 s_sk_peek_off=+0x180(%di):s32 s_sk_write_pending=+0x184(%di):s32 s_sk_dst_pending_confirm=+0x188(%di):u32 s_sk_pacing_status=+0x18c(%di):u32 s_sk_sndtimeo=+0x190(%di):s64 s_sk_timer_entry_next=+0x198(%di):x64 s_sk_timer_entry_pprev=+0x1a0(%di):x64 s_sk_timer_expires=+0x1a8(%di):u64 s_sk_timer_function=+0x1b0(%di):symbol s_sk_timer_flags=+0x1b8(%di):u32 s_124=+0x198(%di):x64 s_125=+0x1a0(%di):x64' >> $T/kprobe_events
ckp_n=4
echo '1' > $T/events/coolkprobe_<PID>/f0/enable
ckp_n=5
echo '1' > $T/events/coolkprobe_<PID>/f1/enable
ckp_n=6
echo '1' > $T/events/coolkprobe_<PID>/f2/enable
trap - EXIT INT TERM HUP
# read the events:
#   cat $T/trace_pipe
# remove the probes:
#   echo '0' > $T/events/coolkprobe_<PID>/f0/enable
#   echo '0' > $T/events/coolkprobe_<PID>/f1/enable
#   echo '0' > $T/events/coolkprobe_<PID>/f2/enable
#   echo '-:coolkprobe_<PID>/f0' >> $T/kprobe_events
#   echo '-:coolkprobe_<PID>/f1' >> $T/kprobe_events
#   echo '-:coolkprobe_<PID>/f2' >> $T/kprobe_events
