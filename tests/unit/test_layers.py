"""The layers point one way and no module-level import circles exist (read with ``ast``).

Order (CONTRACT.md, issue 10): wire -> profiles -> core -> listen -> host -> obs -> shell ->
harness -> bench/drill -> scenarios -> cli -> the package's own API (``tuntcp/__init__``,
``pytest_plugin``). ``mib`` and ``errors`` are leaves any layer may import. A module may import
its own layer and the layers below it, never one above (function-level imports included).
"""
import ast
import pathlib

import tuntcp

ROOT = pathlib.Path(tuntcp.__file__).parent
# signals: how the CLI's trio runs take stop signals (shell's rank; a top-level module so that
# the CLI imports it without the shell package)
RANK = {"wire": 0, "profiles": 1, "core": 2, "listen": 3, "host": 4, "obs": 5, "shell": 6, "signals": 6,
        "harness": 7, "bench": 8, "drill": 8, "scenarios": 9, "cli": 10,
        "__init__": 11, "pytest_plugin": 11}
LEAVES = {"mib", "errors"}


def _modules() -> dict[str, pathlib.Path]:
    out = {}
    for p in ROOT.rglob("*.py"):
        parts = ["tuntcp", *p.relative_to(ROOT).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = p
    return out


MODULES = _modules()


def _resolve(name: str) -> str:
    """The module a dotted name lives in (a name imported from a package may be an attribute)."""
    while name not in MODULES:
        name = name.rpartition(".")[0]
    return name


def _imports(mod: str, top_only: bool) -> set[str]:
    """tuntcp modules ``mod`` imports (only its module-level statements if ``top_only``)."""
    path = MODULES[mod]
    pkg = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    tree = ast.parse(path.read_text())
    nodes = []
    if top_only:
        todo = list(tree.body)
        while todo:               # module level includes if/try blocks, not def/class bodies
            n = todo.pop()
            if isinstance(n, (ast.If, ast.Try)):
                todo += n.body + n.orelse + getattr(n, "finalbody", []) + \
                    [s for h in getattr(n, "handlers", []) for s in h.body]
            else:
                nodes.append(n)
    else:
        nodes = list(ast.walk(tree))
    found = set()
    for n in nodes:
        if isinstance(n, ast.Import):
            found |= {a.name for a in n.names if a.name.split(".")[0] == "tuntcp"}
        elif isinstance(n, ast.ImportFrom):
            if n.level:
                base = pkg.split(".")[:len(pkg.split(".")) - n.level + 1]
                src = ".".join(base + ([n.module] if n.module else []))
            else:
                src = n.module or ""
            if src.split(".")[0] != "tuntcp":
                continue
            found |= {_resolve(f"{src}.{a.name}") for a in n.names}
    return {_resolve(f) for f in found} - {mod}


def _area(mod: str) -> str:
    parts = mod.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_every_area_has_a_rank():
    assert {_area(m) for m in MODULES} <= set(RANK) | LEAVES


def test_nothing_imports_from_a_layer_above():
    bad = []
    for mod in MODULES:
        a = _area(mod)
        for t in _imports(mod, top_only=False):
            b = _area(t)
            if b in LEAVES:
                continue
            if a in LEAVES or RANK[b] > RANK[a]:
                bad.append(f"{mod} -> {t}")
    assert bad == []


def test_core_and_listen_stay_below_the_host():
    for mod in MODULES:
        if _area(mod) in ("core", "listen"):
            above = {_area(t) for t in _imports(mod, top_only=False)} & {
                "listen" if _area(mod) == "core" else "", "host", "obs", "shell", "harness",
                "scenarios", "cli"}
            assert not above, (mod, above)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Import cycles (a package and its own submodules excepted: that is how packages load)."""
    cycles = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for t in sorted(graph[m]):
            if t.startswith(m + ".") or m.startswith(t + "."):
                continue
            if state.get(t) == 1:
                cycles.append(stack[stack.index(t):] + [t])
            elif t not in state:
                visit(t)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)
    return cycles


def test_no_module_level_import_cycles():
    assert _cycles({m: _imports(m, top_only=True) for m in MODULES}) == []


def test_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "p": {"p.x"}, "p.x": {"p"}}) == [
        ["a", "b", "c", "a"]]


def test_the_walker_sees_imports():
    """The checks above would pass on an empty graph: the walker must see real edges."""
    assert "tuntcp.core.conn" in _imports("tuntcp.host.stack", top_only=True)
    assert "tuntcp.listen.personality" in _imports("tuntcp.host.stack", top_only=True)
    assert "tuntcp.mib" in _imports("tuntcp.core.conn", top_only=True)
