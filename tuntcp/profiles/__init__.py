"""Named kernel profiles: every behaviour that differs between kernel versions is read from here.

A profile is an immutable mapping of knob name -> value. Knobs that exist as sysctls carry the
sysctl's name (``net.core.somaxconn``, ``net.ipv4.tcp_rmem``...). Behaviour switches that are not
sysctls (a comparison that changed in a commit, a bug that was fixed) carry a ``model.`` prefix and
name the commit in linux.py / freebsd.py. The host's own sysctls are never read.

    p = get_profile("linux-5.4", ["net.ipv4.tcp_syncookies=2"])
    p["net.core.somaxconn"]  -> 4096
"""
from __future__ import annotations

from ..errors import UserError

from collections.abc import Iterable, Mapping
from typing import Any


class ProfileError(UserError, ValueError):
    """A user mistake in a profile name or a --sysctl override (reported without a traceback)."""


class Profile(dict):
    """A read-only dict of knob -> value (a dict so lookups on the per-packet path cost what a
    dict lookup costs), plus ``name`` and ``family``."""

    __slots__ = ("name", "family")

    def __init__(self, name: str, family: str, knobs: Mapping[str, Any]):
        dict.__init__(self, knobs)
        self.name = name
        self.family = family  # "linux" or "freebsd"

    def __missing__(self, key: str) -> Any:
        raise KeyError(f"profile {self.name} has no knob {key!r}")

    def _read_only(self, *args, **kwargs):
        raise TypeError("profiles are read-only; use with_overrides()")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _read_only  # type: ignore[assignment]

    def __reduce__(self):
        return (Profile, (self.name, self.family, dict(self)))

    def __repr__(self) -> str:
        return f"Profile({self.name!r})"

    def with_overrides(self, overrides: Mapping[str, Any] | Iterable[str] | None) -> "Profile":
        """New profile with knobs replaced. Accepts a mapping or ``name=value`` strings.

        String values are parsed like the sysctl would take them: ints, space- or
        comma-separated int vectors (``tcp_rmem``), ``true``/``false`` for model switches.
        """
        if not overrides:
            return self
        items = overrides.items() if isinstance(overrides, Mapping) else (_split(s) for s in overrides)
        knobs = dict(self)
        for name, value in items:
            if name not in knobs:
                close = [k for k in knobs if k.split(".")[-1] == name.split(".")[-1]]
                hint = f" (did you mean {close[0]}?)" if close else ""
                raise ProfileError(f"unknown knob {name!r} for profile {self.name}{hint}")
            knobs[name] = check(self.family, name, _coerce(name, value, knobs[name]),
                                value if isinstance(value, str) else None)
        return Profile(self.name, self.family, knobs)


def _split(s: str) -> tuple[str, str]:
    if "=" not in s:
        raise ProfileError(f"--sysctl wants name=value, got {s!r}")
    name, _, value = s.partition("=")
    return name.strip(), value.strip()


def _coerce(name: str, value: Any, old: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        if isinstance(old, bool):
            if value.lower() in ("1", "true", "yes", "on"):
                return True
            if value.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError
        # proc_dointvec: an empty write changes nothing, fewer values than the vector holds set a
        # prefix, values past its end are ignored; numbers are read with base 0 (0x10 is 16).
        if isinstance(old, (tuple, int)):
            parts = tuple(int(x, 0) for x in value.replace(",", " ").split())
            if not parts:
                return old
            if isinstance(old, tuple):
                return parts[:len(old)] + old[len(parts):]
            return parts[0]
        if isinstance(old, float):
            return float(value)
        return value
    except ValueError:
        raise ProfileError(f"bad value {value!r} for {name}: not a {_kind(old)} (current value {_show(old)})") from None


def _kind(old: Any) -> str:
    if isinstance(old, bool):
        return "boolean (true/false/1/0)"
    if isinstance(old, tuple):
        return f"list of {len(old)} integers"
    return "number" if isinstance(old, (int, float)) else "string"


def _show(v: Any) -> str:
    return " ".join(map(str, v)) if isinstance(v, tuple) else str(v)


REGISTRY: dict[str, Profile] = {}


def register(profile: Profile) -> None:
    REGISTRY[profile.name] = profile


def get_profile(name: str, overrides: Mapping[str, Any] | Iterable[str] | None = None) -> Profile:
    """The named kernel profile with ``overrides`` ({knob: value} or ["knob=value"]) applied."""
    try:
        base = REGISTRY[name]
    except KeyError:
        raise ProfileError(f"unknown profile {name!r}; known: {', '.join(sorted(REGISTRY))}") from None
    return base.with_overrides(overrides)


def names() -> list[str]:
    """The registered profile names, sorted (`tuntcp profiles` lists them)."""
    return sorted(REGISTRY)


from .knobs import check  # noqa: E402
from . import linux as _linux  # noqa: E402  (registers the Linux profiles)
from . import freebsd as _freebsd  # noqa: E402  (registers the FreeBSD profiles)
