"""The examples in docs/api.md, extracted and run as the user would run them (`python file`),
so they cannot rot."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.netns

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"
EXAMPLE = re.compile(r"<!-- example: (\w+) -->\s*```python\n(.*?)```", re.S)


def examples() -> dict[str, str]:
    return dict(EXAMPLE.findall(DOC.read_text()))


def test_doc_has_the_three_examples():
    assert set(examples()) == {"handler", "storm", "tcp_info"}


@pytest.mark.parametrize("name", ["handler", "storm", "tcp_info"])
def test_doc_example_runs(name, netns_available, tmp_path):
    script = tmp_path / f"{name}.py"
    script.write_text(examples()[name])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    p = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path,
                       env=env, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    assert f"{name} ok" in p.stdout
