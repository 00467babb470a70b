"""The pytest plugin as a user meets it: a test file of their own (a trio handler, the
tuntcp_* fixtures) in a fresh directory, run by a separate pytest."""
import os
import subprocess
import sys
import textwrap
from importlib.metadata import entry_points

import pytest

pytestmark = pytest.mark.netns

USER_TESTS = textwrap.dedent('''
    import trio
    from tuntcp import mib, tcp_info

    async def shout(stream):
        """The user's server: upper-cases what it reads."""
        async with stream:
            while data := await stream.receive_some():
                await stream.send_all(data.upper())

    async def test_handler_behind_linux_54_with_cookies(tuntcp_endpoint, kernel_clients):
        ep = tuntcp_endpoint(profile="linux-5.4", backlog=50, sysctl=["net.ipv4.tcp_syncookies=2"],
                             handler=shout, port=8080, rcvbuf=102400)
        socks = await kernel_clients(20, 8080, timeout=5)
        for s in socks:
            ts = trio.socket.from_stdlib_socket(s)
            await ts.send(b"ping")
            assert await ts.recv(10) == b"PING"
            assert tcp_info(s)["snd_wscale"] == 1      # what the cookie SYN-ACK announced
        assert ep.stack.counters[mib.TcpExtSyncookiesRecv] == 20

    def test_marker_added(request):
        assert request.node.get_closest_marker("tuntcp") is None

    def test_lab_fixture_marks(tuntcp_lab, request):
        assert request.node.get_closest_marker("tuntcp") is not None
        assert tuntcp_lab.sysctl("net.ipv4.tcp_syncookies") in ("0", "1", "2")

    async def test_storm_fixture(reconnect_storm):
        report = await reconnect_storm(clients=20, hosts=2, syncookies=2, requests_per_client=1,
                                       request_bytes=4096, rtt_ms=2, modes=("buggy",))
        s = report["runs"]["buggy"]["summary"]
        assert s["connections_made"] == 20 and s["wscale_mismatches"] == 20
''')


def user_pytest(tmp_path, *pre, env=None):
    (tmp_path / "test_user_server.py").write_text(USER_TESTS)
    (tmp_path / "pytest.ini").write_text("[pytest]\ntrio_mode = true\n")
    installed = any(ep.name == "tuntcp" for ep in entry_points(group="pytest11"))
    plugin = [] if installed else ["-p", "tuntcp.pytest_plugin"]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), **(env or {}))
    env.pop("PYTEST_ADDOPTS", None)
    # --basetemp: in a rootless run pytest's default /tmp/pytest-of-root is not ours
    base = tmp_path / f"inner{len(list(tmp_path.glob('inner*')))}"
    return subprocess.run([*pre, sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rs",
                           f"--basetemp={base}", *plugin, str(tmp_path / "test_user_server.py")], capture_output=True, text=True, cwd=tmp_path,
                          env=env, timeout=300)


def test_users_own_handler_through_the_plugin(tmp_path, netns_available):
    p = user_pytest(tmp_path, env={"TUNTCP_REQUIRE_NETNS": "1"})
    assert p.returncode == 0, p.stdout[-4000:] + p.stderr[-2000:]
    assert "4 passed" in p.stdout


def test_without_root_the_plugin_runs_rootless(tmp_path, netns_available):
    """Capabilities dropped: the lab goes through user namespaces and the tests still run."""
    drop = ["setpriv", "--bounding-set", "-net_admin,-sys_admin"]
    p = user_pytest(tmp_path, *drop, env={"TUNTCP_REQUIRE_NETNS": "1"})
    assert p.returncode == 0, p.stdout[-4000:] + p.stderr[-2000:]
    assert "4 passed" in p.stdout


def test_without_root_or_tun_skip_with_reason_or_fail_under_ci(tmp_path, netns_available):
    drop = ["setpriv", "--bounding-set", "-net_admin,-sys_admin"]
    nodev = {"TUNTCP_TUN_DEVICE": str(tmp_path / "no-tun")}
    skipped = user_pytest(tmp_path, *drop, env={"TUNTCP_REQUIRE_NETNS": "0", **nodev})
    assert skipped.returncode == 0, skipped.stdout[-3000:]
    assert "1 passed, 3 skipped" in skipped.stdout
    assert (f"tuntcp lab unavailable: rootless tuntcp needs a TUN device it may open: no TUN device "
            f"{tmp_path}/no-tun") in skipped.stdout
    failed = user_pytest(tmp_path, *drop, env={"TUNTCP_REQUIRE_NETNS": "1", **nodev})
    assert failed.returncode == 1
    assert "3 errors" in failed.stdout or "3 failed" in failed.stdout, failed.stdout[-3000:]
    assert "TUNTCP_REQUIRE_NETNS=1" in failed.stdout
