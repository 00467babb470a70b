"""`tuntcp connect`: the endpoint as the CLIENT (active open) against a kernel listener.

A fresh namespace gets a kernel listener (echo or discard, SO_RCVBUF if asked, namespace sysctls
such as ``net.ipv4.tcp_syncookies=2``); the endpoint connects to it with its own profile, sends
``--bytes`` and prints both sides' view of the connection: our ``ss -ti`` line and the kernel's
``ss -tin`` line. It is the active-open half of the passive-open model, and what the
reverse check (``tuntcp reverse_check``) builds on.
"""
from __future__ import annotations

from tuntcp.errors import UserError

import argparse
import socket

from tuntcp.scenarios.cli_common import sysctl_option
from tuntcp.scenarios.reverse_check import _ss, parse_ss_wscale
from tuntcp.scenarios.rig import family_of, family_option, url_host
from tuntcp import signals

NEEDS_LAB = True        # tuntcp.cli checks privileges and --out before main()
KERNEL_PORT = 7000


class ConnectError(UserError, ValueError):
    """A user mistake in `tuntcp connect` arguments."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--port", type=int, default=KERNEL_PORT, help="port of the kernel listener")
    family_option(p)
    p.add_argument("--kernel-app", choices=("echo", "discard"), default="echo",
                   help="what the kernel listener's child does with the bytes")
    p.add_argument("--kernel-rcvbuf", type=int, default=None, help="SO_RCVBUF on the kernel listener")
    p.add_argument("--ns-sysctl", action="append", default=[], metavar="NAME=VALUE",
                   help="sysctl inside the namespace (the kernel listener's), e.g. net.ipv4.tcp_syncookies=2")
    p.add_argument("--profile", default="linux-6.12", help="profile of the endpoint (the client)")
    sysctl_option(p, "an endpoint profile knob")
    p.add_argument("--bytes", type=int, default=65536, help="bytes the endpoint sends")


def main(args) -> int:
    import trio

    from tuntcp.profiles import get_profile
    from tuntcp.scenarios.rig import require_privileges
    if not 0 < args.port < 65536 or args.bytes < 0:
        raise ConnectError("--port must be 1..65535 and --bytes >= 0")
    sysctls = {}
    for kv in args.ns_sysctl:
        if "=" not in kv:
            raise ConnectError(f"--ns-sysctl wants name=value, got {kv!r}")
        k, _, v = kv.partition("=")
        sysctls[k.strip()] = v.strip()
    profile = get_profile(args.profile, args.sysctl)
    require_privileges()
    print(signals.run(run, profile, sysctls, args))
    return 0


def kernel_listener(lab, args):
    import trio
    srv = lab.socket_in_ns()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if args.kernel_rcvbuf:
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, args.kernel_rcvbuf)
    srv.bind((lab.client_addr, args.port))
    srv.listen(128)
    tsrv = trio.socket.from_stdlib_socket(srv)

    async def kernel_side():
        conn, _ = await tsrv.accept()
        with conn:
            while data := await conn.recv(65536):
                if args.kernel_app == "echo":
                    view = memoryview(data)
                    while view:
                        view = view[await conn.send(view):]
    return kernel_side


async def run(profile, sysctls: dict, args) -> str:
    import trio

    from tuntcp.obs.views import ss_ti
    from tuntcp.scenarios.rig import endpoint
    from tuntcp.shell.listener import open_tcp_stream
    from tuntcp.wire.ipv6 import addr_port

    got = {"echoed": 0}
    family = family_of(args)
    async with endpoint(profile, lab=dict(sysctls=sysctls or None, family=family), secret=bytes(16)) as rig:
        lab = rig.lab
        rig.nursery.start_soon(kernel_listener(lab, args))
        with trio.fail_after(30):
            try:
                stream = await open_tcp_stream(rig.ep, lab.client_addr, args.port)
            except OSError as e:
                raise ConnectError(f"connect to the kernel listener failed: {e}") from None
            payload = bytes(i & 0xFF for i in range(args.bytes))
            await stream.send_all(payload)
            if args.kernel_app == "echo":
                while got["echoed"] < len(payload):
                    chunk = await stream.receive_some(65536)
                    if not chunk:
                        break
                    got["echoed"] += len(chunk)
            else:
                await trio.sleep(0.2)
        ours = ss_ti(rig.stack)
        info = stream.info()
        kernel = _ss(lab)
        k = parse_ss_wscale(kernel, args.port, url_host(lab.endpoint_addr))
        await stream.aclose()
    lines = [f"tuntcp ({profile.name}) -> kernel listener {addr_port(lab.client_ip, args.port)} "
             f"({args.kernel_app}{', SO_RCVBUF ' + str(args.kernel_rcvbuf) if args.kernel_rcvbuf else ''})",
             f"sent {args.bytes} bytes" + (f", echoed {got['echoed']}" if args.kernel_app == "echo" else ""),
             "", "tuntcp (client) ss -ti:", ours.rstrip(), "", "kernel (listener's child) ss -tin:"]
    lines += ["  " + ln for ln in (k[2] if k else ["(not found)"])]
    if k:
        lines.append("")
        lines.append(f"window scale: we apply {info['snd_wscale']} to the kernel's windows; the kernel "
                     f"advertises with {k[1]}" + ("" if info["snd_wscale"] == k[1] else "  <-- MISMATCH"))
    return "\n".join(lines)
