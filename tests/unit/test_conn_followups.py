"""Follow-ups found by integration runs: ts_recent never moves back (tcp_replace_ts_recent),
HyStart and idle restart wired to the connection, receive-buffer autotuning
(tcp_rcv_space_adjust) and tail loss probes (tcp_schedule_loss_probe). Fake clock throughout."""
from drill import payload
from test_conn_delack import acts, established


# ---------------------------------------------------------------- ts_recent (RFC 7323 4.3)

def test_tsval_one_tick_older_passes_paws_but_does_not_lower_ts_recent():
    """PAWS allows a TSval 1 below ts_recent (TCP_PAWS_WINDOW); tcp_paws_check(.., 0) in
    tcp_replace_ts_recent then refuses to store it: the next ACK still echoes 300."""
    st, c, d = established()
    d.run("""
0.100 < P. 1:1001(1000) ack 1 win 513 <TS val 300 ecr 0>
0.100 > . 1:1(0) ack 1001 win * <TS val * ecr 300>
0.200 < P. 1001:2001(1000) ack 1 win 513 <TS val 299 ecr 0>
0.200 > . 1:1(0) ack 2001 win * <TS val * ecr 300>
0.300 < . 2001:2001(0) ack 1 win 513 <TS val 299 ecr 0>
""", acts(c), settle=0.5)
    assert c.ts_recent == 300
    assert c.bytes_received == 2000
    assert st.counters.get("TcpExtPAWSEstab", 0) == 0


def test_tsval_two_ticks_older_is_a_paws_drop():
    st, c, d = established()
    d.run("""
0.100 < P. 1:1001(1000) ack 1 win 513 <TS val 300 ecr 0>
0.100 > . 1:1(0) ack 1001 win * <TS val * ecr 300>
0.200 < P. 1001:2001(1000) ack 1 win 513 <TS val 298 ecr 0>
0.200 > . 1:1(0) ack 1001 win * <TS val * ecr 300>
""", acts(c), settle=0.5)
    assert st.counters["TcpExtPAWSEstab"] == 1
    assert c.bytes_received == 1000 and c.ts_recent == 300


def test_segment_beyond_rcv_wup_does_not_update_ts_recent():
    """Out-of-order data (seq > rcv_wup) is acceptable but its TSval is not remembered; the
    in-order segment that covers rcv_wup is."""
    st, c, d = established()
    d.run("""
0.100 < P. 2001:3001(1000) ack 1 win 513 <TS val 500 ecr 0>
0.100 > . 1:1(0) ack 1 win * <TS val * ecr 100,sack 2001:3001>
0.200 < P. 1:1001(1000) ack 1 win 513 <TS val 400 ecr 0>
0.200 > . 1:1(0) ack 1001 win * <TS val * ecr 400,sack 2001:3001>
""", acts(c), settle=0.5)
    assert c.ts_recent == 400
