"""The storm's third column: the same producers against the host's own kernel.

Topology (both labs are ordinary harness Labs; no veth, no netem):

    producers' namespace (lab A)            broker's namespace (lab B)
    198.18.0.1, 198.19.0.0/16  --tunA-->  [this process]  --tunB-->  198.18.1.1:9092
                               <--------  LinkModel in/out  <------  kernel listener (server())

Every packet between the namespaces passes through this process (``Relay``), which delays and
drops it with the same seeded LinkModel pair the tuntcp endpoint uses (link_in: producers ->
broker, link_out: broker -> producers). The RTT and loss therefore apply to both columns alike,
including the cost of a userspace hop; the relay measures its own saturation, so a kernel
column inflated by the relay is reported as such.

The broker in lab B is ``python -m tuntcp.scenarios.storm_kernel`` (``server()``): a selector
loop on kernel sockets with the storm's backlog and SO_RCVBUF (set before listen(), as Kafka's
socket.receive.buffer.bytes), answering each size-prefixed request with RESPONSE bytes.
Lab B's tcp_syncookies is the storm's. The host kernel carries the cookie wscale fix.

stdin / stdout JSON lines (parent -> server, server -> parent):

    (start)                                  {"ready": true}
                                             {"status": [accepted since listen, accept queue,
                                                         process_time, monotonic]}
    {"cmd": "restart", "down_s": s}          {"relistened": true}
    {"cmd": "info"}                          {"info": [[addr, port, rcv_wscale, rcv_wnd], ...]}
    EOF                                      exits

``--target CMD`` (issue 14, TargetSide) replaces server() by the user's command started in lab B;
the relay, the labs and the producers stay as they are, and the request/response shape is the
storm's --request / --reply-bytes / --reply-delim.
"""
from __future__ import annotations

import json
import os
import platform
import select
import selectors
import socket
import subprocess
import sys
import time
from tuntcp.wire.ipv6 import addr_int

import trio

from tuntcp import mib
from tuntcp.scenarios.storm_fleet import PORT, REPLY, Framer, StormConfig, StormError

RELAY_BATCH = 256


def host_label() -> str:
    """``kernel (host 6.18)``: the column's name."""
    rel = platform.release().split("-")[0].split(".")
    return f"kernel (host {'.'.join(rel[:2])})"


# ---- the relay (this process) --------------------------------------------------------------------

class Relay:
    """Moves packets between two TUN fds through two LinkModels; one trio task."""

    def __init__(self, fd_a: int, fd_b: int, link_in, link_out, saturation):
        from tuntcp.shell.tun import FdIO
        self.a, self.b = FdIO(fd_a), FdIO(fd_b)
        self.link_in, self.link_out = link_in, link_out
        self.saturation = saturation
        self.drops = 0           # writes a TUN refused

    def _deadline(self) -> float:
        ds = [link.next_deadline() for link in (self.link_in, self.link_out) if link is not None]
        ds = [d for d in ds if d is not None]
        return min(ds) if ds else float("inf")

    def _move(self, pkts, link, dst, now) -> int:
        if link is not None:
            for p in pkts:
                link.push(p, now)
            pkts = link.pop_due(now)
        write = dst.write
        for p in pkts:
            if not write(p):
                self.drops += 1
        return len(pkts)

    async def run(self) -> None:
        ep = select.epoll()      # readable when either TUN is: one wait for both
        ep.register(self.a.fd, select.EPOLLIN)
        ep.register(self.b.fd, select.EPOLLIN)
        sat = self.saturation
        try:
            while True:
                now = trio.current_time()
                sat.on_pass(now, self._deadline())
                up = self.a.read_batch(RELAY_BATCH)
                down = self.b.read_batch(RELAY_BATCH)
                sat.on_batch(len(up) + len(down))
                self._move(up, self.link_in, self.b, now)
                self._move(down, self.link_out, self.a, now)
                if len(up) >= RELAY_BATCH or len(down) >= RELAY_BATCH:
                    await trio.lowlevel.checkpoint()
                    continue
                ep.poll(0)       # clear the epoll fd's own readiness before sleeping on it
                with trio.move_on_at(self._deadline()):
                    await trio.lowlevel.wait_readable(ep.fileno())
        finally:
            ep.close()


# ---- the broker's side, as the storm drives it -----------------------------------------------------

def _netstat() -> dict:
    """TcpExt* and Tcp* counters of the calling thread's namespace (nstat's names)."""
    out = {}
    for path, groups in (("/proc/thread-self/net/netstat", ("TcpExt",)),
                         ("/proc/thread-self/net/snmp", ("Tcp",))):
        with open(path) as f:
            lines = f.read().splitlines()
        for names, values in zip(lines[::2], lines[1::2]):
            g, *ks = names.split()
            _, *vs = values.split()
            if g.rstrip(":") in groups:
                for k, v in zip(ks, vs):
                    out[g.rstrip(":") + k] = int(v)
    return out


class KernelSide:
    """The kernel broker process in lab B, with the methods run_mode's choreography needs."""

    def __init__(self, lab_b, cfg: StormConfig):
        self.lab, self.cfg = lab_b, cfg
        self.proc = None
        self.accepted = 0
        self.acceptq = 0
        self.cpu = (0.0, 0.0)          # the broker process's (process_time, monotonic)
        self._cpu0 = None
        self._send_ch, self._inbox = trio.open_memory_channel(1000)

    async def start(self, nursery) -> None:
        from tuntcp.scenarios.storm_worker import _lines
        argv = [sys.executable, "-m", "tuntcp.scenarios.storm_kernel", "--addr",
                self.lab.client_addr, "--backlog", str(self.cfg.backlog), "--rcvbuf",
                str(self.cfg.rcvbuf)]
        self.proc = self.lab.run_in_ns(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self._out = trio.lowlevel.FdStream(os.dup(self.proc.stdout.fileno()))
        self._in = trio.lowlevel.FdStream(os.dup(self.proc.stdin.fileno()))
        self.proc.stdout.close()
        self.proc.stdin.close()

        async def read():
            async with self._out:
                async for line in _lines(self._out):
                    msg = json.loads(line)
                    if "status" in msg:
                        self.accepted, self.acceptq, *cpu = msg["status"]
                        self.cpu = tuple(cpu)
                    else:
                        await self._send_ch.send(msg)
            await self._send_ch.send({"exit": self.proc.wait()})
        nursery.start_soon(read)
        await self._expect("ready")

    async def _expect(self, key):
        msg = await self._inbox.receive()
        if key not in msg:
            raise StormError(f"kernel broker (pid {self.proc.pid}) ended while waiting for "
                             f"{key!r}: {msg}")
        return msg[key]

    async def _cmd(self, msg: dict, key: str):
        try:
            await self._in.send_all((json.dumps(msg) + "\n").encode())
        except (trio.BrokenResourceError, OSError):
            raise StormError(f"kernel broker (pid {self.proc.pid}) exited") from None
        return await self._expect(key)

    async def restart(self) -> None:
        await self._cmd({"cmd": "restart", "down_s": self.cfg.down_s}, "relistened")

    async def server_info(self) -> dict:
        rows = await self._cmd({"cmd": "info"}, "info")
        return {(addr_int(a), p): {"path": "kernel", "rcv_wscale": ws, "rcv_wnd": wnd}
                for a, p, ws, wnd in rows}

    def mark_cpu(self) -> None:
        self._cpu0 = self.cpu

    def other_cpu(self) -> dict:
        (c0, w0), (c1, w1) = self._cpu0, self.cpu
        return {"kernel broker process": (c1 - c0) / (w1 - w0) if w1 > w0 else None}

    async def relisten(self, nursery) -> None:
        pass                     # restart() answers once the new listener is up

    def queues(self) -> dict:
        # the kernel shows its accept queue (TCP_INFO unacked of the listener); the SYN queue
        # length has no cheap reader (inet_diag per sample), so it is not sampled
        return {"accept": self.acceptq, "syn": None}

    def counters(self) -> dict:
        return self.lab.call_in_ns(_netstat)

    def counters_delta(self, before: dict) -> dict:
        now = self.counters()
        return {k: v - before.get(k, 0) for k, v in now.items() if v - before.get(k, 0)}

    async def aclose(self) -> None:
        with trio.CancelScope(shield=True):
            await self._in.aclose()


def join_labs(lab_a, lab_b, extra_net: str) -> None:
    """Lab B routes the producers' extra addresses (lab A's 198.19.0.0/16) into its TUN too."""
    subprocess.run(["ip", "-n", lab_b.ns_name, "route", "add", extra_net, "dev", lab_b.tun_name],
                   check=True, capture_output=True)


# ---- the kernel broker process (runs inside lab B) ---------------------------------------------

def _listen(addr: str, backlog: int, rcvbuf: int) -> socket.socket:
    s = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)   # inherited by accepted sockets
    s.bind((addr, PORT))
    s.listen(backlog)
    s.setblocking(False)
    return s


def _say(msg: dict) -> None:
    sys.stdout.write(json.dumps(msg) + "\n")
    sys.stdout.flush()


def server(addr: str, backlog: int, rcvbuf: int) -> None:
    from tuntcp.harness.clients import set_linger0, tcp_info
    sel = selectors.DefaultSelector()
    lst = _listen(addr, backlog, rcvbuf)
    sel.register(lst, selectors.EVENT_READ, "listen")
    sel.register(sys.stdin.fileno(), selectors.EVENT_READ, "stdin")
    conns: dict[socket.socket, Framer] = {}
    accepted, last_status, stdin_buf = 0, 0.0, b""
    _say({"ready": True})
    while True:
        for key, _ in sel.select(timeout=0.02):
            if key.data == "listen":
                while True:
                    try:
                        c, _a = lst.accept()
                    except BlockingIOError:
                        break
                    c.setblocking(False)
                    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    conns[c] = Framer()
                    sel.register(c, selectors.EVENT_READ, "conn")
                    accepted += 1
            elif key.data == "conn":
                c = key.fileobj
                try:
                    data = c.recv(65536)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    data = b""
                if not data:
                    sel.unregister(c)
                    del conns[c]
                    c.close()
                    continue
                for _ in range(conns[c].feed(data)):
                    c.setblocking(True)      # 68 bytes: never blocks for long
                    c.sendall(REPLY)
                    c.setblocking(False)
            else:
                chunk = os.read(sys.stdin.fileno(), 65536)
                if not chunk:
                    return
                *lines, stdin_buf = (stdin_buf + chunk).split(b"\n")
                for line in lines:
                    msg = json.loads(line)
                    if msg["cmd"] == "restart":
                        sel.unregister(lst)
                        lst.close()
                        for c in list(conns):      # the process dies: RST to every producer
                            sel.unregister(c)
                            set_linger0(c)
                            c.close()
                        conns.clear()
                        time.sleep(msg["down_s"])
                        lst = _listen(addr, backlog, rcvbuf)
                        sel.register(lst, selectors.EVENT_READ, "listen")
                        accepted = 0
                        _say({"relistened": True})
                    elif msg["cmd"] == "info":
                        rows = []
                        for c in conns:
                            try:
                                i = tcp_info(c)
                                a, p = c.getpeername()[:2]
                            except OSError:
                                continue
                            rows.append([a, p, i["rcv_wscale"], i.get("rcv_wnd", 0)])
                        _say({"info": rows})
        now = time.monotonic()
        if now - last_status >= 0.02:
            last_status = now
            # unacked of a listener: its accept queue
            _say({"status": [accepted, tcp_info(lst)["unacked"], time.process_time(), now]})


def main() -> int:
    import argparse
    p = argparse.ArgumentParser(prog="python -m tuntcp.scenarios.storm_kernel")
    p.add_argument("--addr", required=True)
    p.add_argument("--backlog", type=int, required=True)
    p.add_argument("--rcvbuf", type=int, required=True)
    a = p.parse_args()
    try:
        server(a.addr, a.backlog, a.rcvbuf)
    except (BrokenPipeError, KeyboardInterrupt):
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())


# ---- --target: the user's own server in lab B -------------------------------------------------

def _listen_queue(port: int):
    """The accept queue of the listener on ``port`` in the calling thread's namespace (rx_queue
    of its LISTEN row in /proc/net/tcp), or None when nothing listens there."""
    want = f":{port:04X}"
    with open("/proc/thread-self/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            if fields[3] == "0A" and fields[1].endswith(want):
                return int(fields[4].split(":")[1], 16)
    return None


def _cpu_seconds(pid: int):
    try:
        with open(f"/proc/{pid}/stat") as f:
            v = f.read().rsplit(")", 1)[1].split()
        return (int(v[11]) + int(v[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


class TargetSide(KernelSide):
    """``--target CMD``: the user's server, started in lab B with ``sh -c`` (TUNTCP_ADDR and
    TUNTCP_PORT in its environment), stormed like the built-in kernel broker. The restart kills
    its process group (the kernel resets connections with unread data) and starts it again.
    What a foreign server cannot tell us comes from the kernel: accepted = TcpPassiveOpens,
    the accept queue from /proc/net/tcp, each connection's window scale from ``ss -ti``."""

    LISTEN_WAIT_S = 10.0

    async def start(self, nursery) -> None:
        self._passive0 = 0
        await self._launch()

    async def _launch(self) -> None:
        cfg = self.cfg
        env = {**os.environ, "TUNTCP_ADDR": self.lab.client_addr, "TUNTCP_PORT": str(cfg.target_port)}
        self.log_path = os.path.join(cfg.out, "target.log")
        os.makedirs(cfg.out, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = self.lab.run_in_ns(["sh", "-c", cfg.target], stdin=subprocess.DEVNULL,
                                           stdout=log, stderr=log, env=env)
        deadline = time.monotonic() + self.LISTEN_WAIT_S
        while self.lab.call_in_ns(_listen_queue, cfg.target_port) is None:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise StormError(f"--target {cfg.target!r} did not listen on port "
                                 f"{cfg.target_port} within {self.LISTEN_WAIT_S:.0f} s "
                                 f"(its output: {self.log_path})")
            await trio.sleep(0.02)
        self._passive0 = self.counters().get(mib.TcpPassiveOpens, 0)

    @property
    def accepted(self) -> int:
        return self.counters().get(mib.TcpPassiveOpens, 0) - self._passive0

    @accepted.setter
    def accepted(self, value) -> None:
        pass                     # KernelSide.__init__ sets it; here the kernel counts

    def queues(self) -> dict:
        return {"accept": self.lab.call_in_ns(_listen_queue, self.cfg.target_port) or 0,
                "syn": None}

    async def restart(self) -> None:
        import signal
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        while self.proc.poll() is None:
            await trio.sleep(0.01)
        await trio.sleep(self.cfg.down_s)
        await self._launch()

    def mark_cpu(self) -> None:
        self._cpu0 = (_cpu_seconds(self.proc.pid), time.monotonic())

    def other_cpu(self) -> dict:
        c1, (c0, w0) = _cpu_seconds(self.proc.pid), self._cpu0
        share = None if c0 is None or c1 is None else (c1 - c0) / max(1e-9, time.monotonic() - w0)
        return {"target process": share}

    async def server_info(self) -> dict:
        """wscale and rcv_wnd of each established connection of the target, from ``ss -ti``."""
        import re
        p = await trio.run_process(["ip", "netns", "exec", self.lab.ns_name, "ss", "-tinH",
                                    "state", "established", f"( sport = :{self.cfg.target_port} )"],
                                   capture_stdout=True, check=False)
        out, peer = {}, None
        for line in p.stdout.decode().splitlines():
            if not line[:1].isspace():
                a, _, port = line.split()[-1].rpartition(":")
                peer = (addr_int(a.strip("[]")), int(port))
                continue
            ws = re.search(r"wscale:(\d+),(\d+)", line)
            wnd = re.search(r"rcv_wnd:(\d+)", line)
            if peer and ws:
                out[peer] = {"path": "kernel", "rcv_wscale": int(ws.group(2)),
                             "rcv_wnd": int(wnd.group(1)) if wnd else None}
        return out

    async def aclose(self) -> None:
        pass
