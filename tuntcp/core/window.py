"""Receive-window arithmetic of Linux TCP: buffer sizes, window scale choice, the advertised window.

Everything here is pure: the profile (``tuntcp.profiles``) is passed in and supplies every
version difference. Each function names the kernel function whose *behaviour* it reproduces;
the formulas were checked against kernel sources found with the project's code search
(``tcp_select_initial_window`` in 3.x, 4.9, >= 4.19 and the 2024 form; ``__tcp_select_window``,
``tcp_select_window``, ``tcp_grow_window``/``__tcp_grow_window``, ``tcp_init_buffer_space``
in 3.x, 5.x and 6.x copies; ``SOCK_MIN_RCVBUF`` in include/net/sock.h;
``tcp_event_data_recv`` growing only for segments of >= 128 bytes). Verified beyond the
reference: the 10-segment (3.10, TCP_DEFAULT_INIT_RCVWND) and 20-segment (4.9,
``tcp_default_init_rwnd`` = 2 * TCP_INIT_CWND) initial-window caps that §5.3 marks [mem], and
that the 64 KiB initial-window cap went away in May 2024 (378979e94e95), not 2026.
The window selection and growth follow the 4.x-6.x form for every profile; 3.10 differs in
details not modelled (its ``tcp_grow_window`` capped at window_clamp without the 2 * len floor;
whether its ``__tcp_select_window`` had the round_down / "below 1/16" zero-window rule was not
checked). None of this changes the worked example.

Units: every window and buffer is in bytes; the only scaled value is the 16-bit header field
that :meth:`RecvWindow.select` returns.
"""
from __future__ import annotations

from .. import mib

import functools
from collections import deque
from collections.abc import Mapping

from .seq import HALF, MASK

TCP_MAX_WSCALE = 14            # RFC 7323 limit, include/net/tcp.h
MAX_TCP_WINDOW = 32767         # tcp_workaround_signed_windows cap
TCPOLEN_TSTAMP_ALIGNED = 12    # the timestamp option as sent on every segment
TCP_MSS_DEFAULT = 536
TCP_MIN_MSS = 88
TCP_DEFAULT_INIT_RCVWND_MSS = 1460   # the "mss > 1460" cut-off of the old initial-window caps

# x86-64 sizes: SKB_DATA_ALIGN(sizeof(struct sk_buff)) = 256,
# SKB_DATA_ALIGN(sizeof(struct skb_shared_info)) = 320, NET_SKB_PAD = 64.
_SKB_STRUCT = 256
_SKB_SHINFO = 320
_NET_SKB_PAD = 64
_IP_TCP_TS_HDR = 20 + 32       # IPv4 + TCP with the timestamp option: what sits in the head
# include/net/sock.h (>= 3.12): TCP_SKB_MIN_TRUESIZE = 2048 + SKB_DATA_ALIGN(sizeof(sk_buff)).
# 3.10 used 256 / 2048; the difference only matters for absurd SO_RCVBUF values.
TCP_SKB_MIN_TRUESIZE = 2048 + _SKB_STRUCT
SOCK_MIN_RCVBUF = TCP_SKB_MIN_TRUESIZE          # 2304
SOCK_MIN_SNDBUF = 2 * TCP_SKB_MIN_TRUESIZE      # 4608
_INT_MAX = (1 << 31) - 1


class WindowError(ValueError):
    """A user mistake in a buffer size (reported without a traceback)."""


def _int_arg(name: str, val) -> int:
    if isinstance(val, bool) or not isinstance(val, int):
        raise WindowError(f"{name} wants an integer number of bytes, got {val!r}")
    return val


def _set_buf(val: int, limit: int, force: bool, floor: int) -> int:
    if force:
        val = max(val, 0)                      # SO_*BUFFORCE: no sysctl limit, negatives -> 0
    elif val < 0 or val > limit:
        val = limit                            # min_t(u32, val, max): a negative int is huge
    val = min(val, _INT_MAX // 2)              # val * 2 must fit an int
    return max(2 * val, floor)


def sock_set_rcvbuf(profile: Mapping, val: int, force: bool = False) -> int:
    """``setsockopt(SO_RCVBUF / SO_RCVBUFFORCE)`` -> the new ``sk_rcvbuf``.

    Mirrors ``sock_setsockopt`` + ``__sock_set_rcvbuf`` (net/core/sock.c): the value is first
    limited to ``net.core.rmem_max`` (unless forced), then doubled to leave room for skb
    overhead, and never below ``SOCK_MIN_RCVBUF``. The caller also sets SOCK_RCVBUF_LOCK.
    """
    val = _int_arg("SO_RCVBUF", val)
    return _set_buf(val, profile["net.core.rmem_max"], force, SOCK_MIN_RCVBUF)


def sock_set_sndbuf(profile: Mapping, val: int, force: bool = False) -> int:
    """``setsockopt(SO_SNDBUF / SO_SNDBUFFORCE)`` -> the new ``sk_sndbuf``.

    ``sock_setsockopt`` + ``__sock_set_sndbuf``: limited by ``net.core.wmem_max`` unless forced,
    doubled, floor ``SOCK_MIN_SNDBUF``. The caller also sets SOCK_SNDBUF_LOCK.
    """
    val = _int_arg("SO_SNDBUF", val)
    return _set_buf(val, profile["net.core.wmem_max"], force, SOCK_MIN_SNDBUF)


def win_from_space(profile: Mapping, space: int) -> int:
    """How much of ``space`` buffer bytes may be offered as window (``tcp_win_from_space``).

    ``model.win_from_space == "adv_win_scale"`` (<= 6.5): with s = ``tcp_adv_win_scale``,
    ``space - (space >> s)`` for s > 0 and ``space >> -s`` otherwise (s = 1: half the buffer).
    ``"scaling_ratio"`` (>= 6.6, dfa2f0483360): ``space * ratio >> 8`` with the profile's
    ``model.scaling_ratio``, the value a new socket starts with (``TCP_DEFAULT_SCALING_RATIO``).
    A connection's :class:`RecvWindow` then adapts its own ratio from len/truesize
    (``model.scaling_ratio_adapt``; see :meth:`RecvWindow.measure_ratio`).
    """
    mode = profile["model.win_from_space"]
    if mode == "scaling_ratio":
        return (space * profile["model.scaling_ratio"]) >> 8
    s = profile["net.ipv4.tcp_adv_win_scale"]
    return space >> -s if s <= 0 else space - (space >> s)


_WIN_FNS: dict = {}


def _win_fn(profile: Mapping, ratio: int = 0):
    """win_from_space with the profile's knobs bound (RecvWindow runs it per segment); one
    function per knob value, shared by every connection (a closure costs 240 bytes).
    ``ratio`` (scaling_ratio profiles): a connection's own adapted ratio."""
    if profile["model.win_from_space"] == "scaling_ratio":
        key = ("ratio", ratio or profile["model.scaling_ratio"])
    else:
        key = ("adv", profile["net.ipv4.tcp_adv_win_scale"])
    fn = _WIN_FNS.get(key)
    if fn is None:
        fn = _WIN_FNS[key] = _make_win_fn(*key)
    return fn


def _make_win_fn(mode: str, v: int):
    if mode == "ratio":
        return lambda space: (space * v) >> 8
    if v <= 0:
        return lambda space: space >> -v
    return lambda space: space - (space >> v)


def full_space(profile: Mapping, rcvbuf: int) -> int:
    """``tcp_full_space``: the window the whole receive buffer is worth."""
    return win_from_space(profile, rcvbuf)


def synack_window_field(rcv_wnd: int) -> int:
    """The SYN-ACK window field, never scaled: ``min(rcv_wnd, 65535)`` (``tcp_make_synack``)."""
    return min(rcv_wnd, 65535)


def select_initial_window(profile: Mapping, space: int, mss: int, window_clamp: int,
                          wscale_ok: bool, init_rcv_wnd: int = 0) -> tuple[int, int, int]:
    """``tcp_select_initial_window`` -> ``(rcv_wnd, window_clamp, rcv_wscale)``.

    * ``window_clamp == 0`` means "no clamp", i.e. the largest scaled window 65535 << 14.
    * The offer is ``min(clamp, space)`` rounded down to a multiple of ``mss``.
    * Initial ``rcv_wnd`` by version (``model.init_rcv_wnd_segs``):
      - 10 (3.10) / 20 (4.9): no 64 KiB cap, but when ``mss > 1 << rcv_wscale`` it is limited
        to ``init_rcv_wnd`` (route ``initrwnd``) or that many segments
        (``max(1460 * segs // mss, 2)`` segments when mss > 1460; TCP_DEFAULT_INIT_RCVWND in
        3.10, ``tcp_default_init_rwnd`` in 4.9 - verified in 3.x/4.9 sources).
      - 0 (>= 4.19, a337531b942b): ``min(space, 65535)``, and ``init_rcv_wnd * mss`` if set.
        The 64 KiB cap was removed again by 378979e94e95 ("tcp: remove 64 KByte limit for
        initial tp->rcv_wnd value", May 2024, v6.10; stable 6.9/6.6/6.1 in June 2024);
        profiles select that with ``model.init_rcv_wnd_u16_cap = False`` (absent = capped).
        The SYN-ACK field stays at most 65535 (:func:`synack_window_field`).
      ``net.ipv4.tcp_workaround_signed_windows`` (absent = 0) caps the offer at 32767.
    * Window scale (only if ``wscale_ok`` and ``net.ipv4.tcp_window_scaling``): from
      ``min(max(space, tcp_rmem[2], rmem_max), clamp)`` the shift ``ilog2 - 15`` clamped to
      0..14 (the same as the pre-4.19 "halve until <= 65535" loop). 3.10 left ``space`` out of
      the max; that only differs when SO_RCVBUFFORCE exceeds both sysctls.
    * The clamp is lowered to ``65535 << rcv_wscale``.
    """
    space = max(space, 0)
    if window_clamp == 0:
        window_clamp = 65535 << TCP_MAX_WSCALE
    space = min(window_clamp, space)
    if space > mss:
        space = (space // mss) * mss

    segs = profile["model.init_rcv_wnd_segs"]
    if profile.get("net.ipv4.tcp_workaround_signed_windows", 0):
        rcv_wnd = min(space, MAX_TCP_WINDOW)
    elif segs == 0 and profile.get("model.init_rcv_wnd_u16_cap", True):
        rcv_wnd = min(space, 65535)
    else:
        rcv_wnd = space
    if segs == 0 and init_rcv_wnd:
        rcv_wnd = min(rcv_wnd, init_rcv_wnd * mss)

    rcv_wscale = 0
    if wscale_ok and profile["net.ipv4.tcp_window_scaling"]:
        s = max(space, profile["net.ipv4.tcp_rmem"][2], profile["net.core.rmem_max"])
        s = min(s, window_clamp)
        if s > 0:
            rcv_wscale = min(max(s.bit_length() - 1 - 15, 0), TCP_MAX_WSCALE)

    if segs and mss > (1 << rcv_wscale):
        if not init_rcv_wnd:
            init_rcv_wnd = segs if mss <= TCP_DEFAULT_INIT_RCVWND_MSS else max(
                TCP_DEFAULT_INIT_RCVWND_MSS * segs // mss, 2)
        rcv_wnd = min(rcv_wnd, init_rcv_wnd * mss)

    window_clamp = min(65535 << rcv_wscale, window_clamp)
    return rcv_wnd, window_clamp, rcv_wscale


def _rcvbuf_clamp(profile: Mapping, listener_rcvbuf: int, rcvbuf_locked: bool,
                  listener_window_clamp: int) -> tuple[int, int]:
    full = full_space(profile, listener_rcvbuf)
    clamp = listener_window_clamp
    if rcvbuf_locked and (clamp > full or clamp == 0):
        clamp = full
    return full, clamp


def openreq_init_rwin(profile: Mapping, *, listener_rcvbuf: int, rcvbuf_locked: bool,
                      listener_window_clamp: int, mss_clamp: int, tstamp_ok: bool,
                      wscale_ok: bool) -> tuple[int, int, int]:
    """The SYN-ACK path (``tcp_openreq_init_rwin``; inline in ``tcp_make_synack`` in 3.x).

    ``listener_window_clamp`` is the listener's TCP_WINDOW_CLAMP (0 unless set; there is no
    route ``window`` metric here). If the listener's receive buffer is locked by SO_RCVBUF, the
    clamp becomes ``tcp_full_space`` of the listener whenever it is 0 or larger (e88c64f0a425)
    - this is what keeps the announced shift small. ``mss_clamp`` is the MSS we advertise; the
    12 timestamp bytes are taken off when the peer uses timestamps.
    """
    full, clamp = _rcvbuf_clamp(profile, listener_rcvbuf, rcvbuf_locked, listener_window_clamp)
    mss = mss_clamp - (TCPOLEN_TSTAMP_ALIGNED if tstamp_ok else 0)
    return select_initial_window(profile, full, mss, clamp, wscale_ok)


def cookie_init_rwin(profile: Mapping, *, listener_rcvbuf: int, rcvbuf_locked: bool,
                     listener_window_clamp: int, cookie_mss: int,
                     wscale_ok: bool) -> tuple[int, int, int]:
    """The cookie-ACK path: ``cookie_v4_check`` redoing the SYN-ACK computation.

    Differences from :func:`openreq_init_rwin`, both verified in syncookies.c:
    * the MSS is the cookie table value (``req->mss``), with no timestamp deduction;
    * the SO_RCVBUF clamp is applied only when ``model.cookie_wscale_clamp`` is true
      (909172a14974 "net: Update window_clamp if SOCK_RCVBUF is set", v5.10 and stable).
      Without it the clamp stays 0 = unlimited and the shift comes from
      ``max(tcp_rmem[2], rmem_max)``: the pre-5.10 bug (wscale 7 against an announced 1).
    ``model.cookie_wscale_mode == "gvisor"`` is a teaching contrast, not Linux: cookie
    connections run without window scaling (shift 0 here; the listener must not offer the
    option on cookie SYN-ACKs and :func:`tuntcp.listen.cookies.decode_ts` drops the peer's).
    """
    if profile["model.cookie_wscale_mode"] == "gvisor":
        full, clamp = _rcvbuf_clamp(profile, listener_rcvbuf, rcvbuf_locked, listener_window_clamp)
        return select_initial_window(profile, full, cookie_mss, clamp, False)
    if profile["model.cookie_wscale_clamp"]:
        full, clamp = _rcvbuf_clamp(profile, listener_rcvbuf, rcvbuf_locked, listener_window_clamp)
    else:
        full, clamp = full_space(profile, listener_rcvbuf), listener_window_clamp
    return select_initial_window(profile, full, cookie_mss, clamp, wscale_ok)


def connect_init_rwin(profile: Mapping, *, rcvbuf: int, rcvbuf_locked: bool, advmss: int,
                      window_clamp: int = 0) -> tuple[int, int, int]:
    """The active-open SYN (``tcp_connect_init``): the same SO_RCVBUF clamp as the SYN-ACK
    path, window scaling offered iff ``net.ipv4.tcp_window_scaling``, and the MSS we
    advertise as rounding unit (the timestamp bytes are only taken off when a cached peer
    timestamp exists, which we never have)."""
    full, clamp = _rcvbuf_clamp(profile, rcvbuf, rcvbuf_locked, window_clamp)
    return select_initial_window(profile, full, advmss, clamp,
                                 bool(profile["net.ipv4.tcp_window_scaling"]))


def init_buffer_space(profile: Mapping, *, rcvbuf: int, window_clamp: int, advmss: int,
                      rcv_wnd: int) -> tuple[int, int]:
    """``tcp_init_buffer_space`` for a new ESTABLISHED socket -> ``(window_clamp, rcv_ssthresh)``.

    ``maxwin = tcp_full_space``; a clamp at or above it becomes ``maxwin`` less the
    ``tcp_app_win`` reserve (``maxwin >> tcp_app_win``, at least 4 segments; 0 for the default
    31). Then one segment is always reserved: if the clamp exceeds 2 * advmss and
    clamp + advmss > maxwin, clamp = max(2 * advmss, maxwin - advmss). ``rcv_ssthresh`` starts
    at the initial ``rcv_wnd`` (``tcp_create_openreq_child``) and is limited to the clamp.
    ``advmss`` is the MSS we advertised less 12 with timestamps (ss -ti shows advmss:1448).
    Not modelled: ``tcp_fixup_rcvbuf`` (< 4.19 grew an unlocked sk_rcvbuf here).
    """
    app_win = profile["net.ipv4.tcp_app_win"]
    maxwin = full_space(profile, rcvbuf)
    if window_clamp >= maxwin:
        window_clamp = maxwin
        if app_win and maxwin > 4 * advmss:
            window_clamp = max(maxwin - (maxwin >> app_win), 4 * advmss)
    if app_win and window_clamp > 2 * advmss and window_clamp + advmss > maxwin:
        window_clamp = max(2 * advmss, maxwin - advmss)
    return window_clamp, min(rcv_wnd, window_clamp)


_PAGE_SIZE = 4096
_PAGE_ALLOC_COSTLY_ORDER = 3


@functools.lru_cache(maxsize=4096)
def skb_truesize(seg_len: int, hdr: int = _IP_TCP_TS_HDR) -> int:
    """Memory charged for one received segment of ``seg_len`` payload bytes (``skb->truesize``).

    The driver path modelled is **tun** (``tun_get_user`` -> ``tun_alloc_skb`` ->
    ``sock_alloc_send_pskb`` -> ``alloc_skb_with_frags``), what a kernel in the endpoint's place
    on this TUN would allocate. A packet with ``NET_SKB_PAD`` + headers + payload under a page is
    linear: one kmalloc'd head holding NET_SKB_PAD, the ``hdr`` header bytes (IPv4+TCP+timestamp
    by default), the payload and ``skb_shared_info``, rounded up to a power of two by the slab
    allocator, plus the ``struct sk_buff`` (x86-64 sizes): a 1448-byte segment costs 2304 (the
    familiar 1500-MTU truesize), 100 bytes cost 1280. A larger one (a GSO super-packet from a
    TUN with IFF_VNET_HDR, or a big-MTU packet) keeps only the headers in the head (the vnet
    header's hdr_len) and puts the payload in pages of order <= PAGE_ALLOC_COSTLY_ORDER, each
    charged whole (``skb->truesize += PAGE_SIZE << order``, since 6.6): 65483 bytes cost 66304.
    """
    if _NET_SKB_PAD + hdr + seg_len < _PAGE_SIZE:
        linear, data = hdr + seg_len, 0
    else:
        linear, data = hdr, seg_len
    head = (_NET_SKB_PAD + linear + 63) & ~63
    true = (1 << (head + _SKB_SHINFO - 1).bit_length()) + _SKB_STRUCT
    order = _PAGE_ALLOC_COSTLY_ORDER
    while data > 0:
        while order and ((data + _PAGE_SIZE - 1) & ~(_PAGE_SIZE - 1)) < _PAGE_SIZE << order:
            order -= 1
        true += _PAGE_SIZE << order
        data -= _PAGE_SIZE << order
    return true


class RecvWindow:
    """The receive-window state of one connection (Linux ``tcp_sock`` window fields).

    Accounting model (documented because the kernel's is per-skb): every in-order segment the
    connection reports through :meth:`on_data` is queued with its :func:`skb_truesize`; when a
    later call reports fewer ``unread`` bytes, the oldest segments that were read completely
    are released (a partly read segment stays charged in full, as the kernel frees an skb only
    when it is consumed). Unread bytes never reported through ``on_data`` are charged as if
    packed in ``advmss``-sized segments. Free space (``tcp_space``) is then
    ``win_from_space(rcvbuf - charged)``, floored at 0. Out-of-order data, memory pressure,
    ``tcp_clamp_window``/pruning and receive-buffer autotuning (``tcp_rcv_space_adjust``) are
    not modelled.
    """

    __slots__ = ("profile", "rcvbuf", "rcvbuf_locked", "rcv_wscale", "window_clamp",
                 "rcv_ssthresh", "rcv_wnd", "rcv_wup", "advmss", "counters", "rcv_mss",
                 "_q", "_q_bytes", "_q_true", "_wfs", "_signed", "_grow_window",
                 "_last_len", "_last_true", "_last_cost", "_full_buf", "_full",
                 "scaling_ratio", "_adapt")

    def __init__(self, profile: Mapping, *, rcvbuf: int, rcvbuf_locked: bool, rcv_wscale: int,
                 window_clamp: int, rcv_wnd: int, advmss: int, rcv_nxt: int, mss: int | None = None,
                 counters=None):
        self.profile = profile
        self._wfs = _win_fn(profile)
        self._signed = bool(profile.get("net.ipv4.tcp_workaround_signed_windows", 0))
        self._grow_window = self._wfs(profile["net.ipv4.tcp_rmem"][2]) >> 1
        # tp->scaling_ratio (tcp_init_sock: TCP_DEFAULT_SCALING_RATIO) and how it adapts
        self.scaling_ratio = profile["model.scaling_ratio"]
        self._adapt = (profile.get("model.scaling_ratio_adapt", "off")
                       if profile["model.win_from_space"] == "scaling_ratio" else "off")
        self.rcvbuf = rcvbuf
        self.rcvbuf_locked = rcvbuf_locked
        self.rcv_wscale = rcv_wscale
        self.advmss = advmss
        self.window_clamp, self.rcv_ssthresh = init_buffer_space(
            profile, rcvbuf=rcvbuf, window_clamp=window_clamp, advmss=advmss, rcv_wnd=rcv_wnd)
        self.rcv_wnd = rcv_wnd
        self.rcv_wup = rcv_nxt & MASK
        # the one rcv_mss of the connection (icsk_ack.rcv_mss): tcp_initialize_rcv_mss's guess
        # of the peer's MSS, min(advmss, mss_cache, rcv_wnd / 2, TCP_MSS_DEFAULT) floored at
        # TCP_MIN_MSS; the connection's _measure_rcv_mss (tcp_measure_rcv_mss) updates it
        self.rcv_mss = max(min(advmss, advmss if mss is None else mss, rcv_wnd // 2,
                               TCP_MSS_DEFAULT), TCP_MIN_MSS)
        # the connection's stack counters (select() bumps the zero-window ones); a window
        # made on its own (tests) keeps its own
        self.counters = mib.Counters() if counters is None else counters
        self._q: deque[list[int]] | None = None    # created by the first charge (760 B)
        self._q_bytes = 0
        self._q_true = 0
        # per-segment memos: the last segment length with its truesize and win_from_space
        # (bulk data repeats one length), and tcp_full_space for the last rcvbuf
        self._last_len = self._last_true = self._last_cost = -1
        self._full_buf = self._full = -1

    # -- memory accounting -------------------------------------------------------------------

    def _charge(self, unread: int) -> int:
        """Bring the queue in line with ``unread`` and return the bytes charged (sk_rmem_alloc)."""
        q = self._q
        while q and self._q_bytes - q[0][0] >= unread:
            nbytes, true = q.popleft()
            self._q_bytes -= nbytes
            self._q_true -= true
        extra = unread - self._q_bytes
        if extra > 0:
            full, rest = divmod(extra, self.advmss)
            true = full * skb_truesize(self.advmss) + (skb_truesize(rest) if rest else 0)
            if q is None:
                q = self._q = deque()
            q.append([extra, true])
            self._q_bytes += extra
            self._q_true += true
        return self._q_true

    def space(self, unread: int) -> int:
        """``tcp_space``: window worth of the receive buffer still free."""
        # per segment the queue is usually already in line with `unread` (on_data just charged it)
        charged = self._q_true if unread == self._q_bytes else self._charge(unread)
        w = self._wfs(self.rcvbuf - charged)
        return w if w > 0 else 0

    # -- events ------------------------------------------------------------------------------

    def on_data(self, seg_len: int, unread: int) -> bool:
        """An in-order segment of ``seg_len`` bytes was queued; ``unread`` includes it.
        Returns True when rcv_ssthresh grew: the kernel then sets ``icsk_ack.quick |= 1``
        (the next ACK goes out at once unless in ping-pong mode).

        ``tcp_event_data_recv`` after ``tcp_measure_rcv_mss`` (the connection's, on
        ``rcv_mss`` here): for segments of >= 128 bytes ``tcp_grow_window``: with
        ``room = min(window_clamp, tcp_space) - rcv_ssthresh > 0``, rcv_ssthresh grows by
        ``min(room, max(incr, 2 * seg_len))`` where incr is 2 * advmss when the segment's
        truesize is "cheap" (``win_from_space(truesize) <= len``), else ``__tcp_grow_window``'s
        2 * rcv_mss if a halving search of truesize vs ``win_from_space(tcp_rmem[2]) / 2``
        finds the segment acceptable for the current threshold, else 0 (≈ 5.x/6.x form;
        3.x grew by ``incr`` up to window_clamp without the ``2 * len`` floor).
        """
        if seg_len <= 0:
            return False
        if unread - seg_len != self._q_bytes:     # usually already in line (see space)
            self._charge(max(unread - seg_len, 0))
        if seg_len == self._last_len:
            true = self._last_true
        else:
            true = self._last_true = skb_truesize(seg_len)
            self._last_cost = self._wfs(true)
            self._last_len = seg_len
        q = self._q
        if q is None:
            q = self._q = deque()
        q.append([seg_len, true])
        self._q_bytes += seg_len
        self._q_true += true
        if seg_len < 128:
            return False
        clamp = self.window_clamp
        ssthresh = self.rcv_ssthresh
        if clamp <= ssthresh:       # room <= 0 whatever tcp_space is: skip computing it
            return False
        free = self.space(unread)
        room = (clamp if clamp < free else free) - ssthresh
        if room <= 0:
            return False
        cost = self._last_cost
        if cost <= seg_len:
            incr = 2 * self.advmss
        else:
            incr = 0
            truesize = cost >> 1
            window = self._grow_window
            while self.rcv_ssthresh <= window:
                if truesize <= seg_len:
                    incr = 2 * self.rcv_mss
                    break
                truesize >>= 1
                window >>= 1
        if not incr:
            return False
        self.rcv_ssthresh += min(room, max(incr, 2 * seg_len))
        return True

    def win_from_space(self, space: int) -> int:
        """``tcp_win_from_space`` with this connection's own scaling ratio."""
        return self._wfs(space)

    def measure_ratio(self, seg_len: int, hdr: int = _IP_TCP_TS_HDR) -> bool:
        """``tcp_measure_rcv_mss``'s scaling-ratio update, for a segment of at least ``rcv_mss``
        whose length differs from it (the caller checks both, before updating rcv_mss):
        ``scaling_ratio = (len << 8) / truesize`` (at least 1), truesize from
        :func:`skb_truesize` (the tun driver path). Returns True when the ratio changed.

        ``model.scaling_ratio_adapt``: "off" (adv_win_scale kernels, and a fixed ratio);
        "ratio" (dfa2f0483360, 6.6 .. 6.10: only the ratio moves, window_clamp stays);
        "clamp" (a2cbb1603943 "tcp: Update window clamping condition", 6.11, in the form of
        f5da7c45188e, 6.14 and stable 6.12/6.13: a changed ratio recomputes
        ``tcp_set_window_clamp(tcp_win_from_space(sk_rcvbuf))``; the caller lowers rcvq_space
        to the new clamp). This is how a locked 204800-byte buffer (SO_RCVBUF 102400) comes
        to offer more than the 100952 ``tcp_init_buffer_space`` set from the 50 % default.
        """
        if self._adapt == "off":
            return False
        ratio = (seg_len << 8) // skb_truesize(seg_len, hdr) or 1    # < 256: truesize > len
        if ratio == self.scaling_ratio:
            return False
        self.scaling_ratio = ratio
        self._wfs = _win_fn(self.profile, ratio)
        self._grow_window = self._wfs(self.profile["net.ipv4.tcp_rmem"][2]) >> 1
        self._last_len = self._full_buf = -1          # memos made with the old ratio
        if self._adapt == "clamp":
            self.set_window_clamp(self._wfs(self.rcvbuf))
        return True

    def set_window_clamp(self, val: int) -> None:
        """``tcp_set_window_clamp`` (the 6.7+ form, used by TCP_WINDOW_CLAMP and by the ratio
        update): at least SOCK_MIN_RCVBUF / 2; shrinking lowers rcv_ssthresh to the clamp
        (``__tcp_adjust_rcv_ssthresh``, no SO_RESERVE_MEM here); growing raises rcv_ssthresh to
        ``min(rcv_wnd, clamp)`` if that is more."""
        new = max(val, SOCK_MIN_RCVBUF // 2)
        old = self.window_clamp
        if new == old:
            return
        self.window_clamp = new
        if new < old:
            self.rcv_ssthresh = min(self.rcv_ssthresh, new)
        else:
            self.rcv_ssthresh = max(min(self.rcv_wnd, new), self.rcv_ssthresh)

    def set_rcvbuf(self, n: int) -> None:
        """SO_RCVBUF on an established socket: ``n`` is the new ``sk_rcvbuf``, i.e. already
        through :func:`sock_set_rcvbuf` (limited, doubled); the buffer becomes locked.
        ``window_clamp`` and ``rcv_ssthresh`` are left alone (as before b025461303d8, 2026);
        the new ``tcp_full_space`` bounds every later :meth:`select`."""
        self.rcvbuf = n
        self.rcvbuf_locked = True

    # -- the window we advertise -------------------------------------------------------------

    def current(self, rcv_nxt: int) -> int:
        """``tcp_receive_window``: what is left of the last advertised window, floored at 0."""
        win = (self.rcv_wup + self.rcv_wnd - rcv_nxt) & MASK
        return 0 if win >= HALF else win

    def peek(self, unread: int, rcv_mss: int) -> int:
        """``__tcp_select_window``: the window (bytes) we would offer now, without committing.

        * ``full = min(window_clamp, tcp_full_space)``; the MSS used is ``rcv_mss`` capped by it.
        * Free space below half of ``full``: round it down to the scale unit, and offer 0 when
          it is below 1/16 of the full space or below one MSS (silly-window avoidance).
        * Offer at most ``rcv_ssthresh``.
        * With a shift: round UP to a multiple of 2^rcv_wscale (``ALIGN``), so no window is
          lost to truncation. Without: keep the last window if it is within one MSS below the
          free space, else a whole number of MSS; in the "mss == full" corner offer all.
        """
        free = self.space(unread)
        rcvbuf = self.rcvbuf
        if rcvbuf == self._full_buf:
            allowed = self._full
        else:       # rcvbuf is set from outside (autotuning, SO_RCVBUF): keyed on its value
            allowed = self._full = self._wfs(rcvbuf)
            self._full_buf = rcvbuf
        full = min(self.window_clamp, allowed)
        mss = rcv_mss
        if mss > full:
            mss = full
            if mss <= 0:
                return 0
        ws = self.rcv_wscale
        if free < (full >> 1):
            free = (free >> ws) << ws
            if free < (allowed >> 4) or free < mss:
                return 0
        if free > self.rcv_ssthresh:
            free = self.rcv_ssthresh
        if ws:
            unit = 1 << ws
            return (free + unit - 1) & ~(unit - 1)
        window = self.rcv_wnd
        if window <= free - mss or window > free:
            window = (free // mss) * mss
        elif mss == full and free > window + (full >> 1):
            window = free
        return window

    def select(self, rcv_nxt: int, unread: int, rcv_mss: int) -> int:
        """``tcp_select_window``: commit the window for an outgoing segment, return the field.

        The offer never pulls the right edge back: if :meth:`peek` is below what is left of the
        last window, that remainder is re-offered, rounded up to the scale unit. ``rcv_wnd`` and
        ``rcv_wup`` (= ``rcv_nxt``) are updated; the returned header field is the byte window
        capped at ``65535 << rcv_wscale`` (32767 unscaled with
        ``tcp_workaround_signed_windows``) and shifted right by ``rcv_wscale``.
        MIB counters as ``tcp_select_window`` bumps them: TcpExtTCPWantZeroWindowAdv (wanted
        0 but had to keep the old edge), TcpExtTCPToZeroWindowAdv (the field is 0 and the last
        rcv_wnd was not), TcpExtTCPFromZeroWindowAdv (the field is not 0, the last rcv_wnd was).
        """
        ws = self.rcv_wscale
        old = self.rcv_wnd
        cur = self.current(rcv_nxt)
        new = self.peek(unread, rcv_mss)
        if new < cur:
            if new == 0:
                self.counters[mib.TcpExtTCPWantZeroWindowAdv] += 1
            unit = 1 << ws
            new = (cur + unit - 1) & ~(unit - 1)
        self.rcv_wnd = new
        self.rcv_wup = rcv_nxt & MASK
        if not ws and self._signed:
            new = min(new, MAX_TCP_WINDOW)
        else:
            new = min(new, 65535 << ws)
        field = new >> ws
        if field == 0:
            if old:
                self.counters[mib.TcpExtTCPToZeroWindowAdv] += 1
        elif not old:
            self.counters[mib.TcpExtTCPFromZeroWindowAdv] += 1
        return field

    def would_advance(self, rcv_nxt: int, unread: int, rcv_mss: int) -> bool:
        """The window half of ``__tcp_ack_snd_check``'s "more than one segment" rule: would the
        window offered now be at least the last one (``__tcp_select_window >= rcv_wnd``)? As
        ``rcv_nxt`` is past ``rcv_wup`` whenever the rule is asked, that means the right edge
        moves. The connection checks ``rcv_nxt - rcv_wup > rcv_mss`` itself."""
        return self.peek(unread, rcv_mss) >= self.rcv_wnd

    def window_update_due(self, rcv_nxt: int, unread: int, rcv_mss: int) -> bool:
        """``tcp_cleanup_rbuf``'s window-update rule after the application read: when what is
        left of the advertised window is at most half the clamp, send an ACK if the window
        offered now is non-zero and at least twice what is left."""
        cur = self.current(rcv_nxt)
        if 2 * cur > self.window_clamp:
            return False
        new = self.peek(unread, rcv_mss)
        return new != 0 and new >= 2 * cur
