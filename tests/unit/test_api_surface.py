"""The public surface of `tuntcp`: every exported name resolves and is documented, and the
package imports light (no trio, no harness) until a name that needs them is used."""
import inspect
import subprocess
import sys

import tuntcp


def _modules_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys; print(' '.join(sys.modules))"],
                         capture_output=True, text=True, check=True, env={"PYTHONPATH": ":".join(sys.path)})
    return set(out.stdout.split())


def test_every_export_resolves_with_a_docstring():
    for name in tuntcp.__all__:
        obj = getattr(tuntcp, name)
        assert inspect.getdoc(obj), f"tuntcp.{name} has no docstring"
    assert set(tuntcp.__all__) <= set(dir(tuntcp))


def test_unknown_name_is_an_attribute_error():
    try:
        tuntcp.no_such_thing
    except AttributeError as e:
        assert "no_such_thing" in str(e)
    else:
        raise AssertionError("no AttributeError")


def test_import_is_light():
    mods = _modules_after("import tuntcp")
    assert "trio" not in mods and "tuntcp.harness.netns" not in mods and "pyroute2" not in mods


def test_core_users_do_not_load_trio():
    mods = _modules_after("from tuntcp import Stack, get_profile, Counters, mib")
    assert "trio" not in mods, "the sans-IO core must not import trio"
    assert "tuntcp.host.stack" in mods


def test_functions_have_type_hints():
    for name in ("get_profile", "open_tcp_listener", "open_tcp_stream", "tcp_info", "connect_clients",
                 "run_storm"):
        hints = inspect.signature(getattr(tuntcp, name))
        annotated = [p for p in hints.parameters.values() if p.annotation is not inspect.Parameter.empty]
        assert annotated or hints.return_annotation is not inspect.Signature.empty, name
