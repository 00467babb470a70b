"""Knob tables (tuntcp/profiles/knobs.py): every knob has an entry, every profile passes its own
table, and --sysctl overrides are refused exactly where the 6.18 kernel says EINVAL."""
import pytest

from tuntcp.profiles import ProfileError, get_profile, names, REGISTRY
from tuntcp.profiles.knobs import INT_MAX, TABLES, check, table_text


@pytest.mark.parametrize("name", names())
def test_every_knob_of_every_profile_is_in_its_table_and_valid(name):
    p = REGISTRY[name]
    table = TABLES[p.family]
    assert set(p) <= set(table), sorted(set(p) - set(table))
    for k, v in p.items():
        assert check(p.family, k, v) == v


def refused(override, profile="linux-6.18"):
    with pytest.raises(ProfileError) as e:
        get_profile(profile, [override])
    msg = str(e.value)
    assert "\n" not in msg and override.split("=")[0] in msg
    return msg


# The rows of issue 15's table, as the 6.18 kernel answers them.
def test_u8_knob_takes_any_byte_like_the_kernel():
    assert get_profile("linux-6.18", ["net.ipv4.tcp_syncookies=7"])["net.ipv4.tcp_syncookies"] == 7
    assert get_profile("linux-6.18", ["net.ipv4.tcp_syncookies=255"])["net.ipv4.tcp_syncookies"] == 255
    for bad in ("-1", "256", "300"):
        assert "0..255" in refused(f"net.ipv4.tcp_syncookies={bad}")


def test_u8_with_bounds():
    assert "1..127" in refused("net.ipv4.tcp_syn_retries=0")
    assert get_profile("linux-6.18", ["net.ipv4.tcp_syn_retries=127"])["net.ipv4.tcp_syn_retries"] == 127
    refused("net.ipv4.tcp_syn_retries=128")
    refused("net.ipv4.tcp_ecn=3")
    refused("net.ipv4.tcp_pingpong_thresh=0")
    refused("net.ipv4.tcp_app_win=32")


def test_int_minmax_and_overflow():
    msg = refused("net.core.somaxconn=99999999999")
    assert "99999999999" in msg and "INT_MAX" in msg and "EINVAL" in msg
    refused("net.core.somaxconn=-1")
    assert get_profile("linux-6.18", [f"net.core.somaxconn={INT_MAX}"])["net.core.somaxconn"] == INT_MAX
    assert get_profile("linux-6.18", ["net.core.somaxconn=0"])["net.core.somaxconn"] == 0
    # plain proc_dointvec: any int, negative included (the kernel clamps at use)
    assert get_profile("linux-6.18", ["net.ipv4.tcp_max_syn_backlog=-1"])["net.ipv4.tcp_max_syn_backlog"] == -1
    refused("net.ipv4.tcp_max_syn_backlog=2147483648")
    refused("net.ipv4.tcp_adv_win_scale=32")
    refused("net.ipv4.ip_default_ttl=0")
    refused("net.ipv6.conf.default.hop_limit=256")
    assert get_profile("linux-6.18", ["net.core.somaxconn=0x10"])["net.core.somaxconn"] == 16  # base 0, as the kernel


def test_jiffies_knobs():
    refused("net.ipv4.tcp_fin_timeout=8589935")     # * HZ overflows int
    assert get_profile("linux-6.18", ["net.ipv4.tcp_fin_timeout=-1"])["net.ipv4.tcp_fin_timeout"] == -1
    refused("net.ipv4.tcp_invalid_ratelimit=-1")


def test_vectors():
    refused("net.ipv4.tcp_rmem=1 2 3")
    assert get_profile("linux-6.18", ["net.ipv4.tcp_rmem=8192"])["net.ipv4.tcp_rmem"] == (8192, 131072, 33554432)
    four = get_profile("linux-6.18", ["net.ipv4.tcp_rmem=4096 131072 6291456 5"])
    assert four["net.ipv4.tcp_rmem"] == (4096, 131072, 6291456)   # the kernel ignores the 4th value
    assert get_profile("linux-6.18", ["net.ipv4.tcp_rmem="])["net.ipv4.tcp_rmem"] == (4096, 131072, 33554432)
    assert get_profile("linux-6.18", ["net.core.somaxconn=12 13"])["net.core.somaxconn"] == 12
    assert get_profile("linux-6.18", ["net.ipv4.tcp_rmem=4096 8192 4096"])["net.ipv4.tcp_rmem"] == (4096, 8192, 4096)
    assert get_profile("linux-6.18", ["net.ipv4.tcp_wmem=1 1 1"])["net.ipv4.tcp_wmem"] == (1, 1, 1)
    refused("net.ipv4.tcp_wmem=0 1 1")


def test_model_knobs():
    assert "model.rto_min=-5:" in refused("model.rto_min=-5")        # quotes what was typed
    refused("model.rto_min=nan")
    refused("model.rto_max=inf")
    msg = refused("model.cookie_wscale_mode=banana")
    assert "linux" in msg and "gvisor" in msg
    refused("model.synq_full_cmp=<")
    refused("model.cookie_wscale_clamp=maybe")
    refused("model.scaling_ratio=0")
    assert get_profile("linux-6.18", ["model.cookie_wscale_mode=gvisor"])["model.cookie_wscale_mode"] == "gvisor"
    assert get_profile("linux-6.18", {"model.rto_min": 1})["model.rto_min"] == 1


def test_mapping_overrides_are_checked_too():
    with pytest.raises(ProfileError):
        get_profile("linux-6.18", {"net.ipv4.tcp_syncookies": 300})
    with pytest.raises(ProfileError):
        get_profile("linux-6.18", {"net.ipv4.tcp_syncookies": True})


def test_choice_knobs_and_freebsd_family():
    refused("net.ipv4.tcp_congestion_control=bbr")
    assert get_profile("freebsd-14", ["kern.ipc.soacceptqueue=1024"])["kern.ipc.soacceptqueue"] == 1024
    refused("kern.ipc.soacceptqueue=70000", "freebsd-14")
    refused("net.inet.tcp.mssdflt=10", "freebsd-14")


def test_table_text_lists_every_knob():
    for family, table in TABLES.items():
        text = table_text(family)
        assert all(name in text for name in table)
