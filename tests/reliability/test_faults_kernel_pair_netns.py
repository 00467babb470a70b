"""The Linux reference for test_faults.py: two host kernels (one network namespace each, a TUN
in each) joined by the same LinkModel links, both ways, and the same bidirectional 1 MB
transfer. What the kernel does on a link is what the model is held to: if the kernel pair
finishes in seconds; test_faults.py's horizon for the model is far longer (a known gap).

The relay is this process: it opens each TUN inside its namespace (setns) and moves packets
through a LinkModel per direction in real time.
"""
from __future__ import annotations

import ctypes
import fcntl
import json
import os
import select
import struct
import subprocess
import sys
import threading
import time

import pytest

from tuntcp.harness.link import LinkModel
from test_faults import LINKS

pytestmark = [pytest.mark.netns, pytest.mark.reliability]

PEER = r"""
import hashlib, json, random, socket, sys, threading, time
role, n, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
if role == "srv":
    l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l.bind(("10.77.0.2", 5001)); l.listen(1); print("listening", flush=True); s, _ = l.accept()
else:
    s = socket.create_connection(("10.77.0.2", 5001), timeout=60); s.settimeout(None)
t0 = time.monotonic()
data = random.Random(f"{seed}{role}").randbytes(n)
def tx():
    s.sendall(data); s.shutdown(socket.SHUT_WR)
th = threading.Thread(target=tx); th.start()
got = hashlib.sha256(); k = 0
while True:
    b = s.recv(65536)
    if not b: break
    got.update(b); k += len(b)
th.join()
print(json.dumps({"sent": hashlib.sha256(data).hexdigest(), "got": got.hexdigest(), "got_bytes": k,
                  "secs": time.monotonic() - t0}), flush=True)
"""

_libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNET = 0x40000000
TUNSETIFF = 0x400454CA
IFF_TUN, IFF_NO_PI = 0x0001, 0x1000


def _tun_in(ns: str, name: str) -> int:
    """A TUN fd attached to ``name`` inside namespace ``ns`` (this thread visits it)."""
    home = os.open("/proc/self/ns/net", os.O_RDONLY)
    there = os.open(f"/run/netns/{ns}", os.O_RDONLY)
    try:
        if _libc.setns(there, CLONE_NEWNET):
            raise OSError(ctypes.get_errno(), "setns")
        try:
            fd = os.open("/dev/net/tun", os.O_RDWR)
            fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
        finally:
            if _libc.setns(home, CLONE_NEWNET):
                raise OSError(ctypes.get_errno(), "setns back")
    finally:
        os.close(home)
        os.close(there)
    return fd


def _relay(fa: int, fb: int, ab: LinkModel, ba: LinkModel, stop: threading.Event) -> None:
    t0 = time.monotonic()
    while not stop.is_set():
        now = time.monotonic() - t0
        due = [d for d in (ab.next_deadline(), ba.next_deadline()) if d is not None]
        ready, _, _ = select.select([fa, fb], [], [], min(max(0.0, min(due) - now), 0.1) if due else 0.1)
        now = time.monotonic() - t0
        for fd in ready:
            (ab if fd == fa else ba).push(os.read(fd, 65536), now)
        for link, out in ((ab, fb), (ba, fa)):
            for pkt in link.pop_due(now):
                try:
                    os.write(out, pkt)
                except OSError:
                    pass        # a corrupted header the TUN refuses: lost on the wire


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


def _timeouts(ns: str) -> int:
    out = subprocess.run(["ip", "netns", "exec", ns, "nstat", "-az", "TcpExtTCPTimeouts"],
                         capture_output=True, text=True).stdout.split()
    return int(out[out.index("TcpExtTCPTimeouts") + 1]) if "TcpExtTCPTimeouts" in out else 0


# Only the links up to 10 % loss: on the 15-20 % ones the real kernels (bbr, the host's
# default) usually finish in seconds but were also seen stuck for minutes in RTO backoff
# (seed 13: a CLOSE-WAIT side with cwnd 1, rto 108 s, backoff 6), so they are no fixed-time
# reference - and a suite test must not wait for them.
KERNEL_LINKS = [x for x in LINKS if x[1] <= 0.10]


@pytest.mark.parametrize("seed,loss,reorder,duplicate,corrupt,delay,jitter", KERNEL_LINKS,
                         ids=[f"seed{x[0]}-loss{int(x[1]*100)}-corrupt{int(x[4]*100)}" for x in KERNEL_LINKS])
def test_kernel_pair_on_the_model_links(tally, seed, loss, reorder, duplicate, corrupt, delay, jitter):
    n = 1 << 20
    na, nb = f"tuntcp-kp{os.getpid()}a", f"tuntcp-kp{os.getpid()}b"
    kw = dict(delay=delay, jitter=jitter, loss=loss, reorder=reorder, duplicate=duplicate,
              corrupt=corrupt)
    stop = threading.Event()
    fds, procs, relay = [], [], None
    try:
        for ns, dev in ((na, "kpa"), (nb, "kpb")):
            _ip("netns", "add", ns)
            _ip("-n", ns, "tuntap", "add", "mode", "tun", "name", dev)
            _ip("-n", ns, "link", "set", "lo", "up")
        fds = [_tun_in(na, "kpa"), _tun_in(nb, "kpb")]
        _ip("-n", na, "addr", "add", "10.77.0.1", "peer", "10.77.0.2", "dev", "kpa")
        _ip("-n", nb, "addr", "add", "10.77.0.2", "peer", "10.77.0.1", "dev", "kpb")
        _ip("-n", na, "link", "set", "kpa", "up")
        _ip("-n", nb, "link", "set", "kpb", "up")
        ab, ba = LinkModel(seed, **kw), LinkModel(seed + 1000, **kw)
        relay = threading.Thread(target=_relay, args=(*fds, ab, ba, stop), daemon=True)
        relay.start()
        for ns, role in ((nb, "srv"), (na, "cli")):
            procs.append(subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", PEER,
                                           role, str(n), str(seed)],
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
            if role == "srv":
                assert procs[0].stdout.readline().strip() == "listening"
        res = {}
        for role, p in zip(("srv", "cli"), procs):
            out, err = p.communicate(timeout=300)
            assert p.returncode == 0, err
            res[role] = json.loads(out.strip().splitlines()[-1])
        assert res["cli"]["got"] == res["srv"]["sent"] and res["srv"]["got"] == res["cli"]["sent"]
        secs = max(r["secs"] for r in res.values())
        rtos = _timeouts(na) + _timeouts(nb)
        stats = {k: ab.stats[k] + ba.stats[k] for k in ab.stats}
        assert stats["dropped"] > 0 and stats["corrupted"] > 0
        # the kernel pair needs seconds, far less than the horizon test_faults.py allows the model
        assert secs < 60, f"the kernel pair took {secs:.1f} s"
        tally.verified(2 * n)
        tally.fault(f"kernel pair, in-memory link {int(loss * 100)}% loss", survived=True)
        tally.note(f"kernel pair, in-memory link seed {seed}: {2 * n} bytes in {secs:.1f} s real "
                   f"time, {rtos} RTOs, {stats['sent']} packets, {stats['dropped']} lost")
    finally:
        stop.set()
        if relay is not None:
            relay.join(5)
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        for fd in fds:
            os.close(fd)
        for ns in (na, nb):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
