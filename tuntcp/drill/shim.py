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


def _iov_lens(arg) -> list[int]:
    return [sum(x for x in item[1] if isinstance(x, int))
            for item in (arg[1] if isinstance(arg, tuple) and arg[0] == "[]" else [])
            if isinstance(item, tuple) and item[0] == "{}"]


def _iov_len(arg) -> int:
    return sum(_iov_lens(arg))


class Shim:
    def __init__(self, runner):
        self.r = runner
        self.socks: dict[int, Sock] = {}
        self.files: dict[int, list] = {}    # fd -> [path, offset] of an open()ed script file
        self.pipes: dict[int, list] = {}    # fd -> [read end?, shared [bytes buffered]]
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
        if self.want_fd is not None and self.want_fd >= 0 and self.want_fd not in self.socks \
                and self.want_fd not in self.files and self.want_fd not in self.pipes:
            return self.want_fd
        fd = 3
        while fd in self.socks or fd in self.files or fd in self.pipes:
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
        self._apply(self.socks[nfd])
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
            self._apply(s)
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
    def _apply(self, s: Sock) -> None:
        """Options set before connect, or on the listener (a child inherits them: sk_clone),
        onto the connection."""
        c = s.conn
        if s.opts.get("TCP_NODELAY"):
            c.nodelay = True
        c.cork = bool(s.opts.get("TCP_CORK"))
        c.user_timeout = s.opts.get("TCP_USER_TIMEOUT", 0) / 1000
        c.notsent_lowat = s.opts.get("TCP_NOTSENT_LOWAT", 0)
        c.tos = s.opts.get("IP_TOS", 0)

    def sys_setsockopt(self, fd, level, name, val, vlen):
        s = self.sock(fd)
        v = _val(val)
        if name == "SO_LINGER":
            d = dict(x[1:] for x in val[1] if isinstance(x, tuple) and x[0] == "=")
            s.opts["SO_LINGER"] = (d.get("onoff", 0), d.get("linger", 0))
            return 0, None
        if name in ("SO_REUSEADDR", "SO_REUSEPORT", "SO_KEEPALIVE", "TCP_INQ", "SO_ZEROCOPY",
                    "IP_FREEBIND"):
            # TCP_INQ: tp->recvmsg_inq; SO_ZEROCOPY: sock_flag SOCK_ZEROCOPY; IP_FREEBIND
            # (inet->freebind) only lets bind() take a non-local address: the shim binds the
            # script's local address whatever it names
            s.opts[name] = v
            return 0, None
        if name in ("SO_RCVBUF", "SO_SNDBUF", "TCP_DEFER_ACCEPT", "TCP_NODELAY", "TCP_CORK"):
            s.opts[name] = v
            if s.conn is not None:
                if name == "SO_RCVBUF":
                    s.conn.set_rcvbuf(v)
                elif name == "SO_SNDBUF":
                    s.conn.set_sndbuf(v)
                elif name == "TCP_NODELAY":
                    s.conn.set_nodelay(bool(v), self.now)
                elif name == "TCP_CORK":
                    s.conn.set_cork(bool(v), self.now)
            return 0, None
        if name == "TCP_NOTSENT_LOWAT":
            if "net.ipv4.tcp_notsent_lowat" not in self.r.stack.profile:
                raise _Errno("ENOPROTOOPT")     # before 3.12, and FreeBSD
            s.opts[name] = v & 0xFFFFFFFF       # tp->notsent_lowat (u32)
            if s.conn is not None:
                s.conn.notsent_lowat = s.opts[name]
            return 0, None
        if name == "IP_TOS":
            # do_ip_setsockopt: TCP keeps its own ECN bits (inet->tos = val & ~INET_ECN_MASK);
            # the connection's segments carry it (ip_queue_xmit). SYN-ACKs from a listener
            # with a TOS are not modelled.
            tos = v & 0xFC
            if s.conn is None and s.listener is not None and tos:
                raise Unsupported("IP_TOS on a listener")
            s.opts[name] = tos
            if s.conn is not None:
                s.conn.tos = tos
            return 0, None
        if name == "IP_MTU_DISCOVER":
            # inet->pmtudisc: the DF bit and ICMP "fragmentation needed" handling, neither of
            # which the model has (no PMTU discovery; segments carry no DF; ICMP is unsupported)
            v = _PMTUDISC.get(v, v)
            if not isinstance(v, int) or not 0 <= v <= 5:
                raise _Errno("EINVAL")
            s.opts[name] = v
            return 0, None
        if name == "TCP_USER_TIMEOUT":
            if self.r.stack.profile.family != "linux":
                raise _Errno("ENOPROTOOPT")
            if v < 0:
                raise _Errno("EINVAL")
            s.opts[name] = v                    # icsk_user_timeout, ms
            if s.conn is not None:
                s.conn.user_timeout = v / 1000
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
        if name in ("SO_REUSEADDR", "TCP_NODELAY", "TCP_DEFER_ACCEPT", "TCP_INQ", "SO_ZEROCOPY",
                    "TCP_USER_TIMEOUT", "TCP_CORK", "TCP_NOTSENT_LOWAT", "IP_TOS"):
            return self.r.check_out(val, s.opts.get(name, 0)), None
        if name == "IP_MTU_DISCOVER":           # default IP_PMTUDISC_WANT (ip_no_pmtu_disc 0)
            return self.r.check_out(val, s.opts.get(name, 1)), None
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
        if fl - {"MSG_EOR", "MSG_DONTWAIT", "MSG_NOSIGNAL", "MSG_ZEROCOPY", "MSG_MORE"}:
            raise Unsupported(f"send flag {'|'.join(sorted(fl))}")
        c = s.conn
        if "MSG_ZEROCOPY" in fl and n and s.opts.get("SO_ZEROCOPY") and c is not None and \
                c.state in ("ESTABLISHED", "CLOSE-WAIT") and c.info()["notsent"]:
            # tcp_sendmsg_locked appends zerocopy frags to the tail skb only under the same
            # ubuf_info (skb_zerocopy_iter_stream): skb boundaries the model does not keep
            raise Unsupported("MSG_ZEROCOPY behind unsent data")
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
        elif not c.writeable():
            return BLOCK                # sk_stream_wait_memory: woken by sk_stream_write_space
        left = s.pending_write
        took = c.send(bytes(left), self.now, eor="MSG_EOR" in fl, more="MSG_MORE" in fl)
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
        iov = _msg_field(msg, "msg_iov")
        if iov is None:
            raise Unsupported("sendmsg without msg_iov")
        if "MSG_ZEROCOPY" in _flag_names(flags) and self.sock(fd).opts.get("SO_ZEROCOPY"):
            # each iov element becomes page frags of the skb (skb_zerocopy_iter_stream); past
            # MAX_SKB_FRAGS (17) a new skb starts: boundaries the model does not keep
            frags = sum(n // 4096 + 2 for n in _iov_lens(iov) if n)
            if frags > 17:
                raise Unsupported("MSG_ZEROCOPY beyond MAX_SKB_FRAGS")
        return self._write(fd, _iov_len(iov), flags=flags)

    def sys_recvmsg(self, fd, msg, flags=0):
        """recvmsg(2) (``tcp_recvmsg``): the read, then with TCP_INQ on, one TCP_CM_INQ cmsg
        holding ``tcp_inq_hint`` (checked against the script's msg_control when it has one)."""
        iov = _msg_field(msg, "msg_iov")
        if iov is None:
            raise Unsupported("recvmsg without msg_iov")
        if _msg_field(msg, "msg_flags") not in (None, 0, ELLIPSIS):
            raise Unsupported("recvmsg msg_flags")
        res = self._read(fd, _iov_len(iov), flags=flags)
        want = _msg_field(msg, "msg_control")
        if res is BLOCK or res[0] < 0 or want in (None, ELLIPSIS):
            return res
        s = self.sock(fd)
        have = [("SOL_TCP", "TCP_CM_INQ", s.conn.inq_hint())] if s.opts.get("TCP_INQ") else []
        exp = []
        for c in want[1] if isinstance(want, tuple) and want[0] == "[]" else ():
            d = {x[1]: x[2] for x in c[1] if isinstance(x, tuple) and x[0] == "="}
            if d.get("cmsg_type") != "TCP_CM_INQ":
                raise Unsupported(f"cmsg {d.get('cmsg_type')}")
            exp.append((d.get("cmsg_level"), d.get("cmsg_type"), d.get("cmsg_data")))
        if exp != have:
            self.r.check_out(("[]", [exp]), have)
        return res

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

    # ---- files the script's commands made (commands.Settings.files: names and sizes)
    def sys_open(self, path, flags, mode=None):
        name = path[1] if isinstance(path, tuple) and path[0] == "str" else path
        if _flag_names(flags) - {"O_RDONLY"}:
            raise Unsupported(f"open flags {flags}")
        if name not in self.r.settings.files:
            raise _Errno("ENOENT")
        fd = self._new_fd()
        self.files[fd] = [name, 0]
        return fd, None

    def sys_sendfile(self, out_fd, in_fd, offset, count):
        """sendfile(2) to a TCP socket: ``do_splice_direct`` feeds the file through a pipe to
        ``tcp_sendmsg_locked``, with MSG_MORE on every chunk but the last; one chunk (up to
        the pipe's 16 pages) is one write. The file holds zeros, as packetdrill's payloads."""
        f = self.files.get(in_fd)
        if f is None:
            raise _Errno("EBADF")
        pos = _val(offset)
        pos = f[1] if pos in ("NULL", ELLIPSIS) else pos
        n = max(min(count, self.r.settings.files.get(f[0], 0) - pos), 0)
        if n > 16 * 4096:
            raise Unsupported("sendfile of more than one pipe's worth")
        if n == 0:
            return 0, None
        res = self._write(out_fd, n)
        if res is not BLOCK and res[0] > 0 and _val(offset) in ("NULL", ELLIPSIS):
            f[1] = pos + res[0]
        return res

    def sys_pipe(self, fds):
        """pipe(2): [rfd, wfd] as the script names them; a pipe holds up to 16 pages."""
        want = fds[1] if isinstance(fds, tuple) and fds[0] == "[]" else []
        if len(want) != 2 or not all(isinstance(x, int) for x in want) or \
                any(x in self.socks or x in self.files or x in self.pipes for x in want):
            raise Unsupported("pipe fds", detail=str(fds))
        buf = [0]
        self.pipes[want[0]] = [True, buf]
        self.pipes[want[1]] = [False, buf]
        return 0, None

    def sys_splice(self, fd_in, off_in, fd_out, off_out, n, flags):
        """splice(2) from a TCP socket into a pipe (``tcp_splice_read`` over ``tcp_read_sock``):
        it stops at the urgent mark; taking nothing, it returns 0 after a FIN or SHUT_RD,
        EAGAIN when non-blocking, 0 when data is queued (the urgent mark: no loop), else waits."""
        p = self.pipes.get(fd_out)
        s = self.socks.get(fd_in)
        if p is None or p[0] or s is None or off_in != "NULL" or off_out != "NULL" or \
                _flag_names(flags) - {"SPLICE_F_NONBLOCK"}:
            raise Unsupported("splice other than socket to pipe")
        c = s.conn
        if c is None:
            raise _Errno("ENOTCONN")
        got = len(c.read_sock(min(n, 16 * 4096 - p[1][0]), self.now)) if c.readable() else 0
        p[1][0] += got
        if got or c.fin_rcvd or s.rd_shut:       # SOCK_DONE, RCV_SHUTDOWN
            return got, None
        if c.error:
            raise _Errno(_ERRNO[c.error])
        if c.state == "CLOSED":
            raise _Errno("ENOTCONN")
        if s.nonblock or "SPLICE_F_NONBLOCK" in str(flags):
            raise _Errno("EAGAIN")
        if c.readable():
            return 0, None          # data queued but nothing taken (the urgent mark): no loop
        return BLOCK

    def sys_close(self, fd):
        if self.files.pop(fd, None) is not None or self.pipes.pop(fd, None) is not None:
            return 0, None
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
        if c.state in ("ESTABLISHED", "CLOSE-WAIT") and c.writeable():
            ev |= 0x4 | 0x100
        if c.error:
            ev |= 0x8
        if c.state == "CLOSED" or (c.at_eof() and c.state not in ("ESTABLISHED", "FIN-WAIT-1", "FIN-WAIT-2")):
            ev |= 0x10
        return ev


_PMTUDISC = {"IP_PMTUDISC_DONT": 0, "IP_PMTUDISC_WANT": 1, "IP_PMTUDISC_DO": 2, "IP_PMTUDISC_PROBE": 3,
             "IP_PMTUDISC_INTERFACE": 4, "IP_PMTUDISC_OMIT": 5}
_POLL = {"POLLIN": 0x1, "POLLPRI": 0x2, "POLLOUT": 0x4, "POLLERR": 0x8, "POLLHUP": 0x10,
         "POLLRDNORM": 0x40, "POLLWRNORM": 0x100, "POLLRDHUP": 0x2000}


def _msg_field(msg, name: str):
    """The value of ``name=`` (or ``name(N)=``) in a struct msghdr written as {...}."""
    for x in msg[1] if isinstance(msg, tuple) and msg[0] == "{}" else ():
        if isinstance(x, tuple) and x[0] == "=":
            key = x[1][1] if isinstance(x[1], tuple) and x[1][0] == "call" else x[1]
            if key == name:
                return x[2]
    return None


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
