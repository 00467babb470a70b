"""Backtick command lines read as data: the sysctls they set, the MTU, nstat checks, and the
files a script makes for sendfile (``rm -f F``, ``dd if=/dev/zero of=F bs=B count=N``) kept as
a table of names and sizes: no command runs and nothing touches the host's filesystem.

``defaults.sh`` is read as the knobs it sets (the list below mirrors what it does); knobs a
profile does not have are kept in ``unmodelled`` when they come from defaults.sh (every
upstream script sources it) and are UNSUPPORTED when a script sets them itself.
Anything else a command does is UNSUPPORTED: never silently ignored.

``tc qdisc add|replace|delete dev tun0 root [pfifo [limit N]]`` sets the tun's root qdisc, as
defaults.sh's ``tc qdisc add dev tun0 root pfifo`` does: a pfifo of limit 0 takes nothing, so
every packet the host sends is dropped in the device queue (``pfifo_enqueue`` → ``qdisc_drop``,
NET_XMIT_DROP: a local transmit failure TCP sees). Any other limit never fills here (packetdrill
reads its tun as packets come: the queue holds nothing), so it drops nothing. A command tc would
refuse (adding over a configured root, deleting the default one) fails the line with tc's
status when it is the line's last, as packetdrill's ``safe_system`` does.
"""
from __future__ import annotations

import re
import shlex

from .model import Mismatch, Unsupported

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
TUN = "tun0"                  # packetdrill's tun device
TUN_TXQUEUELEN = 500          # its tx_queue_len (TUN_READQ_SIZE): pfifo's default limit
_REDIRECT = re.compile(r"^[12]?>(?:/dev/null|&[12])$")    # output redirections: change nothing


class Settings:
    """What the commands so far asked for: knob overrides, unmodelled knobs, the MTU."""

    def __init__(self) -> None:
        self.knobs: dict[str, str] = {}
        self.unmodelled: dict[str, str] = {}
        self.mtu = 1500
        self.files: dict[str, int] = {}     # path -> size: files of zeros the script made
        self.root_pfifo: int | None = None  # the tun's root pfifo limit; None: the default qdisc

    @property
    def drops_all(self) -> bool:
        """The tun's device queue takes no packet (a root pfifo of limit 0)."""
        return self.root_pfifo == 0

    def set(self, profile, name: str, value: str, line: int, from_defaults: bool) -> None:
        name = name.replace("/", ".")
        if name in profile:
            self.knobs[name] = value
        elif from_defaults or name in PACKETIZATION_ONLY:
            self.unmodelled[name] = value
        else:
            raise Unsupported(f"sysctl {name}", line, "not modelled by the profile")

    def run(self, profile, text: str, line: int) -> None:
        status = 0
        for cmd in re.split(r"[\n;]", text.replace("\\\n", " ")):
            cmd = cmd.split("#", 1)[0].strip()
            if cmd:
                status = self._one(profile, cmd, line) or 0
        if status:                  # the shell's status is its last command's
            raise Mismatch(f"error executing `{text.strip()}` command", f"non-zero status {status}", line)

    def _tc(self, argv: list[str], line: int, cmd: str) -> int:
        """``tc qdisc VERB dev tun0 root [pfifo [limit N]]``: the exit status tc would give."""
        argv = [a for a in argv if not _REDIRECT.match(a)]
        verb, rest = (argv[2], argv[6:]) if len(argv) >= 6 else (None, None)
        if argv[1:2] != ["qdisc"] or argv[3:6] != ["dev", TUN, "root"]:
            raise Unsupported(f"command {argv[0]}", line, cmd)
        if verb in ("del", "delete") and not rest:
            if self.root_pfifo is None:
                return 2            # the default root qdisc: "Cannot delete qdisc with handle of zero"
            self.root_pfifo = None
            return 0
        if verb not in ("add", "replace") or rest[:1] != ["pfifo"] or len(rest) not in (1, 3) or \
                (len(rest) == 3 and (rest[1] != "limit" or not rest[2].isdigit())):
            raise Unsupported(f"command {argv[0]}", line, cmd)
        if verb == "add" and self.root_pfifo is not None:
            return 2                # "Exclusivity flag on, cannot modify"
        self.root_pfifo = int(rest[2]) if len(rest) == 3 else TUN_TXQUEUELEN
        return 0

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

    def _one(self, profile, cmd: str, line: int) -> int | None:
        if cmd.endswith("defaults.sh"):
            for k, v in DEFAULTS_SH.items():
                self.set(profile, k, v, line, True)
            self.root_pfifo = TUN_TXQUEUELEN        # its `tc qdisc add dev tun0 root pfifo`
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
        if argv[0] == "tc":
            return self._tc(argv, line, cmd)
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
