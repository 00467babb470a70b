"""Control socket: lets ``tuntcp ss`` and ``tuntcp nstat`` read a running endpoint.

AF_UNIX stream socket at /run/tuntcp/<name>.sock (removed on exit). One JSON request per
connection, one line, answered by one JSON line:

    {"cmd": "ss", "query": {...}}        -> {"ok": true, "text": "..."}   (obs/commands.py)
    {"cmd": "nstat", "query": {...}}     -> {"ok": true, "text": "..."}
    {"cmd": "netstat"}                                            -> {"ok": true, "text": "..."}
    {"cmd": "stats"}                                              -> {"ok": true, "stats": {...}}

Requests run on the endpoint's trio thread between batches, so views see a consistent stack.
"""
from __future__ import annotations

from ..errors import UserError

import errno
import json
import os
import socket

import trio

from ..obs.commands import answer as obs_answer
from ..obs.nstat import NstatHistory

RUN_DIR = "/run/tuntcp"
MAX_REQUEST = 64 * 1024


class ControlError(UserError):
    """A user-facing problem talking to an endpoint (no such endpoint, bad reply)."""


def socket_path(name: str, run_dir: str = RUN_DIR) -> str:
    if not name or "/" in name or name.startswith("."):
        raise ControlError(f"bad endpoint name {name!r}")
    return os.path.join(run_dir, f"{name}.sock")


class ControlServer:
    def __init__(self, endpoint, path: str, handler=None):
        self.endpoint = endpoint
        self.path = path
        self.handler = handler     # async handler(req) -> reply: a sharded endpoint's (shards.py)
        self._nstat = NstatHistory()

    def handle(self, req: dict) -> dict:
        cmd = req.get("cmd")
        text = obs_answer(self.endpoint, req, self._nstat)     # ss, nstat, netstat
        if text is not None:
            return {"ok": True, "text": text}
        if cmd == "stats":
            return {"ok": True, "stats": dict(self.endpoint.stats)}
        return {"ok": False, "error": f"unknown command {cmd!r}"}

    async def serve(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        if os.path.exists(self.path):
            if _alive(self.path):
                raise ControlError(f"an endpoint is already serving {self.path}")
            os.unlink(self.path)
        sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            await sock.bind(self.path)
            sock.listen(16)
            task_status.started(self.path)
            async with trio.open_nursery() as nursery:
                while True:
                    conn, _ = await sock.accept()
                    nursery.start_soon(self._one, conn)
        finally:
            sock.close()
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass

    async def _one(self, conn) -> None:
        with conn:
            buf = b""
            with trio.move_on_after(5):
                while b"\n" not in buf and len(buf) < MAX_REQUEST:
                    chunk = await conn.recv(4096)
                    if not chunk:
                        break
                    buf += chunk
            try:
                req = json.loads(buf.decode() or "null")
                if not isinstance(req, dict):
                    reply = {"ok": False, "error": "bad request"}
                else:
                    reply = await self.handler(req) if self.handler else self.handle(req)
            except (ValueError, UnicodeDecodeError):
                reply = {"ok": False, "error": "bad request"}
            except UserError as e:
                reply = {"ok": False, "error": str(e).splitlines()[0]}
            data = (json.dumps(reply) + "\n").encode()
            try:
                while data:
                    n = await conn.send(data)
                    data = data[n:]
            except OSError:
                pass


def remove_stale(path: str) -> None:
    """Remove a socket file nobody answers on (left by a run that died before its finally)."""
    if os.path.exists(path) and not _alive(path):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def _alive(path: str) -> bool:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()


def request(name: str, req: dict, *, run_dir: str = RUN_DIR, timeout: float = 5.0) -> dict:
    """Blocking client for the CLI. Raises ControlError with a one-line reason."""
    path = socket_path(name, run_dir)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        try:
            s.connect(path)
        except FileNotFoundError:
            raise ControlError(f"no endpoint named {name!r} is running (no {path}); "
                               "start one with `tuntcp serve`") from None
        except OSError as e:
            if e.errno in (errno.ECONNREFUSED, errno.ENOENT):
                raise ControlError(f"endpoint {name!r} is not running (stale {path})") from None
            if e.errno in (errno.EACCES, errno.EPERM):
                raise ControlError(f"permission denied on {path} (run as root)") from None
            raise ControlError(f"cannot reach endpoint {name!r}: {e.strerror}") from None
        s.sendall((json.dumps(req) + "\n").encode())
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    except socket.timeout:
        raise ControlError(f"endpoint {name!r} did not answer within {timeout:g} s") from None
    finally:
        s.close()
    try:
        reply = json.loads(buf)
    except ValueError:
        raise ControlError(f"endpoint {name!r} sent a bad reply") from None
    if not reply.get("ok"):
        raise ControlError(reply.get("error", "request failed"))
    return reply
