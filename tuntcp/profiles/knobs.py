"""The knob tables: type, range, unit and source of every profile knob, per profile family.

``check(family, name, value)`` raises ProfileError (one line: knob, value, allowed range) exactly
where the kernel's sysctl handler says EINVAL, and accepts what it accepts, even when the kernel
then clamps or ignores the value at use (noted per knob). Ranges are those of Linux 6.18's
handlers (net/ipv4/sysctl_net_ipv4.c ``ipv4_net_table``, net/core/sysctl_net_core.c,
net/ipv6/addrconf.c ``addrconf_sysctl``, net/ipv6/sysctl_net_ipv6.c); the per-netns ones are
checked against the running kernel in tests/netns/test_profile_ranges.py. Before v5.15 the u8
knobs were plain ints (4ecc1baf362c "tcp: convert elligible sysctls to u8" [mem]) and took any
int; the older profiles are validated against the 6.18 ranges all the same (a stricter check).

model.* knobs have no kernel handler: their range is what the model can run.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

INT_MAX = 2**31 - 1
INT_MIN = -(2**31)
HZ = 250  # jiffies handlers bound |v| * HZ by INT_MAX; 250 on this build (found in a netns)


@dataclass(frozen=True, slots=True)
class Knob:
    kind: str                 # int, u8, jiffies, ms_jiffies, vec3, choice, bool, seconds
    lo: float | None = None
    hi: float | None = None
    unit: str = ""
    choices: tuple = ()
    handler: str = ""         # the kernel's proc handler (and extra1/extra2), or "model"
    clamp: str = ""           # what the kernel does with an accepted value it cannot use as is
    netns: bool = True        # writable inside a child namespace (probe-able there)

    def describe(self) -> str:
        if self.kind == "bool":
            return "true or false"
        if self.kind == "choice":
            return "one of " + ", ".join(map(str, self.choices))
        if self.kind == "vec3":
            return f"three ints, each {_span(self.lo, self.hi)}"
        return _span(self.lo, self.hi) + (f" {self.unit}" if self.unit else "")


def _span(lo, hi) -> str:
    return f"{_num(lo)}..{_num(hi)}"


def _num(v) -> str:
    if isinstance(v, float):
        return f"{v:.6f}".rstrip("0").rstrip(".")
    return {INT_MAX: "INT_MAX", INT_MIN: "INT_MIN"}.get(v, str(v))


def u8(lo: int = 0, hi: int = 255, unit: str = "", extra: str = "", clamp: str = "") -> Knob:
    return Knob("u8", lo, hi, unit, handler="proc_dou8vec_minmax" + extra, clamp=clamp)


def intk(lo: int = INT_MIN, hi: int = INT_MAX, unit: str = "", handler: str = "proc_dointvec",
         clamp: str = "", netns: bool = True) -> Knob:
    return Knob("int", lo, hi, unit, handler=handler, clamp=clamp, netns=netns)


def choice(*values, handler: str = "model") -> Knob:
    return Knob("choice", choices=values, handler=handler)


def seconds(lo: float, hi: float) -> Knob:
    return Knob("seconds", lo, hi, "s", handler="model")


_JIFFIES_MAX = INT_MAX // HZ
_BOOL = Knob("bool", choices=(True, False), handler="model")
# sock.h: SOCK_MIN_RCVBUF = TCP_SKB_MIN_TRUESIZE = 2048 + SKB_DATA_ALIGN(sizeof(struct sk_buff))
# = 2304 on x86-64 (sk_buff 232 bytes [mem]); SOCK_MIN_SNDBUF is twice that.
MIN_RCVBUF = 2304
MIN_SNDBUF = 4608

LINUX: dict[str, Knob] = {
    # net/core/sysctl_net_core.c. somaxconn: extra1 SYSCTL_ZERO; listen() uses min(backlog, somaxconn).
    "net.core.somaxconn": intk(0, INT_MAX, "connections", "proc_dointvec_minmax extra1=SYSCTL_ZERO",
                               clamp="listen(): backlog = min(backlog, somaxconn)"),
    # rmem/wmem: init_net only (read-only in a child namespace): extra1 min_rcvbuf / min_sndbuf.
    "net.core.rmem_max": intk(MIN_RCVBUF, INT_MAX, "bytes", "proc_dointvec_minmax extra1=&min_rcvbuf",
                              netns=False),
    "net.core.wmem_max": intk(MIN_SNDBUF, INT_MAX, "bytes", "proc_dointvec_minmax extra1=&min_sndbuf",
                              netns=False),
    "net.core.rmem_default": intk(MIN_RCVBUF, INT_MAX, "bytes", "proc_dointvec_minmax extra1=&min_rcvbuf",
                                  netns=False),
    "net.core.wmem_default": intk(MIN_SNDBUF, INT_MAX, "bytes", "proc_dointvec_minmax extra1=&min_sndbuf",
                                  netns=False),
    # net/ipv4/sysctl_net_ipv4.c
    "net.ipv4.tcp_max_syn_backlog": intk(unit="requests", clamp="inet_csk_reqsk_queue_is_full uses "
                                         "min(backlog, tcp_max_syn_backlog); <= 0 fills at once"),
    "net.ipv4.tcp_syncookies": u8(clamp="any non-zero enables cookies; 2 = always; other values act as 1"),
    "net.ipv4.tcp_synack_retries": u8(unit="retransmissions"),
    "net.ipv4.tcp_syn_retries": u8(1, 127, "retransmissions", " extra1=SYSCTL_ONE extra2=&tcp_syn_retries_max"),
    "net.ipv4.tcp_syn_linear_timeouts": u8(0, 127, "retransmissions", " extra2=&tcp_syn_linear_timeouts_max"),
    "net.ipv4.tcp_timestamps": u8(clamp="1: TS with per-flow random offsets; any other non-zero: TS "
                                  "without offsets (secure_tcp_ts_off tests == 1)"),
    "net.ipv4.tcp_sack": u8(),
    "net.ipv4.tcp_window_scaling": u8(),
    "net.ipv4.tcp_ecn": u8(0, 2, extra=" extra1=SYSCTL_ZERO extra2=&tcp_ecn_mode_max"),
    # tcp_rmem: 6.18 refuses any element below 4096 (found in a 6.18 namespace; 6.12's table had
    # extra1=SYSCTL_ONE for both, the commit was not in the stored sources). Order is not checked.
    "net.ipv4.tcp_rmem": Knob("vec3", 4096, INT_MAX, "bytes", handler="proc_dointvec_minmax extra1=4096"),
    "net.ipv4.tcp_wmem": Knob("vec3", 1, INT_MAX, "bytes", handler="proc_dointvec_minmax extra1=SYSCTL_ONE"),
    "net.ipv4.tcp_adv_win_scale": intk(-31, 31, handler="proc_dointvec_minmax extra1=&tcp_adv_win_scale_min "
                                       "extra2=&tcp_adv_win_scale_max"),
    "net.ipv4.tcp_app_win": u8(0, 31, extra=" extra2=&tcp_app_win_max"),
    "net.ipv4.tcp_abort_on_overflow": u8(),
    "net.ipv4.tcp_fin_timeout": intk(-_JIFFIES_MAX, _JIFFIES_MAX, "s", "proc_dointvec_jiffies"),
    "net.ipv4.tcp_max_tw_buckets": intk(unit="sockets", clamp="<= 0: no TIME-WAIT sockets at all"),
    "net.ipv4.tcp_invalid_ratelimit": Knob("ms_jiffies", 0, INT_MAX, "ms", handler="proc_dointvec_ms_jiffies"),
    "net.ipv4.tcp_challenge_ack_limit": intk(unit="per second"),
    "net.ipv4.tcp_pingpong_thresh": u8(1, 255, extra=" extra1=SYSCTL_ONE"),
    "net.ipv4.tcp_congestion_control": choice("reno", "cubic", handler="proc_tcp_congestion_control "
                                              "(any registered algorithm; only these are modelled)"),
    "net.ipv4.tcp_retries2": u8(unit="retransmissions"),
    "net.ipv4.tcp_orphan_retries": u8(unit="retransmissions", clamp="0 means 8 (tcp_orphan_retries())"),
    "net.ipv4.tcp_moderate_rcvbuf": u8(),
    "net.ipv4.tcp_slow_start_after_idle": u8(),
    "net.ipv4.tcp_dsack": u8(),
    "net.ipv4.tcp_early_retrans": u8(0, 4, extra=" extra1=SYSCTL_ZERO extra2=SYSCTL_FOUR"),
    "net.ipv4.tcp_recovery": u8(unit="bits: 1 RACK, 2 static reo_wnd, 4 no dupthresh"),
    # ranges read back from a 6.18 namespace (0 and 256 refused; 1001 refused)
    "net.ipv4.tcp_min_tso_segs": u8(1, 255, "segments", extra=" extra1=SYSCTL_ONE"),
    # tcp_notsent_lowat (c9bee3b7fdec, 3.12): write space only while unsent bytes are below it
    "net.ipv4.tcp_notsent_lowat": intk(0, 2**32 - 1, "bytes", "proc_douintvec"),
    "net.ipv4.tcp_pacing_ss_ratio": intk(0, 1000, "%", "proc_dointvec_minmax extra1=SYSCTL_ZERO "
                                         "extra2=SYSCTL_ONE_THOUSAND"),
    "net.ipv4.tcp_pacing_ca_ratio": intk(0, 1000, "%", "proc_dointvec_minmax extra1=SYSCTL_ZERO "
                                         "extra2=SYSCTL_ONE_THOUSAND"),
    "net.ipv4.ip_default_ttl": intk(1, 255, "hops", "proc_dointvec_minmax extra1=&ip_ttl_min extra2=&ip_ttl_max"),
    # net/ipv6/addrconf.c (hop_limit: extra1=SYSCTL_ONE extra2=&two_five_five), sysctl_net_ipv6.c.
    "net.ipv6.conf.default.hop_limit": intk(1, 255, "hops", "proc_dointvec_minmax extra1=SYSCTL_ONE "
                                            "extra2=&two_five_five"),
    "net.ipv6.auto_flowlabels": u8(0, 3, extra=" extra2=&auto_flowlabels_max"),
    "net.ipv6.bindv6only": u8(clamp="any non-zero value means IPV6_V6ONLY by default (inet6_create)"),
    # model.* (see linux.py's docstring for what each one switches)
    "model.synq_full_cmp": choice("pow2", ">=", ">"),
    "model.acceptq_syn_drop": choice("young", "full"),
    "model.cookie_wscale_clamp": _BOOL,
    "model.cookie_wscale_mode": choice("linux", "gvisor"),
    "model.win_from_space": choice("adv_win_scale", "scaling_ratio"),
    "model.scaling_ratio": Knob("int", 1, 255, "/256", handler="model (u8 tp->scaling_ratio, never 0)"),
    "model.scaling_ratio_adapt": choice("off", "ratio", "clamp"),
    "model.init_rcv_wnd_segs": Knob("int", 0, 65535, "segments", handler="model"),
    "model.init_rcv_wnd_u16_cap": _BOOL,
    "model.synflood_msg": choice("old", "new"),
    "model.synflood_proto": choice("TCP", "request_sock_TCP"),
    # TCP_RTO_MIN/MAX and TCP_TIMEOUT_INIT: positive; tcp_rto_max_ms takes 1..120 s.
    "model.rto_initial": seconds(0.001, 120.0),
    "model.rto_min": seconds(0.000001, 120.0),
    "model.rto_max": seconds(1.0, 120.0),
    "model.delack_min": seconds(0.001, 120.0),
    "model.delack_max": seconds(0.001, 120.0),
    "model.timewait_len": seconds(0.0, 3600.0),
    "model.tso_psh": _BOOL,
}

# FreeBSD sysctls the FreeBSD personality reads (types from the SYSCTL_* declarations; ranges the
# handlers enforce where they have one, else the type's range [mem: FreeBSD handlers not re-read]).
FREEBSD: dict[str, Knob] = {
    **LINUX,
    "net.ipv4.tcp_congestion_control": choice("newreno", "reno", "cubic"),
    "kern.ipc.soacceptqueue": intk(0, 65535, "connections", "sysctl_somaxconn (refuses < 1 or > USHRT_MAX)"),
    "kern.ipc.sooverinterval": intk(0, INT_MAX, "s", "SYSCTL_TIMEVAL_SEC"),
    "kern.ipc.maxsockbuf": intk(2048, INT_MAX, "bytes", "sysctl_handle_sb_max (refuses < MSIZE + MCLBYTES)"),
    "net.inet.tcp.syncache.hashsize": intk(1, INT_MAX, handler="CTLFLAG_RDTUN (boot-time tunable)"),
    "net.inet.tcp.syncache.bucketlimit": intk(1, INT_MAX, handler="CTLFLAG_RDTUN (boot-time tunable)"),
    "net.inet.tcp.syncache.cachelimit": intk(1, INT_MAX, handler="CTLFLAG_RDTUN (boot-time tunable)"),
    "net.inet.tcp.syncache.rexmtlimit": intk(0, 12, "retransmissions", "SYSCTL_UINT (<= TCP_MAXRXTSHIFT)"),
    "net.inet.tcp.syncache.rst_on_sock_fail": intk(0, 1, handler="SYSCTL_INT"),
    "net.inet.tcp.syncookies": intk(0, 1, handler="SYSCTL_INT"),
    "net.inet.tcp.syncookies_only": intk(0, 1, handler="SYSCTL_INT"),
    "net.inet.tcp.rexmit_initial": intk(1, INT_MAX, "ms", "sysctl_msec_to_ticks"),
    "net.inet.tcp.rexmit_min": intk(1, INT_MAX, "ms", "sysctl_msec_to_ticks"),
    "net.inet.tcp.rfc1323": intk(0, 1, handler="SYSCTL_INT"),
    "net.inet.tcp.sack.enable": intk(0, 1, handler="SYSCTL_INT"),
    "net.inet.tcp.mssdflt": intk(88, 65535, "bytes", "sysctl_net_inet_tcp_mss_check (refuses < TCP_MINMSS)"),
    "net.inet.tcp.recvspace": intk(1, INT_MAX, "bytes", "SYSCTL_ULONG"),
    "net.inet.tcp.sendspace": intk(1, INT_MAX, "bytes", "SYSCTL_ULONG"),
    "net.inet.tcp.msl": intk(1, INT_MAX, "ms", "sysctl_msec_to_ticks"),
    "net.inet.tcp.delacktime": intk(1, INT_MAX, "ms", "sysctl_msec_to_ticks"),
    "net.inet.tcp.tolerate_missing_ts": intk(0, 1, handler="SYSCTL_INT"),
    "net.inet.accf.http.parsehttpversion": intk(0, 1, handler="SYSCTL_INT"),
    "net.inet6.ip6.v6only": intk(0, 1, handler="SYSCTL_INT (V_ip6_v6only, in6_pcballoc's default)"),
    "model.syncookie_lifetime": seconds(1.0, 3600.0),
    "model.syncache_pause": _BOOL,
}

TABLES = {"linux": LINUX, "freebsd": FREEBSD}


def knob(family: str, name: str) -> Knob:
    return TABLES[family][name]


def check(family: str, name: str, value: Any, text: str | None = None) -> Any:
    """``value`` if the kernel (or the model) accepts it for ``name``; else ProfileError, which
    quotes ``text`` (what the user typed) when given."""
    from . import ProfileError
    if text is not None:
        try:
            return check(family, name, value)
        except ProfileError as e:
            raise ProfileError(str(e).replace(f"{name}={_show(value)}:", f"{name}={text}:", 1)) from None
    k = TABLES[family].get(name)
    if k is None:
        raise ProfileError(f"{name}: no entry in the {family} knob table")
    if k.kind in ("choice", "bool"):
        if value in k.choices and type(value) is type(k.choices[0]):
            return value
        raise ProfileError(f"{name}={_show(value)}: not allowed; {k.describe()}")
    if k.kind == "vec3":
        ok = isinstance(value, tuple) and len(value) == 3 and all(_is_int(v) and k.lo <= v <= k.hi for v in value)
        if not ok:
            raise ProfileError(f"{name}={_show(value)}: out of range; {k.describe()} ({k.handler}: EINVAL)")
        return value
    if k.kind == "seconds":
        good = isinstance(value, (int, float)) and not isinstance(value, bool) and k.lo <= value <= k.hi
    else:
        good = _is_int(value) and k.lo <= value <= k.hi
    if not good:
        where = "the model cannot run it" if k.handler == "model" else f"{k.handler}: EINVAL"
        raise ProfileError(f"{name}={_show(value)}: out of range; allowed {k.describe()} ({where})")
    return value


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _show(v) -> str:
    return " ".join(map(str, v)) if isinstance(v, tuple) else str(v)


def table_text(family: str) -> str:
    """The table as text, one knob a line (for docs and `--help`)."""
    rows = []
    for name, k in TABLES[family].items():
        rows.append(f"{name:40} {k.kind:10} {k.describe():40} {k.handler}" + (f"; {k.clamp}" if k.clamp else ""))
    return "\n".join(rows)
