"""A user mistake anywhere on the command line: one line on stderr, exit status 2, nothing on
stdout, and nothing created or changed - not in the working folder, not among the namespaces.
Each row runs the real entry point in a fresh process, from an empty working folder that also
holds an existing file (``FILE``) and a folder (``DIR``) for the rows that misuse them.
Also: SIGINT/SIGTERM exit 130/143 and leave no namespace; a closed pipe is quiet."""
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tuntcp.harness.netns import in_user_namespace, probe

pytestmark = pytest.mark.netns
ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ["slow-accept", "synflood", "fluentd", "ts-off", "freebsd-queue", "defer-accept",
             "reverse-check", "storm"]
PROFILED = {"slow-accept", "synflood", "fluentd", "ts-off", "defer-accept", "reverse-check", "storm"}
SYSCTL = {"slow-accept", "synflood", "fluentd", "freebsd-queue", "storm"}


def rows():
    """(argv, needle in the error line); FILE, DIR and NOBODY_OUT are filled in per run."""
    out = [
        (["serve", "--pcap", "/nonexistent/t.pcap"], "--pcap /nonexistent/t.pcap: no such folder"),
        (["serve", "--events", "/nonexistent/e.jsonl"], "--events /nonexistent/e.jsonl: no such folder"),
        (["serve", "--pcap", "DIR"], "is a folder, not a file"),
        (["serve", "--events", "/proc/nope.jsonl"], "is not writable"),
        (["serve", "--profile", "linux-9.99"], "unknown profile 'linux-9.99'"),
        (["serve", "--sysctl", "net.ipv4.tcp_syncookies"], "--sysctl wants name=value"),
        (["serve", "--sysctl", "net.core.somaxconnn=5"], "unknown knob 'net.core.somaxconnn'"),
        (["serve", "--sysctl", "net.core.somaxconn=lots"], "bad value 'lots'"),
        (["serve", "--sysctl", "net.ipv4.tcp_syncookies=-1"], "out of range"),
        (["serve", "--sysctl", "net.ipv4.tcp_syncookies=300"], "out of range"),
        (["serve", "--sysctl", "net.core.somaxconn=99999999999"], "out of range"),
        (["serve", "--sysctl", "model.rto_min=-5"], "out of range"),
        (["serve", "--sysctl", "model.cookie_wscale_mode=banana"], "not allowed"),
        (["slow-accept", "--sysctl", "net.ipv4.tcp_syncookies=-1"], "out of range"),
        (["lab", "check", "1", "--answers", "FILE"], "is not valid TOML"),
        (["serve", "--delay-ms", "soon"], "not a time"),
        (["serve", "--delay", "-1"], "must be >= 0"),
        (["serve", "--loss", "2"], "probability must be in [0, 1]"),
        (["serve", "--port", "70000"], "port must be 1..65535"),
        (["serve", "--name", "a/b"], "bad endpoint name"),
        (["profiles", "solaris-2"], "unknown profile 'solaris-2'"),
        (["ss", "-lnt", "--name", "no-such-endpoint-here"], "no endpoint named"),
        (["nstat", "-az", "--name", "no-such-endpoint-here"], "no endpoint named"),
        (["netstat", "--name", "no-such-endpoint-here"], "no endpoint named"),
        (["frobnicate"], "invalid choice"),
        (["connect", "--ns-sysctl", "oops"], "--ns-sysctl wants name=value"),
        (["connect", "--port", "0"], "--port must be 1..65535"),
        (["connect", "--profile", "nope"], "unknown profile 'nope'"),
        (["soak", "--out", "FILE"], "exists and is not a folder"),
        (["soak", "--out", "/proc/nope"], "is not writable"),
        (["soak", "--json", "/nonexistent/s.json"], "no such folder"),
        (["soak", "--seconds", "1"], "at least 3 seconds"),
        (["soak", "--profile", "nope"], "unknown profile 'nope'"),
        (["lab", "run", "99"], "no lab '99'"),
        (["lab", "run", "2", "--out", "FILE"], "exists and is not a folder"),
        (["lab", "run", "2", "--out", "/proc/nope"], "is not writable"),
        (["lab", "show", "99"], "no lab '99'"),
        (["lab", "check", "1", "--answers", "/nonexistent/a.toml"], "not found"),
        (["lab", "check", "1", "--answers", "EMPTY.toml", "--report", "DIR"], "no report at"),
        (["lab", "answers-template", "1", "--file", "/nonexistent/a.toml"], "cannot write"),
        (["lab", "frobnicate"], "invalid choice"),
        (["bench", "--out", "/proc/nope"], "is not writable"),
        (["bench", "--out", "FILE"], "exists and is not a folder"),
        (["slow-accept", "--stall-s", "soon"], "not a time"),
        (["slow_accept", "--abort-on-overflow", "2"], "--abort-on-overflow takes 0 and/or 1"),
        (["synflood", "--modes", "sometimes"], "mode"),
        (["defer-accept", "--defer-s", "2.5"], "whole s only"),
        (["ts-off", "--profile", "freebsd-14"], "linux"),
        (["freebsd-queue", "--profiles", "linux-6.1"], "freebsd"),
        (["storm", "--modes", "neither"], "--modes takes buggy, fixed and/or kernel"),
        (["states", "--dott"], "unrecognized arguments: --dott"),
        (["events", "/nonexistent/e.jsonl"], "cannot read /nonexistent/e.jsonl"),
        (["events", "FILE"], "FILE"),
        (["drill", "/nonexistent/x.pkt"], "No such file"),
        (["drill", "--suite", "/nonexistent"], "not a folder"),
        (["drill"], "give SCRIPT... or --suite DIR"),
        (["drill", "--profile", "nope", "x.pkt"], "unknown profile 'nope'"),
    ]
    for s in SCENARIOS:
        out += [([s, "--out", "FILE"], "exists and is not a folder"),
                ([s, "--out", "/proc/nope"], "is not writable")]
        if s in PROFILED:
            out.append(([s, "--profile", "nope"], "unknown profile 'nope'"))
        if s in SYSCTL:
            out.append(([s, "--sysctl", "oops"], "wants name=value"))
    return out


ROWS = rows()


def test_the_table_covers_every_subcommand():
    from tuntcp.scenarios import SCENARIOS as ALL
    covered = {argv[0].replace("_", "-") for argv, _ in ROWS}
    assert {"serve", "ss", "nstat", "netstat", "profiles", "bench", *ALL} <= covered
    assert len(ROWS) >= 75


def netns_list() -> str:
    return subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout


def namespaces_of(pid: int) -> list[str]:
    """The lab namespaces process ``pid`` made (Lab names them tuntcp-PID-N); other helpers'
    tests may add and remove their own meanwhile, so only these are compared."""
    return re.findall(rf"^(tuntcp-{pid}-\d+)", netns_list(), re.M)


def control_sockets() -> set[str]:
    return set(os.listdir("/run/tuntcp")) if os.path.isdir("/run/tuntcp") else set()


def sockets_made(pid: int, before: set[str]) -> list[str]:
    """New control sockets named after this run's process (lab-NN-PID); the default names
    (tuntcp, storm) are not compared: other helpers' runs make and remove them meanwhile."""
    return sorted(n for n in control_sockets() - before if f"-{pid}." in n)


def tree(d: Path) -> dict:
    return {str(p.relative_to(d)): (p.stat().st_mode, p.read_bytes() if p.is_file() else None)
            for p in sorted(d.rglob("*"))}


def tuntcp(argv, cwd, *, user=None, timeout=60):
    """Run the CLI; the result carries ``namespaces_left`` (the ones it made and left)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    prefix = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups"] if user else []
    if user and in_user_namespace():
        # rootless run: only uid 0 is mapped; a nested user namespace is a plain user without
        # capabilities, and without a TUN device it may open
        prefix, env["TUNTCP_TUN_DEVICE"] = ["unshare", "--user"], "/nonexistent/tun"
    run_before = control_sockets()
    p = subprocess.Popen(prefix + [sys.executable, "-m", "tuntcp.cli", *argv], cwd=cwd, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = p.communicate(timeout=timeout)
    res = subprocess.CompletedProcess(p.args, p.returncode, out, err)
    res.namespaces_left = namespaces_of(p.pid)
    res.sockets_left = sockets_made(p.pid, run_before)
    return res


@pytest.fixture
def workdir(tmp_path):
    (tmp_path / "FILE").write_text("precious\n")
    (tmp_path / "EMPTY.toml").write_text("")
    (tmp_path / "DIR").mkdir()
    return tmp_path


def _fill(argv, d: Path):
    return [str(d / a) if a in ("FILE", "DIR", "EMPTY.toml") else a for a in argv]


@pytest.mark.parametrize("argv, needle", ROWS, ids=[" ".join(a) for a, _ in ROWS])
def test_bad_input_is_one_line_exit_2_and_changes_nothing(argv, needle, workdir):
    if probe():
        pytest.skip(probe())
    before = tree(workdir)
    p = tuntcp(_fill(argv, workdir), workdir)
    assert (p.returncode, p.stdout) == (2, ""), p.stderr
    assert p.stderr.count("\n") == 1 and "Traceback" not in p.stderr, p.stderr
    assert re.match(r"tuntcp( [a-z_-]+)*: error: ", p.stderr), p.stderr
    assert needle in p.stderr, p.stderr
    assert tree(workdir) == before
    assert p.namespaces_left == []
    assert p.sockets_left == []


@pytest.mark.parametrize("mode", [0o777, 0o755], ids=["world-writable", "root-owned"])
@pytest.mark.parametrize("argv", [["lab", "run", "1", "--quick", "--out", "OUT"],
                                  ["storm", "--out", "OUT"], ["slow-accept", "--out", "OUT"],
                                  ["serve", "--pcap", "OUT.pcap"], ["soak", "--out", "OUT"]],
                         ids=lambda a: " ".join(a[:2]))
def test_without_privileges_nothing_is_created(argv, mode):
    """Run as nobody from a folder it may (or may not) write: the privilege message, never
    "Permission denied", and no output folder or pcap."""
    import shutil
    import tempfile
    if probe():
        pytest.skip(probe())
    d = Path(tempfile.mkdtemp(prefix="tuntcp-nobody-"))
    try:
        d.chmod(mode)
        before = tree(d)
        p = tuntcp([str(d / a) if a.startswith("OUT") else a for a in argv], d, user="65534")
        assert (p.returncode, p.stdout) == (2, ""), (p.stdout, p.stderr)
        # the privilege message: here user namespaces are allowed but /dev/net/tun is 0600, so
        # it names the TUN device and the fix (netns.privilege_problem)
        assert p.stderr.count("\n") == 1, p.stderr
        assert "needs CAP_NET_ADMIN" in p.stderr or "needs a TUN device it may open" in p.stderr, p.stderr
        assert tree(d) == before and p.namespaces_left == []
    finally:
        shutil.rmtree(d)


def _serve(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "tuntcp.cli", "serve", "--name",
                             f"sig-{os.getpid()}", "--duration-s", "60"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("sig, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
@pytest.mark.parametrize("when", ["0.3 s after start", "while serving"])
def test_signals_exit_130_143_cleanly(sig, status, when, tmp_path):
    if probe():
        pytest.skip(probe())
    p = _serve(tmp_path)
    if when == "while serving":
        for line in p.stdout:
            if "Ctrl-C stops" in line:
                break
    else:
        time.sleep(0.3)
    p.send_signal(sig)
    try:
        out, err = p.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        # a lost signal must fail the test, not leave a server; a stop still running after 20 s
        # has dumped every thread's stack to stderr (tuntcp.signals): show it
        p.kill()
        out, err = p.communicate()
        pytest.fail(f"`tuntcp serve` still running 30 s after {sig.name}; stderr:\n{err}")
    assert p.returncode == status, err
    assert "Traceback" not in err and err.count("\n") <= 1, err
    assert namespaces_of(p.pid) == []


def test_sigterm_during_a_scenario_removes_its_namespace(tmp_path):
    if probe():
        pytest.skip(probe())
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.Popen([sys.executable, "-m", "tuntcp.cli", "slow-accept", "--out",
                          str(tmp_path / "o")], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 20
    while not namespaces_of(p.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 143, err
    assert "Traceback" not in err and err.count("\n") == 1, err
    assert namespaces_of(p.pid) == []


def test_a_closed_pipe_is_quiet(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for argv in ("lab list", "lab show 1", "profiles linux-6.1", "slow-accept -h"):
        p = subprocess.run(f"{sys.executable} -m tuntcp.cli {argv} | head -1", shell=True, cwd=tmp_path,
                           env=env, capture_output=True, text=True, timeout=30)
        assert p.returncode == 0 and p.stderr == "" and len(p.stdout.splitlines()) == 1, (argv, p.stderr)
