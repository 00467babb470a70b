"""CLI conventions, checked over every subcommand the parser knows: every option has help and
shows its default; --version; dashed subcommand names with the underscored ones as aliases;
every time option names its unit (-s or -ms), old spellings hidden; --out is always a folder."""
import argparse
import re
import subprocess
import sys

import pytest

from tuntcp.cli import build_parser, main
from tuntcp.scenarios import SCENARIOS

TIME_WORDS = {"delay", "jitter", "duration", "timeout", "stall", "interval", "down", "late", "split",
              "line", "window", "defer", "rtt", "spread", "pace", "every", "wait", "linger"}
UNITS = ("s", "ms", "usecs")      # usecs: packetdrill's own --tolerance_usecs, kept as spelt there


def subparsers(parser, path=("tuntcp",)):
    """(path, parser) for the parser and every nested subcommand, aliases once each."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            seen = set()
            for name, sub in action.choices.items():
                if id(sub) not in seen:
                    seen.add(id(sub))
                    yield from subparsers(sub, path + (name,))


def options(parser):
    return [a for a in parser._actions if not isinstance(
        a, (argparse._HelpAction, argparse._VersionAction, argparse._SubParsersAction))]


ALL = list(subparsers(build_parser()))


def test_the_walk_reaches_every_subcommand():
    names = {p[1] for p, _ in ALL if len(p) > 1}
    assert {"serve", "ss", "nstat", "netstat", "profiles", "bench", *SCENARIOS} <= names
    assert {("tuntcp", "lab", a) for a in ("list", "show", "run", "check", "answers-template")} <= \
        {p for p, _ in ALL}


@pytest.mark.parametrize("path, parser", ALL, ids=[" ".join(p) for p, _ in ALL])
def test_every_option_has_help(path, parser):
    missing = [a.option_strings or a.dest for a in options(parser) if not a.help]
    assert missing == [], f"{' '.join(path)}: no help for {missing}"


@pytest.mark.parametrize("path, parser", ALL, ids=[" ".join(p) for p, _ in ALL])
def test_hidden_options_are_old_spellings_of_visible_ones(path, parser):
    visible = {a.dest for a in options(parser) if a.help != argparse.SUPPRESS}
    for a in options(parser):
        if a.help == argparse.SUPPRESS:
            assert a.dest in visible, f"{' '.join(path)} {a.option_strings}: hidden, not an alias"


@pytest.mark.parametrize("path, parser", ALL, ids=[" ".join(p) for p, _ in ALL])
def test_time_options_name_their_unit(path, parser):
    for a in options(parser):
        if a.help == argparse.SUPPRESS or not a.option_strings:
            continue
        name = a.option_strings[-1]
        if a.metavar in ("S", "MS"):
            assert name.endswith("-" + a.metavar.lower()), name
        elif TIME_WORDS & set(re.split(r"[-_]", name.lstrip("-"))):
            assert re.split(r"[-_]", name)[-1] in UNITS, f"{' '.join(path)} {name}: a time without its unit"


@pytest.mark.parametrize("path, parser", ALL, ids=[" ".join(p) for p, _ in ALL])
def test_out_is_always_a_folder(path, parser):
    for a in options(parser):
        if "--out" in a.option_strings and a.help != argparse.SUPPRESS:
            assert a.metavar == "DIR", f"{' '.join(path)}: --out {a.metavar}"


def test_help_shows_defaults_and_the_conventions(capsys):
    assert main(["slow-accept", "-h"]) == 0
    out = capsys.readouterr().out
    assert "--stall-s S" in out and "(default: 2.0)" in out and "(default: out/slow_accept)" in out
    assert "--stall " not in out          # the old spelling still works but is not advertised
    assert "every time option names its unit" in out
    assert main(["-h"]) == 0
    assert "conventions:" in capsys.readouterr().out


def test_version():
    p = subprocess.run([sys.executable, "-m", "tuntcp.cli", "--version"], capture_output=True, text=True)
    from tuntcp.scenarios.report import tool_version
    assert p.returncode == 0 and p.stdout == f"tuntcp {tool_version()}\n" and p.stderr == ""


@pytest.mark.parametrize("name", sorted(n for n in SCENARIOS if "-" in n))
def test_dashed_names_with_underscored_aliases(name):
    parser = build_parser()
    dashed = parser.parse_args([name])
    under = parser.parse_args([name.replace("-", "_")])
    assert dashed._scenario == under._scenario == SCENARIOS[name][0]
    assert dashed._cmd == under._cmd == name


def test_old_time_spellings_keep_their_units():
    parser = build_parser()
    a = parser.parse_args(["serve", "--delay", "0.05", "--jitter", "10ms", "--duration", "3"])
    assert a.delay_ms == pytest.approx(50) and a.jitter_ms == pytest.approx(10) and a.duration == 3
    b = parser.parse_args(["serve", "--delay-ms", "50", "--duration-s", "2.5"])
    assert b.delay_ms == 50 and b.duration == 2.5
    c = parser.parse_args(["slow_accept", "--stall", "1.5", "--client-timeout", "4"])
    assert c.stall == 1.5 and c.client_timeout == 4
    d = parser.parse_args(["defer-accept", "--defer-s", "3"])
    assert d.defer_s == 3 and isinstance(d.defer_s, int)
    assert main(["defer-accept", "--defer-s", "2.5"]) == 2


def test_soak_out_is_a_folder_and_json_its_old_file_spelling():
    from tuntcp.scenarios.soak import OldJsonFile
    parser = build_parser()
    assert parser.parse_args(["soak", "--out", "d"]).out == "d"
    old = parser.parse_args(["soak", "--json", "f.json"]).out
    assert isinstance(old, OldJsonFile) and old == "f.json"


def test_parse_errors_use_the_one_prefix(capsys):
    assert main(["slow-accept", "--stall-s", "soon"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tuntcp slow-accept: error: argument --stall-s") and err.count("\n") == 1
