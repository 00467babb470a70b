"""accf_http / accf_data verdicts (tuntcp.listen.freebsd_accf): True = released to accept()."""
import pytest

from tuntcp.listen.freebsd_accf import dataready, httpready

GET = b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n"


def grow(req: bytes, cuts):
    """Verdicts as the request arrives in pieces ending at each cut."""
    return [httpready(req[:c], eof=False, full=False) for c in cuts]


def test_get_split_over_segments_held_until_blank_line():
    cuts = [1, 2, 3, 4, 10, 24, 26, 35, len(GET) - 1, len(GET)]
    assert grow(GET, cuts) == [False] * 9 + [True]


def test_bare_lf_header_end():
    req = b"GET / HTTP/1.0\nHost: x\n\n"
    assert httpready(req[:-1], False, False) is False
    assert httpready(req, False, False) is True


def test_head_is_held_like_get():
    req = b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n"
    assert grow(req, [2, 5, 16, len(req) - 2, len(req)]) == [False] * 4 + [True]


@pytest.mark.parametrize("data", [b"POST / HTTP/1.1\r\n", b"PUT /", b"OPTIONS * HTTP/1.1",
                                  b"\x16\x03\x01\x00", b"SSH-2.0-OpenSSH\r\n", b"Gx", b"HEx"])
def test_other_methods_and_non_http_pass_at_once(data):
    assert httpready(data, False, False) is True


def test_one_byte_waits_even_if_unknown():
    assert httpready(b"P", False, False) is False      # sohashttpget needs 2 bytes to decide
    assert httpready(b"", False, False) is False


def test_http09_released_at_end_of_request_line():
    assert httpready(b"GET /old", False, False) is False
    assert httpready(b"GET /old\r", False, False) is True
    assert httpready(b"GET /old\n", False, False) is True


def test_version_prefix_waits_other_versions_pass():
    assert httpready(b"GET / HTTP/1", False, False) is False
    assert httpready(b"GET / HTTP/2.0\r\n\r\n", False, False) is True
    assert httpready(b"GET / HTTX", False, False) is True
    assert httpready(b"GET  /   HTTP/1.1\r\n", False, False) is False   # space runs count once


def test_parsehttpversion_off_only_looks_for_blank_line():
    assert httpready(b"GET /old\r\n", False, False, parse_version=False) is False
    assert httpready(b"GET / HTTP/9.9\r\n\r\n", False, False, parse_version=False) is True


def test_only_the_tail_is_checked_body_after_header_keeps_it_held():
    assert httpready(GET + b"x=1", False, False) is False


def test_eof_and_full_buffer_pass():
    assert httpready(b"GET / HTTP/1.1\r\n", eof=True, full=False) is True
    assert httpready(b"GET / HTTP/1.1\r\n", eof=False, full=True) is True
    assert httpready(b"", eof=True, full=False) is True


def test_dataready():
    assert dataready(b"", False, False) is False
    assert dataready(b"x", False, False) is True
    assert dataready(b"", True, False) is True
