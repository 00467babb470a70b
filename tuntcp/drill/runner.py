"""Runs a parsed script against a profile in virtual time (packetdrill's run.c loop, anew).

Relative times count from the previous event's actual time; outbound packets must leave within
max(--tolerance_usecs, 12.5 % of the gap to the previous event) of their time; consecutive
outbound segments of one flow are coalesced to match one script line unless strict_segments.
"""
from __future__ import annotations

from ..profiles import get_profile
from ..wire.ipv6 import addr_int
from dataclasses import replace

from ..wire.codec import build
from ..wire.ipv6 import V4_MAX, addr_str, build6
from ..wire.segment import CWR, SYN
from . import host
from .code import run_code
from .commands import Settings
from .match import Flow, build_inbound, check_outbound, seg_text
from .model import ELLIPSIS, Event, Mismatch, Script, Unsupported
from .shim import BLOCK, Shim

_ERRORS = ("EPERM ENOENT EINTR EIO EBADF EAGAIN ENOMEM EACCES EFAULT EBUSY EEXIST EINVAL EPIPE "
           "ENOTSOCK EDESTADDRREQ EMSGSIZE ENOPROTOOPT EOPNOTSUPP EADDRINUSE EADDRNOTAVAIL ENETUNREACH "
           "ECONNABORTED ECONNRESET EISCONN ENOTCONN ETIMEDOUT ECONNREFUSED EHOSTUNREACH EALREADY "
           "EINPROGRESS EWOULDBLOCK").split()


class Runner:
    def __init__(self, script: Script, profile: str, *, tolerance_usecs: int | None = None,
                 defines: dict | None = None, strict_segments: bool | None = None,
                 ip_version: str = "ipv4", mtu: int | None = None):
        self.script = script
        opts = script.options
        self.profile_name = profile
        self.base_profile = get_profile(profile)
        self.tol = (tolerance_usecs if tolerance_usecs is not None
                    else int(opts.get("tolerance_usecs", 4000))) / 1e6
        self.strict = strict_segments if strict_segments is not None else "strict_segments" in opts
        self.defines = defines or {}
        self.ip_version = opts.get("ip_version") or ip_version
        if self.ip_version not in host.IP_VERSIONS:
            raise Unsupported(f"--ip_version={self.ip_version}")
        local, remote = host.addresses(self.ip_version)
        self.local_ip = opts.get("local_ip") or local
        self.remote_ip = opts.get("remote_ip") or remote
        try:
            self.laddr, self.raddr = addr_int(self.local_ip), addr_int(self.remote_ip)
        except ValueError as e:
            raise Unsupported(str(e)) from None
        v6 = self.ip_version == "ipv6"
        if (self.laddr > V4_MAX) != v6 or (self.raddr > V4_MAX) != v6:
            raise Unsupported(f"{self.local_ip} / {self.remote_ip} over {self.ip_version}")
        self.settings = Settings()
        self.settings.mtu = mtu or int(opts.get("mtu", 0)) or host.default_mtu(self.ip_version)
        self.stack = None
        self.shim = Shim(self)
        self.now = 0.0
        self.pending: list[tuple[float, object]] = []     # (time, Segment) not yet matched
        self.flows: list[Flow] = []
        self.current = None              # the connection %{ }% blocks look at
        self.listening = False
        self.blocked = None              # (event, start time) of a blocking call in progress
        self.last_time = 0.0             # actual time of the previous event
        self.last_script = 0.0           # script time of the previous event (tolerance)
        self.last_inbound = False
        self.next_rport = 40000
        self.code_vars: dict = {}        # names %{ }% blocks defined, for the later blocks

    # ---- flows and the stack
    def new_flow(self, lport: int, rport: int) -> Flow:
        f = Flow(rport, lport)
        self.flows.append(f)
        return f

    @property
    def flow(self) -> Flow | None:
        return self.flows[-1] if self.flows else None

    def _ensure_stack(self) -> None:
        if self.stack is None:
            prof = self.base_profile.with_overrides(self.settings.knobs)
            self.stack = host.make_stack(prof, self.local_ip, self.settings.mtu)
            self.stack.txq_drop_all = self.settings.drops_all

    def _collect(self) -> None:
        for seg in host.take(self.stack):
            self.pending.append((self.now, seg))

    def advance(self, t: float) -> None:
        """Fire every timer due by t at its own time, retrying a blocked call after each."""
        st = self.stack
        while True:
            d = st.next_deadline()
            if d is None or d > t:
                break
            self.now = max(self.now, d)
            st.on_timers(self.now)
            self._collect()
            self._retry_blocked()
        if t > self.now:
            self.now = t
            st.on_timers(t)        # nothing is due; it moves the stack's clock (info(), recv)
            self._collect()

    # ---- the loop
    def run(self) -> None:
        for ev in self.script.events:
            if ev.kind == "command":
                self._command(ev)
                continue
            self._ensure_stack()
            self._event(ev)
        if self.blocked is not None:
            ev, _ = self.blocked
            raise Mismatch(f"runtime error in {ev.syscall.name} call",
                           "the call was still blocked at the end of the script", ev.line)

    def _command(self, ev: Event) -> None:
        """A backtick command; once the stack runs, at its time (``run_command_event`` waits
        for it), and a qdisc change reaches the stack's device queue at once."""
        if self.stack is None:
            self.settings.run(self.base_profile, ev.text, ev.line)
            return
        start, _ = self._when(ev)
        if start > self.now:
            self.advance(start)
        self.settings.run(self.base_profile, ev.text, ev.line)
        self.stack.txq_drop_all = self.settings.drops_all
        self.last_inbound = False
        self.last_script = start
        self.last_time = self.now

    def _when(self, ev: Event) -> tuple[float, float]:
        t = ev.time
        if t.kind == "any":
            return self.now, self.now
        base = 0.0
        if t.kind in ("rel", "rel_range"):
            anchored = self.last_inbound and ev.kind == "packet" and ev.packet.direction == "<"
            base = self.last_script if anchored else self.last_time
        start = base + t.usecs / 1e6
        end = base + t.end / 1e6 if t.kind.endswith("range") else start
        return start, end

    def _tolerance(self, start: float) -> float:
        return max(self.tol, 0.125 * (start - self.last_script))

    def _event(self, ev: Event) -> None:
        start, end = self._when(ev)
        if ev.kind == "packet":
            self._supported(ev)
        if ev.kind == "packet" and ev.packet.direction == ">":
            actual = self._outbound(ev, start, end)
        else:
            if start > self.now:
                self.advance(start)
            actual = self.now
            if ev.kind == "packet":
                self._inbound(ev)
            elif ev.kind == "syscall":
                self._syscall(ev, start)
                actual = self.now
            else:
                run_code(ev.text, self.current.info() if self.current else None, self.defines, ev.line,
                         self.code_vars)
        self.last_inbound = ev.kind == "packet" and ev.packet.direction == "<"
        self.last_script = start
        self.last_time = actual

    # ---- packets
    @staticmethod
    def _supported(ev: Event) -> None:
        p = ev.packet
        if p.proto != "tcp":
            raise Unsupported(f"{p.proto} packets", ev.line)
        for o in p.options or ():
            if o.name in ("FO", "FOEXP"):
                raise Unsupported("TFO", ev.line, "Fast Open option")
            if o.name == "md5":
                raise Unsupported("md5", ev.line, "TCP MD5 option")
        if p.direction == "<" and p.length and "S" in p.flags:
            raise Unsupported("TFO", ev.line, "data on a SYN")

    def _inbound(self, ev: Event) -> None:
        p = ev.packet
        if p.win is None:
            raise Mismatch("error handling packet", "window must be specified for inbound packets", ev.line)
        f = self.flow
        if f is None and self.listening:
            f = self.new_flow(host.LOCAL_PORT, self._rport())   # one connection per script
        if f is None:
            raise Mismatch("error handling packet", "inbound packet with no socket to send it to", ev.line)
        seg = build_inbound(p, f, self.laddr, self.raddr)
        # as bytes through the stack's own IPv4 / IPv6 input (parse, checksum, Ip*InReceives),
        # as packetdrill writes them into its tun
        self.stack.receive(build6(seg) if self.raddr > V4_MAX else build(seg), self.now)
        self._collect()
        self._retry_blocked()

    def _rport(self) -> int:
        self.next_rport += 1
        return self.next_rport

    def _outbound(self, ev: Event, start: float, end: float) -> float:
        tol = self._tolerance(start)
        deadline = max(start, end) + 2.0 + tol       # packetdrill sniffs until 2 s after
        got = []
        total = 0
        while True:
            while not self.pending and self.now < deadline:
                d = self.stack.next_deadline()
                self.advance(min(d, deadline) if d is not None else deadline)
            if not self.pending:
                if got:
                    break
                raise Mismatch("error handling packet", "timed out waiting for packet", ev.line)
            t, seg = self.pending.pop(0)
            got.append((t, seg))
            total += len(seg.payload)
            if self.strict or total >= ev.packet.length:
                break
        t0, first = got[0]
        seg = first if len(got) == 1 else _merged(got)
        f = self._flow_for(seg, ev)
        err = check_outbound(ev.packet, seg, f, total)
        if not err and (seg.saddr, seg.daddr) != (self.laddr, self.raddr):
            err = f"live packet addresses {seg_addrs(seg)}: expected {self.local_ip} > {self.remote_ip}"
        if err:
            raise Mismatch("error handling packet",
                           f"{err}\nscript packet:  {start:.6f} {_script_text(ev)}\n"
                           f"actual packet:  {t0:.6f} {seg_text(seg, f)}", ev.line)
        lo, hi = start - tol, end + tol
        if ev.time.kind != "any" and not (lo - 1e-9 <= t0 <= hi + 1e-9):
            raise Mismatch("error handling packet",
                           f"timing error: expected outbound packet at {start:.6f} sec but happened "
                           f"at {t0:.6f} sec; tolerance {tol:.6f} sec", ev.line)
        return got[-1][0]

    def _flow_for(self, seg, ev: Event) -> Flow:
        f = next((x for x in reversed(self.flows) if x.rport == seg.dport and x.lport == seg.sport), None)
        if f is None:
            f = self.new_flow(seg.sport, seg.dport)
        if f.local_isn is None and seg.flags & SYN and "S" in ev.packet.flags:
            f.local_isn = (seg.seq - ev.packet.start) & 0xFFFFFFFF
        return f

    # ---- syscalls
    def _syscall(self, ev: Event, start: float) -> None:
        if self.blocked is not None:
            bev, _ = self.blocked
            raise Mismatch(f"runtime error in {ev.syscall.name} call",
                           f"the {bev.syscall.name} call of line {bev.line} is still blocked", ev.line)
        res = self._call(ev)
        if res is BLOCK:
            self.blocked = (ev, start)
            sc = ev.syscall
            if sc.end is None:
                # no "...END": packetdrill waits for the call; run the clock until it returns
                self._wait_blocked(ev, start + 2.0 + self.tol)
            return
        self._check_ret(ev, res)

    def _wait_blocked(self, ev: Event, until: float) -> None:
        while self.blocked is not None and self.blocked[0] is ev:
            d = self.stack.next_deadline()
            if d is None or d > until:
                raise Mismatch(f"runtime error in {ev.syscall.name} call",
                               "the call blocked and nothing in the script can wake it", ev.line)
            self.advance(d)

    def _retry_blocked(self) -> None:
        if self.blocked is None:
            return
        ev, start = self.blocked
        res = self._call(ev)
        if res is BLOCK:
            return
        self.blocked = None
        sc = ev.syscall
        if sc.end is not None:
            end = sc.end.usecs / 1e6 + (start - ev.time.usecs / 1e6 if ev.time.kind == "rel" else 0)
            tol = max(self.tol, 0.125 * (end - start))
            if abs(self.now - end) > tol + 1e-9:
                raise Mismatch(f"runtime error in {sc.name} call",
                               f"timing error: expected system call return at {end:.6f} sec but "
                               f"happened at {self.now:.6f} sec; tolerance {tol:.6f} sec", ev.line)
        self._check_ret(ev, res)

    def _call(self, ev: Event):
        self.shim.want_fd = ev.syscall.ret if isinstance(ev.syscall.ret, int) else None
        try:
            res = self.shim.call(ev.syscall.name, ev.syscall.args)
        except _OutArg as e:
            raise Mismatch(f"runtime error in {ev.syscall.name} call", f"Bad output argument: {e}",
                           ev.line) from None
        except Unsupported as e:
            e.line = e.line or ev.line
            raise
        self._collect()
        return res

    def _check_ret(self, ev: Event, res) -> None:
        ret, errno = res
        sc = ev.syscall
        want = sc.ret
        if want is ELLIPSIS:
            return
        if isinstance(want, str):
            want = {"-1": -1}.get(want, want)
        if ret != want or (ret == -1 and sc.errno and sc.errno != errno) or (ret == -1 and not sc.errno and errno):
            exp = f"{want}" + (f" {sc.errno}" if sc.errno else "")
            act = f"{ret}" + (f" {errno}" if errno else "")
            raise Mismatch(f"runtime error in {sc.name} call",
                           f"Expected result {exp} but got {act}", ev.line)

    def check_out(self, arg, have):
        """An output argument ([N]): compare with what the call produced; the call returns 0."""
        want = arg[1][0] if isinstance(arg, tuple) and arg[0] == "[]" and arg[1] else ELLIPSIS
        if want is not ELLIPSIS and want != have:
            raise _OutArg(want, have)
        return 0


class _OutArg(Exception):
    def __init__(self, want, have):
        super().__init__(f"expected: {want} actual: {have}")


def seg_addrs(seg) -> str:
    return f"{addr_str(seg.saddr)} > {addr_str(seg.daddr)}"


def _merged(got):
    """packetdrill's aggregate: the last segment's header with the first's seq and CWR."""
    first = got[0][1]
    last = got[-1][1]
    return replace(last, payload=b"".join(bytes(s.payload) for _, s in got), seq=first.seq,
                   flags=(last.flags & ~CWR) | (first.flags & CWR))


def _script_text(ev: Event) -> str:
    p = ev.packet
    s = f"{p.flags} {p.start}:{p.end}({p.length})"
    if p.ack is not None:
        s += f" ack {p.ack}"
    if p.win is not None:
        s += f" win {p.win}"
    if p.options_any:
        s += " <...>"
    elif p.options:
        s += " <" + ",".join(o.name if o.value is None else f"{o.name} {_ov(o)}" for o in p.options) + ">"
    return s


def _ov(o) -> str:
    if o.name == "TS":
        return f"val {o.value[0]} ecr {o.value[1]}"
    if o.name == "sack":
        return " ".join(f"{a}:{b}" for a, b in o.value)
    return str(o.value)
