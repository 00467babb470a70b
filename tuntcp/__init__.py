"""tuntcp: a pure-Python TCP endpoint on a TUN device that accepts connections the way Linux
(3.10 ... 6.12) or FreeBSD (9, 14) does, talking to real kernel clients in a network namespace.

The public surface (stable; see docs/api.md for complete examples):

    lab and profiles   Lab, LabError, get_profile, profile_names
    the endpoint       Stack, Endpoint, open_tcp_listener, open_tcp_stream, serve_tcp,
                       TcpListener, TcpStream
    in front of a server   Front, FrontStats
    kernel clients     connect_clients, tcp_info, kernel_counters, set_linger0
    storms             run_storm, StormConfig
    counters, views    Counters, mib, ss_ti, ss_lnt, nstat_text
    errors             UserError (every one-line user mistake derives from it)

Names are imported on first use (PEP 562), so ``import tuntcp`` loads neither trio nor the
harness; ``from tuntcp import Stack`` loads only the sans-IO core.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# name -> (module, attribute): the one table of the public surface
_EXPORTS: dict[str, tuple[str, str]] = {
    "Lab": ("tuntcp.harness.netns", "Lab"),
    "LabError": ("tuntcp.harness.netns", "LabError"),
    "get_profile": ("tuntcp.profiles", "get_profile"),
    "profile_names": ("tuntcp.profiles", "names"),
    "Stack": ("tuntcp.host.stack", "Stack"),
    "Endpoint": ("tuntcp.shell.endpoint", "Endpoint"),
    "open_tcp_listener": ("tuntcp.shell.listener", "open_tcp_listener"),
    "open_tcp_stream": ("tuntcp.shell.listener", "open_tcp_stream"),
    "serve_tcp": ("tuntcp.shell.listener", "serve_tcp"),
    "TcpListener": ("tuntcp.shell.listener", "TcpListener"),
    "TcpStream": ("tuntcp.shell.stream", "TcpStream"),
    "Front": ("tuntcp.shell.relay", "Front"),
    "FrontStats": ("tuntcp.shell.relay", "FrontStats"),
    "connect_clients": ("tuntcp.harness.clients", "connect_clients"),
    "tcp_info": ("tuntcp.harness.clients", "tcp_info"),
    "kernel_counters": ("tuntcp.harness.clients", "kernel_counters"),
    "set_linger0": ("tuntcp.harness.clients", "set_linger0"),
    "run_storm": ("tuntcp.scenarios.storm", "run_storm"),
    "StormConfig": ("tuntcp.scenarios.storm", "StormConfig"),
    "Counters": ("tuntcp.mib", "Counters"),
    "ss_ti": ("tuntcp.obs.views", "ss_ti"),
    "ss_lnt": ("tuntcp.obs.views", "ss_lnt"),
    "nstat_text": ("tuntcp.obs.views", "nstat_text"),
    "UserError": ("tuntcp.errors", "UserError"),
}

__all__ = sorted(_EXPORTS) + ["mib"]


def __getattr__(name: str) -> Any:
    try:
        module, attr = _EXPORTS[name]
    except KeyError:
        if name == "mib":
            return importlib.import_module("tuntcp.mib")
        raise AttributeError(f"module 'tuntcp' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value          # next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # what type checkers and IDEs see; nothing is imported at run time
    from . import mib
    from .host.stack import Stack
    from .errors import UserError
    from .harness.clients import connect_clients, kernel_counters, set_linger0, tcp_info
    from .harness.netns import Lab, LabError
    from .mib import Counters
    from .obs.views import nstat_text, ss_lnt, ss_ti
    from .profiles import get_profile
    from .profiles import names as profile_names
    from .scenarios.storm import StormConfig, run_storm
    from .shell.endpoint import Endpoint
    from .shell.listener import TcpListener, open_tcp_listener, open_tcp_stream, serve_tcp
    from .shell.relay import Front, FrontStats
    from .shell.stream import TcpStream
