"""The zero-window MIB counters as ``tcp_select_window`` bumps them, driven through a
connection whose application stops reading (SO_RCVBUF 8192: a 7240-byte window, no scaling)."""
from test_conn_close import seg
from test_conn_delack import established
from tuntcp.wire.segment import ACK, PSH

NAMES = ("TcpExtTCPWantZeroWindowAdv", "TcpExtTCPToZeroWindowAdv", "TcpExtTCPFromZeroWindowAdv")


def test_zero_window_closed_and_reopened_counts_like_tcp_select_window():
    st, c = established(rcvbuf=8192)
    zw = lambda: tuple(st.counters[n] for n in NAMES)       # noqa: E731
    assert c.win.rcv_wnd == 7240 and c.rcv_wscale == 0
    t = 0.1
    for i in range(7):                                    # 7000 bytes, nothing read
        st.receive_segment(seg(ACK | PSH, c.rcv_nxt, 1, data=bytes(1000), ts=600 + i), t)
        t += 0.001
    assert [s.window for s in st.take_output()] == [6240, 5240, 4240]
    assert zw() == (0, 0, 0)
    # the delayed ACK: __tcp_select_window wants 0 (free space below one MSS) but the 240
    # bytes left of the last offer may not be taken back: TCPWantZeroWindowAdv, field 240
    t = st.next_deadline()
    st.on_timers(t)
    assert [(s.window, s.ack) for s in st.take_output()] == [(240, 7001)]
    assert zw() == (1, 0, 0)
    # the peer fills those 240 bytes: the next ACK advertises 0 (TCPToZeroWindowAdv)
    st.receive_segment(seg(ACK | PSH, c.rcv_nxt, 1, data=bytes(240), ts=700), t)
    t = st.next_deadline()
    st.on_timers(t)
    assert [(s.window, s.ack) for s in st.take_output()] == [(0, 7241)]
    assert zw() == (1, 1, 0)
    # data on the closed window is dropped and re-ACKed with 0: no second TCPToZeroWindowAdv
    st.receive_segment(seg(ACK | PSH, c.rcv_nxt, 1, data=bytes(100), ts=701), t)
    assert [s.window for s in st.take_output()] == [0]
    assert zw() == (1, 1, 0) and st.counters["TcpExtTCPZeroWindowDrop"] == 1
    # the application reads everything: the window update leaves 0 (TCPFromZeroWindowAdv)
    assert len(c.recv(1 << 20, t + 0.01)) == 7240
    assert [s.window for s in st.take_output()] == [6000]
    assert zw() == (1, 1, 1)
