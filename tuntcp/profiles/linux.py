"""Linux kernel profiles.

Each profile is the defaults a fresh network namespace of that kernel series would show, plus
``model.*`` switches for behaviour that changed in a commit rather than through a sysctl. Values
marked [mem] in shared/reference/linux-freebsd-passive-open.md are noted as such here.

model.* switches:
  model.synq_full_cmp        how ``inet_csk_reqsk_queue_is_full`` compares qlen to the backlog:
                             "pow2" (pre-4.4 ``max_qlen_log``: qlen >= roundup_pow_of_two(
                             max(8, min(backlog, tcp_max_syn_backlog)) + 1)), ">=" (4.4 .. early
                             2025), ">" (3479c7549fb1, 2025, backported to stable)
  model.acceptq_syn_drop     "young": pre-4.10 drops a SYN on a full accept queue only when
                             young > 1; "full": 5ea8ea2cb7f1 drops whenever it is full
  model.cookie_wscale_clamp  False: cookie_v4_check recomputes rcv_wscale without the SO_RCVBUF
                             clamp (the bug); True: 909172a14974 (v5.10 and stable backports)
  model.cookie_wscale_mode   "linux" (wscale in TSval) or "gvisor" (no window scaling on cookie
                             connections; teaching contrast)
  model.win_from_space       "adv_win_scale" (<= 6.5), "scaling_ratio" (>= 6.6)
  model.scaling_ratio        /256, used with "scaling_ratio": ~25-30 % in 6.6-6.9, 50 % from 6.10
  model.scaling_ratio_adapt  how a connection's ratio follows skb len/truesize in tcp_measure_rcv_mss:
                             "off" (fixed; every adv_win_scale kernel), "ratio" (dfa2f0483360, 6.6:
                             the ratio moves, window_clamp stays), "clamp" (a2cbb1603943, 6.11, as
                             f5da7c45188e, 6.14 / stable 6.12: tcp_set_window_clamp follows it)
  model.init_rcv_wnd_segs    cap of the initial receive window in segments when mss > 1<<ws
                             (3.10: 10, 4.9: 20 [mem]); 0 = only the 65535 cap (>= 4.19)
  model.synflood_msg         "old": "Possible SYN flooding on port P. Sending cookies.  Check SNMP
                             counters."; "new": "... on port A:P. Sending cookies."
  model.synflood_proto       the prefix in the log line ("TCP", "request_sock_TCP")
  model.init_rcv_wnd_u16_cap  True: the initial rcv_wnd is capped at 65535 (all before 378979e94e95,
                             "tcp: remove 64 KByte limit for initial tp->rcv_wnd value", v6.10 May
                             2024, stable 6.9/6.6/6.1 June 2024); False after it
  model.rto_initial / rto_min / rto_max  seconds (TCP_TIMEOUT_INIT, TCP_RTO_MIN, TCP_RTO_MAX)
  model.delack_min / delack_max          seconds (TCP_DELACK_MIN, TCP_DELACK_MAX)
  model.timewait_len         seconds (TCP_TIMEWAIT_LEN)
  model.tso_psh              True: every TSO packet (pcount > 1) carries PSH (__tcp_transmit_skb,
                             051ba67447 "tcp: force a PSH flag on TSO packets", 4.19)
"""
from __future__ import annotations

from . import Profile, register

_BASE = {
    "net.core.somaxconn": 4096,
    "net.core.rmem_max": 212992,
    "net.core.wmem_max": 212992,
    "net.core.rmem_default": 212992,
    "net.core.wmem_default": 212992,
    "net.ipv4.tcp_max_syn_backlog": 2048,
    "net.ipv4.tcp_syncookies": 1,
    "net.ipv4.tcp_synack_retries": 5,
    "net.ipv4.tcp_syn_retries": 6,
    "net.ipv4.tcp_syn_linear_timeouts": 0,
    "net.ipv4.tcp_timestamps": 1,
    "net.ipv4.tcp_sack": 1,
    "net.ipv4.tcp_window_scaling": 1,
    "net.ipv4.tcp_ecn": 2,
    "net.ipv4.tcp_rmem": (4096, 131072, 6291456),
    "net.ipv4.tcp_wmem": (4096, 16384, 4194304),
    "net.ipv4.tcp_adv_win_scale": 1,
    "net.ipv4.tcp_app_win": 31,
    "net.ipv4.tcp_abort_on_overflow": 0,
    "net.ipv4.tcp_fin_timeout": 60,
    "net.ipv4.tcp_max_tw_buckets": 262144,
    "net.ipv4.tcp_invalid_ratelimit": 500,
    "net.ipv4.tcp_challenge_ack_limit": 1000,
    "net.ipv4.tcp_pingpong_thresh": 3,
    "net.ipv4.tcp_congestion_control": "cubic",
    "net.ipv4.tcp_retries2": 15,
    "net.ipv4.tcp_orphan_retries": 0,
    "net.ipv4.tcp_moderate_rcvbuf": 1,
    "net.ipv4.tcp_slow_start_after_idle": 1,
    "net.ipv4.tcp_dsack": 1,
    "net.ipv4.tcp_early_retrans": 3,
    "net.ipv4.tcp_recovery": 1,             # RACK loss detection (4.4+, TCP_RACK_LOSS_DETECTION)
    "net.ipv4.tcp_min_tso_segs": 2,
    "net.ipv4.tcp_notsent_lowat": 2**32 - 1,      # UINT_MAX: no limit
    "net.ipv4.tcp_pacing_ss_ratio": 200,
    "net.ipv4.tcp_pacing_ca_ratio": 120,
    "net.ipv4.ip_default_ttl": 64,
    "net.ipv6.conf.default.hop_limit": 64,  # IPV6_DEFAULT_HOPLIMIT
    "net.ipv6.auto_flowlabels": 1,          # IP6_AUTO_FLOW_LABEL_OPTOUT (ip6_make_flowlabel)
    "net.ipv6.bindv6only": 0,               # inet6_create: sk_ipv6only's default (dual-stack ::)
    "model.synq_full_cmp": ">=",
    "model.acceptq_syn_drop": "full",
    "model.cookie_wscale_clamp": True,
    "model.cookie_wscale_mode": "linux",
    "model.win_from_space": "adv_win_scale",
    "model.scaling_ratio": 128,
    "model.scaling_ratio_adapt": "off",
    "model.init_rcv_wnd_segs": 0,
    "model.init_rcv_wnd_u16_cap": True,
    "model.synflood_msg": "old",
    "model.synflood_proto": "request_sock_TCP",
    "model.rto_initial": 1.0,
    "model.rto_min": 0.2,
    "model.rto_max": 120.0,
    "model.delack_min": 0.04,
    "model.delack_max": 0.2,
    "model.timewait_len": 60.0,
    "model.tso_psh": True,
}


def _linux(name: str, drop: tuple = (), **changes) -> None:
    knobs = {k: v for k, v in _BASE.items() if k not in drop}
    for k, v in changes.items():
        knob = k.replace("__", ".")
        if knob not in knobs:
            raise KeyError(knob)
        knobs[knob] = v
    register(Profile(name, "linux", knobs))


# CentOS 7 era. somaxconn 128 (19f92a030ca6 raised it in 5.4); tcp_rmem[1] 87380 before 4.20;
# pre-4.4 SYN queue sizing; pre-4.10 accept-queue SYN test; the cookie wscale bug.
_linux(
    "linux-3.10",
    net__core__somaxconn=128,
    net__ipv4__tcp_max_syn_backlog=1024,
    net__ipv4__tcp_rmem=(4096, 87380, 6291456),
    net__ipv4__tcp_challenge_ack_limit=100,
    net__ipv4__tcp_pingpong_thresh=1,
    model__synq_full_cmp="pow2",
    model__acceptq_syn_drop="young",
    model__cookie_wscale_clamp=False,
    model__init_rcv_wnd_segs=10,
    model__synflood_proto="TCP",
    model__tso_psh=False,
    drop=("net.ipv4.tcp_notsent_lowat",             # 3.12
          "net.ipv4.tcp_recovery"),                 # RACK: 4.4
)
_linux(
    "linux-4.9",
    net__core__somaxconn=128,
    net__ipv4__tcp_max_syn_backlog=1024,
    net__ipv4__tcp_rmem=(4096, 87380, 6291456),
    net__ipv4__tcp_pingpong_thresh=1,
    model__acceptq_syn_drop="young",
    model__cookie_wscale_clamp=False,
    model__init_rcv_wnd_segs=20,
    model__tso_psh=False,
)
_linux(
    "linux-5.4",
    net__ipv4__tcp_max_syn_backlog=1024,
    model__cookie_wscale_clamp=False,
)
_linux("linux-5.10")
_linux("linux-6.1")
# 6.12: no tcp_adv_win_scale any more (dfa2f0483360, 6.6), 50 % ratio (697a6c8cec03, 6.10) adapting
# from len/truesize with the window clamp following it (a2cbb1603943, 6.11; f5da7c45188e, 6.12
# stable Feb 2025),
# linear SYN timeouts (6.5), SYN queue '>' (3479c7549fb1 in stable), new flood message (>= 6.2).
_V6_12 = dict(
    net__ipv4__tcp_syn_linear_timeouts=4,
    net__ipv4__tcp_challenge_ack_limit=2147483647,
    net__ipv4__tcp_pingpong_thresh=1,
    model__win_from_space="scaling_ratio",
    model__scaling_ratio=128,
    model__scaling_ratio_adapt="clamp",
    model__synq_full_cmp=">",
    model__synflood_msg="new",
    model__init_rcv_wnd_u16_cap=False,
)
_linux("linux-6.12", **_V6_12)
# 6.18, this host's and CI's kernel. Every knob was read back from a fresh namespace of the running
# 6.18.44 kernel (tests/netns/test_profile_ranges.py re-checks the per-namespace defaults) and
# compared with 6.12. Differences from linux-6.12:
#   net.core.rmem_max / wmem_max   212992 -> 4194304: a6d4f25888b8 "net: increase the default
#                                  rmem_max/wmem_max" (after 6.12). tcp_select_initial_window takes
#                                  max(tcp_rmem[2], rmem_max), so it matters for the SYN-ACK wscale.
#   net.ipv4.tcp_rmem[2]           6291456 -> 33554432: "tcp: increase tcp_rmem[2] to 32 MB"
#                                  (572be9bf9d0d [mem], v6.16). The SYN-ACK wscale goes 7 -> 10.
#   net.ipv4.tcp_rmem (range)      each value must be >= 4096 (EINVAL below; 6.12: >= 1). Found in
#                                  the 6.18 namespace; the commit was not in the stored sources.
#   net.ipv4.tcp_max_tw_buckets    ehash_entries / 2 (tcp_set_hashinfo): 131072 on this host; the
#                                  6.12 profile's 262144 came from a larger machine, not a commit.
#   tcp_rto_max_ms                 new sysctl (1280c26228bd, 6.15), default 120000 = model.rto_max.
#   tcp_rto_min_us                 sysctl since f086edef71be (6.11 [mem]), default 200000 =
#                                  model.rto_min; TCP_RTO_MIN_US sockopt f38805c5d26f (6.15).
# Checked and unchanged from 6.12: somaxconn 4096, tcp_max_syn_backlog 2048 (max(128, ehash/128)),
# tcp_syncookies 1 (and the cookie wscale fix 909172a14974 stays), tcp_syn_linear_timeouts 4,
# tcp_timestamps 1 (per-flow TS offsets: secure_tcp_ts_off when == 1), tcp_ecn 2 (range 0..2),
# tcp_challenge_ack_limit INT_MAX, tcp_pingpong_thresh 1, tcp_adv_win_scale 1 (unused since
# dfa2f0483360, 6.6), scaling_ratio 50 % (697a6c8cec03, 6.10), synq '>' (3479c7549fb1), the new
# flood message, the ratio adaptation with the clamp following (a2cbb1603943 "tcp: Update window
# clamping condition", 6.11, fixing 05f76b2d634e; f5da7c45188e's tcp_set_window_clamp form):
# tests/netns/test_window_ratio_kernel.py checks 131070 / 65535 against this kernel. Not verified: anything
# in syncookies.c after 6.12.
# net.ipv4.tcp_congestion_control reads bbr in a lab namespace only because it inherits the host's
# init_net default; the kernel's own default is cubic, and so is the profile's.
_linux(
    "linux-6.18",
    net__core__rmem_max=4194304,
    net__core__wmem_max=4194304,
    net__ipv4__tcp_rmem=(4096, 131072, 33554432),
    net__ipv4__tcp_max_tw_buckets=131072,
    **_V6_12,
)
