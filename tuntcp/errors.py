"""User-facing errors: one base class, so the CLI prints any of them as one line (exit 2).

Layers below the CLI raise their own subclasses (ProfileError, LabError, StormError ...); the CLI
never needs to know them by name. Output folders are checked here too, before anything is made.
"""
from __future__ import annotations

import os
from collections.abc import Iterator

EXIT_USAGE = 2


class UserError(Exception):
    """A mistake the user can fix from the message alone: printed as one line, exit status 2."""


class StackError(UserError, ValueError):
    """A socket-call mistake (port in use, unknown address, a knob the personality lacks),
    raised by the host and by the listen personalities (``ValueError`` for older callers)."""


class OutputError(UserError):
    """An output folder or file that cannot be written (checked before anything is created)."""


def leaves(e: BaseException) -> Iterator[BaseException]:
    """The plain exceptions inside (nested) exception groups, as trio's nurseries raise them."""
    if isinstance(e, BaseExceptionGroup):
        for sub in e.exceptions:
            yield from leaves(sub)
    else:
        yield e


def _nearest_existing(path: str) -> str:
    p = os.path.abspath(path)
    while not os.path.lexists(p):
        p = os.path.dirname(p)
    return p


def check_out_dir(path: str, what: str = "--out") -> str:
    """Raise OutputError unless ``path`` is (or can be made as) a writable folder. Creates
    nothing: the first existing ancestor must be a writable, non-/proc, non-/sys folder."""
    if os.path.lexists(path) and not os.path.isdir(path):
        raise OutputError(f"{what} {path}: exists and is not a folder ({what} is always a folder)")
    base = _nearest_existing(path)
    if not os.path.isdir(base):
        raise OutputError(f"{what} {path}: {base} is not a folder")
    if base.split(os.sep)[1:2] in (["proc"], ["sys"]) or not os.access(base, os.W_OK | os.X_OK):
        raise OutputError(f"{what} {path}: {base} is not writable")
    return path


def make_out_dir(path: str, what: str = "--out") -> str:
    """``check_out_dir`` then create it (call only after inputs and privileges are checked)."""
    check_out_dir(path, what)
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        raise OutputError(f"{what} {path}: {e.strerror}") from None
    return path


def check_out_file(path: str, what: str) -> str:
    """Raise OutputError unless ``path`` can be written as a file; creates nothing."""
    if os.path.isdir(path):
        raise OutputError(f"{what} {path}: is a folder, not a file")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise OutputError(f"{what} {path}: no such folder {parent}")
    if parent.split(os.sep)[1:2] in (["proc"], ["sys"]) or not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"{what} {path}: {parent} is not writable")
    return path
