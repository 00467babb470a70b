"""pcap writer: scapy reads back the exact bytes and times; tcpdump and tshark decode the flags."""
import io
import shutil
import struct
import subprocess

import pytest
from scapy.layers import inet6  # noqa: F401  (registers the IP decoder for LINKTYPE_RAW)
from scapy.utils import rdpcap

from tuntcp.wire.codec import build, ip_int
from tuntcp.wire.pcap import LINKTYPE_RAW, PcapWriter
from tuntcp.wire.segment import ACK, FIN, PSH, SYN, Segment, TcpOptions

C = ip_int("198.18.0.2")
S = ip_int("198.18.0.1")
T0 = 1_700_000_000.25


def handshake() -> list[tuple[bytes, float]]:
    segs = [
        Segment(C, S, 40000, 80, 100, 0, SYN, 64240, TcpOptions(1460, 7, True, (5, 0))),
        Segment(S, C, 80, 40000, 900, 101, SYN | ACK, 65160, TcpOptions(1460, 7, True, (9, 5))),
        Segment(C, S, 40000, 80, 101, 901, ACK, 502, TcpOptions(ts=(6, 9))),
        Segment(C, S, 40000, 80, 101, 901, PSH | ACK, 502, TcpOptions(ts=(7, 9)), b"GET / HTTP/1.0\r\n\r\n"),
        Segment(S, C, 80, 40000, 901, 119, FIN | ACK, 509, TcpOptions(ts=(10, 7))),
    ]
    return [(build(s), T0 + i * 0.000123) for i, s in enumerate(segs)]


@pytest.fixture
def capture(tmp_path):
    path = tmp_path / "hs.pcap"
    with PcapWriter(path) as pc:
        for pkt, now in handshake():
            pc.write(pkt, now)
    return path


def test_header_is_raw_ip_microseconds(capture):
    head = capture.read_bytes()[:24]
    magic, major, minor, _zone, _sig, snaplen, linktype = struct.unpack("<IHHiIII", head)
    assert (magic, major, minor, linktype) == (0xA1B2C3D4, 2, 4, LINKTYPE_RAW)
    assert snaplen >= 65535


def test_scapy_reads_back_identical_packets_and_times(capture):
    got = rdpcap(str(capture))
    want = handshake()
    assert len(got) == len(want)
    for p, (raw, now) in zip(got, want):
        assert bytes(p) == raw
        assert abs(float(p.time) - now) < 1e-6
    assert got[1]["TCP"].flags == "SA" and got[1]["TCP"].sport == 80


def test_microsecond_rounding_carries_into_seconds():
    buf = io.BytesIO()
    with PcapWriter(buf) as pc:
        pc.write(b"\x45" + bytes(19), 41.9999996)
        pc.write(b"\x45" + bytes(19), 7.000001)
    sec, usec, incl, orig = struct.unpack_from("<IIII", buf.getvalue(), 24)
    assert (sec, usec, incl, orig) == (42, 0, 20, 20)
    assert struct.unpack_from("<II", buf.getvalue(), 24 + 16 + 20) == (7, 1)


def test_snaplen_cuts_packets_and_keeps_original_length():
    buf = io.BytesIO()
    pkt = build(Segment(S, C, 80, 1, 1, 1, ACK, 100, payload=bytes(200)))
    with PcapWriter(buf, snaplen=64) as pc:
        pc.write(pkt, 1.0)
    data = buf.getvalue()
    assert struct.unpack_from("<II", data, 24 + 8) == (64, len(pkt))
    assert data[40:] == pkt[:64]


def test_flush_makes_written_packets_visible_before_close(tmp_path):
    path = tmp_path / "live.pcap"
    pc = PcapWriter(path)
    pkt, now = handshake()[0]
    pc.write(pkt, now)
    pc.flush()
    assert len(rdpcap(str(path))) == 1  # what a crash after this flush would leave
    pc.close()
    pc.close()
    with pytest.raises(ValueError, match="closed"):
        pc.write(pkt, now)


def test_user_mistakes_get_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="snaplen"):
        PcapWriter(tmp_path / "x.pcap", snaplen=0)
    with pytest.raises(TypeError, match="path or a binary file"):
        PcapWriter(42)
    with PcapWriter(io.BytesIO()) as pc, pytest.raises(ValueError, match="negative"):
        pc.write(b"\x45" + bytes(19), -1.0)


def _tool(*names):
    for name in names:
        path = shutil.which(name) or next(
            (p for p in (f"/usr/bin/{name}", f"/usr/sbin/{name}") if shutil.os.path.exists(p)), None
        )
        if path:
            return path
    pytest.fail(f"{names[0]} is not installed (expected in /usr/bin or /usr/sbin)")


def test_tcpdump_reads_it(capture):
    out = subprocess.run(
        [_tool("tcpdump"), "-nn", "-S", "-r", str(capture)], capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 5
    assert "198.18.0.2.40000 > 198.18.0.1.80: Flags [S], seq 100" in lines[0]
    assert "mss 1460,sackOK,TS val 5 ecr 0,nop,wscale 7" in lines[0]
    assert "198.18.0.1.80 > 198.18.0.2.40000: Flags [S.], seq 900, ack 101" in lines[1]
    assert "Flags [.], ack 901, win 502, options [nop,nop,TS val 6 ecr 9]" in lines[2]
    assert "Flags [P.], seq 101:119, ack 901" in lines[3]
    assert "Flags [F.], seq 901, ack 119" in lines[4]


def test_tshark_reads_it_and_checksums_are_good(capture):
    out = subprocess.run(
        [
            _tool("tshark"), "-n", "-r", str(capture), "-o", "tcp.check_checksum:TRUE",
            "-o", "ip.check_checksum:TRUE", "-T", "fields", "-e", "tcp.srcport", "-e", "tcp.dstport",
            "-e", "tcp.flags.str", "-e", "tcp.checksum.status", "-e", "ip.checksum.status",
        ],
        capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, out.stderr
    rows = [line.split("\t") for line in out.stdout.splitlines()]
    assert [(r[0], r[1]) for r in rows] == [("40000", "80"), ("80", "40000"), ("40000", "80"), ("40000", "80"), ("80", "40000")]
    flags = [r[2].replace("\u00b7", "").strip() for r in rows]
    assert flags == ["S", "AS", "A", "AP", "AF"]
    assert all(r[3] == "1" and r[4] == "1" for r in rows), rows  # 1 = Good (0 Bad, 2 Unverified)
