"""Packetdrill scripts run by tuntcp's own runner (tuntcp.drill) from a test, for the checks a
tests/drill/*.pkt cannot express: counters, obs events, ss rows, the connection's state.

    r = Drive("linux-6.1").run(LISTEN + HANDSHAKE_TS + "+.1 < P. 1:101(100) ack 1 win 502 ...")
    r = Drive("linux-6.12").run_file("rto-backoff.pkt")     # a tests/drill script, then...
    assert r.stack.counters["TcpExtDelayedACKs"] == 1 and r.conn.state == "ESTABLISHED"
    r.run("+.1 ...")                 # more lines on the same run (times go on from the last)

``port(P)``: the next inbound lines belong to remote port P (a new connection to the listener,
or back to an earlier one); the runner itself follows one connection per script.
"""
from __future__ import annotations

import os
import re

from tuntcp.drill import host
from tuntcp.drill.headers import read_headers
from tuntcp.drill.model import DrillError
from tuntcp.drill.parser import parse
from tuntcp.drill.runner import Runner
from tuntcp.profiles import get_profile
from tuntcp.wire.codec import ip_int

SCRIPTS = os.path.join(os.path.dirname(__file__), "..", "drill")
SYSCTL = "`sysctl -q net.ipv4.tcp_syncookies=0 net.ipv4.tcp_timestamps={ts} net.ipv4.tcp_sack={sack}`\n"
LISTEN = """
0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0 setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0
+0 bind(3, ..., ...) = 0
+0 listen(3, 10) = 0
"""
# the handshake the old ``established()`` fixture skipped: RTT 10 ms, so RTO 0.21 s
HANDSHAKE_TS = """
+0 < S 0:0(0) win 65535 <mss 1460,sackOK,TS val 100 ecr 0,nop,wscale 7>
+0 > S. 0:0(0) ack 1 <mss 1460,sackOK,TS val 100 ecr 100,nop,wscale 7>
+.01 < . 1:1(0) ack 1 win 513 <nop,nop,TS val 100 ecr 100>
+0 accept(3, ..., ...) = 4
"""


class _Runner(Runner):
    log = None

    def _ensure_stack(self) -> None:
        if self.stack is None:
            super()._ensure_stack()
            self.stack._log = self.log      # obs events of the stack the script drives


class Drive:
    def __init__(self, profile: str = "linux-6.1", overrides=None, *, log=None, defines=None,
                 local_ip=None, remote_ip=None):
        self.r = _Runner(parse("", "<test>"), profile, defines=dict(defines or {}))
        self.r.base_profile = get_profile(profile, overrides)
        self.r.log = log
        self.r.local_ip = local_ip or self.r.local_ip          # packetdrill's --local_ip
        self.r.remote_ip = remote_ip or self.r.remote_ip
        self.r.laddr, self.r.raddr = ip_int(self.r.local_ip), ip_int(self.r.remote_ip)

    def run(self, text: str) -> "Drive":
        self.r.script = parse(text, "<test>", self.r.defines)
        try:
            self.r.run()
        except DrillError as e:
            raise AssertionError(f"script line {e.line}: {getattr(e, 'what', '')}: {e.msg}") from None
        return self

    def run_file(self, name: str, *, exact: bool = False) -> "Drive":
        """tests/drill/NAME with the -D symbols its header gives this run's profile. ``exact``:
        a time range ``+A~+B`` (room for the host kernel's jiffies and timer slack) becomes
        ``+A``: the model's timers have no slack, so they must fire at the low end."""
        path = os.path.join(SCRIPTS, name)
        with open(path) as f:
            text = f.read()
        if exact:
            text = re.sub(r"^(\s*\+?[\d.]+)~\+?[\d.]+", r"\1", text, flags=re.M)
        self.r.defines.update(read_headers(text).defines.get(self.r.profile_name, {}))
        return self.run(text)

    def settle(self, seconds: float) -> "Drive":
        """Fire the timers of the next ``seconds``; nothing may be left unmatched (the runner,
        like packetdrill, ignores segments after the script's last line)."""
        self.r.advance(self.r.now + seconds)
        left = [f"{t:.6f} {s}" for t, s in self.r.pending]
        assert not left, "unexpected segments after the script: " + "; ".join(left)
        return self

    def port(self, rport: int) -> "Drive":
        flows = self.r.flows
        f = next((x for x in flows if x.rport == rport), None) or self.r.new_flow(host.LOCAL_PORT, rport)
        if f in flows:
            flows.remove(f)
        flows.append(f)
        self.r.listening = True
        return self

    @property
    def stack(self):
        return self.r.stack

    @property
    def conn(self):
        """The connection the last accept() or connect() returned."""
        return self.r.current

    @property
    def now(self) -> float:
        return self.r.now
