"""User-facing errors: one base class, so the CLI prints any of them as one line (exit 2).

Layers below the CLI raise their own subclasses (ProfileError, LabError, StormError ...); the CLI
never needs to know them by name.
"""
from __future__ import annotations

from collections.abc import Iterator


class UserError(Exception):
    """A mistake the user can fix from the message alone: printed as one line, exit status 2."""


class StackError(UserError, ValueError):
    """A socket-call mistake (port in use, unknown address, a knob the personality lacks),
    raised by the host and by the listen personalities (``ValueError`` for older callers)."""


def leaves(e: BaseException) -> Iterator[BaseException]:
    """The plain exceptions inside (nested) exception groups, as trio's nurseries raise them."""
    if isinstance(e, BaseExceptionGroup):
        for sub in e.exceptions:
            yield from leaves(sub)
    else:
        yield e
