"""One ``--family`` for every scenario (scenarios/rig.py): each subcommand takes it into its
Config, and ``lab run`` passes it on to the lab's scenario."""
import argparse

import pytest

from tuntcp.scenarios import SCENARIOS
from tuntcp.scenarios.rig import family_of, family_option

IPV6_OK = ["connect", "storm", "soak", "reverse-check", "defer-accept", "ts-off", "freebsd-queue", "slow-accept",
           "fluentd", "synflood"]


def parser(name):
    import importlib
    p = argparse.ArgumentParser()
    importlib.import_module(SCENARIOS[name][0]).add_arguments(p)
    return p


@pytest.mark.parametrize("name", IPV6_OK)
def test_every_scenario_has_the_family_option(name):
    p = parser(name)
    assert p.parse_args([]).family == "ipv4"
    assert p.parse_args(["--family", "ipv6"]).family == "ipv6"


def test_family_of():
    p = argparse.ArgumentParser()
    family_option(p)
    assert family_of(p.parse_args([])) == 4 and family_of(p.parse_args(["--family", "ipv6"])) == 6
    with pytest.raises(SystemExit):
        p.parse_args(["--family", "ipv5"])


@pytest.mark.parametrize("n", range(1, 9))
def test_lab_run_passes_the_family_on(n, tmp_path):
    from tuntcp.scenarios.labs import get_lab
    from tuntcp.scenarios.labs.cli import build_config
    lab = get_lab(n)
    assert build_config(lab, str(tmp_path), True, family=6).family == 6
    assert build_config(lab, str(tmp_path), True).family == 4


def test_lab_whose_config_has_no_family_refuses_ipv6(tmp_path):
    import dataclasses

    from tuntcp.scenarios.labs import LabUserError, get_lab
    from tuntcp.scenarios.labs.cli import build_config
    lab = dataclasses.replace(get_lab(5), module="tuntcp.scenarios.labs", config_name="LabSpec")
    with pytest.raises(LabUserError, match="has no IPv6 run"):
        build_config(lab, str(tmp_path), True, family=6)
