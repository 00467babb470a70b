"""FreeBSD profiles: every knob the shared core reads exists; FreeBSD values where they differ."""
import pytest

from tuntcp.profiles import ProfileError, get_profile


@pytest.mark.parametrize("name", ["freebsd-9", "freebsd-14"])
def test_has_every_linux_knob(name):
    linux = get_profile("linux-6.12")
    bsd = get_profile(name)
    assert bsd.family == "freebsd"
    assert set(linux) <= set(bsd)


def test_freebsd_values():
    p9, p14 = get_profile("freebsd-9"), get_profile("freebsd-14")
    assert p9["net.inet.tcp.rexmit_initial"] == 3000 and p14["net.inet.tcp.rexmit_initial"] == 1000
    assert (p9["model.rto_initial"], p14["model.rto_initial"]) == (3.0, 1.0)
    for p in (p9, p14):
        assert p["kern.ipc.soacceptqueue"] == p["net.core.somaxconn"] == 128
        assert p["net.inet.tcp.syncache.cachelimit"] == 512 * 30
        assert p["net.inet.tcp.syncache.rexmtlimit"] == 3
        assert p["net.inet.tcp.syncache.rst_on_sock_fail"] == 1
        assert p["model.rto_min"] == 0.03 and p["model.delack_min"] == 0.1
        assert p["model.timewait_len"] == 60.0
        assert p["net.ipv4.tcp_congestion_control"] == "newreno"
        assert p["net.ipv4.tcp_rmem"][1] == 65536 and p["net.core.rmem_max"] == 2097152


def test_sysctl_override_and_typo_hint():
    p = get_profile("freebsd-14", ["net.inet.tcp.syncookies=0"])
    assert p["net.inet.tcp.syncookies"] == 0
    with pytest.raises(ProfileError, match="did you mean net.inet.tcp.syncache.bucketlimit"):
        get_profile("freebsd-14", ["bucketlimit=3"])
