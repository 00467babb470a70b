"""System calls of a script over the stack's socket API, with Linux's errno names.

Each call returns ``(ret, errno_name)`` or ``BLOCK`` when a blocking socket would wait; the
runner retries a blocked call after every input and timer until it returns.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..core.window import sock_set_rcvbuf, sock_set_sndbuf
from ..wire.ipv6 import V4_MAX
from . import host
from .model import ELLIPSIS, Unsupported

BLOCK = object()
O_RDWR, O_NONBLOCK = 0x2, 0x800
_ERRNO = {"reset": "ECONNRESET", "timeout": "ETIMEDOUT", "refused": "ECONNREFUSED"}
_OPEN = ("SYN-SENT", "SYN-RECV")


@dataclass
class Sock:
    fd: int
    nonblock: bool = False
    port: int | None = None
    listener: object = None
    conn: object = None
    opts: dict = field(default_factory=dict)
    connected_reported: bool = False
    rd_shut: bool = False
    pending_write: int = 0      # bytes of a blocking write still to hand to the stack


def _val(arg):
    """[N] -> N; N -> N; anything else as is."""
    if isinstance(arg, tuple) and arg[0] == "[]" and len(arg[1]) == 1:
        return arg[1][0]
    return arg


def _iov_len(arg) -> int:
    total = 0
    for item in (arg[1] if isinstance(arg, tuple) and arg[0] == "[]" else []):
        if isinstance(item, tuple) and item[0] == "{}":
            total += sum(x for x in item[1] if isinstance(x, int))
    return total


class Shim:
    def __init__(self, runner):
        self.r = runner
        self.socks: dict[int, Sock] = {}
        self.want_fd: int | None = None    # the fd the script expects (packetdrill maps fds)

    # ---- helpers
    def sock(self, fd) -> Sock:
        s = self.socks.get(fd)
        if s is None:
            raise _Errno("EBADF")
        return s

    def call(self, name: str, args: list):
        fn = getattr(self, "sys_" + name, None)
        if fn is None:
            raise Unsupported(f"syscall {name}")
        try:
            return fn(*args)
        except _Errno as e:
            return -1, e.name
        except TypeError as e:
            raise Unsupported(f"syscall {name} arguments", detail=str(e)) from None

    def _new_fd(self) -> int:
        if self.want_fd is not None and self.want_fd >= 0 and self.want_fd not in self.socks:
            return self.want_fd
        fd = 3
        while fd in self.socks:
            fd += 1
        return fd

    @property
    def now(self) -> float:
        return self.r.now

    # ---- sockets
    def sys_socket(self, domain, type_, proto):
        if type_ != "SOCK_STREAM" or domain not in (ELLIPSIS, "AF_INET", "PF_INET"):
            raise Unsupported(f"socket type {type_}")
        fd = self._new_fd()
        self.socks[fd] = Sock(fd)
        return fd, None

    def sys_bind(self, fd, addr, alen):
        self.sock(fd).port = host.LOCAL_PORT
        return 0, None

    def sys_listen(self, fd, backlog):
        s = self.sock(fd)
        stack = self.r.stack
        if s.listener is not None:
            s.listener.relisten(backlog)
            return 0, None
        s.listener = stack.listen(s.port or host.LOCAL_PORT, backlog, rcvbuf=s.opts.get("SO_RCVBUF"),
                                  sndbuf=s.opts.get("SO_SNDBUF"),
                                  defer_accept=s.opts.get("TCP_DEFER_ACCEPT", 0))
        self._user_mss(s)
        self.r.listening = True
        return 0, None

    def sys_accept(self, fd, addr, alen):
        s = self.sock(fd)
        if s.listener is None:
            raise _Errno("EINVAL")
        child = s.listener.accept()
        if child is None:
            if s.nonblock:
                raise _Errno("EAGAIN")
            return BLOCK
        nfd = self._new_fd()
        self.socks[nfd] = Sock(nfd, conn=child, opts=dict(s.opts), connected_reported=True)
        self.r.current = child
        return nfd, None

    sys_accept4 = lambda self, fd, addr, alen, flags=0: self.sys_accept(fd, addr, alen)  # noqa: E731

    def sys_connect(self, fd, addr, alen):
        s = self.sock(fd)
        if s.conn is None:
            r = self.r
            s.conn = r.stack.connect(r.laddr, r.raddr, host.REMOTE_PORT, self.now,
                                     lport=s.port, rcvbuf=s.opts.get("SO_RCVBUF"),
                                     sndbuf=s.opts.get("SO_SNDBUF"), user_mss=s.opts.get("TCP_MAXSEG", 0))
            if s.opts.get("TCP_NODELAY"):
                s.conn.nodelay = True
            r.current = s.conn
            r.new_flow(s.conn.lport, s.conn.rport)
            if s.nonblock:
                raise _Errno("EINPROGRESS")
        c = s.conn
        if c.state in _OPEN:
            if s.nonblock:
                raise _Errno("EALREADY")
            return BLOCK
        if c.error:
            raise _Errno(_ERRNO[c.error])
        if s.connected_reported:
            raise _Errno("EISCONN")
        s.connected_reported = True
        return 0, None

    # ---- options
    def sys_setsockopt(self, fd, level, name, val, vlen):
        s = self.sock(fd)
        v = _val(val)
        if name == "SO_LINGER":
            d = dict(x[1:] for x in val[1] if isinstance(x, tuple) and x[0] == "=")
            s.opts["SO_LINGER"] = (d.get("onoff", 0), d.get("linger", 0))
            return 0, None
        if name in ("SO_REUSEADDR", "SO_REUSEPORT", "SO_KEEPALIVE"):
            s.opts[name] = v
            return 0, None
        if name in ("SO_RCVBUF", "SO_SNDBUF", "TCP_DEFER_ACCEPT", "TCP_NODELAY"):
            s.opts[name] = v
            if s.conn is not None:
                if name == "SO_RCVBUF":
                    s.conn.set_rcvbuf(v)
                elif name == "SO_SNDBUF":
                    s.conn.set_sndbuf(v)
                elif name == "TCP_NODELAY":
                    s.conn.nodelay = bool(v)
                    s.conn.send(b"", self.now) if v else None
            return 0, None
        if name == "TCP_MAXSEG":
            if not 88 <= v <= 32767:            # TCP_MIN_MSS .. MAX_TCP_WINDOW
                raise _Errno("EINVAL")
            s.opts[name] = v                    # rx_opt.user_mss: new connections only
            self._user_mss(s)
            return 0, None
        if str(name).startswith("TCP_FASTOPEN"):
            raise Unsupported("TFO", detail=f"setsockopt {name}")
        raise Unsupported(f"setsockopt {name}")

    def _user_mss(self, s) -> None:
        """A listener's user_mss: its SYN-ACKs offer min(advmss, user_mss) (``tcp_mss_clamp``
        in tcp_make_synack) and children clamp the peer's MSS to it."""
        v = s.opts.get("TCP_MAXSEG")
        if v and s.listener is not None:
            if not hasattr(s.listener, "advmss"):
                raise Unsupported("setsockopt TCP_MAXSEG", detail="on this profile's listener")
            s.listener.advmss = min(self.r.stack.advmss(0), v)       # user_mss clamps both
            if hasattr(s.listener, "advmss6"):
                s.listener.advmss6 = min(self.r.stack.advmss(V4_MAX + 1), v)

    def sys_getsockopt(self, fd, level, name, val, vlen):
        s = self.sock(fd)
        p = self.r.stack.profile
        if name == "SO_ERROR":
            c = s.conn
            err = c.error if c is not None else None
            return self.r.check_out(val, 0 if not err else _ERRNO[err]), None
        if name == "SO_RCVBUF":
            have = s.conn.rcvbuf if s.conn is not None else (
                sock_set_rcvbuf(p, s.opts["SO_RCVBUF"]) if "SO_RCVBUF" in s.opts else p["net.ipv4.tcp_rmem"][1])
            return self.r.check_out(val, have), None
        if name == "SO_SNDBUF":
            have = s.conn.sndbuf if s.conn is not None else (
                sock_set_sndbuf(p, s.opts["SO_SNDBUF"]) if "SO_SNDBUF" in s.opts else p["net.ipv4.tcp_wmem"][1])
            return self.r.check_out(val, have), None
        if name in ("SO_REUSEADDR", "TCP_NODELAY", "TCP_DEFER_ACCEPT"):
            return self.r.check_out(val, s.opts.get(name, 0)), None
        if name == "TCP_MAXSEG" and s.conn is not None and s.conn.state != "SYN-SENT":
            return self.r.check_out(val, s.conn.info()["mss"]), None     # tp->mss_cache
        if name == "TCP_MAXSEG" and "TCP_MAXSEG" in s.opts:
            return self.r.check_out(val, s.opts[name]), None     # user_mss while CLOSE/LISTEN
        raise Unsupported(f"getsockopt {name}")

    def sys_fcntl(self, fd, cmd, arg=None):
        s = self.sock(fd)
        if cmd == "F_GETFL":
            return O_RDWR | (O_NONBLOCK if s.nonblock else 0), None
        if cmd == "F_SETFL":
            s.nonblock = "O_NONBLOCK" in str(arg) or (isinstance(arg, int) and bool(arg & O_NONBLOCK))
            return 0, None
        raise Unsupported(f"fcntl {cmd}")

    def sys_ioctl(self, fd, req, val):
        c = self.sock(fd).conn
        if c is None:
            raise _Errno("EINVAL")
        if req in ("FIONREAD", "SIOCINQ"):
            return self.r.check_out(val, c.readable()), None
        if req == "SIOCOUTQ":
            return self.r.check_out(val, c.info()["send_q"]), None
        raise Unsupported(f"ioctl {req}")

    # ---- data
    def _write(self, fd, n: int, buf=ELLIPSIS, flags=0):
        s = self.sock(fd)
        if buf == "NULL" and n:
            raise _Errno("EFAULT")
        fl = _flag_names(flags)
        if fl - {"MSG_EOR", "MSG_DONTWAIT", "MSG_NOSIGNAL"}:
            raise Unsupported(f"send flag {'|'.join(sorted(fl))}")
        c = s.conn
        if c is None:
            raise _Errno("EPIPE")
        if c.error:
            raise _Errno(_ERRNO[c.error])
        if c.state in _OPEN:
            if s.nonblock:
                raise _Errno("EAGAIN")
            return BLOCK
        if c.state not in ("ESTABLISHED", "CLOSE-WAIT"):
            raise _Errno("EPIPE")
        if s.pending_write == 0:
            s.pending_write = n
        left = s.pending_write
        took = c.send(bytes(left), self.now, eor="MSG_EOR" in fl)
        if s.nonblock or "MSG_DONTWAIT" in fl:
            s.pending_write = 0
            if took == 0:
                raise _Errno("EAGAIN")
            return took, None
        s.pending_write = left - took
        if s.pending_write:
            return BLOCK
        return n, None

    def sys_write(self, fd, buf, n):
        return self._write(fd, n, buf)

    def sys_send(self, fd, buf, n, flags=0):
        return self._write(fd, n, buf, flags)

    def sys_sendto(self, fd, buf, n, flags=0, addr=None, alen=None):
        if "MSG_FASTOPEN" in str(flags):
            raise Unsupported("TFO", detail="sendto MSG_FASTOPEN")
        return self._write(fd, n, buf, flags)

    def sys_writev(self, fd, iov, cnt):
        return self._write(fd, _iov_len(iov))

    def sys_sendmsg(self, fd, msg, flags=0):
        iov = next((x[2] for x in msg[1] if isinstance(x, tuple) and x[0] == "="
                    and isinstance(x[1], tuple) and x[1][1] == "msg_iov"), None)
        if iov is None:
            raise Unsupported("sendmsg without msg_iov")
        return self._write(fd, _iov_len(iov), flags=flags)

    def _read(self, fd, n: int, buf=ELLIPSIS, flags=0):
        s = self.sock(fd)
        fl = _flag_names(flags)
        if fl - {"MSG_DONTWAIT"}:
            raise Unsupported(f"recv flag {'|'.join(sorted(fl))}")
        c = s.conn
        if c is None:
            raise _Errno("ENOTCONN")
        if buf == "NULL" and n and c.readable():
            raise _Errno("EFAULT")          # the copy to user space fails; the data stays queued
        data = c.recv(n, self.now)
        if data:
            return len(data), None
        if s.rd_shut:
            return 0, None
        if c.error:
            raise _Errno(_ERRNO[c.error])
        if c.at_eof() or c.state == "CLOSED":
            return 0, None
        if s.nonblock or fl:
            raise _Errno("EAGAIN")
        return BLOCK

    def sys_read(self, fd, buf, n):
        return self._read(fd, n, buf)

    def sys_recv(self, fd, buf, n, flags=0):
        return self._read(fd, n, buf, flags)

    def sys_recvfrom(self, fd, buf, n, flags=0, addr=None, alen=None):
        return self._read(fd, n, buf, flags)

    def sys_readv(self, fd, iov, cnt):
        return self._read(fd, _iov_len(iov))

    def sys_shutdown(self, fd, how):
        s = self.sock(fd)
        c = s.conn
        if c is None:
            raise _Errno("ENOTCONN")
        if how in ("SHUT_RD", "SHUT_RDWR", 0, 2):
            s.rd_shut = True
        if how in ("SHUT_WR", "SHUT_RDWR", 1, 2):
            c.shutdown_write(self.now)
        return 0, None

    def sys_close(self, fd):
        s = self.socks.pop(fd, None)
        if s is None:
            raise _Errno("EBADF")
        if s.listener is not None:
            s.listener.close(self.now)
        elif s.conn is not None:
            if s.opts.get("SO_LINGER", (0, 1)) == (1, 0):
                s.conn.abort(self.now)
            else:
                s.conn.close(self.now)
        return 0, None

    def sys_poll(self, fds, nfds, timeout):
        ready = 0
        for item in fds[1]:
            d = {x[1]: x[2] for x in item[1] if isinstance(x, tuple) and x[0] == "="}
            s = self.sock(d["fd"])
            have = self.events(s)
            want = _bits(d.get("events", 0)) | 0x18   # POLLERR|POLLHUP always reported
            got = have & want
            if "revents" in d and got != _bits(d["revents"]):
                if timeout == 0:
                    return ready, None
            ready += bool(got)
        if ready == 0 and timeout != 0:
            return BLOCK
        return ready, None

    def events(self, s: Sock) -> int:
        if s.listener is not None:
            return 0x1 if s.listener.queue_lengths().get("accept", 0) else 0
        c = s.conn
        if c is None:
            return 0x4
        ev = 0
        if c.readable() or c.at_eof():
            ev |= 0x1 | 0x40
        if c.state in ("ESTABLISHED", "CLOSE-WAIT") and c.send_space() > 0:
            ev |= 0x4 | 0x100
        if c.error:
            ev |= 0x8
        if c.state == "CLOSED" or (c.at_eof() and c.state not in ("ESTABLISHED", "FIN-WAIT-1", "FIN-WAIT-2")):
            ev |= 0x10
        return ev


_POLL = {"POLLIN": 0x1, "POLLPRI": 0x2, "POLLOUT": 0x4, "POLLERR": 0x8, "POLLHUP": 0x10,
         "POLLRDNORM": 0x40, "POLLWRNORM": 0x100, "POLLRDHUP": 0x2000}


def _flag_names(expr) -> set:
    if isinstance(expr, str):
        return {expr}
    if isinstance(expr, tuple) and expr[0] == "|":
        return _flag_names(expr[1]) | _flag_names(expr[2])
    if expr in (0, ELLIPSIS, None):
        return set()
    raise Unsupported(f"numeric send flags {expr!r}")


def _bits(expr) -> int:
    if isinstance(expr, int):
        return expr
    if isinstance(expr, str):
        if expr not in _POLL:
            raise Unsupported(f"poll event {expr}")
        return _POLL[expr]
    if isinstance(expr, tuple) and expr[0] == "|":
        return _bits(expr[1]) | _bits(expr[2])
    raise Unsupported(f"poll events {expr!r}")


class _Errno(Exception):
    def __init__(self, name: str):
        super().__init__(name)
        self.name = name
