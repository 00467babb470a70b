"""Storm producers in processes of their own: always, so the producers' CPU is never taken from
the broker they measure, and as many as the open-files limit needs. Each worker runs `python -m tuntcp.scenarios.storm_worker` inside the lab's namespace (started by
Lab.run_in_ns, which kills it when the lab closes) and drives a storm_fleet.Fleet over its slice of
the producers; WorkerFleet is the parent's view of all of them, with Fleet's methods.

JSON lines, parent -> worker stdin, worker -> parent stdout:

    {"cfg": {...}, "first": a, "stop": b,   {"ready": n}
     "srcs": [...], "dst": addr}
    {"cmd": "connect", "first": i,          {"connect_done": k}
     "stop": j}
    {"cmd": "break"}                        {"broken": k}
    {"cmd": "go", "t0": monotonic}          {"progress": [established, answered]} ...
                                            {"storm_done": cpu share}
    {"cmd": "records"}                      {"record": {...}} per producer, {"records_done": n}
    any failure                             {"error": "one line"}, exit status 1

"go" goes to every worker back to back, so all producers reconnect at once; t0 is the parent's
CLOCK_MONOTONIC reading (one clock for every process), so connect_s stays relative to the
re-listen. EOF on stdin means the parent is gone: the worker exits.
"""
from __future__ import annotations

import functools
import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict

import trio

from tuntcp.scenarios.storm_fleet import Fleet, StormConfig, StormError, make_producers, raise_fd_limit


# ---- the parent's side -------------------------------------------------------------------------

class WorkerFleet:
    """All producer processes of one run; a dead or failing worker is a one-line StormError."""

    def __init__(self):
        self.procs: list[subprocess.Popen] = []
        self.stdins: list[trio.lowlevel.FdStream] = []
        self.slices: list[tuple[int, int]] = []
        self.prog: list[tuple[int, int]] = []
        self.recs: list[list[dict]] = []
        self.cpu_shares: list[float] = [0.0]     # per worker, over the storm phase
        self._inbox_send, self._inbox = trio.open_memory_channel(math.inf)

    @classmethod
    async def start(cls, lab, cfg: StormConfig, srcs, slices, nursery) -> "WorkerFleet":
        """Start one worker per producer slice inside the lab's namespace, each told its slice."""
        self = cls()
        cfg_dict = asdict(cfg)
        cfg_dict["modes"] = list(cfg.modes)
        for k, (first, stop) in enumerate(slices):
            p = lab.run_in_ns([sys.executable, "-m", "tuntcp.scenarios.storm_worker"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            out = trio.lowlevel.FdStream(os.dup(p.stdout.fileno()))
            self.stdins.append(trio.lowlevel.FdStream(os.dup(p.stdin.fileno())))
            p.stdout.close()
            p.stdin.close()
            self.procs.append(p)
            self.slices.append((first, stop))
            self.prog.append((0, 0))
            self.recs.append([])
            nursery.start_soon(self._read, k, out)
            await self._send(k, {"cfg": cfg_dict, "first": first, "stop": stop, "srcs": srcs,
                                 "dst": lab.endpoint_addr})
        await self._gather("ready")
        return self

    async def connect(self, first: int, stop: int) -> int:
        """Only the workers that have producers in ``first..stop-1`` take part."""
        ks = [k for k, (a, b) in enumerate(self.slices) if a < stop and first < b]
        for k in ks:
            await self._send(k, {"cmd": "connect", "first": first, "stop": stop})
        return sum(await self._gather("connect_done", ks))

    async def wait_broken(self) -> None:
        await self._all({"cmd": "break"})
        await self._gather("broken")

    async def storm(self, t0: float) -> None:
        await self._all({"cmd": "go", "t0": time.monotonic() - (trio.current_time() - t0)})
        # each worker answers with its CPU share over the storm phase (1.0 = a whole core)
        self.cpu_shares = await self._gather("storm_done")

    def progress(self) -> tuple[int, int]:
        return sum(e for e, _ in self.prog), sum(d for _, d in self.prog)

    async def records(self) -> list[dict]:
        await self._all({"cmd": "records"})
        await self._gather("records_done")
        return [r for part in self.recs for r in part]     # slices are in producer order

    # -- plumbing --------------------------------------------------------------------------

    def _name(self, k: int) -> str:
        return f"producer process {k + 1} of {len(self.procs)} (pid {self.procs[k].pid})"

    async def _all(self, msg: dict) -> None:
        line = (json.dumps(msg) + "\n").encode()     # encoded once: the writes go out back to back
        for k in range(len(self.procs)):
            await self._send(k, line)

    async def _send(self, k: int, msg) -> None:
        data = msg if isinstance(msg, bytes) else (json.dumps(msg) + "\n").encode()
        try:
            await self.stdins[k].send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            raise StormError(f"{self._name(k)} {await self._exit_status(k)}") from None

    async def _gather(self, key: str, ks=None) -> list:
        """One `key` answer from each worker in `ks` (all by default); the first error or exit
        of any worker fails the run."""
        ks = range(len(self.procs)) if ks is None else ks
        got: dict[int, object] = {}
        while len(got) < len(ks):
            k, msg = await self._inbox.receive()
            if "error" in msg:
                raise StormError(f"{self._name(k)}: {msg['error']}")
            if "exit" in msg:
                raise StormError(f"{self._name(k)} {msg['exit']} while waiting for {key!r}")
            if key in msg:
                got[k] = msg[key]
        return [got[k] for k in ks]

    async def _read(self, k: int, out) -> None:
        try:
            async with out:
                async for line in _lines(out):
                    self._dispatch(k, line)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
        finally:
            with trio.CancelScope(shield=True):
                await self.stdins[k].aclose()
        self._inbox_send.send_nowait((k, {"exit": await self._exit_status(k)}))

    def _dispatch(self, k: int, line: bytes) -> None:
        try:
            msg = json.loads(line)
        except ValueError:
            msg = {"error": f"unreadable line {line[:80]!r}"}
        if "progress" in msg:
            self.prog[k] = tuple(msg["progress"])
        elif "record" in msg:
            self.recs[k].append(msg["record"])
        else:
            self._inbox_send.send_nowait((k, msg))

    async def _exit_status(self, k: int) -> str:
        p = self.procs[k]
        for _ in range(100):          # its stdout closed: it is exiting, give it a second
            if p.poll() is not None:
                break
            await trio.sleep(0.01)
        rc = p.poll()
        if rc is None:
            return "closed its pipe"
        if rc < 0:
            return f"was killed by {signal.Signals(-rc).name}"
        return f"exited with status {rc}"


async def _lines(stream):
    """The newline-terminated lines of a byte stream (both directions speak JSON lines)."""
    buf = b""
    while chunk := await stream.receive_some(1 << 16):
        *lines, buf = (buf + chunk).split(b"\n")
        for line in lines:
            yield line


# ---- the worker --------------------------------------------------------------------------------

def _send(msg: dict) -> None:
    sys.stdout.buffer.write((json.dumps(msg) + "\n").encode())
    sys.stdout.buffer.flush()


async def _commands(stdin, channel, scope) -> None:
    async with stdin:
        async for line in _lines(stdin):
            channel.send_nowait(json.loads(line))
    scope.cancel()          # the parent is gone


async def _progress(fleet: Fleet) -> None:
    while True:
        _send({"progress": list(fleet.progress())})
        await trio.sleep(0.05)


async def serve() -> None:
    send, commands = trio.open_memory_channel(math.inf)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_commands, trio.lowlevel.FdStream(os.dup(0)), send, nursery.cancel_scope)
        init = await commands.receive()
        cfg = StormConfig(**{**init["cfg"], "modes": tuple(init["cfg"]["modes"])})
        af = socket.AF_INET6 if cfg.family == 6 else socket.AF_INET
        fleet = Fleet(make_producers(cfg, init["srcs"], init["first"], init["stop"],
                                     functools.partial(socket.socket, af)),
                      init["dst"])
        _send({"ready": len(fleet.producers)})
        async for msg in commands:
            cmd = msg["cmd"]
            if cmd == "connect":
                _send({"connect_done": await fleet.connect(msg["first"], msg["stop"])})
            elif cmd == "break":
                await fleet.wait_broken()
                _send({"broken": True})
            elif cmd == "go":
                cpu0, wall0 = time.process_time(), time.monotonic()
                t0 = trio.current_time() - (time.monotonic() - msg["t0"])
                async with trio.open_nursery() as n:
                    n.start_soon(_progress, fleet)
                    await fleet.storm(t0)
                    n.cancel_scope.cancel()
                _send({"progress": list(fleet.progress())})
                _send({"storm_done": round((time.process_time() - cpu0) /
                                           max(1e-9, time.monotonic() - wall0), 3)})
            elif cmd == "records":
                records = await fleet.records()
                for r in records:
                    _send({"record": r})
                _send({"records_done": len(records)})


def main() -> int:
    raise_fd_limit()
    try:
        trio.run(serve)
    except BaseException as e:      # one line to the parent, never a traceback
        from tuntcp.errors import leaves
        leaf = next(iter(leaves(e)), e)
        try:
            _send({"error": f"{type(leaf).__name__}: {leaf}".splitlines()[0]})
        except OSError:
            pass
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
