"""The small apps `tuntcp serve --app` runs, and the serve() body itself.

echo: sends back what it reads, half-closes after the peer does. discard: reads to EOF.
http: reads one request head and answers ``HTTP/1.0 200 OK`` with a short body, then closes.
"""
from __future__ import annotations

import os
import sys

import trio

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
        stack = Stack(profile, addrs={lab.endpoint_ip}, secret=os.urandom(16), log=log,
                      encoder=encoder_for(offload))
        link_in, link_out = links if links else (None, None)
        ep = Endpoint(stack, lab.tun_fd, pcap=pcap, link_in=link_in, link_out=link_out, offload=offload)
        lst = TcpListener(ep, stack.listen(args.port, args.backlog, rcvbuf=args.rcvbuf))
        if args.app == "http":
            app = http_app(f"hello from tuntcp ({profile.name})")
        else:
            app = {"echo": echo, "discard": discard}[args.app]
        ctl = ControlServer(ep, socket_path(args.name))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ep.run)
            await nursery.start(ctl.serve)
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
    p = print
    p(f"tuntcp: {args.app} on {addr}:{port} (profile {profile.name}, backlog {lst.listener.backlog}"
      f" after clamp), clients in namespace {ns} at {lab.client_addr}")
    if args.app == "http":
        p(f"  try:    ip netns exec {ns} curl http://{addr}:{port}/")
    else:
        p(f"  try:    ip netns exec {ns} socat - TCP:{addr}:{port}")
    p(f"  look:   tuntcp ss -lnt --name {args.name}   tuntcp ss -tni --name {args.name}"
      f"   tuntcp nstat -a --name {args.name}")
    if args.pcap:
        p(f"  pcap:   {os.path.abspath(args.pcap)}  (tshark -r {args.pcap})")
    if args.events:
        p(f"  events: {os.path.abspath(args.events)}")
    p("  Ctrl-C stops and removes the namespace.")
    sys.stdout.flush()
