"""Constants of the connection code, with the kernel names they stand for."""

MSS_DEFAULT = 536            # TCP_MSS_DEFAULT: peer sent no MSS option (RFC 9293 3.7.1)
MSS_DEFAULT6 = 1280 - 60     # the same on IPv6: IPV6_MIN_MTU - 60 (tcp_v6_connect's mss_clamp)
TSO_MAX = 65536 - 1 - 320    # tcp_xmit_size_goal: GSO_LEGACY_MAX_SIZE - 1 - MAX_TCP_HEADER
MIN_MSS = 88                 # TCP_MIN_MSS
TS_LEN = 12                  # TCPOLEN_TSTAMP_ALIGNED
# SKB_TRUESIZE(advmss + MAX_TCP_HEADER) - advmss on x86-64: MAX_TCP_HEADER 320 plus
# SKB_DATA_ALIGN(sizeof(struct sk_buff)) 256 and SKB_DATA_ALIGN(sizeof(skb_shared_info)) 320
SKB_TRUESIZE_OVERHEAD = 320 + 256 + 320
# tcp_stream_alloc_skb's skb->truesize before data (SKB_TRUESIZE of its MAX_TCP_HEADER head,
# fclone): charged to sk_wmem_queued per skb (tcp_skb_entail); `ss -tm` on linux 6.18 shows 832
TX_SKB_TRUESIZE = 832
PAWS_24DAYS = 24 * 86400     # TCP_PAWS_24DAYS: ts_recent older than this is not trusted
MAX_QUICKACKS = 16           # TCP_MAX_QUICKACKS

# icsk_ack.pending bits (include/net/inet_connection_sock.h)
ACK_SCHED, ACK_TIMER, ACK_PUSHED, ACK_PUSHED2, ACK_NOW = 1, 2, 4, 8, 16
