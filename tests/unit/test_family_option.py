"""One ``--family`` for every scenario (scenarios/rig.py): each subcommand that can run over
IPv6 takes it into its Config, those that cannot refuse ipv6 with the reason, labs pass it on."""
import argparse

import pytest

from tuntcp.errors import UserError
from tuntcp.scenarios import SCENARIOS
from tuntcp.scenarios.rig import family_of, family_option

IPV6_OK = ["connect", "storm", "soak", "reverse-check", "defer-accept", "ts-off", "freebsd-queue", "slow-accept",
           "fluentd"]


def parser(name):
    import importlib
    p = argparse.ArgumentParser()
    importlib.import_module(SCENARIOS[name][0]).add_arguments(p)
    return p


@pytest.mark.parametrize("name", IPV6_OK + ["synflood"])
def test_every_scenario_has_the_family_option(name):
    p = parser(name)
    assert p.parse_args([] if name != "connect" else []).family == "ipv4"
    assert p.parse_args(["--family", "ipv6"]).family == "ipv6"


def test_family_of_and_the_refusal():
    p = argparse.ArgumentParser()
    family_option(p)
    assert family_of(p.parse_args([])) == 4 and family_of(p.parse_args(["--family", "ipv6"])) == 6
    q = argparse.ArgumentParser()
    family_option(q, cannot="hping3 sends IPv4 only")
    assert family_of(q.parse_args([])) == 4
    with pytest.raises(UserError, match="--family ipv6: hping3 sends IPv4 only"):
        family_of(q.parse_args(["--family", "ipv6"]))
    assert "hping3" in q.format_help()


@pytest.mark.parametrize("n,ok", [(2, True), (3, True), (5, True), (6, True), (7, True), (8, True), (4, False)])
def test_lab_run_passes_the_family_on(n, ok, tmp_path):
    from tuntcp.scenarios.labs import LabUserError, get_lab
    from tuntcp.scenarios.labs.cli import build_config
    lab = get_lab(n)
    if ok:
        assert build_config(lab, str(tmp_path), True, family=6).family == 6
    else:
        with pytest.raises(LabUserError, match="IPv4 only"):
            build_config(lab, str(tmp_path), True, family=6)
    assert getattr(build_config(lab, str(tmp_path), True), "family", 4) == 4
