"""FreeBSD kernel profiles: freebsd-9 and freebsd-14.

The shared core (tuntcp/core) is written against Linux knob names, so a FreeBSD profile carries
the *full* Linux key set (copied from linux.py's base) with values chosen to behave like FreeBSD,
plus the FreeBSD sysctls that the FreeBSD passive-open personality (tuntcp/listen/freebsd.py)
reads. Where a FreeBSD sysctl and a Linux knob mean the same thing the Linux one is derived from
the FreeBSD one here, so both views agree.

FreeBSD knobs (defaults checked against freebsd/freebsd-src where noted):
  kern.ipc.soacceptqueue          128 (SOMAXCONN; alias kern.ipc.somaxconn), ``solisten_proto``
  kern.ipc.sooverinterval         60 s between "Listen queue overflow" lines per listener
                                  (uipc_socket.c ``overinterval = { 60, 0 }``, verified)
  kern.ipc.maxsockbuf             2097152 (SB_MAX); our SYN-ACK wscale is the smallest s with
                                  65535 << s >= maxsockbuf, i.e. 6
  net.inet.tcp.syncache.*         hashsize 512, bucketlimit 30, cachelimit = 512*30 = 15360,
                                  rexmtlimit 3 (SYNCACHE_MAXREXMTS), rst_on_sock_fail 1
                                  (tcp_syncache.c ``syncache_init``, verified)
  net.inet.tcp.syncookies         1: every SYN-ACK's ISS is a cookie (``syncache_add``, verified)
  net.inet.tcp.syncookies_only    0
  net.inet.tcp.rexmit_initial     ms. freebsd-9: 3000 (TCPTV_RTOBASE 3 s; the 9.x source comment
                                  gives 3 * (1 + 2 + 4 + 8) = 45 s; the sysctl itself is newer
                                  [mem: FreeBSD 12/13], we use its name for the constant).
                                  freebsd-14: 1000 (comment "1000 ms * (1+2+4+8) + 3 * 200 ms =
                                  15600 ms", verified)
  net.inet.tcp.rfc1323 / sack.enable / mssdflt / recvspace / sendspace / msl
  net.inet.tcp.tolerate_missing_ts     0 on 14 (syncache_expand drops a completing ACK without
                                  TS when TS was negotiated); 1 on 9 (no such check then)
  net.inet.accf.http.parsehttpversion  1 (accf_http.c, verified)
  net.inet6.ip6.v6only            1: an AF_INET6 socket takes no IPv4 peers unless IPV6_V6ONLY is cleared

model.* knobs specific to FreeBSD:
  model.syncookie_lifetime        seconds between cookie secret rotations (SYNCOOKIE_LIFETIME
                                  15 in the 10+ cookie code; 9.x's MD5 cookies used 16)
  model.syncache_pause            True: a syncache overflow switches to cookie-only for 15 s and
                                  more (``syncache_pause``, FreeBSD 13+ [mem: version]); False: 9.x
"""
from __future__ import annotations

from . import Profile, register
from .linux import _BASE as _LINUX_BASE

_FREEBSD = {
    "kern.ipc.soacceptqueue": 128,
    "kern.ipc.sooverinterval": 60,
    "kern.ipc.maxsockbuf": 2097152,
    "net.inet.tcp.syncache.hashsize": 512,
    "net.inet.tcp.syncache.bucketlimit": 30,
    "net.inet.tcp.syncache.cachelimit": 15360,
    "net.inet.tcp.syncache.rexmtlimit": 3,
    "net.inet.tcp.syncache.rst_on_sock_fail": 1,
    "net.inet.tcp.syncookies": 1,
    "net.inet.tcp.syncookies_only": 0,
    "net.inet.tcp.rexmit_initial": 1000,
    "net.inet.tcp.rexmit_min": 30,
    "net.inet.tcp.rfc1323": 1,
    "net.inet.tcp.sack.enable": 1,
    "net.inet.tcp.mssdflt": 536,
    "net.inet.tcp.recvspace": 65536,
    "net.inet.tcp.sendspace": 32768,
    "net.inet.tcp.msl": 30000,
    "net.inet.tcp.delacktime": 100,
    "net.inet.tcp.tolerate_missing_ts": 0,
    "net.inet.accf.http.parsehttpversion": 1,
    "net.inet6.ip6.v6only": 1,     # in6_pcballoc: INP_IPV6ONLY by default (ip6_input.c V_ip6_v6only)
    "model.syncookie_lifetime": 15.0,
    "model.syncache_pause": True,
}


def _freebsd(name: str, **changes) -> None:
    knobs = dict(_LINUX_BASE)
    knobs.update(_FREEBSD)
    for k, v in changes.items():
        knob = k.replace("__", ".")
        if knob not in knobs:
            raise KeyError(knob)
        knobs[knob] = v
    f = knobs
    # The Linux-named knobs the shared core reads, derived from the FreeBSD ones.
    rto_initial = f["net.inet.tcp.rexmit_initial"] / 1000.0
    f["net.core.somaxconn"] = f["kern.ipc.soacceptqueue"]
    f["net.core.rmem_max"] = f["kern.ipc.maxsockbuf"]
    f["net.core.wmem_max"] = f["kern.ipc.maxsockbuf"]
    f["net.core.rmem_default"] = f["net.inet.tcp.recvspace"]
    f["net.core.wmem_default"] = f["net.inet.tcp.sendspace"]
    # Buffer autosizing (recvbuf_auto/sendbuf_auto) grows to recvbuf_max/sendbuf_max = 2 MiB.
    f["net.ipv4.tcp_rmem"] = (4096, f["net.inet.tcp.recvspace"], f["kern.ipc.maxsockbuf"])
    f["net.ipv4.tcp_wmem"] = (4096, f["net.inet.tcp.sendspace"], f["kern.ipc.maxsockbuf"])
    # FreeBSD advertises the whole free socket buffer (sbspace), no overhead reservation:
    # adv_win_scale 0 makes the core's tcp_win_from_space the identity.
    f["net.ipv4.tcp_adv_win_scale"] = 0
    f["model.win_from_space"] = "adv_win_scale"
    f["net.ipv4.tcp_timestamps"] = 1 if f["net.inet.tcp.rfc1323"] else 0
    f["net.ipv4.tcp_window_scaling"] = 1 if f["net.inet.tcp.rfc1323"] else 0
    f["net.ipv4.tcp_sack"] = f["net.inet.tcp.sack.enable"]
    f["net.ipv4.tcp_syncookies"] = f["net.inet.tcp.syncookies"]
    f["net.ipv4.tcp_synack_retries"] = f["net.inet.tcp.syncache.rexmtlimit"]
    f["net.ipv4.tcp_abort_on_overflow"] = f["net.inet.tcp.syncache.rst_on_sock_fail"]
    f["net.ipv4.tcp_congestion_control"] = "newreno"
    f["net.ipv4.tcp_ecn"] = 2
    f["net.ipv4.tcp_syn_linear_timeouts"] = 0
    f["net.ipv4.tcp_retries2"] = 12                      # TCP_MAXRXTSHIFT
    f["net.ipv4.tcp_syn_retries"] = 6
    f["net.ipv4.tcp_fin_timeout"] = 2 * f["net.inet.tcp.msl"] // 1000
    f["net.ipv4.tcp_pingpong_thresh"] = 1
    f["model.rto_initial"] = rto_initial
    f["model.rto_min"] = f["net.inet.tcp.rexmit_min"] / 1000.0     # TCPTV_MIN 30 ms
    f["model.rto_max"] = 64.0                                       # TCPTV_REXMTMAX
    f["model.delack_min"] = f["net.inet.tcp.delacktime"] / 1000.0   # TCPTV_DELACK 100 ms
    f["model.delack_max"] = f["net.inet.tcp.delacktime"] / 1000.0
    f["model.timewait_len"] = 2 * f["net.inet.tcp.msl"] / 1000.0    # 2*MSL = 60 s
    f["model.tso_psh"] = False      # tcp_output sets TH_PUSH only where the send buffer ends
    register(Profile(name, "freebsd", f))


# FreeBSD 9 (the seed's era): 3 s initial RTO, SYN-ACKs at 0, 3, 9, 21 s, entry gone at 45 s.
_freebsd(
    "freebsd-9",
    net__inet__tcp__rexmit_initial=3000,
    net__inet__tcp__rexmit_min=30,
    net__ipv4__tcp_challenge_ack_limit=1000,
    net__inet__tcp__tolerate_missing_ts=1,     # 9.x did not enforce RFC 7323 3.2 on the ACK
    model__syncache_pause=False,               # syncache_pause came with FreeBSD 13
)
# FreeBSD 14: 1 s initial RTO, SYN-ACKs at 0, 1, 3, 7 s, entry gone at 15 s.
_freebsd(
    "freebsd-14",
    net__inet__tcp__rexmit_initial=1000,
)
