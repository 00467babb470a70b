"""FreeBSD 10+ syncookies (tuntcp.listen.bsdcookies): layout, every table index, rotation."""
import pytest

from tuntcp.listen.bsdcookies import (MSSTAB, WSTAB, SyncookieSecrets, mss_index,
                                      syncookie_generate, syncookie_lookup, wscale_index)

S, C = 0xC6120001, 0xC6120002
SECRETS = SyncookieSecrets(b"sixteen byte key")


def gen(now, irs=1000, mss=1460, ws=7, sack=True, sport=40000, secmod=3):
    return syncookie_generate(SECRETS, now, S, 80, C, sport, irs, mss, ws, sack, secmod=secmod)


def look(now, iss, irs=1000, sport=40000, secmod=3):
    return syncookie_lookup(SECRETS, now, S, 80, C, sport, irs + 1, iss + 1, secmod=secmod)


def test_mss_index_rounds_down():
    assert [mss_index(m) for m in (None, 100, 216, 535, 536, 1199, 1200, 1459, 1460, 9000)] == \
        [0, 0, 0, 0, 1, 1, 2, 6, 7, 7]


def test_wscale_index_absent_differs_from_zero():
    assert wscale_index(None) == 0
    assert [wscale_index(w) for w in range(15)] == [1, 2, 3, 3, 4, 4, 5, 6, 7, 7, 7, 7, 7, 7, 7]


@pytest.mark.parametrize("mi", range(8))
@pytest.mark.parametrize("wi", range(8))
@pytest.mark.parametrize("sack", [False, True])
def test_roundtrip_every_mss_and_wscale_index(mi, wi, sack):
    ws = None if wi == 0 else WSTAB[wi]
    if wi == 1:
        ws = 0
    iss = gen(5.0, mss=MSSTAB[mi], ws=ws, sack=sack)
    info = look(5.0, iss)
    assert info is not None
    assert info.iss == iss and info.irs == 1000
    assert info.peer_mss == MSSTAB[mi]
    assert info.wscale_ok == (ws is not None)
    assert info.snd_wscale == (WSTAB[wi] if ws is not None else 0)
    assert info.sack_ok == sack


def test_in_between_values_round_down():
    info = look(1.0, gen(1.0, mss=1459, ws=3))
    assert (info.peer_mss, info.snd_wscale) == (1452, 2)
    info = look(1.0, gen(1.0, mss=1440, ws=14))
    assert (info.peer_mss, info.snd_wscale) == (1440, 8)


def test_flags_byte_layout_wwwmmmsp_xored_with_mac_top_byte():
    iss = gen(20.0, mss=1400, ws=6, sack=True)      # epoch 1: odd secret
    flags = (iss & 0xFF) ^ (iss >> 24)
    assert flags == (5 << 5) | (4 << 2) | (1 << 1) | 1
    iss = gen(31.0, mss=536, ws=None, sack=False)   # epoch 2: even secret
    assert (iss & 0xFF) ^ (iss >> 24) == (0 << 5) | (1 << 2) | 0 | 0


def test_secret_rotation_valid_15_to_30_seconds():
    iss = gen(14.9)                     # epoch 0
    assert look(14.9, iss) is not None
    assert look(29.99, iss) is not None  # epoch 1: previous secret still in the other slot
    assert look(30.0, iss) is None       # epoch 2: slot re-randomised
    iss = gen(15.0)                      # epoch 1, just rotated: good for 30 s
    assert look(44.99, iss) is not None
    assert look(45.0, iss) is None


def test_mac_covers_addresses_ports_irs_and_bucket():
    iss = gen(2.0)
    assert look(2.0, iss) is not None
    assert look(2.0, iss, irs=1001) is None
    assert look(2.0, iss, sport=40001) is None
    assert look(2.0, iss, secmod=4) is None
    assert look(2.0, iss ^ 0x100) is None           # one MAC bit flipped
