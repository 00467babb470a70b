"""The apps `tuntcp serve --app` runs, and the serve() body itself.

echo: sends back what it reads, half-closes after the peer does. discard: reads to EOF.
http: reads one request head and answers ``HTTP/1.0 200 OK`` with a short body, then closes.
``module:function`` (``module:obj.attr`` too): any trio stream handler, ``async def
handler(stream)``, imported with the current directory on the path (like ``python -m``).
``--front HOST:PORT`` replaces the app by a relay to a kernel-socket server (see relay.py).
"""
from __future__ import annotations

import argparse
import importlib
import inspect
import os
import shlex
import sys

import trio

from ..errors import UserError

MAX_HEAD = 16 * 1024


async def echo(stream) -> None:
    async with stream:
        while True:
            data = await stream.receive_some()
            if not data:
                await stream.send_eof()
                return
            await stream.send_all(data)


async def discard(stream) -> None:
    async with stream:
        while await stream.receive_some():
            pass


def http_app(banner: str):
    body = (banner + "\n").encode()
    head = (b"HTTP/1.0 200 OK\r\nServer: tuntcp\r\nContent-Type: text/plain\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body))

    async def http(stream) -> None:
        async with stream:
            buf = b""
            while b"\r\n\r\n" not in buf and b"\n\n" not in buf and len(buf) < MAX_HEAD:
                chunk = await stream.receive_some()
                if not chunk:
                    break
                buf += chunk
            if not buf:
                return
            method = buf.split(b" ", 1)[0]
            await stream.send_all(head if method == b"HEAD" else head + body)
    return http


BUILTIN_APPS = ("echo", "discard", "http")


class AppError(UserError):
    """--app names nothing runnable; the message is one line."""


def resolve_app(spec: str, banner: str = "hello from tuntcp"):
    """The handler ``--app spec`` names: a built-in app or ``module:function``."""
    if spec == "http":
        return http_app(banner)
    if spec in BUILTIN_APPS:
        return {"echo": echo, "discard": discard}[spec]
    mod_name, sep, attr = spec.partition(":")
    if not sep or not mod_name or not attr:
        raise AppError(f"{spec!r}: not one of {', '.join(BUILTIN_APPS)} or module:function")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        obj = importlib.import_module(mod_name)
    except ModuleNotFoundError as e:
        if e.name and (mod_name == e.name or mod_name.startswith(e.name + ".")):
            raise AppError(f"{spec!r}: no module named {e.name!r}") from None
        raise AppError(f"{spec!r}: importing {mod_name} failed: {e}") from None
    except Exception as e:  # the user's module raised while importing
        raise AppError(f"{spec!r}: importing {mod_name} failed: "
                       f"{type(e).__name__}: {e}") from None
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise AppError(f"{spec!r}: {mod_name} has no attribute {attr!r}") from None
    if not callable(obj):
        raise AppError(f"{spec!r}: {attr} is a {type(obj).__name__}, not callable")
    if inspect.isfunction(obj) and not inspect.iscoroutinefunction(obj):
        raise AppError(f"{spec!r}: {attr} is a plain function; it must be "
                       f"`async def {attr}(stream)`")
    return obj


def app_spec(spec: str) -> str:
    """argparse type for --app: the spec, checked now so a bad one is a usage error."""
    try:
        resolve_app(spec)
    except AppError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return spec


def guarded(app):
    """A peer that resets mid-request must not take the server down."""
    async def handler(stream) -> None:
        try:
            await app(stream)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
    return handler


async def serve(lab, profile, args, links=None) -> None:
    from ..host.stack import Stack
    from .endpoint import encoder_for
    from ..obs.events import EventLog
    from ..wire.pcap import PcapWriter
    from .control import ControlServer, socket_path
    from .endpoint import Endpoint
    from .listener import TcpListener, serve_tcp

    events = EventLog(args.events) if args.events else None
    pcap = PcapWriter(args.pcap) if args.pcap else None

    def log(kind, **fields):
        # the kernel's log lines ("Possible SYN flooding ...") go to the console like dmesg
        if kind == "kernel_log":
            print(f"kernel: {fields.get('line', '')}", flush=True)
        if events is not None:
            events(kind, **fields)

    try:
        offload = getattr(args, "offload", False)
        stack = Stack(profile, addrs=lab.endpoint_ips, secret=os.urandom(16), log=log,
                      encoder=encoder_for(offload))
        link_in, link_out = links if links else (None, None)
        ep = Endpoint(stack, lab.tun_fd, pcap=pcap, link_in=link_in, link_out=link_out, offload=offload)
        # a dual lab listens on :: (AF_INET6, IPv4 peers as ::ffff:a.b.c.d unless --v6only)
        fam = dict(family=6, v6only=getattr(args, "v6only", None)) if lab.dual else {}
        lst = TcpListener(ep, stack.listen(args.port, args.backlog, rcvbuf=args.rcvbuf, **fam))
        front = getattr(args, "front", None)
        ctl = ControlServer(ep, socket_path(args.name))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ep.run)
            await nursery.start(ctl.serve)
            if front is not None:
                from .relay import Front, lab_sockets, start_backend
                sockets = lab_sockets(lab)
                if args.front_cmd:
                    await start_backend(lab, shlex.split(args.front_cmd), front, sockets)
                nursery.start_soon(Front(lst, front, sockets).serve)
            else:
                app = resolve_app(args.app, f"hello from tuntcp ({profile.name})")
                nursery.start_soon(serve_tcp, guarded(app), [lst])
            _banner(lab, profile, args, lst)
            if args.duration is not None:
                await trio.sleep(args.duration)
                nursery.cancel_scope.cancel()
    finally:
        if pcap is not None:
            pcap.close()
        if events is not None:
            events.close()


def _banner(lab, profile, args, lst) -> None:
    ns, port = lab.ns_name, args.port
    addr = f"[{lab.endpoint_addr}]" if ":" in lab.endpoint_addr else lab.endpoint_addr  # URL/socat form
    enter = getattr(lab, "enter_command", "")     # nsenter ... when the lab is rootless
    p = print
    front = getattr(args, "front", None)
    what = f"front for {front[0]}:{front[1]} (dialled in {ns})" if front else args.app
    p(f"tuntcp: {what} on {addr}:{port} (profile {profile.name}, backlog {lst.listener.backlog}"
      f" after clamp), clients in namespace {ns} at {lab.client_addr}")
    if lab.dual:
        p(f"  dual stack: IPv4 clients at {lab.client_addr4} -> {lab.endpoint_addr4}:{port} "
          + ("are refused (IPV6_V6ONLY)" if lst.v6only else "are accepted as ::ffff:a.b.c.d by [::]:" + str(port)))
    if front and not args.front_cmd:
        p(f"  backend: start it in the namespace, e.g. {enter}ip netns exec {ns} CMD (listening on "
          f"{front[0]}:{front[1]})")
    if args.app == "http" and not front:
        p(f"  try:    {enter}ip netns exec {ns} curl http://{addr}:{port}/")
    else:
        p(f"  try:    {enter}ip netns exec {ns} socat - TCP:{addr}:{port}")
    p(f"  look:   {enter}tuntcp ss -lnt --name {args.name}   tuntcp ss -tni --name {args.name}"
      f"   tuntcp nstat -a --name {args.name}")
    if args.pcap:
        p(f"  pcap:   {os.path.abspath(args.pcap)}  (tshark -r {args.pcap})")
    if args.events:
        p(f"  events: {os.path.abspath(args.events)}")
    p("  Ctrl-C stops and removes the namespace.")
    sys.stdout.flush()
