"""`serve --app module:function`: any trio stream handler, one-line errors for bad specs."""
import subprocess
import sys
import textwrap

import pytest

from tuntcp.shell.apps import AppError, echo, resolve_app


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    (tmp_path / "userapp_mod.py").write_text(textwrap.dedent("""
        x = 3
        def plain(stream): pass
        async def upper(stream): pass
        class Handlers:
            async def run(stream): pass
    """))
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    sys.modules.pop("userapp_mod", None)


def test_builtin_names_stay():
    assert resolve_app("echo") is echo
    assert resolve_app("http").__name__ == "http"


def test_module_function_resolves(user_module):
    import userapp_mod
    assert resolve_app("userapp_mod:upper") is userapp_mod.upper
    assert resolve_app("userapp_mod:Handlers.run") is userapp_mod.Handlers.run


@pytest.mark.parametrize("spec, words", [
    ("nosuchmod_xyz:f", "no module named 'nosuchmod_xyz'"),
    ("userapp_mod:nope", "has no attribute 'nope'"),
    ("userapp_mod:x", "int, not callable"),
    ("userapp_mod:plain", "must be `async def plain(stream)`"),
    ("bogus", "not one of echo, discard, http or module:function"),
    ("userapp_mod:", "module:function"),
])
def test_bad_spec_is_one_line(user_module, spec, words):
    with pytest.raises(AppError) as ei:
        resolve_app(spec)
    assert words in str(ei.value) and "\n" not in str(ei.value)


def test_cli_bad_app_exits_2_with_one_line(tmp_path):
    p = subprocess.run([sys.executable, "-m", "tuntcp.cli", "serve", "--app", "nosuchmod_xyz:f"],
                       capture_output=True, text=True, cwd=tmp_path,
                       env={"PYTHONPATH": ":".join(sys.path)})
    assert p.returncode == 2
    assert p.stderr.count("\n") == 1 and "no module named 'nosuchmod_xyz'" in p.stderr
