"""A classic pcap writer for raw IPv4 packets (LINKTYPE_RAW = 101), microsecond timestamps.

The caller passes the time of each packet (``now``, float seconds); nothing here reads a clock.
Writes go to a buffered file; the shell calls ``flush()`` once per drained batch, so a crash
loses at most the batch in progress.
"""
from __future__ import annotations

import os
import struct

LINKTYPE_RAW = 101
PCAP_MAGIC_US = 0xA1B2C3D4
DEFAULT_SNAPLEN = 262144  # tcpdump's default; holds a 64 KiB IP packet whole

_GLOBAL = struct.Struct("<IHHiIII")  # magic, 2, 4, thiszone, sigfigs, snaplen, linktype
_RECORD = struct.Struct("<IIII")  # ts_sec, ts_usec, incl_len, orig_len


class PcapWriter:
    """``with PcapWriter(path) as pc: pc.write(packet, now)``.

    ``dest`` is a path (the file is created or truncated) or a binary file object opened for
    writing (left open by ``close()``). Packets longer than ``snaplen`` are cut, with the
    original length kept in the record, as libpcap does.
    """

    def __init__(self, dest, snaplen: int = DEFAULT_SNAPLEN) -> None:
        if not isinstance(snaplen, int) or not 0 < snaplen <= 0x7FFFFFFF:
            raise ValueError(f"snaplen must be a positive int, got {snaplen!r}")
        if isinstance(dest, (str, bytes, os.PathLike)):
            self._f = open(dest, "wb")
            self._owned = True
        elif hasattr(dest, "write"):
            self._f = dest
            self._owned = False
        else:
            raise TypeError(f"pcap destination must be a path or a binary file, got {type(dest).__name__}")
        self.snaplen = snaplen
        self.count = 0
        self.closed = False
        self._f.write(_GLOBAL.pack(PCAP_MAGIC_US, 2, 4, 0, 0, snaplen, LINKTYPE_RAW))

    def write(self, pkt: bytes | bytearray | memoryview, now: float) -> None:
        """Append one IP packet captured at ``now`` (seconds since the epoch, >= 0)."""
        if self.closed:
            raise ValueError("write to a closed PcapWriter")
        if now < 0:
            raise ValueError(f"pcap timestamps cannot be negative: {now}")
        usec_total = round(now * 1_000_000)
        sec, usec = divmod(usec_total, 1_000_000)
        n = len(pkt)
        incl = n if n <= self.snaplen else self.snaplen
        f = self._f
        f.write(_RECORD.pack(sec & 0xFFFFFFFF, usec, incl, n))
        f.write(pkt if incl == n else memoryview(pkt)[:incl])
        self.count += 1

    def flush(self) -> None:
        """Hand everything written so far to the OS."""
        if not self.closed:
            self._f.flush()

    def close(self) -> None:
        """Flush, and close the file if we opened it. Closing twice is fine."""
        if self.closed:
            return
        self._f.flush()
        if self._owned:
            self._f.close()
        self.closed = True

    def __enter__(self) -> PcapWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
