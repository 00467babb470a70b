"""CLI user-error paths: one line on stderr, exit 2, never a traceback."""
import subprocess
import sys

import pytest

from tuntcp.cli import main


@pytest.mark.parametrize("argv, needle", [
    (["serve", "--profile", "linux-9.99"], "unknown profile 'linux-9.99'"),
    (["serve", "--sysctl", "net.core.somaxconnn=5"], "unknown knob 'net.core.somaxconnn'"),
    (["serve", "--sysctl", "net.core.somaxconn=lots"], "bad value 'lots' for net.core.somaxconn"),
    (["serve", "--sysctl", "net.core.somaxconn"], "--sysctl wants name=value"),
    (["serve", "--loss", "1.5"], "probability must be in [0, 1]"),
    (["serve", "--port", "0"], "port must be 1..65535"),
    (["serve", "--delay", "soon"], "not a time"),
    (["profiles", "solaris-2"], "unknown profile 'solaris-2'"),
    (["ss", "-lnt", "--name", "no-such-endpoint-here"], "no endpoint named 'no-such-endpoint-here'"),
    (["nstat", "-az", "--name", "no-such-endpoint-here"], "no endpoint named"),
    (["frobnicate"], "invalid choice"),
])
def test_user_mistakes_are_one_line_exit_2(argv, needle, capsys):
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    prefix = "tuntcp: error: " if argv[0] == "frobnicate" else f"tuntcp {argv[0]}: error: "
    assert err.count("\n") == 1 and err.startswith(prefix)
    assert needle in err


def test_no_traceback_from_the_real_entry_point():
    p = subprocess.run([sys.executable, "-m", "tuntcp.cli", "serve", "--profile", "nope"],
                       capture_output=True, text=True)
    assert p.returncode == 2
    assert "Traceback" not in p.stderr and p.stderr.count("\n") == 1


def test_profiles_lists_every_profile_and_one_profiles_knobs(capsys):
    from tuntcp.profiles import get_profile, names
    assert main(["profiles"]) == 0
    out = capsys.readouterr().out
    assert [l.split()[0] for l in out.splitlines()] == names()
    assert main(["profiles", "linux-3.10"]) == 0
    knobs = dict(l.split(None, 1) for l in capsys.readouterr().out.splitlines())
    assert knobs["net.core.somaxconn"] == str(get_profile("linux-3.10")["net.core.somaxconn"])
    assert knobs["net.ipv4.tcp_rmem"] == "4096 87380 6291456"


def test_serve_without_privileges_is_a_one_line_error(monkeypatch, capsys):
    from tuntcp.harness import netns
    monkeypatch.setattr(netns, "privilege_problem", lambda: "tuntcp needs CAP_NET_ADMIN (run as root)")
    assert main(["serve", "--profile", "linux-5.4"]) == 2
    err = capsys.readouterr().err
    assert err == "tuntcp serve: error: tuntcp needs CAP_NET_ADMIN (run as root)\n"


def test_time_and_probability_units(capsys):
    from tuntcp.cli import _prob
    from tuntcp.scenarios.cli_common import parse_time
    assert parse_time("10ms") == pytest.approx(0.01) and parse_time("1.5") == 1.5
    assert parse_time("200us") == pytest.approx(0.0002)
    assert parse_time("1.5s", "ms") == pytest.approx(1500) and parse_time("20", "ms") == 20
    assert _prob("1%") == pytest.approx(0.01) and _prob("0.25") == 0.25


def test_every_user_facing_error_is_a_user_error():
    """The CLI prints any UserError as one line (exit 2) without knowing it by name."""
    import importlib

    from tuntcp.errors import UserError
    from tuntcp.scenarios import SCENARIOS
    names = {"tuntcp.profiles": "ProfileError", "tuntcp.harness.netns": "LabError",
             "tuntcp.shell.control": "ControlError", "tuntcp.host.stack": "StackError",
             "tuntcp.shell.vnet": "OffloadError", "tuntcp.bench.cli": "BenchUsageError",
             "tuntcp.scenarios.storm": "StormError", "tuntcp.scenarios.soak_load": "SoakError",
             "tuntcp.scenarios.labs": "LabUserError", "tuntcp.cli": "UsageError",
             "tuntcp.errors": "OutputError", "tuntcp.obs.commands": "ObsUsageError"}
    for module, _ in SCENARIOS.values():
        if not module.startswith("tuntcp.scenarios"):
            continue                   # tuntcp drill: helper drill's own errors
        mod = importlib.import_module(module)
        names.update({module: n for n in vars(mod) if n.endswith("Error") and
                      getattr(mod, n).__module__ == module})
    for module, name in names.items():
        assert issubclass(getattr(importlib.import_module(module), name), UserError), name
    assert len(names) >= 17


def test_a_user_error_inside_trio_exception_groups_is_one_line(capsys, monkeypatch):
    import tuntcp.cli as cli
    from tuntcp.errors import UserError

    def boom(args):
        raise BaseExceptionGroup("nursery", [ExceptionGroup("inner", [UserError("the knob is bad\nmore")])])
    monkeypatch.setitem(cli.COMMANDS, "profiles", boom)
    assert main(["profiles"]) == 2
    assert capsys.readouterr().err == "tuntcp profiles: error: the knob is bad\n"

    def bug(args):
        raise BaseExceptionGroup("nursery", [UserError("x"), RuntimeError("a bug")])
    monkeypatch.setitem(cli.COMMANDS, "profiles", bug)
    with pytest.raises(BaseExceptionGroup):            # a bug keeps its traceback
        main(["profiles"])

    def interrupted(args):
        raise BaseExceptionGroup("nursery", [KeyboardInterrupt()])
    monkeypatch.setitem(cli.COMMANDS, "profiles", interrupted)
    assert main(["profiles"]) == 130
