"""Passive-open personalities: what ``listen(2)`` makes in one namespace, chosen by the profile.

The host (``Stack``) owns one personality and hands ``listen`` to it. A personality keeps the
per-namespace state its kernel keeps: Linux nothing (each listener has its own SYN queue),
FreeBSD the syncache shared by every listener of the vnet (``syncache_init``).
"""
from __future__ import annotations

from ..errors import StackError
from .freebsd import FreeBSDListener
from .freebsd_syncache import Syncache
from .linux import LinuxListener


class LinuxPassiveOpen:
    family = "linux"

    def __init__(self, stack):
        self.stack = stack

    def listen(self, *, accept_filter=None, **kw) -> LinuxListener:
        if accept_filter is not None:
            raise StackError("accept filters are a FreeBSD feature; use defer_accept on Linux")
        return LinuxListener(self.stack, **kw)


class FreeBSDPassiveOpen:
    family = "freebsd"

    def __init__(self, stack):
        self.stack = stack
        self._syncache: Syncache | None = None

    @property
    def syncache(self) -> Syncache:
        """The vnet's syncache, made at the first listen (its pause clock starts then)."""
        if self._syncache is None:
            self._syncache = Syncache(self.stack)
        return self._syncache

    def listen(self, **kw) -> FreeBSDListener:
        return FreeBSDListener(self.stack, syncache=self.syncache, **kw)


PERSONALITIES = {"linux": LinuxPassiveOpen, "freebsd": FreeBSDPassiveOpen}


def personality_for(stack):
    """The personality of ``stack.profile.family`` (Linux for anything but "freebsd")."""
    return PERSONALITIES.get(stack.profile.family, LinuxPassiveOpen)(stack)
