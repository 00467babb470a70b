"""One script's run: its verdict and packetdrill-style message."""
from __future__ import annotations

import os
import traceback
from dataclasses import dataclass

from .model import DrillError, Mismatch, ScriptSyntaxError, Unsupported
from .parser import parse
from .runner import Runner


@dataclass
class Result:
    path: str
    verdict: str          # MATCH DIVERGENCE UNSUPPORTED CRASH SYNTAX
    message: str = ""
    feature: str = ""


def run_file(path: str, profile: str, *, tolerance_usecs=None, defines=None, strict_segments=None,
             ip_version: str = "ipv4", mtu: int | None = None) -> Result:
    name = os.path.basename(path)
    try:
        with open(path) as f:
            text = f.read()
        script = parse(text, path, defines)
        Runner(script, profile, tolerance_usecs=tolerance_usecs, defines=defines,
               strict_segments=strict_segments, ip_version=ip_version, mtu=mtu).run()
        return Result(path, "MATCH")
    except Unsupported as e:
        return Result(path, "UNSUPPORTED", f"{name}:{e.line}: {e.msg}", e.feature)
    except Mismatch as e:
        return Result(path, "DIVERGENCE", f"{name}:{e.line}: {e.what}: {e.msg}")
    except ScriptSyntaxError as e:
        return Result(path, "SYNTAX", f"{name}:{e.line}: {e.msg}")
    except DrillError as e:
        return Result(path, "DIVERGENCE", f"{name}:{e.line}: {e.msg}")
    except Exception as e:  # a Python exception in the runner or the model: a bug by definition
        tb = traceback.extract_tb(e.__traceback__)[-1]
        return Result(path, "CRASH", f"{name}: {type(e).__name__}: {e} "
                                     f"({os.path.basename(tb.filename)}:{tb.lineno})")
