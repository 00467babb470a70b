"""FreeBSD accept filters (``setsockopt(SO_ACCEPTFILTER)``): accf_data and accf_http.

A filter decides, each time the held connection's receive buffer changes, whether the socket is
ready to be moved from the listener's incomplete queue to the completed queue. The decision
functions take the buffered bytes and two flags, so they are pure and easy to test.

Verified against freebsd/freebsd-src sys/netinet/accf_http.c and accf_data.c:

* ``sodataready`` (accf_data, "dataready"): pass as soon as any byte is buffered or the peer
  has shut down its side (SBS_CANTRCVMORE).
* ``sohashttpget`` (accf_http, "httpready"): pass at once on EOF or a full buffer (``sbfull``:
  sb_cc >= sb_hiwat). Wait while fewer than 2 bytes are buffered. The first byte must be 'G'
  (then "ET ") or 'H' (then "EAD "), anything else passes; a partial prefix that still matches
  waits, a mismatch passes. After the method:
  - ``soparsehttpvers`` (net.inet.accf.http.parsehttpversion=1): scan for the third token of the
    request line (after two runs of spaces). A CR or LF before it passes (HTTP/0.9 is released
    at the end of its request line). If fewer than 8 bytes remain the rest must be a prefix of
    "HTTP/1." to keep waiting; "HTTP/1.0" or "HTTP/1.1" goes on to the header check; any other
    token passes.
  - ``soishttpconnected``: the request header is complete when the *last three bytes of the
    buffer* are "\\n\\n" (after any byte) or "\\n\\r\\n". Only the tail is looked at, so a
    segment that carries the blank line plus body bytes keeps the connection held (until the
    buffer fills, EOF, or more data ends on a blank line) - FreeBSD behaves the same way.
"""
from __future__ import annotations

FILTERS = ("dataready", "httpready")


def dataready(buf: bytes, eof: bool, full: bool) -> bool:
    """accf_data ``sodataready``: True = release the connection to accept()."""
    return len(buf) > 0 or eof


def httpready(buf: bytes, eof: bool, full: bool, parse_version: bool = True) -> bool:
    """accf_http ``sohashttpget`` and its continuations: True = release."""
    if eof or full:
        return True
    if len(buf) < 2:
        return False
    if buf[0:1] == b"G":
        method = b"GET "
    elif buf[0:1] == b"H":
        method = b"HEAD "
    else:
        return True
    have = buf[: len(method)]
    if len(have) < len(method):
        return not method.startswith(have)   # matching prefix: wait; mismatch: pass
    if have != method:
        return True
    if parse_version:
        verdict = _parse_version(buf)
        if verdict is not None:
            return verdict
    return _header_complete(buf)


def _parse_version(buf: bytes) -> bool | None:
    """``soparsehttpvers``: True = pass now, False = wait, None = version ok, check the header."""
    spaces = 0
    in_spaces = False
    n = len(buf)
    for i in range(n):
        ch = buf[i]
        if ch == 0x20:
            if not in_spaces:
                spaces += 1
                in_spaces = True
        elif ch in (0x0D, 0x0A):
            return True                      # end of request line before a version: HTTP/0.9
        elif spaces != 2:
            in_spaces = False
        else:
            rest = buf[i:]
            if len(rest) < 8:
                return False if b"HTTP/1."[: len(rest)] == rest[:7] else True
            if rest[:8] in (b"HTTP/1.0", b"HTTP/1.1"):
                return None
            return True
    return False                             # request line not finished yet


def _header_complete(buf: bytes) -> bool:
    """``soishttpconnected``: the buffer ends with LF LF or LF CR LF."""
    if len(buf) < 3:
        return False
    a, b, c = buf[-3], buf[-2], buf[-1]
    return c == 0x0A and (b == 0x0A or (b == 0x0D and a == 0x0A))


def decide(name: str, buf: bytes, eof: bool, full: bool, parse_version: bool) -> bool:
    if name == "dataready":
        return dataready(buf, eof, full)
    return httpready(buf, eof, full, parse_version)
