"""A lab: one network namespace holding real kernel TCP clients, wired to our endpoint by a TUN.

The process that builds a `Lab` keeps the TUN *fd* (in the root namespace); the TUN *interface* is
moved into a fresh namespace `tuntcp-<pid>-<n>`, where it carries the client address(es) and a route
to the endpoint prefix.  Everything the kernel clients send to the endpoint comes out of `tun_fd`.

Addresses come from the RFC 2544 benchmarking range 198.18.0.0/15, so nothing can leak to a real
network:

    198.18.0.1/32        client address (on the TUN, preferred source of the endpoint route)
    198.18.1.0/24        endpoint prefix, routed into the TUN; the endpoint is 198.18.1.1
    198.19.0.0/16        extra client addresses for storms (`add_client_addrs`)

`Lab(family=6)` does the same over IPv6 in the benchmarking prefix 2001:2::/48 (RFC 5180):
client 2001:2::1/128, endpoint prefix 2001:2:0:1::/64 (endpoint 2001:2:0:1::1), extra clients
2001:2:0:ff::/64. The TUN then gets no link-local address (addr_gen_mode 1), no DAD (accept_dad
0, so addresses are usable at once) and sends no router solicitations; being NOARP it joins no
solicited-node group, so nothing but the clients' traffic reaches the endpoint.

Host safety: namespace sysctls are written only from a worker thread that has joined the lab's
namespace (`/proc/sys/net` resolves against the calling *thread's* namespace), so the root
namespace is never touched.  Every namespace, TUN fd, socket and child process is released by
`close()`, which runs on `with` exit, on atexit, and - because SIGTERM is turned into the SIGINT
path (KeyboardInterrupt, or trio's KI handling) - on SIGTERM too.  `sweep_stale()` removes
namespaces left by killed (SIGKILL) runs.

Rootless: without CAP_NET_ADMIN the first lab makes the process root of its own user, network
and mount namespaces (`enter_rootless`), with a private tmpfs on /run (so /run/netns is ours)
and the TUN opened from `TUNTCP_TUN_DEVICE` (default /dev/net/tun; any node `c 10 200` the user
may open; it is also bind-mounted on /dev/net/tun inside the private mount namespace, for
tools such as packetdrill that open that path themselves).  It must happen before the process
starts a thread; `tuntcp` commands do it first thing, `unshare -Urnm` before the run works too.
"""
from __future__ import annotations

from ..errors import UserError
from .. import signals

import atexit
import contextlib
import ctypes
import errno
import fcntl
import ipaddress
import itertools
import os
import queue
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time
import weakref

CLONE_NEWNET = 0x40000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWNS = 0x00020000
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
TUNSETIFF = 0x400454CA
IFF_TUN, IFF_NO_PI, IFF_VNET_HDR, IFF_MULTI_QUEUE = 0x0001, 0x1000, 0x4000, 0x0100
TUN_DEVICE_ENV = "TUNTCP_TUN_DEVICE"
NETNS_RUN_DIR = "/var/run/netns"
PREFIX = "tuntcp-"
CAP_NET_ADMIN = 12
CAP_SYS_ADMIN = 21

CLIENT_ADDR = "198.18.0.1"
ENDPOINT_ADDR = "198.18.1.1"
ENDPOINT_PREFIXLEN = 24
EXTRA_CLIENT_NET = ipaddress.IPv4Network("198.19.0.0/16")
LAB_NET = {4: ipaddress.IPv4Network("198.18.0.0/15"), 6: ipaddress.IPv6Network("2001:2::/48")}
CLIENT_ADDR6 = "2001:2::1"
ENDPOINT_ADDR6 = "2001:2:0:1::1"
ENDPOINT_PREFIXLEN6 = 64
EXTRA_CLIENT_NET6 = ipaddress.IPv6Network("2001:2:0:ff::/64")
# before an IPv6 TUN arrives: no link-local address, no DAD, no router solicitations
_QUIET_IPV6 = (("addr_gen_mode", 1), ("accept_dad", 0), ("accept_ra", 0), ("router_solicitations", 0))

# Sysctls that are per network namespace on current kernels (reference §6.4; the tcp_* ones live
# in `ipv4_net_table`), i.e. safe to change inside a lab.  Global ones - net.core.rmem_max /
# wmem_max (read-only mirrors in a child netns), net.ipv4.tcp_mem, tcp_max_orphans, udp_mem -
# are deliberately absent.  net.ipv4.conf.* / net.ipv6.conf.* / neigh.* are per-netns as well.
PER_NETNS_SYSCTLS = frozenset({
    "net.core.somaxconn", "net.ipv6.ip_nonlocal_bind",
    *(f"net.ipv4.{k}" for k in (
        "tcp_syncookies", "tcp_max_syn_backlog", "tcp_syn_retries", "tcp_synack_retries",
        "tcp_syn_linear_timeouts", "tcp_timestamps", "tcp_sack", "tcp_window_scaling",
        "tcp_rmem", "tcp_wmem", "tcp_adv_win_scale", "tcp_app_win", "tcp_abort_on_overflow",
        "tcp_ecn", "tcp_ecn_fallback", "tcp_fin_timeout", "tcp_tw_reuse", "tcp_max_tw_buckets",
        "tcp_no_metrics_save", "tcp_moderate_rcvbuf", "tcp_retries1", "tcp_retries2",
        "tcp_orphan_retries", "tcp_fastopen", "tcp_mtu_probing", "tcp_base_mss",
        "tcp_congestion_control", "tcp_keepalive_time", "tcp_keepalive_intvl",
        "tcp_keepalive_probes", "tcp_slow_start_after_idle", "tcp_dsack", "tcp_frto",
        "tcp_recovery", "tcp_early_retrans", "tcp_reordering", "tcp_max_reordering",
        "tcp_notsent_lowat", "tcp_autocorking", "tcp_rfc1337", "tcp_min_rtt_wlen",
        "tcp_challenge_ack_limit", "tcp_invalid_ratelimit", "tcp_min_snd_mss",
        "tcp_limit_output_bytes", "tcp_tso_win_divisor", "tcp_comp_sack_nr",
        "tcp_comp_sack_delay_ns", "tcp_thin_linear_timeouts", "tcp_migrate_req",
        "ip_local_port_range", "ip_default_ttl", "ip_no_pmtu_disc", "ip_forward")),
})
PER_NETNS_PREFIXES = ("net.ipv4.conf.", "net.ipv6.conf.", "net.ipv4.neigh.", "net.ipv6.neigh.")

NEEDS_PRIVILEGE = "tuntcp needs CAP_NET_ADMIN (run as root) or unprivileged user namespaces"


class LabError(UserError, RuntimeError):
    """A lab cannot be built or used here; the message is one line meant for the user."""


_libc = ctypes.CDLL(None, use_errno=True)
_counter = itertools.count()
_labs: "weakref.WeakSet[Lab]" = weakref.WeakSet()
_atexit_done = False
_signals_done = False


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


def _cap_effective() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    return 0


def _read_int(path: str) -> int | None:
    try:
        with open(path) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _has_caps() -> bool:
    caps = _cap_effective()
    return bool(caps >> CAP_NET_ADMIN & 1 and caps >> CAP_SYS_ADMIN & 1)


def _userns_problem() -> str | None:
    """Why this kernel refuses an unprivileged user namespace, with the fix; None if it allows."""
    if _read_int("/proc/sys/user/max_user_namespaces") == 0:
        return "user namespaces are disabled (fix: sysctl -w user.max_user_namespaces=10000)"
    if _read_int("/proc/sys/kernel/unprivileged_userns_clone") == 0:
        return ("unprivileged user namespaces are disabled (fix: sysctl -w "
                "kernel.unprivileged_userns_clone=1)")
    if _read_int("/proc/sys/kernel/apparmor_restrict_unprivileged_userns") == 1:
        return ("AppArmor restricts unprivileged user namespaces (fix: sysctl -w "
                "kernel.apparmor_restrict_unprivileged_userns=0)")
    return None


def tun_device() -> str:
    """The TUN clone device: $TUNTCP_TUN_DEVICE, or /dev/net/tun."""
    return os.environ.get(TUN_DEVICE_ENV) or "/dev/net/tun"


def tun_problem() -> str | None:
    """None if the TUN device can be opened for reading and writing, else the reason and fix."""
    dev = tun_device()
    fix = (f"as root: mknod DIR/tun c 10 200; chmod 0666 DIR/tun; then {TUN_DEVICE_ENV}=DIR/tun "
           "(DIR on a filesystem without nodev)")
    if not os.path.exists(dev):
        return f"no TUN device {dev} (load the tun module, or {fix})"
    if not _has_caps() and not os.access(dev, os.R_OK | os.W_OK):
        return (f"{dev} is mode {os.stat(dev).st_mode & 0o777:o}, not usable by uid "
                f"{_real_uid}; run as root, or {fix}")
    return None


def privilege_problem() -> str | None:
    """None when labs can be built here: as root (CAP_NET_ADMIN + CAP_SYS_ADMIN), or rootless
    (user namespaces allowed and a TUN device this user may open). Else one line: what is
    missing and how to fix it."""
    if _has_caps():
        return None
    problem = _userns_problem()
    if problem:
        return f"{NEEDS_PRIVILEGE}: {problem}"
    problem = tun_problem()
    if problem:
        return f"rootless tuntcp needs a TUN device it may open: {problem}"
    return None


_real_uid = os.getuid()
_ready = False
_own_userns = False     # labs live in a user + mount namespace other shells are not in


def _in_user_namespace() -> bool:
    try:
        with open("/proc/self/uid_map") as f:
            return f.read().split() != ["0", "0", "4294967295"]
    except OSError:
        return False


def in_user_namespace() -> bool:
    """True when this process lives in a user namespace (rootless: root here, a plain user on
    the host), as after ensure_privileges() without root or under `unshare -Ur`."""
    return _in_user_namespace()


def as_plain_user(argv: list[str]) -> list[str]:
    """``argv`` run so that it does not see itself as root when we are root of a user namespace:
    tools that drop root to a user of their own (tcpdump, even for -r) cannot become that user
    here (only uid 0 is mapped); in a nested user namespace without a mapping they run as our
    real user, with no capabilities. Unchanged as the host's root."""
    return ["unshare", "--user", *argv] if _in_user_namespace() else argv


def _mount(src, target, fstype, flags, data=None) -> None:
    if _libc.mount(src, target.encode(), fstype, flags, data) != 0:
        err = ctypes.get_errno()
        raise LabError(f"mount {target} failed: {os.strerror(err)} (a user namespace needs its own "
                       "mount namespace: `unshare --user --map-root-user --net --mount`)")


PRIVATE_RUN_MARK = "/run/.tuntcp-private"


def _private_run() -> None:
    """A tmpfs on /run private to this mount namespace: /run/netns and /run/tuntcp are ours.
    Once per mount namespace: a child (a `tuntcp serve` run by a rootless test) shares it."""
    if os.path.exists(PRIVATE_RUN_MARK):
        return
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    _mount(b"tmpfs", "/run", b"tmpfs", 0, b"mode=0755")
    os.makedirs(NETNS_RUN_DIR, exist_ok=True)
    _private_tun()
    open(PRIVATE_RUN_MARK, "w").close()


def _private_tun() -> None:
    """$TUNTCP_TUN_DEVICE bind-mounted on /dev/net/tun in this mount namespace only, so tools
    that open /dev/net/tun themselves (packetdrill) get the node this user may open."""
    dev = tun_device()
    if dev != "/dev/net/tun" and os.path.exists(dev) and os.path.exists("/dev/net/tun"):
        _mount(dev.encode(), "/dev/net/tun", None, MS_BIND)


def enter_rootless() -> None:
    """Make this process root of new user, network and mount namespaces (uid/gid mapped to the
    caller's), with a private /run. Needs a single-threaded process."""
    global _ready
    uid, gid = os.geteuid(), os.getegid()
    if _libc.unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        if err == errno.EINVAL and threading.active_count() > 1:
            raise LabError("a rootless lab must be the first thing a process does (it runs threads "
                           "now): call tuntcp.harness.netns.enter_rootless() first, or run under "
                           "`unshare --user --map-root-user --net --mount`")
        raise LabError(f"{NEEDS_PRIVILEGE}: unshare(CLONE_NEWUSER) failed: {os.strerror(err)}")
    for path, text in (("setgroups", "deny"), ("uid_map", f"0 {uid} 1"), ("gid_map", f"0 {gid} 1")):
        with open(f"/proc/self/{path}", "w") as f:
            f.write(text)
    _private_run()
    _ready = True


def enter_command() -> str:
    """What another shell puts before `ip netns exec NS ...` or `tuntcp ss ...` to see this
    process's labs: nsenter into the user + mount namespaces this process made for itself;
    nothing as root, or when it started inside them (`unshare -Urnm`, a child of a rootless run)."""
    return f"nsenter --preserve-credentials -U -m -t {os.getpid()} " if _own_userns else ""


def ensure_privileges() -> None:
    """Make the process able to build labs (entering user namespaces if it must), or raise
    LabError with the one-line reason."""
    global _ready, _own_userns
    if _ready:
        return
    problem = privilege_problem()
    if problem:
        raise LabError(problem)
    if not _has_caps():
        enter_rootless()
        _own_userns = True
    elif _in_user_namespace():      # root of a user namespace (`unshare -Urnm tuntcp ...`)
        _private_run()
    problem = tun_problem()
    if problem:
        raise LabError(problem)
    _ready = True


def _open_tun(name: str, vnet_hdr: bool, multi_queue: bool = False) -> int:
    """TUNSETIFF on a fresh fd of the TUN device: a tun interface ``name`` in this namespace
    (with ``multi_queue``, one more queue of it: ``tun_attach``)."""
    fd = os.open(tun_device(), os.O_RDWR | os.O_CLOEXEC)
    try:
        flags = IFF_TUN | IFF_NO_PI | (IFF_VNET_HDR if vnet_hdr else 0) | (
            IFF_MULTI_QUEUE if multi_queue else 0)
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH22x", name.encode(), flags))
    except BaseException:
        os.close(fd)
        raise
    return fd


def ip_command() -> str:
    """iproute2's `ip` (users' PATH often lacks /usr/sbin)."""
    return shutil.which("ip") or shutil.which("ip", path="/usr/sbin:/sbin") or "ip"


def _ns_path(name: str) -> str:
    return os.path.join(NETNS_RUN_DIR, name)


def list_namespaces() -> list[str]:
    try:
        return sorted(os.listdir(NETNS_RUN_DIR))
    except FileNotFoundError:
        return []


def _remove_namespace(name: str) -> None:
    from pyroute2 import netns
    try:
        netns.remove(name)
    except FileNotFoundError:
        pass


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _pids_in_namespace(path: str) -> list[int]:
    """Processes whose network namespace is the one bind-mounted at `path`."""
    try:
        target = f"net:[{os.stat(path).st_ino}]"
    except FileNotFoundError:
        return []
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.readlink(f"/proc/{entry}/ns/net") == target:
                    pids.append(int(entry))
            except OSError:
                continue
    return pids


def sweep_stale() -> list[str]:
    """Remove `tuntcp-<pid>-<n>` namespaces whose owning process is dead, killing the processes
    still running inside them (tools started with run_in_ns); returns the names removed.

    Safe while other runs are active: a namespace whose pid is alive is left alone (also when
    the pid has been reused by an unrelated process - conservative).
    """
    removed = []
    for name in list_namespaces():
        if not name.startswith(PREFIX):
            continue
        parts = name[len(PREFIX):].split("-")
        if len(parts) != 2 or not parts[0].isdigit():
            continue
        pid = int(parts[0])
        if pid == os.getpid() or _pid_alive(pid):
            continue
        for orphan in _pids_in_namespace(_ns_path(name)):
            try:
                os.kill(orphan, signal.SIGKILL)
            except ProcessLookupError:
                pass
        _remove_namespace(name)
        removed.append(name)
    return removed


def _close_all() -> None:
    for lab in list(_labs):
        try:
            lab.close()
        except Exception:
            pass


def _on_sigterm(signum, frame):
    # Take the SIGINT path so `with` blocks (and trio's KI protection) unwind as for Ctrl-C.
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler) and handler is not _on_sigterm:
        handler(signal.SIGINT, frame)  # default_int_handler raises; trio's may defer
        return
    raise KeyboardInterrupt(f"signal {signum}")


@contextlib.contextmanager
def interrupts_held():
    """Ctrl-C, SIGTERM and SIGHUP wait until the block ends, then arrive as they would have:
    for steps that must not stop half-way (pyroute2's namespace creation forks a child and
    waits for it; cleanup waits for children). Main thread only; elsewhere a no-op."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    sigs = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    old = {s: signal.signal(s, lambda signum, frame: held.append(signum)) for s in sigs}
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, signal.SIG_DFL if handler is None else handler)
        if held:
            signal.raise_signal(held[0])


def _install_handlers() -> None:
    global _atexit_done, _signals_done
    if not _atexit_done:
        atexit.register(_close_all)
        _atexit_done = True
    # signal.signal works only in the main thread; a lab built elsewhere first gets the handlers
    # from the next lab built in the main thread.
    if _signals_done or threading.current_thread() is not threading.main_thread():
        return
    _signals_done = True
    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) is signal.SIG_DFL:  # never replace someone else's handler
            signal.signal(sig, _on_sigterm)


class _NsWorker:
    """A daemon thread that lives in the namespace and runs callables there.

    Signals are delivered to the main thread only, so a Ctrl-C can never leave this thread (or
    the main thread) half-way between namespaces.
    """

    def __init__(self, ns_fd: int):
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        ready: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, args=(ns_fd, ready), daemon=True,
                                        name="tuntcp-netns")
        self._thread.start()
        err = ready.get()
        if err is not None:
            raise err

    def _run(self, ns_fd, ready):
        try:
            _setns(ns_fd)
        except OSError as e:
            ready.put(e)
            return
        # Belt and braces for host safety: this thread must now be elsewhere than the process.
        if os.readlink("/proc/thread-self/ns/net") == os.readlink("/proc/self/ns/net"):
            ready.put(LabError("setns did not move the namespace thread out of the root "
                               "namespace"))
            return
        ready.put(None)
        while True:
            job = self._jobs.get()
            if job is None:
                return
            fn, args, box, done = job
            try:
                box.append((True, fn(*args)))
            except BaseException as e:  # handed back to the caller
                box.append((False, e))
            done.set()

    def call(self, fn, *args):
        box: list = []
        done = threading.Event()
        self._jobs.put((fn, args, box, done))
        done.wait()
        ok, value = box[0]
        if not ok:
            raise value
        return value

    def stop(self):
        self._jobs.put(None)
        self._thread.join(timeout=5)


def _sysctl_path(name: str) -> str:
    if not name.startswith("net.") or ".." in name or "/" in name:
        raise LabError(f"not a network sysctl: {name!r}")
    return "/proc/sys/" + name.replace(".", "/")


def _write_sysctl(name: str, value) -> None:
    if isinstance(value, (tuple, list)):
        value = " ".join(str(v) for v in value)
    with open(_sysctl_path(name), "w") as f:
        f.write(f"{value}\n")


def _read_sysctl(name: str) -> str:
    with open(_sysctl_path(name)) as f:
        return f.read().strip()


class Lab:
    """One namespace + one TUN.  Use as a context manager (setup is synchronous, so it is fine
    to build one from trio code too); `close()` is idempotent.

    lab.tun_fd          non-blocking TUN fd (raw IPv4 packets; with vnet_hdr=True each packet is
                        preceded by a 10-byte virtio_net_hdr)
    lab.tun_name        interface name (inside lab.ns_name)
    lab.endpoint_addr   "198.18.1.1"; lab.endpoint_ip is the int (as Stack(addrs=...) wants)
    lab.client_addr     "198.18.0.1"; lab.client_ip is the int
    lab.family, lab.af  4 and AF_INET, or 6 and AF_INET6 (sockets made in the lab default to it)
    """

    def __init__(self, *, mtu: int = 1500, txqueuelen: int = 20000, vnet_hdr: bool = False,
                 endpoint_addr: str | None = None, client_addr: str | None = None,
                 endpoint_prefixlen: int | None = None, sysctls: dict | None = None,
                 family: int = 4, dual: bool = False, queues: int = 1):
        ensure_privileges()
        if family not in (4, 6) or (dual and family != 6):
            raise LabError(f"family must be 4 or 6 (dual only with 6), got {family!r}")
        # dual: the IPv4 addresses too (lab.client_addr4, lab.endpoint_addr4/_ip4), for a :: listener
        self.dual = dual
        self.endpoint_addr4, self.client_addr4 = ENDPOINT_ADDR, CLIENT_ADDR
        self.endpoint_ip4 = int(ipaddress.IPv4Address(ENDPOINT_ADDR))
        v6 = family == 6
        endpoint_addr = endpoint_addr or (ENDPOINT_ADDR6 if v6 else ENDPOINT_ADDR)
        client_addr = client_addr or (CLIENT_ADDR6 if v6 else CLIENT_ADDR)
        endpoint_prefixlen = endpoint_prefixlen or (ENDPOINT_PREFIXLEN6 if v6 else ENDPOINT_PREFIXLEN)
        addr_type = ipaddress.IPv6Address if v6 else ipaddress.IPv4Address
        for a in (endpoint_addr, client_addr):
            try:
                addr_type(a)
            except ValueError:
                raise LabError(f"not an IPv{family} address: {a!r}") from None
            if addr_type(a) not in LAB_NET[family]:
                raise LabError(f"{a} is outside {LAB_NET[family]}; labs use only the benchmarking "
                               "range")
        net = ipaddress.ip_network(f"{endpoint_addr}/{endpoint_prefixlen}", strict=False)
        if addr_type(client_addr) in net:
            raise LabError(f"client address {client_addr} lies inside the endpoint prefix {net}")
        if not (1280 if v6 else 68) <= mtu <= 65535:
            raise LabError(f"MTU {mtu} out of range ({1280 if v6 else 68}..65535)")
        if not 0 <= txqueuelen <= 1 << 24:
            raise LabError(f"txqueuelen {txqueuelen} out of range")
        _install_handlers()
        self.endpoint_addr = endpoint_addr
        self.endpoint_ip = int(addr_type(endpoint_addr))
        self.endpoint_net = net
        self.client_addr = client_addr
        self.client_ip = int(addr_type(client_addr))
        self.family = family
        self.af = socket.AF_INET6 if v6 else socket.AF_INET
        self.extra_client_addrs: list[str] = []
        self.mtu = mtu
        self.txqueuelen = txqueuelen
        self.vnet_hdr = vnet_hdr
        self.queues = queues          # > 1: IFF_MULTI_QUEUE, lab.queue_fds[i] reads queue i
        self.queue_fds: list[int] = []
        n = next(_counter)
        self.ns_name = f"{PREFIX}{os.getpid()}-{n}"
        self.tun_name = f"tt{os.getpid()}x{n}"[:15]
        self.closed = False
        self._ns_fd: int | None = None
        self._worker: _NsWorker | None = None
        self._ipr = None
        self._tun = None
        self.tun_fd = -1
        self._children: list[subprocess.Popen] = []
        self._sockets: "weakref.WeakSet[socket.socket]" = weakref.WeakSet()
        signals.check()                 # a stop signal whose interrupt was lost: no lab
        _labs.add(self)
        try:
            self._build(sysctls or {})
        except BaseException as e:
            self.close()
            if isinstance(e, OSError) and e.errno in (errno.EPERM, errno.EACCES):
                raise LabError(f"{NEEDS_PRIVILEGE}: {e}") from e
            raise

    def _build(self, sysctls: dict) -> None:
        # one step for Ctrl-C/SIGTERM: raised halfway through pyroute2 (its asyncio loop, the
        # child it forks for the namespace) an interrupt leaves half-made objects that complain
        # at exit; held, it arrives once the lab is whole and `with Lab` unwinds it
        with interrupts_held():
            self._build_steps(sysctls)

    def _build_steps(self, sysctls: dict) -> None:
        from pyroute2 import IPRoute, netns
        from pyroute2.netlink.exceptions import NetlinkError

        if os.path.exists(_ns_path(self.ns_name)):
            # Left by an earlier process that had our pid and was SIGKILLed.
            _remove_namespace(self.ns_name)
        netns.create(self.ns_name)
        self._ns_fd = os.open(_ns_path(self.ns_name), os.O_RDONLY | os.O_CLOEXEC)
        self._worker = _NsWorker(self._ns_fd)
        # Before the TUN arrives, so it never gets an IPv6 link-local address (RS/MLD noise).
        if self.family == 6:
            for name, value in _QUIET_IPV6:
                self.sysctl(f"net.ipv6.conf.all.{name}", value)
                self.sysctl(f"net.ipv6.conf.default.{name}", value)
        else:
            self.sysctl("net.ipv6.conf.all.disable_ipv6", 1)
            self.sysctl("net.ipv6.conf.default.disable_ipv6", 1)
        nl = self._worker.call(socket.socket, socket.AF_NETLINK, socket.SOCK_DGRAM,
                               socket.NETLINK_ROUTE)
        self._ipr = IPRoute(use_socket=nl)

        self._tun = self.tun_fd = _open_tun(self.tun_name, self.vnet_hdr, self.queues > 1)
        os.set_blocking(self.tun_fd, False)
        self.queue_fds = [self.tun_fd]
        with IPRoute() as root:
            idx = root.link_lookup(ifname=self.tun_name)
            if not idx:
                raise LabError(f"TUN {self.tun_name} vanished before it could be moved")
            root.link("set", index=idx[0], net_ns_fd=self._ns_fd)

        ipr = self._ipr
        lo = ipr.link_lookup(ifname="lo")[0]
        ipr.link("set", index=lo, state="up")
        (idx,) = ipr.link_lookup(ifname=self.tun_name)
        self.tun_index = idx
        ipr.link("set", index=idx, mtu=self.mtu, txqlen=self.txqueuelen)
        v6 = self.family == 6
        # IFA_F_NODAD (2): usable at once; the route's prefsrc must not be tentative
        ipr.addr("add", index=idx, address=self.client_addr, prefixlen=128 if v6 else 32,
                 **({"flags": 2} if v6 else {}))
        ipr.link("set", index=idx, state="up")
        for wait in range(100 if v6 else 1):
            try:
                ipr.route("add", dst=str(self.endpoint_net), oif=idx, prefsrc=self.client_addr,
                          family=self.af,
                          scope=0 if v6 else 253)  # RT_SCOPE_LINK: a point-to-point TUN has no gateway
                break
            except NetlinkError as e:   # EINVAL while the address is still tentative (addrconf)
                if e.code != errno.EINVAL or wait == 99:
                    raise
                time.sleep(0.01)
        if self.dual:
            ipr.addr("add", index=idx, address=CLIENT_ADDR, prefixlen=32)
            ipr.route("add", dst=f"{ENDPOINT_ADDR.rpartition('.')[0]}.0/{ENDPOINT_PREFIXLEN}", oif=idx,
                      prefsrc=CLIENT_ADDR, family=socket.AF_INET, scope=253)
        for name, value in sysctls.items():
            self.sysctl(name, value)
        for _ in range(self.queues - 1):   # attached from inside: the name is looked up there
            self.queue_fds.append(self._worker.call(_open_tun, self.tun_name, self.vnet_hdr, True))

    # -- namespace access -------------------------------------------------------------------

    def _check_open(self):
        if self.closed:
            raise LabError(f"lab {self.ns_name} is closed")

    def call_in_ns(self, fn, *args):
        """Run `fn(*args)` in a thread that is inside the namespace; returns its result."""
        self._check_open()
        return self._worker.call(fn, *args)

    def sysctl(self, name: str, value=None) -> str:
        """Read (value=None) or write a sysctl *inside* the namespace; returns the value read.

        Only per-namespace sysctls are meaningful here (see PER_NETNS_SYSCTLS and reference
        §6.4); global ones (net.core.rmem_max, ...) are rejected so a lab never changes the host.
        """
        per_netns = name in PER_NETNS_SYSCTLS or name.startswith(PER_NETNS_PREFIXES)
        if value is not None and not per_netns:
            raise LabError(f"{name} is not a known per-namespace sysctl; refusing to write it "
                           "from a lab (it might be global)")
        self._check_open()
        try:
            if value is not None:
                self._worker.call(_write_sysctl, name, value)
            return self._worker.call(_read_sysctl, name)
        except FileNotFoundError:
            raise LabError(f"no sysctl {name} in this kernel") from None
        except OSError as e:
            raise LabError(f"the kernel refused {name}={value!r}: {e.strerror}") from None

    def socket_in_ns(self, family=None, type=socket.SOCK_STREAM, proto=0):
        """A socket created inside the namespace (sockets keep their namespace for life); of
        the lab's family unless told."""
        self._check_open()
        s = self._worker.call(socket.socket, family or self.af, type, proto)
        self._sockets.add(s)
        return s

    def sockets_in_ns(self, n, family=None, type=socket.SOCK_STREAM, proto=0):
        """`n` sockets in one round trip to the namespace thread (for storms)."""
        self._check_open()
        family = family or self.af
        socks = self._worker.call(lambda: [socket.socket(family, type, proto) for _ in range(n)])
        for s in socks:
            self._sockets.add(s)
        return socks

    def run_in_ns(self, argv, **popen_kwargs) -> subprocess.Popen:
        """Start `argv` inside the namespace (via `ip netns exec`, which also gives it a matching
        /sys); the child is tracked and killed by close()."""
        self._check_open()
        popen_kwargs.setdefault("start_new_session", True)
        # tools in /usr/sbin (hping3, nginx, tcpdump) are found when a user's PATH lacks it
        env = dict(popen_kwargs.pop("env", None) or os.environ)
        path = env.get("PATH", os.defpath).split(os.pathsep)
        env["PATH"] = os.pathsep.join(path + [d for d in ("/usr/sbin", "/sbin") if d not in path])
        p = subprocess.Popen([ip_command(), "netns", "exec", self.ns_name, *argv], env=env,
                             **popen_kwargs)
        self._children.append(p)
        return p

    def add_client_addrs(self, n: int) -> list[str]:
        """Make `n` more client addresses usable (198.19.0.1, 198.19.0.2, ...); returns all
        extra addresses so far.  At most a /16 worth (65534).

        One `local` route for 198.19.0.0/16 (Linux "AnyIP") makes every address in it local to
        the namespace, so sockets can bind any of them; one netlink request instead of one per
        address (which costs ~0.5 ms each through pyroute2)."""
        self._check_open()
        extra = EXTRA_CLIENT_NET6 if self.family == 6 else EXTRA_CLIENT_NET
        have = len(self.extra_client_addrs)
        most = min(extra.num_addresses - 2, 65534)
        if n < 0 or have + n > most:
            raise LabError(f"at most {most} extra client addresses")
        if not have and n:
            if self.family == 6:     # IPv6 bind() wants an assigned address, a local route is not enough
                self.sysctl("net.ipv6.ip_nonlocal_bind", 1)
            lo = self._ipr.link_lookup(ifname="lo")[0]
            self._ipr.route("add", dst=str(extra), type="local", oif=lo, family=self.af,
                            table=255, scope=254)  # local table, RT_SCOPE_HOST
        base = int(extra.network_address) + 1
        self.extra_client_addrs += [str(ipaddress.ip_address(base + i))
                                    for i in range(have, have + n)]
        return list(self.extra_client_addrs)

    @property
    def endpoint_ips(self) -> set[int]:
        """The endpoint's addresses (as Stack(addrs=...) wants): both families' in a dual lab."""
        return {self.endpoint_ip, self.endpoint_ip4} if self.dual else {self.endpoint_ip}

    @property
    def enter_command(self) -> str:
        """Prefix another shell needs before `ip netns exec {ns_name} ...` (see enter_command)."""
        return enter_command()

    def tun_stats(self) -> dict:
        """The TUN interface's counters (tx_* = towards us, rx_* = from us into the namespace)."""
        self._check_open()
        link = self._ipr.get_links(self.tun_index)[0]
        stats = link.get_attr("IFLA_STATS64") or {}
        return dict(stats)

    # -- cleanup ----------------------------------------------------------------------------

    def close(self) -> None:
        """Kill children, close sockets and the TUN fd, delete the namespace.  Idempotent, and
        resumable: a step interrupted (a second Ctrl-C) is retried by the next call or atexit."""
        self.closed = True
        with interrupts_held():
            while self._children:
                _kill_child(self._children[-1])
                self._children.pop()
        for s in list(self._sockets):
            try:
                s.close()
            except OSError:
                pass
            self._sockets.discard(s)
        if self._ipr is not None:
            try:
                self._ipr.close()
            except Exception:
                pass
            self._ipr = None
        if self._worker is not None:
            self._worker.stop()
            self._worker = None
        for fd in self.queue_fds[1:]:
            try:
                os.close(fd)
            except OSError:
                pass
        self.queue_fds = []
        if self._tun is not None:
            try:
                os.close(self._tun)
            except OSError:
                pass
            self._tun = None
            self.tun_fd = -1
        if self._ns_fd is not None:
            os.close(self._ns_fd)
            self._ns_fd = None
        if self.ns_name in list_namespaces():
            _remove_namespace(self.ns_name)
        _labs.discard(self)

    def __enter__(self) -> "Lab":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        # Last resort only; close() or `with` is the contract.
        if getattr(self, "_tun", None) is not None or getattr(self, "_ns_fd", None) is not None:
            try:
                self.close()
            except Exception:
                pass

    def __repr__(self):
        state = "closed" if self.closed else "open"
        return f"<Lab {self.ns_name} tun={self.tun_name} {state}>"


def _kill_child(p: subprocess.Popen) -> None:
    if p.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, 1.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(p.pid, sig)
        except (ProcessLookupError, PermissionError):
            try:
                p.send_signal(sig)
            except ProcessLookupError:
                pass
        try:
            p.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def probe() -> str | None:
    """None if namespaces + TUN work here, else a one-line reason (tests skip with it)."""
    global _probe_result
    if _probe_result is not _UNSET:
        return _probe_result
    problem = privilege_problem()
    if problem is None:
        try:
            with Lab():
                pass
        except (LabError, OSError) as e:
            problem = f"cannot build a lab: {e}"
    _probe_result = problem
    return problem


_UNSET = object()
_probe_result = _UNSET
