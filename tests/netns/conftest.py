"""Fixtures for tests that drive real kernel clients in a namespace against a TUN."""
import pytest

from tuntcp.harness import netns


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/netns/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.netns)


@pytest.fixture(scope="session")
def netns_available():
    reason = netns.probe()
    if reason is not None:
        pytest.skip(reason)
    netns.sweep_stale()  # namespaces left by runs that were SIGKILLed
    return True


@pytest.fixture
def lab(netns_available, request):
    """A fresh namespace + TUN (198.18.0.1 -> 198.18.1.1), removed after the test. IPv6
    (2001:2::1 -> 2001:2:0:1::1) for a test parametrized ``("lab", [4, 6], indirect=True)``."""
    with netns.Lab(family=getattr(request, "param", 4)) as lab:
        yield lab
