"""Backtick command lines read as data: the sysctls they set, the MTU, nstat checks, and the
files a script makes for sendfile (``rm -f F``, ``dd if=/dev/zero of=F bs=B count=N``) kept as
a table of names and sizes: no command runs and nothing touches the host's filesystem.

``defaults.sh`` is read as the knobs it sets (the list below mirrors what it does); knobs a
profile does not have are kept in ``unmodelled`` when they come from defaults.sh (every
upstream script sources it) and are UNSUPPORTED when a script sets them itself.
Anything else a command does is UNSUPPORTED: never silently ignored.
"""
from __future__ import annotations

import re
import shlex

from .model import Unsupported

# what gtests/net/common/defaults.sh sets, as knob=value (its tc/ip lines change nothing modelled)
DEFAULTS_SH = {
    "net.ipv4.tcp_rmem": "4096 540000 15728640",
    "net.ipv4.tcp_wmem": "4096 262144 4194304",
    "net.ipv4.tcp_timestamps": "1",
    "net.ipv4.tcp_syn_retries": "5",
    "net.ipv4.tcp_synack_retries": "5",
    "net.ipv4.tcp_frto": "2",
    "net.ipv4.tcp_sack": "1",
    "net.ipv4.tcp_dsack": "1",
    "net.ipv4.tcp_fack": "0",
    "net.ipv4.tcp_reordering": "3",
    "net.ipv4.tcp_congestion_control": "cubic",
    "net.ipv4.tcp_slow_start_after_idle": "0",
    "net.ipv4.tcp_early_retrans": "4",
    "net.ipv4.tcp_recovery": "1",
    "net.ipv4.tcp_tso_win_divisor": "3",
    "net.ipv4.tcp_ecn": "0",
    "net.ipv4.tcp_ecn_option": "2",
    "net.ipv4.tcp_pacing_ss_ratio": "200",
    "net.ipv4.tcp_pacing_ca_ratio": "120",
    "net.ipv4.tcp_notsent_lowat": "4294967295",
    "net.ipv4.tcp_fastopen": "0x70403",
    "net.ipv4.tcp_fastopen_key": "a1a1a1a1-b2b2b2b2-c3c3c3c3-d4d4d4d4",
    "net.ipv4.tcp_syncookies": "1",
}
# module parameters the model has fixed: the value it runs with (tcp_cubic.c: HyStart with
# both ACK-train and delay detection, hystart_detect = HYSTART_ACK_TRAIN | HYSTART_DELAY)
MODULE_PARAMS = {"/sys/module/tcp_cubic/parameters/hystart_detect": "3"}
_ECHO = re.compile(r"^echo\s+(\S+)\s*>\s*(/sys/module/\S+)$")
_MTU = re.compile(r"^ip\s+link\s+set\s+(?:dev\s+)?\S+\s+mtu\s+(\d+)$")
_PROC = re.compile(r"^/proc/sys/([^=]+)=(.+)$")
# knobs that only size TSO packets (invisible once outbound segments are coalesced, and the
# model does not defer sending for TSO): accepted, listed as unmodelled
PACKETIZATION_ONLY = ("net.ipv4.tcp_tso_win_divisor",)


class Settings:
    """What the commands so far asked for: knob overrides, unmodelled knobs, the MTU."""

    def __init__(self) -> None:
        self.knobs: dict[str, str] = {}
        self.unmodelled: dict[str, str] = {}
        self.mtu = 1500
        self.files: dict[str, int] = {}     # path -> size: files of zeros the script made

    def set(self, profile, name: str, value: str, line: int, from_defaults: bool) -> None:
        name = name.replace("/", ".")
        if name in profile:
            self.knobs[name] = value
        elif from_defaults or name in PACKETIZATION_ONLY:
            self.unmodelled[name] = value
        else:
            raise Unsupported(f"sysctl {name}", line, "not modelled by the profile")

    def run(self, profile, text: str, line: int) -> None:
        for cmd in re.split(r"[\n;]", text.replace("\\\n", " ")):
            cmd = cmd.split("#", 1)[0].strip()
            if cmd:
                self._one(profile, cmd, line)

    def _file(self, argv: list[str], line: int, cmd: str) -> None:
        """``rm -f PATH...`` forgets files; ``dd bs=B count=N if=/dev/zero of=PATH`` makes one
        of B*N zero bytes (packetdrill's payloads are zeros). Other forms are UNSUPPORTED."""
        if argv[0].endswith("rm"):
            if len(argv) < 3 or argv[1] != "-f" or any(a.startswith("-") for a in argv[2:]):
                raise Unsupported(f"command {argv[0]}", line, cmd)
            for a in argv[2:]:
                self.files.pop(a, None)
            return
        kv = dict(a.partition("=")[::2] for a in argv[1:])
        if len(kv) != len(argv) - 1 or kv.get("if") != "/dev/zero" or "of" not in kv or "count" not in kv or \
                set(kv) - {"bs", "count", "if", "of", "status"} or kv.get("status", "none") != "none":
            raise Unsupported(f"command {argv[0]}", line, cmd)
        try:
            size = int(kv.get("bs", "512")) * int(kv["count"])
        except ValueError:
            raise Unsupported(f"command {argv[0]}", line, cmd) from None
        self.files[kv["of"]] = size

    def _one(self, profile, cmd: str, line: int) -> None:
        if cmd.endswith("defaults.sh"):
            for k, v in DEFAULTS_SH.items():
                self.set(profile, k, v, line, True)
            return
        try:
            argv = shlex.split(cmd)
        except ValueError:
            raise Unsupported("shell syntax", line, cmd) from None
        if "sysctl_restore" in argv[0]:
            return      # a cleanup command putting the namespace's sysctls back: nothing to model
        if argv[0] == "sysctl":
            pairs = [a for a in argv[1:] if not a.startswith("-")]
            if not pairs or any("=" not in a for a in pairs):
                raise Unsupported("sysctl read", line, cmd)
            for a in pairs:
                k, _, v = a.partition("=")
                self.set(profile, k, v, line, False)
            return
        if argv[0].endswith("set_sysctls.py"):
            for a in argv[1:]:
                m = _PROC.match(a)
                if not m:
                    raise Unsupported("set_sysctls argument", line, a)
                self.set(profile, m.group(1).replace("/", "."), m.group(2), line, False)
            return
        if argv[0] in ("rm", "/bin/rm", "dd", "/bin/dd"):
            self._file(argv, line, cmd)
            return
        m = _ECHO.match(cmd)
        if m:
            if MODULE_PARAMS.get(m.group(2)) != m.group(1):
                raise Unsupported(f"module parameter {m.group(2)}", line, cmd)
            return
        m = _MTU.match(cmd)
        if m:
            self.mtu = int(m.group(1))
            return
        raise Unsupported(f"command {argv[0]}", line, cmd)
