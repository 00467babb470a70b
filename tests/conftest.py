"""Suite-wide policy: under CI (TUNTCP_REQUIRE_NETNS=1) a skipped `netns` test is a failure."""
import os

import pytest

REQUIRE_NETNS = os.environ.get("TUNTCP_REQUIRE_NETNS") == "1"


def pytest_configure(config):
    # Rootless runs enter their user + net + mount namespaces while the process has one thread.
    from tuntcp.harness import netns
    if netns.privilege_problem() is None:
        netns.ensure_privileges()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if REQUIRE_NETNS and rep.skipped and item.get_closest_marker("netns") is not None:
        reason = rep.longrepr[2] if isinstance(rep.longrepr, tuple) else str(rep.longrepr)
        rep.outcome = "failed"
        rep.longrepr = f"netns test skipped under TUNTCP_REQUIRE_NETNS=1: {reason}"
