"""Endpoint shards: one process per queue of a multi-queue TUN, one listener across them.

The kernel steers each flow to one queue of an IFF_MULTI_QUEUE TUN (``tun_select_queue`` ->
``tun_automq_select_queue``: the flow table learnt from our writes, else the symmetric flow
hash ``__skb_get_hash_symmetric`` scaled to ``numqueues``), so a connection's packets always
reach the same shard and its state stays private there. What Linux shares across CPUs for a
listener lives in a shared buffer (``listen/shared.py`` ``MemShares`` over a memfd, locked with
an fcntl record lock); MIB counters stay per shard and are summed here, like per-CPU MIBs.

Parent side: ``ShardSet`` starts ``python -m tuntcp.scenarios.shard_main`` per queue (through
``Lab.run_in_ns``, so the lab kills them on every exit path), sends each its spec as one JSON
line, then calls them with JSON lines ``{"id": n, "cmd": ..., ...}`` answered by ``{"id": n,
"value": ...}`` or ``{"id": n, "error": "one line"}``; ``{"kernel_log": line}`` comes
unasked. A shard whose pipe closes ends the run with a one-line ``ShardError``.

Child side: ``serve_commands(handlers)`` answers the parent; ``MonoClock`` gives every shard the
same time base (CLOCK_MONOTONIC), which the shared overflow stamp and cookie minutes need.
"""
from __future__ import annotations

import fcntl
import json
import mmap
import os
import subprocess
import sys
import time
from types import SimpleNamespace

import trio

from ..errors import UserError
from ..listen.shared import MemShares, mem_size
from ..mib import Counters


class ShardError(UserError):
    """A shard process died or failed: the run stops with this one line."""


class MonoClock(trio.abc.Clock):
    """trio time = CLOCK_MONOTONIC seconds, the same in every process (trio's default clock
    adds a random offset per run)."""

    def start_clock(self) -> None:
        pass

    def current_time(self) -> float:
        return time.monotonic()

    def deadline_to_sleep_time(self, deadline: float) -> float:
        return deadline - time.monotonic()


class RecordLock:
    """An fcntl (POSIX record) lock on the shared memfd: owned per process, so shards that
    inherited the same file still exclude each other."""

    def __init__(self, fd: int):
        self.fd = fd

    def acquire(self) -> None:
        fcntl.lockf(self.fd, fcntl.LOCK_EX)

    def release(self) -> None:
        fcntl.lockf(self.fd, fcntl.LOCK_UN)


def shared_memfd() -> int:
    """A zeroed memfd big enough for the listener slots."""
    fd = os.memfd_create("tuntcp-listen", 0)
    os.ftruncate(fd, mem_size())
    return fd


def attach_shares(stack, fd: int, shard: int, nshards: int) -> None:
    """Make ``stack`` (shard ``shard`` of ``nshards``) keep its Linux listeners' shared state
    in the memfd ``fd``."""
    buf = mmap.mmap(fd, mem_size())
    stack.listen_shares = MemShares(memoryview(buf), RecordLock(fd), shard, nshards)


def check_shards(n: int, profile, offload: bool = False) -> None:
    if not 1 <= n <= 64:
        raise ShardError(f"--shards must be 1..64, got {n}")
    if n > 1 and profile.family != "linux":
        raise ShardError("--shards > 1 models Linux's listener (FreeBSD's syncache is per "
                         "vnet and not shared here): use a Linux profile or --shards 1")


# ---- parent side ------------------------------------------------------------------------------

class ShardSet:
    """The running shards of one endpoint."""

    def __init__(self, lab, spec: dict, on_log=None):
        self.lab, self.spec = lab, spec
        self.n = lab.queues
        self.procs: list[subprocess.Popen] = []
        self._out: list[trio.lowlevel.FdStream] = []
        self._pending: dict[int, list] = {}
        self._next = 0
        self.on_log = on_log or (lambda line: None)
        self.closing = False
        self.memfd = -1
        self.per_shard: dict[int, dict] = {}     # spec entries of one shard (its files)
        self.on_note = lambda i, msg: None       # other unasked messages

    async def start(self, nursery) -> "ShardSet":
        self.memfd = shared_memfd()
        ready = []
        for i, qfd in enumerate(self.lab.queue_fds):
            p = self.lab.run_in_ns([sys.executable, "-m", "tuntcp.scenarios.shard_main"],
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   pass_fds=(qfd, self.memfd))
            self.procs.append(p)
            self._out.append(trio.lowlevel.FdStream(os.dup(p.stdin.fileno())))
            inp = trio.lowlevel.FdStream(os.dup(p.stdout.fileno()))
            p.stdin.close()
            p.stdout.close()
            ev = trio.Event()
            ready.append(ev)
            nursery.start_soon(self._read, i, inp, ev)
            await self._write(i, dict(self.spec, shard=i, nshards=self.n, tun_fd=qfd,
                                      mem_fd=self.memfd,
                                      **self.per_shard.get(i, {})))
        for ev in ready:
            await ev.wait()
        return self

    async def call(self, i: int, cmd: str, **kw):
        self._next += 1
        n = self._next
        slot = self._pending[n] = [trio.Event(), None]
        await self._write(i, {"id": n, "cmd": cmd, **kw})
        await slot[0].wait()
        msg = self._pending.pop(n)[1]
        if "error" in msg:
            raise ShardError(f"shard {i}: {msg['error']}")
        return msg.get("value")

    async def call_all(self, cmd: str, **kw) -> list:
        out = [None] * self.n

        async def one(i):
            out[i] = await self.call(i, cmd, **kw)
        async with trio.open_nursery() as nursery:
            for i in range(self.n):
                nursery.start_soon(one, i)
        return out

    async def _write(self, i: int, msg: dict) -> None:
        try:
            await self._out[i].send_all((json.dumps(msg) + "\n").encode())
        except (trio.BrokenResourceError, OSError):
            await self._died(i)

    async def _read(self, i: int, stream, ready: trio.Event) -> None:
        async with stream:
            async for msg in json_lines(stream):
                if "kernel_log" in msg:
                    self.on_log(msg["kernel_log"])
                elif "ready" in msg:
                    ready.set()
                elif "id" in msg:
                    slot = self._pending.get(msg["id"])
                    if slot is not None:
                        slot[1] = msg
                        slot[0].set()
                else:
                    self.on_note(i, msg)
        if not self.closing:
            await self._died(i)

    async def _died(self, i: int) -> None:
        p = self.procs[i]
        with trio.move_on_after(2):
            while p.poll() is None:
                await trio.sleep(0.01)
        code = p.poll()
        how = ("still running" if code is None else f"killed by signal {-code}" if code < 0
               else f"exit status {code}")
        raise ShardError(f"shard {i} (pid {p.pid}) died ({how}); the run is stopped and "
                         "its namespace removed")

    def close(self) -> None:
        """Stop every shard (SIGTERM, then SIGKILL) and free the shared memory."""
        self.closing = True
        for s in self._out:
            try:
                s.close()          # EOF: a shard still running ends by itself
            except OSError:
                pass
        deadline = time.monotonic() + 2.0       # a shard at EOF flushes its files and exits
        for p in self.procs:
            try:
                p.wait(timeout=max(0.01, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.terminate()                   # the lab kills what is left (process groups)
        if self.memfd >= 0:
            os.close(self.memfd)
            self.memfd = -1

    # ---- aggregated views ----

    async def counters(self) -> Counters:
        """The MIB counters of every shard, summed (as ``nstat`` sums per-CPU MIBs)."""
        total = Counters()
        for part in await self.call_all("counters"):
            for k, v in part.items():
                total[k] += v
        return total

    async def ss(self, q: dict) -> str:
        """``ss``: the header and LISTEN rows once, from shard 0 (their queue counts are the
        listener's), connection rows from every shard (columns aligned per shard);
        ``-s`` counts every shard's sockets."""
        if q.get("summary"):
            return await self.call(0, "ss_summary", states=await self.call_all("states"))
        from ..obs.ssfilter import SS_NUM
        parts = [await self.call(0, "ss", query=q)]
        rest = dict(q, no_header=True, states=q["states"] & ~(1 << SS_NUM["LISTEN"]))
        if rest["states"]:
            for i in range(1, self.n):
                parts.append(await self.call(i, "ss", query=rest))
        return "".join(parts)


class ShardControl:
    """The control socket's handler for a sharded endpoint (``ControlServer(handler=...)``)."""

    def __init__(self, shards: ShardSet):
        from ..obs.nstat import NstatHistory
        self.shards = shards
        self._nstat = NstatHistory()

    async def handle(self, req: dict) -> dict:
        cmd, sh = req.get("cmd"), self.shards
        if cmd == "ss":
            from ..obs.commands import _legacy_ss
            return {"ok": True, "text": await sh.ss(req.get("query") or _legacy_ss(req))}
        if cmd == "nstat":
            q = req.get("query") or {"absolute": bool(req.get("absolute")),
                                     "zeros": bool(req.get("zeros"))}
            return {"ok": True, "text": self._nstat.answer(await sh.counters(), q)}
        if cmd == "netstat":
            return {"ok": True, "text": await sh.call(0, "netstat")}
        if cmd == "stats":
            total: dict = {}
            for part in await sh.call_all("stats"):
                for k, v in part.items():
                    total[k] = max(total.get(k, 0), v) if k == "max_batch" else total.get(k, 0) + v
            return {"ok": True, "stats": total}
        return {"ok": False, "error": f"unknown command {cmd!r}"}


def merge_events(parts: list[str], dest: str) -> None:
    """Each shard's JSON-lines events file, merged into ``dest`` in time order (one clock)."""
    recs = []
    for path in parts:
        try:
            with open(path) as f:
                recs += [(json.loads(line).get("t") or 0.0, k, line) for k, line in enumerate(f)]
        except FileNotFoundError:
            continue
        os.unlink(path)
    recs.sort(key=lambda r: (r[0], r[1]))
    with open(dest, "a") as f:
        f.writelines(line for _, _, line in recs)


def merge_pcaps(parts: list[str], dest: str) -> None:
    """Each shard's pcap (same link type), merged into ``dest`` in time order."""
    import struct
    head, recs = None, []
    for path in parts:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            continue
        os.unlink(path)
        head = head or data[:24]
        off = 24
        while off + 16 <= len(data):
            sec, usec, incl = struct.unpack_from("<III", data, off)
            recs.append((sec, usec, len(recs), data[off:off + 16 + incl]))
            off += 16 + incl
    if head is None:
        return
    recs.sort()
    with open(dest, "wb") as f:
        f.write(head)
        f.writelines(r[3] for r in recs)


# ---- child side -------------------------------------------------------------------------------

async def json_lines(stream):
    """The JSON messages of a stream, one per line, until EOF."""
    buf = b""
    while True:
        data = await stream.receive_some(1 << 16)
        if not data:
            return
        buf += data
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            yield json.loads(line)


async def serve_commands(handlers: dict, *, stdin_fd: int = 0, stdout_fd: int = 1) -> None:
    """Answer the parent's JSON lines until it closes the pipe (then return: the shard ends).
    A handler is ``async def h(**kw) -> value``; a UserError in one is answered as an error."""
    inp = trio.lowlevel.FdStream(os.dup(stdin_fd))
    out = trio.lowlevel.FdStream(os.dup(stdout_fd))
    send_lock = trio.Lock()

    async def reply(msg: dict) -> None:
        async with send_lock:
            await out.send_all((json.dumps(msg, default=str) + "\n").encode())

    async def one(msg: dict) -> None:
        h = handlers.get(msg.get("cmd"))
        try:
            if h is None:
                raise UserError(f"unknown shard command {msg.get('cmd')!r}")
            kw = {k: v for k, v in msg.items() if k not in ("id", "cmd")}
            await reply({"id": msg["id"], "value": await h(**kw)})
        except UserError as e:
            await reply({"id": msg["id"], "error": str(e).splitlines()[0]})

    async with trio.open_nursery() as nursery:
        nursery.start_soon(reply, {"ready": os.getpid()})
        async for msg in json_lines(inp):
            nursery.start_soon(one, msg)
        nursery.cancel_scope.cancel()


def note_sender():
    """``send(msg)``: a message to the parent that it did not ask for (the stdout pipe,
    written whole, so it never splits a reply)."""
    def send(msg: dict) -> None:
        data = (json.dumps(msg) + "\n").encode()
        while data:
            try:
                n = os.write(1, data)
            except BlockingIOError:
                time.sleep(0.001)
                continue
            data = data[n:]
    return send


def log_sender():
    """A shard's kernel log lines ("Possible SYN flooding ..."), forwarded to the parent."""
    note = note_sender()
    return lambda line: note({"kernel_log": line})


def read_spec() -> dict:
    line = sys.stdin.buffer.readline()
    if not line:
        raise SystemExit(0)
    return json.loads(line)


__all__ = ["ShardSet", "ShardControl", "ShardError", "MonoClock", "RecordLock", "attach_shares",
           "check_shards", "merge_events", "merge_pcaps", "serve_commands", "note_sender",
           "log_sender", "read_spec"]


# ---- `tuntcp serve --shards N` ------------------------------------------------------------------

def shard_path(path: str | None, i: int) -> str | None:
    """Shard ``i``'s own file beside ``path`` (events.jsonl -> events.shard0.jsonl)."""
    if not path:
        return None
    stem, dot, ext = path.rpartition(".")
    return f"{stem}.shard{i}.{ext}" if dot and "/" not in ext else f"{path}.shard{i}"


def serve_spec(lab, profile, args, link: dict | None) -> dict:
    return {"role": "serve", "profile": profile.name, "sysctl": list(args.sysctl),
            "secret": os.urandom(16).hex(), "addr": lab.endpoint_ip, "port": args.port,
            "backlog": args.backlog, "rcvbuf": args.rcvbuf, "app": args.app, "link": link,
            "offload": bool(getattr(args, "offload", False))}


async def serve_sharded(lab, profile, args, link: dict | None) -> None:
    """``tuntcp serve --shards N``: N endpoint processes on the lab's N TUN queues, one
    listener; ``tuntcp ss|nstat|netstat --name`` answer for all of them."""
    from .apps import _banner
    from .control import ControlServer, socket_path
    spec = serve_spec(lab, profile, args, link)
    n = lab.queues
    shards = ShardSet(lab, spec, on_log=lambda line: print(f"kernel: {line}", flush=True))
    parts = [shard_path(args.events, i) for i in range(n)] if args.events else []

    try:
        async with trio.open_nursery() as nursery:
            shards.per_shard = {i: {"events": shard_path(args.events, i),
                                    "pcap": shard_path(args.pcap, i)} for i in range(n)}
            await shards.start(nursery)
            await nursery.start(ControlServer(None, socket_path(args.name),
                                              handler=ShardControl(shards).handle).serve)
            lst = SimpleNamespace(listener=SimpleNamespace(backlog=await shards.call(0, "backlog")))
            _banner(lab, profile, args, lst)
            print(f"  shards: {n} endpoint processes, one per TUN queue (pids "
                  f"{', '.join(str(p.pid) for p in shards.procs)})", flush=True)
            if args.duration is not None:
                await trio.sleep(args.duration)
                nursery.cancel_scope.cancel()
    finally:
        shards.close()
        if parts:
            merge_events(parts, args.events)
