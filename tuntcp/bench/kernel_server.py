"""The kernel side of `tuntcp bench`: small servers on kernel sockets, run inside the lab namespace.

    python -m tuntcp.bench.kernel_server MODE --addr 198.18.0.1 --port 8080 [--seconds S]

MODE is one of
    http     answer every request head with a short HTTP/1.0 response and close (for ab)
    discard  read one connection to EOF; report bytes and seconds from accept to EOF
    source   send zeros on one connection for --seconds; report TCP_INFO bytes_acked / seconds
    echo     echo every connection (for the request/response latency client)
    hold     accept and keep every connection (for connect storms)

The server prints ``READY`` once it listens, and one JSON object on its last line when it is done
(discard/source) or when SIGTERM stops it.  The apps are the same as the ones the bench runs on
the tuntcp endpoint, so the comparison is kernel TCP + Python app against tuntcp + Python app.
"""
from __future__ import annotations

import argparse
import json
import selectors
import signal
import socket
import sys
import time

HTTP_BODY = b"hello from the kernel\n"
HTTP_HEAD = (b"HTTP/1.0 200 OK\r\nServer: kernel\r\nContent-Type: text/plain\r\n"
             b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(HTTP_BODY))
CHUNK = 1 << 20


class Stop(Exception):
    pass


def _stop(signum, frame):
    raise Stop()


def listen(addr: str, port: int, backlog: int = 65535) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.listen(backlog)
    return s


def serve_http(ls: socket.socket, report: dict) -> None:
    """Event-driven like the tuntcp side: accept everything pending, answer complete heads."""
    ls.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(ls, selectors.EVENT_READ, None)
    bufs: dict = {}
    while True:
        for key, _ in sel.select():
            if key.data is None:
                while True:
                    try:
                        c, _ = ls.accept()
                    except BlockingIOError:
                        break
                    c.setblocking(False)
                    bufs[c] = b""
                    sel.register(c, selectors.EVENT_READ, True)
                continue
            c = key.fileobj
            try:
                chunk = c.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                chunk = b""
            buf = bufs[c] + chunk
            done = not chunk
            if b"\r\n\r\n" in buf or b"\n\n" in buf:
                try:
                    c.send(HTTP_HEAD if buf.startswith(b"HEAD") else HTTP_HEAD + HTTP_BODY)
                    report["requests"] = report.get("requests", 0) + 1
                except OSError:
                    pass
                done = True
            if done:
                sel.unregister(c)
                del bufs[c]
                c.close()
            else:
                bufs[c] = buf


def serve_discard(ls: socket.socket, report: dict) -> None:
    c, _ = ls.accept()
    t0 = time.perf_counter()
    buf = bytearray(CHUNK)
    n = 0
    while True:
        k = c.recv_into(buf)
        if not k:
            break
        n += k
    report.update(bytes=n, seconds=time.perf_counter() - t0)
    c.close()


def serve_source(ls: socket.socket, seconds: float, report: dict) -> None:
    from ..harness.clients import tcp_info
    c, _ = ls.accept()
    data = bytes(CHUNK)
    t0 = time.perf_counter()
    end = t0 + seconds
    try:
        while time.perf_counter() < end:
            c.sendall(data)
    except OSError:
        pass
    t1 = time.perf_counter()
    report.update(bytes=tcp_info(c).get("bytes_acked", 0), seconds=t1 - t0)
    c.close()


def serve_echo(ls: socket.socket, report: dict) -> None:
    ls.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(ls, selectors.EVENT_READ, None)
    while True:
        for key, _ in sel.select():
            if key.data is None:
                try:
                    c, _ = ls.accept()
                except BlockingIOError:
                    continue
                c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sel.register(c, selectors.EVENT_READ, True)
                continue
            c = key.fileobj
            try:
                data = c.recv(65536)
            except OSError:
                data = b""
            if data:
                c.sendall(data)
            else:
                sel.unregister(c)
                c.close()


def serve_hold(ls: socket.socket, report: dict) -> None:
    held = []
    report["accepted"] = 0
    while True:
        c, _ = ls.accept()
        held.append(c)
        report["accepted"] += 1


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m tuntcp.bench.kernel_server")
    p.add_argument("mode", choices=("http", "discard", "source", "echo", "hold"))
    p.add_argument("--addr", default="0.0.0.0")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--seconds", type=float, default=2.0)
    args = p.parse_args(argv)
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    report: dict = {"mode": args.mode}
    ls = listen(args.addr, args.port)
    print("READY", flush=True)
    try:
        if args.mode == "http":
            serve_http(ls, report)
        elif args.mode == "discard":
            serve_discard(ls, report)
        elif args.mode == "source":
            serve_source(ls, args.seconds, report)
        elif args.mode == "echo":
            serve_echo(ls, report)
        else:
            serve_hold(ls, report)
    except Stop:
        pass
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
